package smarthooks

import (
	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/http/compat/internal/dialect"
)

// codes is the one table that maps the domain's error codes to the
// dialect's error names (the http-errors class names that OneLogin's API
// answers with); statuses are the native ones. An empty message means the
// error's own, which never holds a value; the others are fixed, such as
// the seed's 401.
var codes = dialect.Table{
	Types: map[envy.Code]string{
		envy.EBadRequest:             "BadRequestError",
		envy.EUnauthenticated:        "UnauthorizedError",
		envy.EForbidden:              "ForbiddenError",
		envy.ENotFound:               "NotFoundError",
		envy.EConflict:               "ConflictError",
		envy.EPrecondition:           "PreconditionFailedError",
		envy.ETooLarge:               "PayloadTooLargeError",
		envy.EUnsupportedMedia:       "UnsupportedMediaTypeError",
		envy.EInvalid:                "UnprocessableEntityError",
		envy.ERateLimited:            "TooManyRequestsError",
		envy.EInternal:               "InternalServerError",
		envy.EUnavailable:            "ServiceUnavailableError",
		dialect.CodeMethodNotAllowed: "MethodNotAllowedError",
		dialect.CodeNoRoute:          "NotFoundError",
	},
	Messages: map[envy.Code]string{
		envy.EUnauthenticated: "The request requires user authentication.",
		envy.ERateLimited:     "Too Many Requests",
		envy.EInternal:        "Internal Server Error",
		envy.EUnavailable:     "Service Unavailable",
	},
}

// errorJSON is the seed's error envelope.
type errorJSON struct {
	StatusCode int    `json:"statusCode"`
	Name       string `json:"name"`
	Message    string `json:"message"`
}

// envelope answers e in the seed's envelope; a field error says only its
// message, which names its field and never a value.
func envelope(c dialect.Entry, e *envy.Error) any {
	return errorJSON{StatusCode: c.Status, Name: c.Type, Message: c.Text(e, dialect.FieldMsg)}
}
