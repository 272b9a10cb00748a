package apify

import (
	"net/http"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/http/compat/internal/dialect"
)

// codeNoToken is EUnauthenticated when the request carried no token at
// all, which Apify answers with its own error type.
const codeNoToken envy.Code = "apify_token_not_provided"

// codeEntry is how the dialect answers one kind of error.
type codeEntry struct {
	status  int
	typ     string
	message string
}

// codes is the one table that maps the domain's error codes to Apify's
// statuses and error types (those the seed and Apify's API docs use). An
// empty message means the error's own, which never holds a value.
var codes = map[envy.Code]codeEntry{
	envy.EBadRequest:             {http.StatusBadRequest, "invalid-input", ""},
	envy.EInvalid:                {http.StatusBadRequest, "invalid-input", ""},
	envy.ETooLarge:               {http.StatusBadRequest, "invalid-input", ""},
	envy.EUnsupportedMedia:       {http.StatusBadRequest, "invalid-input", ""},
	codeNoToken:                  {http.StatusUnauthorized, "token-not-provided", "Authentication token was not provided"},
	envy.EUnauthenticated:        {http.StatusUnauthorized, "user-or-token-not-found", "User was not found or authentication token is not valid"},
	envy.EForbidden:              {http.StatusForbidden, "insufficient-permissions", ""},
	envy.ENotFound:               {http.StatusNotFound, "record-not-found", ""},
	envy.EConflict:               {http.StatusConflict, "record-duplicate", ""},
	envy.EPrecondition:           {http.StatusPreconditionFailed, "precondition-failed", ""},
	envy.ERateLimited:            {http.StatusTooManyRequests, "rate-limit-exceeded", "You have exceeded the rate limit; retry after the time in the Retry-After header"},
	envy.EInternal:               {http.StatusInternalServerError, "internal-error", "Internal server error"},
	envy.EUnavailable:            {http.StatusServiceUnavailable, "service-unavailable", "The service is temporarily unavailable; retry after the time in the Retry-After header"},
	dialect.CodeMethodNotAllowed: {http.StatusMethodNotAllowed, "method-not-allowed", ""},
}

// errorJSON is Apify's error envelope.
type errorJSON struct {
	Error errorBody `json:"error"`
}

type errorBody struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// envelope answers e in Apify's envelope. A fixed message stands alone;
// otherwise the error's fields say "Invalid input: " and their messages
// (each names its field, never a value), else the error's own message.
func envelope(c codeEntry, e *envy.Error) (int, any) {
	msg := c.message
	if msg == "" {
		msg = dialect.Detail(e, dialect.FieldMsg)
		if len(e.Fields) > 0 {
			msg = "Invalid input: " + msg
		}
	}
	return c.status, errorJSON{errorBody{Type: c.typ, Message: msg}}
}
