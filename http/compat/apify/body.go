package apify

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/envy-dev/envy"
	envyhttp "github.com/envy-dev/envy/http"
)

// Request bodies are checked against the seed's EnvVar schema only (an
// object with the documented members, of their types, and no others); what
// a name or a value may be is the service's to say.

// errMalformed is the seed's own 400, word for word.
var errMalformed = envy.Errorf(envy.EBadRequest, "Invalid input: The request body contains invalid data.")

// object is a request body's JSON object, its members still raw.
type object struct {
	members map[string]json.RawMessage
}

// readObject reads the request body as one JSON object.
func readObject(w http.ResponseWriter, r *http.Request) (*object, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, envyhttp.DefaultMaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, envy.Errorf(envy.ETooLarge, "Invalid input: The request body is larger than %d bytes.", mbe.Limit)
		}
		return nil, errMalformed
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, envy.Errorf(envy.EBadRequest, "Invalid input: The request body is empty; it must be a JSON object.")
	}
	// encoding/json would replace what is not UTF-8 with U+FFFD and so
	// store a value other than the one sent: refuse it instead.
	if !utf8.Valid(b) || loneSurrogate(b) {
		return nil, envy.Invalid(envy.Field("body", "invalid_utf8", "the request body holds text that is not valid UTF-8"))
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return nil, errMalformed
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errMalformed
	}
	if jsonKind(raw) != '{' {
		return nil, envy.Invalid(envy.Field("body", "type_error", "the request body must be a JSON object"))
	}
	o := &object{}
	if err := json.Unmarshal(raw, &o.members); err != nil {
		return nil, errMalformed
	}
	return o, nil
}

func jsonKind(raw json.RawMessage) byte {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return 0
	}
	return raw[0]
}

// only refuses members other than the allowed ones.
func (o *object) only(allowed ...string) error {
	names := make([]string, 0, len(o.members))
	for k := range o.members {
		names = append(names, k)
	}
	sort.Strings(names)
	var bad []envy.FieldError
next:
	for _, k := range names {
		for _, a := range allowed {
			if k == a {
				continue next
			}
		}
		bad = append(bad, envy.Field("body."+k, "unknown_field", "unknown field %s", strconv.Quote(k)))
	}
	if len(bad) > 0 {
		return envy.Invalid(bad...)
	}
	return nil
}

// requiredString returns member name, which must be a string.
func (o *object) requiredString(name string) (string, error) {
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
func (o *object) optionalString(name string) (*string, error) {
	raw, ok := o.members[name]
	if !ok {
		return nil, nil
	}
	var s string
	if jsonKind(raw) != '"' || json.Unmarshal(raw, &s) != nil {
		return nil, envy.Invalid(envy.Field("body."+name, "type_error", "%s must be a string", name))
	}
	return &s, nil
}

// optionalBool returns member name, nil when absent or null (the seed's
// isSecret is "boolean | null").
func (o *object) optionalBool(name string) (*bool, error) {
	raw, ok := o.members[name]
	if !ok {
		return nil, nil
	}
	var b bool
	switch jsonKind(raw) {
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

// loneSurrogate reports whether a JSON text escapes a UTF-16 surrogate
// that is not half of a pair (\ud800 alone), which encoding/json would
// decode as U+FFFD.
func loneSurrogate(b []byte) bool {
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		i++ // the escaped character; \\ and \" are skipped whole
		if i >= len(b) || b[i] != 'u' {
			continue
		}
		r, ok := hex4(b[i+1:])
		if !ok {
			continue // malformed: the decoder refuses it
		}
		i += 4
		switch {
		case r >= 0xD800 && r < 0xDC00:
			if i+6 < len(b) && b[i+1] == '\\' && b[i+2] == 'u' {
				if r2, ok := hex4(b[i+3:]); ok && r2 >= 0xDC00 && r2 < 0xE000 {
					i += 6
					continue
				}
			}
			return true
		case r >= 0xDC00 && r < 0xE000:
			return true
		}
	}
	return false
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	v, err := strconv.ParseUint(string(b[:4]), 16, 32)
	if err != nil {
		return 0, false
	}
	return rune(v), true
}
