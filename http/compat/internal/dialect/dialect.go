// Package dialect holds the mechanics that every seed dialect under
// http/compat shares, so that each dialect is left with what its seed
// says: the frame of a route (no-store, authenticate, serve, answer the
// error), reading a request body as JSON up to the server's limit without
// altering the text it carries, writing JSON replies, answering errors
// through the dialect's own table and envelope (logged to the server's
// logger, Retry-After on a 429 or 503), and addressing vars by id or
// listing a scope the way the service means a missing scope.
//
// A dialect's words stay in the dialect: its error table, its envelope and
// the wording of its refusals are its seed's, and this package only carries
// them. It imports the domain, the native http package (for its defaults
// and the Server's settings) and the standard library; never a storage or
// crypto package, and never a dialect.
package dialect

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
)

// The Content-Types of dialect replies, as each seed shows its own.
const (
	ContentTypeJSON     = "application/json"
	ContentTypeJSONUTF8 = "application/json; charset=utf-8"
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
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// SetETag sets the ETag of a reply to a scope's revision; a scope that
// does not exist yet (revision 0) has none.
func SetETag(w http.ResponseWriter, revision int64) {
	if revision > 0 {
		w.Header().Set("ETag", `"`+strconv.FormatInt(revision, 10)+`"`)
	}
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
