package hooksecrets

import (
	"errors"
	"net/http"
	"strings"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/http/compat/internal/dialect"
)

// Codes for what the dialect tells apart and the domain does not. They
// only ever reach the error writer.
const (
	codeMissingToken     envy.Code = "hooksecrets.missing_token"
	codeSecretNotFound   envy.Code = "hooksecrets.secret_not_found"
	codeConcurrentUpdate envy.Code = "hooksecrets.concurrent_update"
)

// errorTable is the one table that maps the domain's error codes to the
// Auth0 Management API's statuses, messages and errorCodes. Fixed messages
// are those of Auth0's reference for the hook secrets endpoints; some go
// on with what the error says (never a value).
var errorTable = dialect.Answers{
	envy.EBadRequest:             {Type: "invalid_body", Message: "Invalid request payload JSON format", Detail: true},
	envy.EInvalid:                {Type: "invalid_body", Status: http.StatusBadRequest, Message: "Payload validation error", Detail: true},
	envy.EUnauthenticated:        {Type: "invalid_token", Message: "Invalid token."},
	codeMissingToken:             {Type: "invalid_token", Status: http.StatusUnauthorized, Message: "Missing authentication"},
	envy.EForbidden:              {Type: "insufficient_scope", Message: "Insufficient scope: the token's permissions on this hook do not allow this request."},
	envy.ENotFound:               {Type: "inexistent_hook", Message: "Hook not found."},
	codeSecretNotFound:           {Type: "inexistent_secret", Status: http.StatusNotFound, Message: "Secret not found", Detail: true},
	dialect.CodeMethodNotAllowed: {Type: "method_not_allowed", Message: "Method not allowed", Detail: true},
	dialect.CodeNoRoute:          {Type: "not_found", Message: "Not Found"},
	envy.EConflict:               {Type: "secret_exists", Message: "Secret with the same name already exists", Detail: true},
	codeConcurrentUpdate:         {Type: "concurrent_update", Status: http.StatusConflict, Message: "The hook's secrets kept changing while the request ran; send it again."},
	envy.ETooLarge:               {Type: "payload_too_large", Message: "Payload content length greater than maximum allowed", Detail: true},
	envy.EUnsupportedMedia:       {Type: "unsupported_media_type", Message: "Unsupported media type", Detail: true},
	envy.ERateLimited:            {Type: "too_many_requests", Message: "Too many requests."},
	envy.EInternal:               {Type: "internal_error", Message: "Internal error"},
	envy.EUnavailable:            {Type: "service_unavailable", Message: "Service unavailable"},
	codeHookExists:               {Type: "hook_conflict", Status: http.StatusConflict, Message: "Another hook with the same name already exists", Detail: true},
	codeHookTooLarge:             {Type: "invalid_body", Status: http.StatusBadRequest, Message: "Payload validation error", Detail: true},
	// POST /oauth/token answers Auth0's OAuth envelope (oauthJSON).
	codeOAuthDenied:      {Type: "access_denied", Status: http.StatusUnauthorized},
	codeOAuthInvalid:     {Type: "invalid_request", Status: http.StatusBadRequest},
	codeOAuthGrant:       {Type: "unsupported_grant_type", Status: http.StatusBadRequest},
	codeOAuthAudience:    {Type: "access_denied", Status: http.StatusForbidden},
	codeOAuthRateLimited: {Type: "too_many_requests", Status: http.StatusTooManyRequests},
	codeOAuthServer:      {Type: "server_error", Status: http.StatusInternalServerError, Message: "Internal error"},
}.Table()

// concurrent tells a write that kept meeting other writes to the hook
// until the service gave up planning it (envy.ErrStale) from the 409 of a
// name that exists, which it would otherwise be answered as.
func concurrent(err error) error {
	if errors.Is(err, envy.ErrStale) {
		return &envy.Error{Code: codeConcurrentUpdate}
	}
	return err
}

// errorJSON is the Auth0 Management API's error envelope.
type errorJSON struct {
	StatusCode int    `json:"statusCode"`
	Error      string `json:"error"`
	Message    string `json:"message"`
	ErrorCode  string `json:"errorCode"`
}

// oauthJSON is Auth0's error envelope of its authentication API.
type oauthJSON struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// envelope answers e in the Auth0 envelope: the table's message, and for
// some kinds what the error says beyond it (its fields as "loc: message",
// else its own message; neither ever holds a value).
func envelope(c dialect.Entry, e *envy.Error) any {
	if strings.HasPrefix(string(e.Code), "hooksecrets.oauth.") {
		return oauthJSON{Error: c.Type, Description: c.Text(e, dialect.FieldLocMsg)}
	}
	return errorJSON{StatusCode: c.Status, Error: http.StatusText(c.Status), Message: c.Text(e, dialect.FieldLocMsg), ErrorCode: c.Type}
}
