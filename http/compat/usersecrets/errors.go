package usersecrets

import (
	"net/http"
	"strings"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/http/compat/internal/dialect"
)

// codes is the one table that maps the domain's error codes to the
// statuses the platform's reference allows (400 401 403 404 409 422 429
// 500, and 503 for a store that is down) and the envelope's stable types
// (the seed shows authentication_error; the others follow its form). A
// code without a fixed message says the error's own message and field
// errors, which never hold a value. The reference lists no 503; envy
// answers an unreachable store with one and Retry-After, as its native API
// does.
var codes = dialect.Table{
	Types: map[envy.Code]string{
		envy.EBadRequest:             "invalid_request_error",
		envy.ETooLarge:               "invalid_request_error",
		envy.EUnsupportedMedia:       "invalid_request_error",
		envy.EUnauthenticated:        "authentication_error",
		envy.EForbidden:              "permission_error",
		envy.ENotFound:               "not_found_error",
		envy.EConflict:               "conflict_error",
		envy.EPrecondition:           "conflict_error",
		envy.EInvalid:                "validation_error",
		envy.ERateLimited:            "rate_limit_error",
		envy.EInternal:               "internal_error",
		envy.EUnavailable:            "service_unavailable_error",
		dialect.CodeMethodNotAllowed: "invalid_request_error",
		dialect.CodeNoRoute:          "not_found_error",
	},
	Status: map[envy.Code]int{
		envy.ETooLarge:         http.StatusBadRequest,
		envy.EUnsupportedMedia: http.StatusBadRequest,
		envy.EPrecondition:     http.StatusConflict,
	},
	Messages: map[envy.Code]string{
		envy.EUnauthenticated: "Authentication failed",
		envy.ERateLimited:     "Rate limited",
		envy.EInternal:        "Internal server error",
		envy.EUnavailable:     "Service temporarily unavailable",
	},
}

// errorJSON is the seed's canonical error envelope, members in the seed's
// (alphabetical) order; errors only when there are any, as the seed's
// example shows.
type errorJSON struct {
	Code   int               `json:"code"`
	Detail string            `json:"detail"`
	Errors []envy.FieldError `json:"errors,omitempty"`
	Type   string            `json:"type"`
}

// envelope answers e in the seed's envelope: a fixed detail, or the
// error's own message and field errors, which never hold a value.
func envelope(c dialect.Entry, e *envy.Error) any {
	out := errorJSON{Code: c.Status, Detail: c.Message, Type: c.Type}
	if out.Detail == "" {
		out.Detail = e.Message
		out.Errors = e.Fields
	}
	return out
}

// fromBody places the service's field errors of a create where the
// request had them: the name came in the body, and the provider is kept as
// the var's description.
func fromBody(err error) error {
	e := envy.AsError(err)
	if e == nil || len(e.Fields) == 0 {
		return err
	}
	out := *e
	out.Fields = make([]envy.FieldError, len(e.Fields))
	for i, f := range e.Fields {
		switch f.Loc {
		case "path.name":
			f.Loc = "body.name"
		case "body.description":
			f.Loc = "body.provider"
			f.Msg = strings.ReplaceAll(f.Msg, "description", "provider")
		}
		out.Fields[i] = f
	}
	if len(out.Fields) == 1 {
		out.Message = out.Fields[0].Loc + ": " + out.Fields[0].Msg
	}
	return &out
}
