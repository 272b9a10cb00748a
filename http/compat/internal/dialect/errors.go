package dialect

import (
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/envy-dev/envy"
	envyhttp "github.com/envy-dev/envy/http"
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

// NewErrors returns the error writer of the dialect name on api, whose
// logger receives its internal errors.
func NewErrors[T any](api *envyhttp.Server, name string, codes map[envy.Code]T,
	envelope func(c T, e *envy.Error) (int, any), contentType string) *Errors[T] {
	return &Errors[T]{Dialect: name, Logger: api.Logger(), Codes: codes, Envelope: envelope, ContentType: contentType}
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
		h.Set("Retry-After", retryAfter(e))
	}
	h.Del("ETag")
	WriteJSON(w, x.ContentType, status, body)
}

// retryAfter is e's Retry-After in whole seconds, at least one.
func retryAfter(e *envy.Error) string {
	return strconv.FormatInt(max(1, int64(math.Ceil(e.RetryAfter.Seconds()))), 10)
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
