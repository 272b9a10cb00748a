package smarthooks

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/http/compat/internal/dialect"
)

// Request bodies are checked against the seed's schema only (an object
// with the documented string members and no others); what a name or a
// value may be is the service's to say. The schema errors read as
// OneLogin's validator writes them, as the seed's 422 shows.

// newBody returns the dialect's body reader, limited to limit bytes. Any
// content type is read as JSON, as the seed's curl example would send it.
func newBody(limit int64) *dialect.Body {
	malformed := envy.Errorf(envy.EBadRequest, "The request body is not valid JSON")
	return &dialect.Body{
		Limit: limit,
		TooLarge: func(limit int64) error {
			return envy.Errorf(envy.ETooLarge, "The request body is larger than %d bytes", limit)
		},
		Unreadable:  envy.Errorf(envy.EBadRequest, "The request body could not be read"),
		Empty:       envy.Errorf(envy.EBadRequest, "A JSON request body is required"),
		Malformed:   func(error) error { return malformed },
		InvalidUTF8: envy.Invalid(envy.Field("body", "invalid_utf8", "instance holds text that is not valid UTF-8")),
		NotObject:   envy.Invalid(envy.Field("body", "type_error", "instance is not of a type(s) object")),
	}
}

// object is a request body's JSON object, its members still raw.
type object map[string]json.RawMessage

// readObject reads the request body as one JSON object.
func (h *handler) readObject(w http.ResponseWriter, r *http.Request) (object, error) {
	m, err := h.body.Object(w, r)
	return object(m), err
}

// only refuses members other than the allowed ones, naming the first in
// order as the seed's validator does.
func (o object) only(allowed ...string) error {
	if bad := dialect.Unknown(o, allowed...); len(bad) > 0 {
		return envy.Invalid(envy.Field("body."+bad[0], "additional_property",
			"instance additionalProperty %s exists in instance when not allowed", strconv.Quote(bad[0])))
	}
	return nil
}

// requiredString returns member name, which must be a string.
func (o object) requiredString(name string) (string, error) {
	raw, ok := o[name]
	if !ok {
		return "", envy.Invalid(envy.Field("body."+name, "missing", "instance requires property %s", strconv.Quote(name)))
	}
	s, ok := dialect.String(raw)
	if !ok {
		return "", envy.Invalid(envy.Field("body."+name, "type_error", "instance.%s is not of a type(s) string", name))
	}
	return s, nil
}
