package apify

import (
	"net/http"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/http/compat/internal/dialect"
)

// codeNoToken is EUnauthenticated when the request carried no token at
// all, which Apify answers with its own error type.
const codeNoToken envy.Code = "apify.token_not_provided"

// codeUnsupportedEncoding is a Content-Encoding that envy can't decode,
// which Apify documents as an error type of its own.
const codeUnsupportedEncoding envy.Code = "apify.unsupported_content_encoding"

// codes is the one table that maps the domain's error codes to Apify's
// statuses and error types: those of Apify's API reference (ErrorType).
// An empty message means the error's own, which never holds a value.
var codes = dialect.Table{
	Types: map[envy.Code]string{
		envy.EBadRequest:             "invalid-input",
		envy.EInvalid:                "invalid-input",
		envy.EUnsupportedMedia:       "invalid-input",
		codeUnsupportedEncoding:      "unsupported-content-encoding",
		envy.ETooLarge:               "request-too-large",
		codeNoToken:                  "token-not-valid",
		envy.EUnauthenticated:        "token-not-valid",
		envy.EForbidden:              "permission-denied",
		envy.ENotFound:               "record-not-found",
		envy.EConflict:               "record-not-unique",
		envy.ERateLimited:            "rate-limit-exceeded",
		envy.EInternal:               "internal-error",
		envy.EUnavailable:            "service-unavailable",
		dialect.CodeMethodNotAllowed: "method-not-allowed",
		dialect.CodeNoRoute:          "record-not-found",
	},
	Status: map[envy.Code]int{
		envy.EBadRequest:        http.StatusBadRequest,
		envy.EInvalid:           http.StatusBadRequest,
		envy.EUnsupportedMedia:  http.StatusBadRequest,
		codeUnsupportedEncoding: http.StatusUnsupportedMediaType,
		codeNoToken:             http.StatusUnauthorized,
	},
	Messages: map[envy.Code]string{
		codeNoToken:           "Authentication token was not provided.",
		envy.EUnauthenticated: "Authentication token is not valid.",
		envy.ERateLimited:     "You have exceeded the rate limit; retry after the time in the Retry-After header.",
		envy.EInternal:        "Internal server error",
		envy.EUnavailable:     "The service is temporarily unavailable; retry after the time in the Retry-After header.",
	},
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
func envelope(c dialect.Entry, e *envy.Error) any {
	msg := c.Text(e, dialect.FieldMsg)
	if c.Message == "" && len(e.Fields) > 0 {
		msg = "Invalid input: " + msg
	}
	return errorJSON{errorBody{Type: c.Type, Message: msg}}
}
