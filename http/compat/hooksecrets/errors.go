package hooksecrets

import (
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/envy-dev/envy"
)

// Codes for what the dialect tells apart and the domain does not. They
// only ever reach writeError.
const (
	codeMissingToken     envy.Code = "hooksecrets.missing_token"
	codeSecretNotFound   envy.Code = "hooksecrets.secret_not_found"
	codeMethodNotAllowed envy.Code = "hooksecrets.method_not_allowed"
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
	envy.EBadRequest:       {http.StatusBadRequest, "invalid_body", "Invalid request payload JSON format", true},
	envy.EInvalid:          {http.StatusBadRequest, "invalid_body", "Payload validation error", true},
	envy.EUnauthenticated:  {http.StatusUnauthorized, "invalid_token", "Invalid token.", false},
	codeMissingToken:       {http.StatusUnauthorized, "invalid_token", "Missing authentication", false},
	envy.EForbidden:        {http.StatusForbidden, "insufficient_scope", "Insufficient scope: the token's permissions on this hook do not allow this request.", false},
	envy.ENotFound:         {http.StatusNotFound, "inexistent_hook", "Hook not found.", false},
	codeSecretNotFound:     {http.StatusNotFound, "inexistent_secret", "Secret not found", true},
	codeMethodNotAllowed:   {http.StatusMethodNotAllowed, "method_not_allowed", "Method not allowed", true},
	envy.EConflict:         {http.StatusConflict, "secret_exists", "Secret with the same name already exists", true},
	envy.EPrecondition:     {http.StatusConflict, "concurrent_update", "The hook's secrets kept changing while the request ran; send it again.", false},
	envy.ETooLarge:         {http.StatusRequestEntityTooLarge, "payload_too_large", "Payload content length greater than maximum allowed", true},
	envy.EUnsupportedMedia: {http.StatusUnsupportedMediaType, "unsupported_media_type", "Unsupported media type", true},
	envy.ERateLimited:      {http.StatusTooManyRequests, "too_many_requests", "Too many requests.", false},
	envy.EInternal:         {http.StatusInternalServerError, "internal_error", "Internal error", false},
	envy.EUnavailable:      {http.StatusServiceUnavailable, "service_unavailable", "Service unavailable", false},
}

// errorJSON is the Auth0 Management API's error envelope.
type errorJSON struct {
	StatusCode int    `json:"statusCode"`
	Error      string `json:"error"`
	Message    string `json:"message"`
	ErrorCode  string `json:"errorCode"`
}

// writeError answers err in the dialect's envelope. An error that is not a
// domain error is logged (store errors never hold a value) and answered as
// an internal error.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := envy.AsError(err)
	if e == nil {
		slog.Default().ErrorContext(r.Context(), "hooksecrets: internal error",
			"request_id", envy.CallerFrom(r.Context()).RequestID, "error", err.Error())
		e = &envy.Error{Code: envy.EInternal}
	}
	a, ok := errorTable[e.Code]
	if !ok {
		a = errorTable[envy.EInternal]
	}
	if a.status == http.StatusTooManyRequests || a.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.FormatInt(max(1, int64(math.Ceil(e.RetryAfter.Seconds()))), 10))
	}
	msg := a.message
	if d := detail(e); a.detail && d != "" {
		msg += ": " + d
	}
	w.Header().Del("ETag")
	writeJSON(w, a.status, errorJSON{StatusCode: a.status, Error: http.StatusText(a.status), Message: msg, ErrorCode: a.errorCode})
}

// detail is what the error says beyond its kind: its fields, else its message.
func detail(e *envy.Error) string {
	if len(e.Fields) == 0 {
		return e.Message
	}
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Loc + ": " + f.Msg
	}
	return strings.Join(parts, "; ")
}
