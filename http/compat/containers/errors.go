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
	codeInvalidToken   envy.Code = "containers.invalid_token"
	codeInvalidKey     envy.Code = "containers.invalid_env_key"
	codeReservedPrefix envy.Code = "containers.reserved_env_prefix"
)

// errorTable is the one table that maps the domain's error codes to the
// seed's statuses, error codes and titles (the message, which for some
// kinds goes on with the error's own, never holding a value). The first
// group holds the seed's six codes; the others follow their shape.
var errorTable = dialect.Answers{
	envy.EInvalid:                {Type: "VALIDATION_ERROR", Status: http.StatusBadRequest, Message: "Invalid input parameters", Detail: true},
	envy.EBadRequest:             {Type: "VALIDATION_ERROR", Message: "Invalid input parameters", Detail: true},
	codeInvalidKey:               {Type: "INVALID_ENV_KEY", Status: http.StatusBadRequest, Message: "Invalid Environment Variable Key", Detail: true},
	codeReservedPrefix:           {Type: "RESERVED_ENV_PREFIX", Status: http.StatusBadRequest, Message: "Reserved Environment Variable Prefix", Detail: true},
	envy.EUnauthenticated:        {Type: "MISSING_TOKEN", Message: "Authentication token missing"},
	envy.EForbidden:              {Type: "RESOURCE_ACCESS_DENIED", Message: "Resource access denied"},
	envy.ENotFound:               {Type: "CONTAINER_NOT_FOUND", Message: "Container not found"},
	codeInvalidToken:             {Type: "INVALID_TOKEN", Status: http.StatusUnauthorized, Message: "Invalid authentication token"},
	dialect.CodeMethodNotAllowed: {Type: "METHOD_NOT_ALLOWED", Message: "Method not allowed", Detail: true},
	dialect.CodeNoRoute:          {Type: "NOT_FOUND", Message: "Not found", Detail: true},
	envy.EConflict:               {Type: "CONFLICT", Message: "Conflict", Detail: true},
	envy.EPrecondition:           {Type: "PRECONDITION_FAILED", Message: "Precondition failed", Detail: true},
	envy.ETooLarge:               {Type: "PAYLOAD_TOO_LARGE", Message: "Payload too large", Detail: true},
	envy.EUnsupportedMedia:       {Type: "UNSUPPORTED_MEDIA_TYPE", Message: "Unsupported media type", Detail: true},
	envy.ERateLimited:            {Type: "RATE_LIMITED", Message: "Too many requests"},
	envy.EInternal:               {Type: "INTERNAL_ERROR", Message: "Internal server error"},
	envy.EUnavailable:            {Type: "SERVICE_UNAVAILABLE", Message: "Service unavailable"},
}.Table()

// errorJSON is the dialect's error envelope: the success envelope's
// statusCode and message, and the seed's error code.
type errorJSON struct {
	StatusCode int    `json:"statusCode"`
	Message    string `json:"message"`
	Error      string `json:"error"`
}

// envelope answers e in the dialect's envelope: the seed's title, and
// for some kinds what the error says beyond it (its fields, else its
// message).
func envelope(c dialect.Entry, e *envy.Error) any {
	return errorJSON{StatusCode: c.Status, Message: c.Text(e, field), Error: c.Type}
}

// field words a field error as "loc: message". A PATCH body maps keys
// straight to values ({"KEY":"v"}): the service's "body.KEY.value" is
// "body.KEY" here.
func field(f envy.FieldError) string {
	if strings.Count(f.Loc, ".") == 2 && strings.HasPrefix(f.Loc, "body.") {
		f.Loc = strings.TrimSuffix(f.Loc, ".value")
	}
	return dialect.FieldLocMsg(f)
}
