package hooksecrets

import (
	"net/http"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/http/compat/internal/dialect"
)

// Codes for what the dialect tells apart and the domain does not. They
// only ever reach the error writer.
const (
	codeMissingToken   envy.Code = "hooksecrets.missing_token"
	codeSecretNotFound envy.Code = "hooksecrets.secret_not_found"
)

// apiError is how the dialect answers one kind of error.
type apiError struct {
	status    int
	errorCode string
	message   string
	detail    bool // the message goes on with the error's own, which never holds a value
}

// errorTable is the one table that maps the domain's error codes to the
// Auth0 Management API's statuses, messages and errorCodes. Fixed messages
// are those of Auth0's reference for the hook secrets endpoints.
var errorTable = map[envy.Code]apiError{
	envy.EBadRequest:             {http.StatusBadRequest, "invalid_body", "Invalid request payload JSON format", true},
	envy.EInvalid:                {http.StatusBadRequest, "invalid_body", "Payload validation error", true},
	envy.EUnauthenticated:        {http.StatusUnauthorized, "invalid_token", "Invalid token.", false},
	codeMissingToken:             {http.StatusUnauthorized, "invalid_token", "Missing authentication", false},
	envy.EForbidden:              {http.StatusForbidden, "insufficient_scope", "Insufficient scope: the token's permissions on this hook do not allow this request.", false},
	envy.ENotFound:               {http.StatusNotFound, "inexistent_hook", "Hook not found.", false},
	codeSecretNotFound:           {http.StatusNotFound, "inexistent_secret", "Secret not found", true},
	dialect.CodeMethodNotAllowed: {http.StatusMethodNotAllowed, "method_not_allowed", "Method not allowed", true},
	envy.EConflict:               {http.StatusConflict, "secret_exists", "Secret with the same name already exists", true},
	envy.EPrecondition:           {http.StatusConflict, "concurrent_update", "The hook's secrets kept changing while the request ran; send it again.", false},
	envy.ETooLarge:               {http.StatusRequestEntityTooLarge, "payload_too_large", "Payload content length greater than maximum allowed", true},
	envy.EUnsupportedMedia:       {http.StatusUnsupportedMediaType, "unsupported_media_type", "Unsupported media type", true},
	envy.ERateLimited:            {http.StatusTooManyRequests, "too_many_requests", "Too many requests.", false},
	envy.EInternal:               {http.StatusInternalServerError, "internal_error", "Internal error", false},
	envy.EUnavailable:            {http.StatusServiceUnavailable, "service_unavailable", "Service unavailable", false},
}

// errorJSON is the Auth0 Management API's error envelope.
type errorJSON struct {
	StatusCode int    `json:"statusCode"`
	Error      string `json:"error"`
	Message    string `json:"message"`
	ErrorCode  string `json:"errorCode"`
}

// envelope answers e in the Auth0 envelope: the table's message, and for
// some kinds what the error says beyond it (its fields as "loc: message",
// else its own message; neither ever holds a value).
func envelope(a apiError, e *envy.Error) (int, any) {
	msg := a.message
	if d := dialect.Detail(e, dialect.FieldLocMsg); a.detail && d != "" {
		msg += ": " + d
	}
	return a.status, errorJSON{StatusCode: a.status, Error: http.StatusText(a.status), Message: msg, ErrorCode: a.errorCode}
}
