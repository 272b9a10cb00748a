package usersecrets

import (
	"encoding/json"
	"net/http"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/http/compat/internal/dialect"
)

// Request bodies are checked against the seed's schemas only (an object
// with the documented string members and no others); what a name or a
// value may be is the service's to say. Field error types follow the
// validation errors of the seed's FastAPI-style envelope.

var errMalformed = &envy.Error{Code: envy.EBadRequest, Message: "the request body is not valid JSON",
	Fields: []envy.FieldError{envy.Field("body", "json_invalid", "the request body is not valid JSON")}}

// newBody returns the dialect's body reader, limited to limit bytes.
func newBody(limit int64) *dialect.Body {
	return &dialect.Body{
		Limit:       limit,
		Empty:       envy.Invalid(envy.Field("body", "missing", "a JSON request body is required")),
		Malformed:   func(error) error { return errMalformed },
		InvalidUTF8: envy.Invalid(envy.Field("body", "invalid_utf8", "the request body holds text that is not valid UTF-8")),
		NotObject:   envy.Invalid(envy.Field("body", "dict_type", "the request body must be a JSON object")),
	}
}

// object is a request body's JSON object, its members still raw.
type object map[string]json.RawMessage

// readObject reads the request body as one JSON object.
func (h *handler) readObject(w http.ResponseWriter, r *http.Request) (object, error) {
	m, err := h.body.Object(w, r)
	return object(m), err
}

// only refuses members other than the allowed ones.
func (o object) only(allowed ...string) error {
	return dialect.Only(o, "extra_forbidden", allowed...)
}

// requiredString returns member name, which must be a string.
func (o object) requiredString(name string) (string, error) {
	raw, ok := o[name]
	if !ok {
		return "", envy.Invalid(envy.Field("body."+name, "missing", "%s is required", name))
	}
	return stringAt(name, raw)
}

// optionalString returns member name, nil when absent or null.
func (o object) optionalString(name string) (*string, error) {
	raw, ok := o[name]
	if !ok || dialect.Kind(raw) == 'n' {
		return nil, nil
	}
	s, err := stringAt(name, raw)
	if err != nil {
		return nil, err
	}
	return &s, nil
}

func stringAt(name string, raw json.RawMessage) (string, error) {
	s, ok := dialect.String(raw)
	if !ok {
		return "", envy.Invalid(envy.Field("body."+name, "string_type", "%s must be a string", name))
	}
	return s, nil
}
