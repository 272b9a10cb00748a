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
var codes = dialect.Answers{
	envy.EBadRequest:             {Type: "BadRequestError"},
	envy.EUnauthenticated:        {Type: "UnauthorizedError", Message: "The request requires user authentication."},
	envy.EForbidden:              {Type: "ForbiddenError"},
	envy.ENotFound:               {Type: "NotFoundError"},
	envy.EConflict:               {Type: "ConflictError"},
	envy.EPrecondition:           {Type: "PreconditionFailedError"},
	envy.ETooLarge:               {Type: "PayloadTooLargeError"},
	envy.EUnsupportedMedia:       {Type: "UnsupportedMediaTypeError"},
	envy.EInvalid:                {Type: "UnprocessableEntityError"},
	envy.ERateLimited:            {Type: "TooManyRequestsError", Message: "Too Many Requests"},
	envy.EInternal:               {Type: "InternalServerError", Message: "Internal Server Error"},
	envy.EUnavailable:            {Type: "ServiceUnavailableError", Message: "Service Unavailable"},
	dialect.CodeMethodNotAllowed: {Type: "MethodNotAllowedError"},
	dialect.CodeNoRoute:          {Type: "NotFoundError"},
}.Table()

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
