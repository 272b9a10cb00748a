package smarthooks

import (
	"net/http"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/http/compat/internal/dialect"
)

// codeEntry is how the dialect answers one kind of error.
type codeEntry struct {
	status  int
	name    string
	message string
}

// codes is the one table that maps the domain's error codes to the
// dialect's statuses and error names (the http-errors class names that
// OneLogin's API answers with). An empty message means the error's own,
// which never holds a value; the others are fixed, such as the seed's 401.
var codes = map[envy.Code]codeEntry{
	envy.EBadRequest:             {http.StatusBadRequest, "BadRequestError", ""},
	envy.EUnauthenticated:        {http.StatusUnauthorized, "UnauthorizedError", "The request requires user authentication."},
	envy.EForbidden:              {http.StatusForbidden, "ForbiddenError", ""},
	envy.ENotFound:               {http.StatusNotFound, "NotFoundError", ""},
	envy.EConflict:               {http.StatusConflict, "ConflictError", ""},
	envy.EPrecondition:           {http.StatusPreconditionFailed, "PreconditionFailedError", ""},
	envy.ETooLarge:               {http.StatusRequestEntityTooLarge, "PayloadTooLargeError", ""},
	envy.EUnsupportedMedia:       {http.StatusUnsupportedMediaType, "UnsupportedMediaTypeError", ""},
	envy.EInvalid:                {http.StatusUnprocessableEntity, "UnprocessableEntityError", ""},
	envy.ERateLimited:            {http.StatusTooManyRequests, "TooManyRequestsError", "Too Many Requests"},
	envy.EInternal:               {http.StatusInternalServerError, "InternalServerError", "Internal Server Error"},
	envy.EUnavailable:            {http.StatusServiceUnavailable, "ServiceUnavailableError", "Service Unavailable"},
	dialect.CodeMethodNotAllowed: {http.StatusMethodNotAllowed, "MethodNotAllowedError", ""},
}

// errorJSON is the seed's error envelope.
type errorJSON struct {
	StatusCode int    `json:"statusCode"`
	Name       string `json:"name"`
	Message    string `json:"message"`
}

// envelope answers e in the seed's envelope; a field error says only its
// message, which names its field and never a value.
func envelope(c codeEntry, e *envy.Error) (int, any) {
	msg := c.message
	if msg == "" {
		msg = dialect.Detail(e, dialect.FieldMsg)
	}
	return c.status, errorJSON{StatusCode: c.status, Name: c.name, Message: msg}
}
