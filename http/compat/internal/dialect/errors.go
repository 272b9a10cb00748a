package dialect

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/envy-dev/envy"
	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/http/wire"
	"github.com/envy-dev/envy/service"
)

// Table is a dialect's one error table: how it answers each domain error
// code (and codes of its own). It must give a type for envy.EInternal,
// whose entry answers a code the table lacks.
type Table struct {
	// Types are the type, name or code that the envelope carries.
	Types map[envy.Code]string
	// Status holds the statuses that differ from the native API's for the
	// code (wire.Status; 405 for CodeMethodNotAllowed, 404 for
	// CodeNoRoute).
	Status map[envy.Code]int
	// Messages are fixed messages; a code without one says the error's
	// own, which never holds a value.
	Messages map[envy.Code]string
	// Detail marks the fixed messages that go on with what the error says
	// beyond them (see Titled).
	Detail map[envy.Code]bool
}

// Entry is how a dialect answers one kind of error.
type Entry struct {
	Status  int
	Type    string
	Message string // fixed; "" for the error's own
	Detail  bool
}

// Answers are a dialect's error table as it is written: each code's Entry
// on one line, a Status of 0 meaning the native one (see Table.Status).
type Answers map[envy.Code]Entry

// Table is the Table of the answers.
func (as Answers) Table() Table {
	t := Table{Types: map[envy.Code]string{}, Status: map[envy.Code]int{}, Messages: map[envy.Code]string{}, Detail: map[envy.Code]bool{}}
	for code, e := range as {
		t.Types[code] = e.Type
		if e.Status != 0 {
			t.Status[code] = e.Status
		}
		if e.Message != "" {
			t.Messages[code] = e.Message
		}
		if e.Detail {
			t.Detail[code] = true
		}
	}
	return t
}

// entry returns the table's entry for code, and whether it has one.
func (t *Table) entry(code envy.Code) (Entry, bool) {
	typ, ok := t.Types[code]
	if !ok {
		return Entry{}, false
	}
	status, ok := t.Status[code]
	switch {
	case ok:
	case code == CodeMethodNotAllowed:
		status = http.StatusMethodNotAllowed
	case code == CodeNoRoute:
		status = http.StatusNotFound
	default:
		status = wire.Status(code)
	}
	return Entry{Status: status, Type: typ, Message: t.Messages[code], Detail: t.Detail[code]}, true
}

// Text is the message of an entry for e, fields worded by field.
func (c Entry) Text(e *envy.Error, field func(envy.FieldError) string) string {
	if c.Message == "" {
		return Detail(e, field)
	}
	return Titled(c.Message, c.Detail, e, field)
}

// Errors answers errors in a dialect's envelope.
type Errors struct {
	Dialect  string       // names the dialect in the log
	Logger   *slog.Logger // receives internal errors: the server's
	Table    Table
	Envelope func(c Entry, e *envy.Error) any // the reply's body to e
	// ContentType is that of the replies.
	ContentType string
}

// Write answers err. An error that is not a domain error is logged (store
// errors never hold a value) and answered as an internal error. A 429 or
// 503 says when to retry; no error carries the ETag of a write that did
// not happen. A request whose client went away is answered as the native
// API answers it (envyhttp.ClientGone).
func (x *Errors) Write(w http.ResponseWriter, r *http.Request, err error) {
	if envyhttp.ClientGone(r, err) { // nobody reads it, and it is no error of the server's
		w.WriteHeader(envyhttp.StatusClientClosed)
		return
	}
	e := envy.AsError(err)
	if e == nil {
		x.Logger.ErrorContext(r.Context(), x.Dialect+": internal error",
			"request_id", service.CallerFrom(r.Context()).RequestID, "error", err.Error())
		e = &envy.Error{Code: envy.EInternal}
	}
	c, ok := x.Table.entry(e.Code)
	if !ok {
		c, _ = x.Table.entry(envy.EInternal)
	}
	h := w.Header()
	if c.Status == http.StatusTooManyRequests || c.Status == http.StatusServiceUnavailable {
		h.Set("Retry-After", wire.RetryAfter(e.RetryAfter))
	}
	h.Del("ETag")
	wire.WriteJSON(w, x.ContentType, c.Status, x.Envelope(c, e))
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

// Titled is a message that starts with a fixed title and, when detail
// or when e names what it refused (envy.Error.Names: a reference the
// caller may not follow), goes on with what e says beyond it (see
// Detail): after a colon, or after a space when the title ends a
// sentence.
func Titled(title string, detail bool, e *envy.Error, field func(envy.FieldError) string) string {
	d := Detail(e, field)
	switch {
	case !detail && !e.Names || d == "":
		return title
	case strings.HasSuffix(title, "."):
		return title + " " + d
	}
	return title + ": " + d
}
