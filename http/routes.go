package http

import (
	"net/http"

	"github.com/envy-dev/envy"
)

// routeTable is every native route: registered from here, and compared
// with the OpenAPI document by a test, so neither can drift from the other.
// Routes under scopePrefix are served by one ServeMux pattern,
// "/v1/scopes/{path...}", whose wire.ScopeMux splits the path at "/-/".
var routeTable = []route{
	{Method: http.MethodGet, Path: "/healthz", Public: true, h: (*Server).handleHealthz},
	{Method: http.MethodGet, Path: "/readyz", Public: true, h: (*Server).handleReadyz},
	{Method: http.MethodGet, Path: "/metrics", Public: true, h: (*Server).handleMetrics},
	{Method: http.MethodGet, Path: "/v1/openapi.json", Public: true, h: (*Server).handleOpenAPI},

	{Method: http.MethodGet, Path: "/v1/scopes", h: (*Server).handleListScopes},
	{Method: http.MethodGet, Path: "/v1/scopes/{path}", h: (*Server).handleGetScope},
	{Method: http.MethodPut, Path: "/v1/scopes/{path}", Action: envy.ActWrite, Audit: envy.AuditScopePut, h: (*Server).handlePutScope},
	{Method: http.MethodDelete, Path: "/v1/scopes/{path}", h: (*Server).handleDeleteScope},

	{Method: http.MethodGet, Path: "/v1/scopes/{path}/-/vars", h: (*Server).handleListVars},
	{Method: http.MethodPatch, Path: "/v1/scopes/{path}/-/vars", Action: envy.ActWrite, Audit: envy.AuditVarsMerge, Check: checkAtWrite, h: (*Server).handleMergeVars},
	{Method: http.MethodPut, Path: "/v1/scopes/{path}/-/vars", Action: envy.ActWrite, Audit: envy.AuditVarsReplace, Check: checkAtWrite, h: (*Server).handleReplaceVars},
	{Method: http.MethodGet, Path: "/v1/scopes/{path}/-/vars/{name}", h: (*Server).handleGetVar},
	{Method: http.MethodPut, Path: "/v1/scopes/{path}/-/vars/{name}", Action: envy.ActWrite, Audit: envy.AuditVarSet, Check: checkAtWrite, h: (*Server).handlePutVar},
	{Method: http.MethodPatch, Path: "/v1/scopes/{path}/-/vars/{name}", Action: envy.ActWrite, Audit: envy.AuditVarSet, Check: checkAtWrite, h: (*Server).handlePatchVar},
	{Method: http.MethodDelete, Path: "/v1/scopes/{path}/-/vars/{name}", h: (*Server).handleDeleteVar},

	{Method: http.MethodGet, Path: "/v1/scopes/{path}/-/env", Check: checkAtReveal, h: (*Server).handleEnv},
	{Method: http.MethodGet, Path: "/v1/scopes/{path}/-/resolved", h: (*Server).handleResolved},
	{Method: http.MethodGet, Path: "/v1/scopes/{path}/-/history", h: (*Server).handleHistory},
	{Method: http.MethodPost, Path: "/v1/scopes/{path}/-/rollback", Action: envy.ActWrite, Audit: envy.AuditScopeRollback, h: (*Server).handleRollback},
	{Method: http.MethodGet, Path: "/v1/scopes/{path}/-/watch", h: (*Server).handleWatch},
	{Method: http.MethodPut, Path: "/v1/scopes/{path}/-/consumers/{id}", Action: envy.ActRead, Audit: envy.AuditConsumerReport, h: (*Server).handleReportConsumer},
	{Method: http.MethodDelete, Path: "/v1/scopes/{path}/-/consumers/{id}", Action: envy.ActRead, Audit: envy.AuditConsumerGone, h: (*Server).handleDeleteConsumer},
	{Method: http.MethodGet, Path: "/v1/scopes/{path}/-/status", h: (*Server).handleStatus},
	{Method: http.MethodPost, Path: "/v1/scopes/{path}/-/rollout/resume", Action: envy.ActWrite, Audit: envy.AuditRolloutResume, h: (*Server).handleRolloutResume},

	{Method: http.MethodPost, Path: "/v1/tokens", h: (*Server).handleCreateToken},
	{Method: http.MethodGet, Path: "/v1/tokens", h: (*Server).handleListTokens},
	{Method: http.MethodGet, Path: "/v1/tokens/self", h: (*Server).handleSelf},
	{Method: http.MethodGet, Path: "/v1/tokens/{id}", h: (*Server).handleGetToken},
	{Method: http.MethodDelete, Path: "/v1/tokens/{id}", h: (*Server).handleRevokeToken},

	{Method: http.MethodGet, Path: "/v1/audit", h: (*Server).handleAudit},

	{Method: http.MethodGet, Path: "/v1/auth/jwt", h: (*Server).handleListTrusts},
	{Method: http.MethodGet, Path: "/v1/auth/jwt/{name}", h: (*Server).handleGetTrust},
	{Method: http.MethodPut, Path: "/v1/auth/jwt/{name}", h: (*Server).handlePutTrust},
	{Method: http.MethodDelete, Path: "/v1/auth/jwt/{name}", h: (*Server).handleDeleteTrust},
	{Method: http.MethodPost, Path: "/v1/auth/jwt/{name}/login", Public: true, h: (*Server).handleJWTLogin},
	{Method: http.MethodGet, Path: "/v1/auth/oidc", h: (*Server).handleListOIDC},
	{Method: http.MethodGet, Path: "/v1/auth/oidc/{name}", h: (*Server).handleGetOIDC},
	{Method: http.MethodPut, Path: "/v1/auth/oidc/{name}", h: (*Server).handlePutOIDC},
	{Method: http.MethodDelete, Path: "/v1/auth/oidc/{name}", h: (*Server).handleDeleteOIDC},
	{Method: http.MethodPost, Path: "/v1/auth/oidc/{name}/auth_url", Public: true, h: (*Server).handleOIDCAuthURL},
	{Method: http.MethodPost, Path: "/v1/auth/oidc/{name}/callback", Public: true, h: (*Server).handleOIDCCallback},

	{Method: http.MethodPost, Path: "/v1/webhooks", h: (*Server).handleCreateWebhook},
	{Method: http.MethodGet, Path: "/v1/webhooks", h: (*Server).handleListWebhooks},
	{Method: http.MethodGet, Path: "/v1/webhooks/{id}", h: (*Server).handleGetWebhook},
	{Method: http.MethodPatch, Path: "/v1/webhooks/{id}", h: (*Server).handlePatchWebhook},
	{Method: http.MethodDelete, Path: "/v1/webhooks/{id}", h: (*Server).handleDeleteWebhook},
	{Method: http.MethodGet, Path: "/v1/webhooks/{id}/deliveries", h: (*Server).handleDeliveries},
	{Method: http.MethodPost, Path: "/v1/webhooks/{id}/deliveries/{delivery}/redeliver", h: (*Server).handleRedeliver},
	{Method: http.MethodPost, Path: "/v1/webhooks/{id}/test", h: (*Server).handleTestWebhook},
}
