package apify

import (
	"encoding/json"
	"net/http"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/http/compat/internal/dialect"
)

// Request bodies are checked against the seed's EnvVar schema only (an
// object with the documented members, of their types, and no others); what
// a name or a value may be is the service's to say.

// errMalformed is the seed's own 400, word for word.
var errMalformed = envy.Errorf(envy.EBadRequest, "Invalid input: The request body contains invalid data.")

// newBody returns the dialect's body reader, limited to limit bytes.
func newBody(limit int64) *dialect.Body {
	return &dialect.Body{
		Limit: limit,
		TooLarge: func(limit int64) error {
			return envy.Errorf(envy.ETooLarge, "Invalid input: The request body is larger than %d bytes.", limit)
		},
		Unreadable:  errMalformed,
		Empty:       envy.Errorf(envy.EBadRequest, "Invalid input: The request body is empty; it must be a JSON object."),
		Malformed:   func(error) error { return errMalformed },
		InvalidUTF8: envy.Invalid(envy.Field("body", "invalid_utf8", "the request body holds text that is not valid UTF-8")),
		NotObject:   envy.Invalid(envy.Field("body", "type_error", "the request body must be a JSON object")),
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
	return dialect.Only(o, "unknown_field", allowed...)
}

// requiredString returns member name, which must be a string.
func (o object) requiredString(name string) (string, error) {
	s, err := o.optionalString(name)
	if err != nil {
		return "", err
	}
	if s == nil {
		return "", envy.Invalid(envy.Field("body."+name, "missing", "%s is required", name))
	}
	return *s, nil
}

// optionalString returns member name, nil when absent; present, it must
// be a string.
func (o object) optionalString(name string) (*string, error) {
	raw, ok := o[name]
	if !ok {
		return nil, nil
	}
	s, ok := dialect.String(raw)
	if !ok {
		return nil, envy.Invalid(envy.Field("body."+name, "type_error", "%s must be a string", name))
	}
	return &s, nil
}

// optionalBool returns member name, nil when absent or null (the seed's
// isSecret is "boolean | null").
func (o object) optionalBool(name string) (*bool, error) {
	raw, ok := o[name]
	if !ok {
		return nil, nil
	}
	var b bool
	switch dialect.Kind(raw) {
	case 'n':
		return nil, nil
	case 't':
		b = true
	case 'f':
	default:
		return nil, envy.Invalid(envy.Field("body."+name, "type_error", "%s must be a boolean or null", name))
	}
	return &b, nil
}
