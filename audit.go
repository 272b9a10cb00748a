package envy

import "time"

// AuditAction names what an audit entry records: a use-case of the
// service, a refused request, or an operation on the whole server. Its
// string is what the stores keep and the audit API shows.
type AuditAction string

// The audit actions.
const (
	// Refusals before any use-case runs.
	AuditAuth      AuditAction = "auth"       // no valid token
	AuditRateLimit AuditAction = "rate_limit" // over a rate limit

	// Reads.
	AuditReveal   AuditAction = "reveal" // values were revealed (or a reveal was refused)
	AuditEnv      AuditAction = "env"
	AuditResolved AuditAction = "resolved"
	AuditVarsList AuditAction = "vars.list"
	AuditVarGet   AuditAction = "var.get"
	AuditHistory  AuditAction = "history"
	AuditWatch    AuditAction = "watch"
	AuditStatus   AuditAction = "status"
	AuditScopeGet AuditAction = "scope.get"

	// AuditRevealWithdrawn says that reveals already recorded as
	// answered (a "reveal" entry of the same client, token, scope and
	// names in the same second, which counts them and may list their
	// request ids) were not: each was refused, or its caller went away,
	// after its entry was queued, and no value went out. Its status is
	// what the caller got (OutcomeUnavailable, OutcomeClientClosed); its
	// at is the reveal's.
	AuditRevealWithdrawn AuditAction = "reveal.withdrawn"

	// Writes.
	AuditVarSet         AuditAction = "var.set"
	AuditVarDelete      AuditAction = "var.delete"
	AuditVarsMerge      AuditAction = "vars.merge"
	AuditVarsReplace    AuditAction = "vars.replace"
	AuditScopePut       AuditAction = "scope.put"
	AuditScopeDelete    AuditAction = "scope.delete"
	AuditScopeRollback  AuditAction = "scope.rollback"
	AuditConsumerReport AuditAction = "consumer.report"
	AuditConsumerGone   AuditAction = "consumer.goodbye"
	AuditRolloutResume  AuditAction = "rollout.resume"

	// Tokens and the audit log (admin on every scope, but for creating
	// a token).
	AuditTokenCreate AuditAction = "token.create"
	AuditTokenList   AuditAction = "token.list"
	AuditTokenGet    AuditAction = "token.get"
	AuditTokenRevoke AuditAction = "token.revoke"
	// AuditSignIn is a dialect's client-credentials sign-in: a client
	// secret (an envy token) traded for a short-lived child of it.
	AuditSignIn  AuditAction = "signin"
	AuditLogList AuditAction = "audit.list"

	// Operations on the whole server (admin on every scope).
	AuditBackup     AuditAction = "backup"
	AuditKeysRotate AuditAction = "keys.rotate"

	// A write through a compatible API dialect (http/compat), refused
	// before its body is read.
	AuditApifyWrite       AuditAction = "apify.write"
	AuditContainersWrite  AuditAction = "containers.write"
	AuditHooksecretsWrite AuditAction = "hooksecrets.write"
	AuditSmarthooksWrite  AuditAction = "smarthooks.write"
	AuditUsersecretsWrite AuditAction = "usersecrets.write"
)

// Outcome is how an audited request ended. The stores keep its number; the
// numbers are those that the audit log has recorded from the start (the
// HTTP status the request was answered with), so that old entries keep
// their meaning: never change one. What an API shows for an outcome is the
// API's to decide (http maps them in one table).
type Outcome int

// The outcomes.
const (
	OutcomeOK              Outcome = 200 // done
	OutcomeCreated         Outcome = 201 // done, and it created what it wrote
	OutcomeDeleted         Outcome = 204 // done: deleted or revoked
	OutcomeUnauthenticated Outcome = 401 // refused: no valid token
	OutcomeForbidden       Outcome = 403 // refused: the caller may see the scope but not do this
	OutcomeNotFound        Outcome = 404 // refused: the caller may not see the scope, answered as missing
	OutcomeConflict        Outcome = 409 // an operation failed for a conflict
	OutcomeRateLimited     Outcome = 429 // refused: over a rate limit
	OutcomeClientClosed    Outcome = 499 // not answered: the caller went away (its context ended) first
	OutcomeFailed          Outcome = 500 // an operation failed
	OutcomeUnavailable     Outcome = 503 // refused: it could not be audited in time (an audit stream, the store)
)

// AuditListQuery selects audit entries, newest first.
type AuditListQuery struct {
	Scope  string
	Actor  string
	Since  time.Time
	Cursor string
	Limit  int
}
