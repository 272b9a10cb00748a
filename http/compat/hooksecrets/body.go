package hooksecrets

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/http/compat/internal/dialect"
)

// Request bodies are parsed for their shape only; what a name or a value
// may be is the service's to say. Any content type is read as JSON, as the
// seed's examples send it, and the refusals are worded as the native API's.

// newBody returns the dialect's body reader, limited to limit bytes.
func newBody(limit int64) *dialect.Body {
	return &dialect.Body{Limit: limit, SyntaxFirst: true}
}

// readStringMap reads the body as a JSON object of string values, the
// seed's "object of key-value pairs".
func (h *handler) readStringMap(w http.ResponseWriter, r *http.Request) (map[string]string, error) {
	raw, err := h.body.Read(w, r)
	if err != nil {
		return nil, err
	}
	if dialect.Kind(raw) != '{' {
		return nil, envy.Invalid(envy.Field("body", "type_error", "the body must be an object of secret names and values"))
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, envy.Errorf(envy.EBadRequest, "malformed JSON")
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		s, err := dialect.StringAt("body."+k, v)
		if err != nil {
			return nil, err
		}
		out[k] = s
	}
	return out, nil
}

// readStringList reads the body as a JSON array of strings.
func (h *handler) readStringList(w http.ResponseWriter, r *http.Request) ([]string, error) {
	raw, err := h.body.Read(w, r)
	if err != nil {
		return nil, err
	}
	if dialect.Kind(raw) != '[' {
		return nil, envy.Invalid(envy.Field("body", "type_error", "the body must be an array of secret names"))
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, envy.Errorf(envy.EBadRequest, "malformed JSON")
	}
	out := make([]string, len(items))
	for i, it := range items {
		s, err := dialect.StringAt("body["+strconv.Itoa(i)+"]", it)
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

// writeJSON answers v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	dialect.WriteJSON(w, dialect.ContentTypeJSON, status, v)
}
