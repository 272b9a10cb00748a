package containers

import (
	"net/http"
	"strings"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/http/compat/internal/dialect"
)

// Codes for what the seed tells apart and the domain does not. They only
// ever reach the error writer.
const (
	codeInvalidToken     envy.Code = "containers.invalid_token"
	codeInvalidKey       envy.Code = "containers.invalid_env_key"
	codeReservedPrefix   envy.Code = "containers.reserved_env_prefix"
	codeMethodNotAllowed envy.Code = "containers.method_not_allowed"
)

// apiError is how the dialect answers one kind of error.
type apiError struct {
	status int
	code   string // the seed's error code
	title  string // the seed's title: the message
	detail bool   // the message goes on with the error's own, which never holds a value
}

// errorTable is the one table that maps the domain's error codes to the
// seed's statuses, error codes and titles. The first group holds the
// seed's six codes; the others follow their shape.
var errorTable = map[envy.Code]apiError{
	envy.EInvalid:         {http.StatusBadRequest, "VALIDATION_ERROR", "Invalid input parameters", true},
	envy.EBadRequest:      {http.StatusBadRequest, "VALIDATION_ERROR", "Invalid input parameters", true},
	codeInvalidKey:        {http.StatusBadRequest, "INVALID_ENV_KEY", "Invalid Environment Variable Key", true},
	codeReservedPrefix:    {http.StatusBadRequest, "RESERVED_ENV_PREFIX", "Reserved Environment Variable Prefix", true},
	envy.EUnauthenticated: {http.StatusUnauthorized, "MISSING_TOKEN", "Authentication token missing", false},
	envy.EForbidden:       {http.StatusForbidden, "RESOURCE_ACCESS_DENIED", "Resource access denied", false},
	envy.ENotFound:        {http.StatusNotFound, "CONTAINER_NOT_FOUND", "Container not found", false},

	codeInvalidToken:             {http.StatusUnauthorized, "INVALID_TOKEN", "Invalid authentication token", false},
	dialect.CodeMethodNotAllowed: {http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "Method not allowed", true},
	envy.EConflict:               {http.StatusConflict, "CONFLICT", "Conflict", true},
	envy.EPrecondition:           {http.StatusPreconditionFailed, "PRECONDITION_FAILED", "Precondition failed", true},
	envy.ETooLarge:               {http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE", "Payload too large", true},
	envy.EUnsupportedMedia:       {http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE", "Unsupported media type", true},
	envy.ERateLimited:            {http.StatusTooManyRequests, "RATE_LIMITED", "Too many requests", false},
	envy.EInternal:               {http.StatusInternalServerError, "INTERNAL_ERROR", "Internal server error", false},
	envy.EUnavailable:            {http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE", "Service unavailable", false},
}

// errorJSON is the dialect's error envelope: the success envelope's
// statusCode and message, and the seed's error code.
type errorJSON struct {
	StatusCode int    `json:"statusCode"`
	Message    string `json:"message"`
	Error      string `json:"error"`
}

// envelope answers e in the dialect's envelope: the seed's title, and
// for some kinds what the error says beyond it.
func envelope(a apiError, e *envy.Error) (int, any) {
	msg := a.title
	if d := detail(e); a.detail && d != "" {
		msg += ": " + d
	}
	return a.status, errorJSON{StatusCode: a.status, Message: msg, Error: a.code}
}

// detail is what the error says beyond its kind: its fields, else its message.
func detail(e *envy.Error) string {
	return dialect.Detail(e, func(f envy.FieldError) string {
		// A PATCH body maps keys straight to values ({"KEY":"v"}): the
		// service's "body.KEY.value" is "body.KEY" here.
		if strings.Count(f.Loc, ".") == 2 && strings.HasPrefix(f.Loc, "body.") {
			f.Loc = strings.TrimSuffix(f.Loc, ".value")
		}
		return dialect.FieldLocMsg(f)
	})
}
