package dialect

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/http/wire"
)

// Errors answers errors in a dialect's envelope. T is an entry of the
// dialect's one error table.
type Errors[T any] struct {
	Dialect string       // names the dialect in the log
	Logger  *slog.Logger // receives internal errors: the server's
	// Codes is the dialect's one table from the domain's error codes (and
	// its own) to its entries. It must hold envy.EInternal, whose entry
	// answers a code the table lacks.
	Codes map[envy.Code]T
	// Envelope builds the reply to e from its entry.
	Envelope    func(c T, e *envy.Error) (status int, body any)
	ContentType string
}

// Write answers err. An error that is not a domain error is logged (store
// errors never hold a value) and answered as an internal error. A 429 or
// 503 says when to retry; no error carries the ETag of a write that did
// not happen.
func (x *Errors[T]) Write(w http.ResponseWriter, r *http.Request, err error) {
	e := envy.AsError(err)
	if e == nil {
		x.Logger.ErrorContext(r.Context(), x.Dialect+": internal error",
			"request_id", envy.CallerFrom(r.Context()).RequestID, "error", err.Error())
		e = &envy.Error{Code: envy.EInternal}
	}
	c, ok := x.Codes[e.Code]
	if !ok {
		c = x.Codes[envy.EInternal]
	}
	status, body := x.Envelope(c, e)
	h := w.Header()
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		h.Set("Retry-After", wire.RetryAfter(e.RetryAfter))
	}
	h.Del("ETag")
	wire.WriteJSON(w, x.ContentType, status, body)
}

// Detail is what an error says beyond its code: its fields, each as field
// words it, joined with "; ", else its own message. Neither ever holds a
// value.
func Detail(e *envy.Error, field func(envy.FieldError) string) string {
	if len(e.Fields) == 0 {
		return e.Message
	}
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = field(f)
	}
	return strings.Join(parts, "; ")
}

// FieldMsg words a field error by its message alone.
func FieldMsg(f envy.FieldError) string { return f.Msg }

// FieldLocMsg words a field error as "loc: message".
func FieldLocMsg(f envy.FieldError) string { return f.Loc + ": " + f.Msg }

// Titled is a message that starts with a fixed title and, when detail,
// goes on with what e says beyond it (see Detail).
func Titled(title string, detail bool, e *envy.Error, field func(envy.FieldError) string) string {
	if d := Detail(e, field); detail && d != "" {
		return title + ": " + d
	}
	return title
}
