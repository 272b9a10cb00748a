package usersecrets

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/envy-dev/envy"
)

// codes is the one table that maps the domain's error codes to the
// statuses the seed lists and the envelope's stable types (the seed shows
// authentication_error; the others follow its form). An empty detail
// means the error's own message, which never holds a value.
var codes = map[envy.Code]struct {
	status int
	typ    string
	detail string
}{
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
	envy.EUnavailable: {http.StatusServiceUnavailable, "service_unavailable_error", "Service temporarily unavailable"},
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

// writeError answers err in the seed's envelope. An error that is not a
// domain error is logged (store errors never hold a value) and shown as an
// internal error.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := envy.AsError(err)
	if e == nil {
		slog.Default().ErrorContext(r.Context(), "usersecrets: internal error",
			"request_id", envy.CallerFrom(r.Context()).RequestID, "error", err.Error())
		e = &envy.Error{Code: envy.EInternal}
	}
	c, ok := codes[e.Code]
	if !ok {
		c = codes[envy.EInternal]
	}
	out := errorJSON{Code: c.status, Detail: c.detail, Type: c.typ}
	if out.Detail == "" {
		out.Detail = e.Message
		out.Errors = e.Fields
	}
	if c.status == http.StatusTooManyRequests || c.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.FormatInt(max(1, int64(math.Ceil(e.RetryAfter.Seconds()))), 10))
	}
	writeJSON(w, c.status, out)
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

// methodNotAllowed answers a method that the path does not serve.
func methodNotAllowed(allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeJSON(w, http.StatusMethodNotAllowed, errorJSON{
			Code:   http.StatusMethodNotAllowed,
			Detail: "this route serves only " + allow,
			Type:   "invalid_request_error",
		})
	})
}

// writeJSON answers v as JSON, HTML characters unescaped.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err) // only a programming error gets here: the reply types always encode
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
