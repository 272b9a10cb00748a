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
var codes = dialect.Answers{
	envy.EBadRequest:             {Type: "invalid_request_error"},
	envy.ETooLarge:               {Type: "invalid_request_error", Status: http.StatusBadRequest},
	envy.EUnsupportedMedia:       {Type: "invalid_request_error", Status: http.StatusBadRequest},
	envy.EUnauthenticated:        {Type: "authentication_error", Message: "Authentication failed"},
	envy.EForbidden:              {Type: "permission_error"},
	envy.ENotFound:               {Type: "not_found_error"},
	envy.EConflict:               {Type: "conflict_error"},
	envy.EPrecondition:           {Type: "conflict_error", Status: http.StatusConflict},
	envy.EInvalid:                {Type: "validation_error"},
	envy.ERateLimited:            {Type: "rate_limit_error", Message: "Rate limited"},
	envy.EInternal:               {Type: "internal_error", Message: "Internal server error"},
	envy.EUnavailable:            {Type: "service_unavailable_error", Message: "Service temporarily unavailable"},
	dialect.CodeMethodNotAllowed: {Type: "invalid_request_error"},
	dialect.CodeNoRoute:          {Type: "not_found_error"},
}.Table()

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
