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
var errorTable = dialect.Table{
	Types: map[envy.Code]string{
		envy.EInvalid:                "VALIDATION_ERROR",
		envy.EBadRequest:             "VALIDATION_ERROR",
		codeInvalidKey:               "INVALID_ENV_KEY",
		codeReservedPrefix:           "RESERVED_ENV_PREFIX",
		envy.EUnauthenticated:        "MISSING_TOKEN",
		envy.EForbidden:              "RESOURCE_ACCESS_DENIED",
		envy.ENotFound:               "CONTAINER_NOT_FOUND",
		codeInvalidToken:             "INVALID_TOKEN",
		dialect.CodeMethodNotAllowed: "METHOD_NOT_ALLOWED",
		dialect.CodeNoRoute:          "NOT_FOUND",
		envy.EConflict:               "CONFLICT",
		envy.EPrecondition:           "PRECONDITION_FAILED",
		envy.ETooLarge:               "PAYLOAD_TOO_LARGE",
		envy.EUnsupportedMedia:       "UNSUPPORTED_MEDIA_TYPE",
		envy.ERateLimited:            "RATE_LIMITED",
		envy.EInternal:               "INTERNAL_ERROR",
		envy.EUnavailable:            "SERVICE_UNAVAILABLE",
	},
	Status: map[envy.Code]int{
		envy.EInvalid:      http.StatusBadRequest,
		codeInvalidKey:     http.StatusBadRequest,
		codeReservedPrefix: http.StatusBadRequest,
		codeInvalidToken:   http.StatusUnauthorized,
	},
	Messages: map[envy.Code]string{
		dialect.CodeNoRoute:          "Not found",
		envy.EInvalid:                "Invalid input parameters",
		envy.EBadRequest:             "Invalid input parameters",
		codeInvalidKey:               "Invalid Environment Variable Key",
		codeReservedPrefix:           "Reserved Environment Variable Prefix",
		envy.EUnauthenticated:        "Authentication token missing",
		envy.EForbidden:              "Resource access denied",
		envy.ENotFound:               "Container not found",
		codeInvalidToken:             "Invalid authentication token",
		dialect.CodeMethodNotAllowed: "Method not allowed",
		envy.EConflict:               "Conflict",
		envy.EPrecondition:           "Precondition failed",
		envy.ETooLarge:               "Payload too large",
		envy.EUnsupportedMedia:       "Unsupported media type",
		envy.ERateLimited:            "Too many requests",
		envy.EInternal:               "Internal server error",
		envy.EUnavailable:            "Service unavailable",
	},
	Detail: map[envy.Code]bool{
		dialect.CodeNoRoute:          true,
		envy.EInvalid:                true,
		envy.EBadRequest:             true,
		codeInvalidKey:               true,
		codeReservedPrefix:           true,
		dialect.CodeMethodNotAllowed: true,
		envy.EConflict:               true,
		envy.EPrecondition:           true,
		envy.ETooLarge:               true,
		envy.EUnsupportedMedia:       true,
	},
}

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
