// Package wire is the plumbing that every API envy serves shares: the
// native API (package http) and each seed dialect (http/compat/<name>)
// read request bodies, decode JSON and write replies through it, so that
// each API is left with its routes, its shapes and its one error table.
// The native API and the dashboard (package web) route the paths that hold
// a scope path with its ScopeMux.
//
// What an API words differently (the text and type of a refusal) it
// passes in as Words; the mechanics (limits, decoding, text that JSON
// decoding would alter, Retry-After rounding) live here once.
//
// It imports the domain, the standard library and a brotli decoder; never
// another envy package.
package wire

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/envy-dev/envy"
)

// The Content-Types of JSON replies.
const (
	ContentTypeJSON     = "application/json"
	ContentTypeJSONUTF8 = "application/json; charset=utf-8"
	ContentTypeProblem  = "application/problem+json"
)

// WriteJSON answers v as JSON with the given Content-Type. HTML characters
// are not escaped: values are returned as they were written.
func WriteJSON(w http.ResponseWriter, contentType string, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err) // only a programming error gets here: the reply types always encode
	}
	WriteBytes(w, contentType, status, buf.Bytes())
}

// WriteBytes answers b, already encoded, with the given Content-Type.
func WriteBytes(w http.ResponseWriter, contentType string, status int, b []byte) {
	// The fixed values share one slice each, read-only (net/http never
	// changes a header's values, and Set or Add replace the slice): the
	// hot reads allocate nothing for them.
	ct := contentTypeJSON
	if contentType != ContentTypeJSON {
		ct = []string{contentType}
	}
	write(w, ct, []string{strconv.Itoa(len(b))}, status, b)
}

// write answers b with its Content-Type and Content-Length values as
// given, shared and read-only.
func write(w http.ResponseWriter, contentType, length []string, status int, b []byte) {
	h := w.Header()
	h["Content-Type"] = contentType
	h["Content-Length"] = length
	h["X-Content-Type-Options"] = nosniff
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

var (
	contentTypeJSON = []string{ContentTypeJSON}
	nosniff         = []string{"nosniff"}
)

// Fixed is a reply whose bytes never change, such as /healthz's: its
// headers' values are made once and shared, read-only, as WriteBytes
// shares its fixed ones, so that answering it allocates nothing.
type Fixed struct {
	body                []byte
	contentType, length []string
}

// NewFixed returns the reply of body with the given Content-Type.
func NewFixed(contentType string, body []byte) *Fixed {
	return &Fixed{body: body, contentType: []string{contentType}, length: []string{strconv.Itoa(len(body))}}
}

// Write answers the reply, with the headers WriteBytes gives.
func (f *Fixed) Write(w http.ResponseWriter, status int) {
	write(w, f.contentType, f.length, status, f.body)
}

// SetETag sets the ETag of a reply to a scope's revision.
func SetETag(w http.ResponseWriter, revision int64) {
	w.Header().Set("ETag", `"`+strconv.FormatInt(revision, 10)+`"`)
}

// RetryAfter is a Retry-After header's value for d: whole seconds, rounded
// up, at least one.
func RetryAfter(d time.Duration) string {
	return strconv.FormatInt(max(1, int64(math.Ceil(d.Seconds()))), 10)
}

// SortedKeys returns a map's keys in order, so that a reply or an error
// that names several keys names them the same way every time.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// statuses are the HTTP statuses of the domain's error codes: the native
// API's, and the default of every dialect, whose platforms mostly answer
// the same.
var statuses = map[envy.Code]int{
	envy.EBadRequest:       http.StatusBadRequest,
	envy.EUnauthenticated:  http.StatusUnauthorized,
	envy.EForbidden:        http.StatusForbidden,
	envy.ENotFound:         http.StatusNotFound,
	envy.EConflict:         http.StatusConflict,
	envy.EPrecondition:     http.StatusPreconditionFailed,
	envy.ETooLarge:         http.StatusRequestEntityTooLarge,
	envy.EUnsupportedMedia: http.StatusUnsupportedMediaType,
	envy.EInvalid:          http.StatusUnprocessableEntity,
	envy.ERateLimited:      http.StatusTooManyRequests,
	envy.EInternal:         http.StatusInternalServerError,
	envy.EUnavailable:      http.StatusServiceUnavailable,
}

// Status is the HTTP status of a domain error code; 500 for a code the
// domain does not have.
func Status(c envy.Code) int {
	if s, ok := statuses[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}
