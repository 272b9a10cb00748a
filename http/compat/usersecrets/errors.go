package usersecrets

import (
	"net/http"
	"strings"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/http/compat/internal/dialect"
)

// codeEntry is how the dialect answers one kind of error.
type codeEntry struct {
	status int
	typ    string
	detail string
}

// codes is the one table that maps the domain's error codes to the
// statuses the seed lists and the envelope's stable types (the seed shows
// authentication_error; the others follow its form). An empty detail
// means the error's own message, which never holds a value.
var codes = map[envy.Code]codeEntry{
	envy.EBadRequest:       {http.StatusBadRequest, "invalid_request_error", ""},
	envy.ETooLarge:         {http.StatusBadRequest, "invalid_request_error", ""},
	envy.EUnsupportedMedia: {http.StatusBadRequest, "invalid_request_error", ""},
	envy.EUnauthenticated:  {http.StatusUnauthorized, "authentication_error", "Authentication failed"},
	envy.EForbidden:        {http.StatusForbidden, "permission_error", ""},
	envy.ENotFound:         {http.StatusNotFound, "not_found_error", ""},
	envy.EConflict:         {http.StatusConflict, "conflict_error", ""},
	envy.EPrecondition:     {http.StatusConflict, "conflict_error", ""},
	envy.EInvalid:          {http.StatusUnprocessableEntity, "validation_error", ""},
	envy.ERateLimited:      {http.StatusTooManyRequests, "rate_limit_error", "Rate limited"},
	envy.EInternal:         {http.StatusInternalServerError, "internal_error", "Internal server error"},
	// The seed lists no 503; envy answers an unreachable store with one
	// and Retry-After, as its native API does.
	envy.EUnavailable:            {http.StatusServiceUnavailable, "service_unavailable_error", "Service temporarily unavailable"},
	dialect.CodeMethodNotAllowed: {http.StatusMethodNotAllowed, "invalid_request_error", ""},
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
func envelope(c codeEntry, e *envy.Error) (int, any) {
	out := errorJSON{Code: c.status, Detail: c.detail, Type: c.typ}
	if out.Detail == "" {
		out.Detail = e.Message
		out.Errors = e.Fields
	}
	return c.status, out
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
