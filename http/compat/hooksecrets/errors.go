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

// errorTable is the one table that maps the domain's error codes to the
// Auth0 Management API's statuses, messages and errorCodes. Fixed messages
// are those of Auth0's reference for the hook secrets endpoints; some go
// on with what the error says (never a value).
var errorTable = dialect.Table{
	Types: map[envy.Code]string{
		envy.EBadRequest:             "invalid_body",
		envy.EInvalid:                "invalid_body",
		envy.EUnauthenticated:        "invalid_token",
		codeMissingToken:             "invalid_token",
		envy.EForbidden:              "insufficient_scope",
		envy.ENotFound:               "inexistent_hook",
		codeSecretNotFound:           "inexistent_secret",
		dialect.CodeMethodNotAllowed: "method_not_allowed",
		dialect.CodeNoRoute:          "not_found",
		envy.EConflict:               "secret_exists",
		envy.EPrecondition:           "concurrent_update",
		envy.ETooLarge:               "payload_too_large",
		envy.EUnsupportedMedia:       "unsupported_media_type",
		envy.ERateLimited:            "too_many_requests",
		envy.EInternal:               "internal_error",
		envy.EUnavailable:            "service_unavailable",
	},
	Status: map[envy.Code]int{
		envy.EInvalid:      http.StatusBadRequest,
		codeMissingToken:   http.StatusUnauthorized,
		codeSecretNotFound: http.StatusNotFound,
		envy.EPrecondition: http.StatusConflict,
	},
	Messages: map[envy.Code]string{
		dialect.CodeNoRoute:          "Not Found",
		envy.EBadRequest:             "Invalid request payload JSON format",
		envy.EInvalid:                "Payload validation error",
		envy.EUnauthenticated:        "Invalid token.",
		codeMissingToken:             "Missing authentication",
		envy.EForbidden:              "Insufficient scope: the token's permissions on this hook do not allow this request.",
		envy.ENotFound:               "Hook not found.",
		codeSecretNotFound:           "Secret not found",
		dialect.CodeMethodNotAllowed: "Method not allowed",
		envy.EConflict:               "Secret with the same name already exists",
		envy.EPrecondition:           "The hook's secrets kept changing while the request ran; send it again.",
		envy.ETooLarge:               "Payload content length greater than maximum allowed",
		envy.EUnsupportedMedia:       "Unsupported media type",
		envy.ERateLimited:            "Too many requests.",
		envy.EInternal:               "Internal error",
		envy.EUnavailable:            "Service unavailable",
	},
	Detail: map[envy.Code]bool{
		envy.EBadRequest:             true,
		envy.EInvalid:                true,
		codeSecretNotFound:           true,
		dialect.CodeMethodNotAllowed: true,
		envy.EConflict:               true,
		envy.ETooLarge:               true,
		envy.EUnsupportedMedia:       true,
	},
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
func envelope(c dialect.Entry, e *envy.Error) any {
	return errorJSON{StatusCode: c.Status, Error: http.StatusText(c.Status), Message: c.Text(e, dialect.FieldLocMsg), ErrorCode: c.Type}
}
