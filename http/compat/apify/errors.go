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
var codes = dialect.Answers{
	envy.EBadRequest:             {Type: "invalid-input", Status: http.StatusBadRequest},
	envy.EInvalid:                {Type: "invalid-input", Status: http.StatusBadRequest},
	envy.EUnsupportedMedia:       {Type: "invalid-input", Status: http.StatusBadRequest},
	codeUnsupportedEncoding:      {Type: "unsupported-content-encoding", Status: http.StatusUnsupportedMediaType},
	envy.ETooLarge:               {Type: "request-too-large"},
	codeNoToken:                  {Type: "token-not-valid", Status: http.StatusUnauthorized, Message: "Authentication token was not provided."},
	envy.EUnauthenticated:        {Type: "token-not-valid", Message: "Authentication token is not valid."},
	envy.EForbidden:              {Type: "permission-denied"},
	envy.ENotFound:               {Type: "record-not-found"},
	envy.EConflict:               {Type: "record-not-unique"},
	envy.ERateLimited:            {Type: "rate-limit-exceeded", Message: "You have exceeded the rate limit; retry after the time in the Retry-After header."},
	envy.EInternal:               {Type: "internal-error", Message: "Internal server error"},
	envy.EUnavailable:            {Type: "service-unavailable", Message: "The service is temporarily unavailable; retry after the time in the Retry-After header."},
	dialect.CodeMethodNotAllowed: {Type: "method-not-allowed"},
	dialect.CodeNoRoute:          {Type: "record-not-found"},
}.Table()

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
