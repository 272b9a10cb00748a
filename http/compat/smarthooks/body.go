package smarthooks

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

// Request bodies are checked against the seed's schema only (an object
// with the documented string members and no others); what a name or a
// value may be is the service's to say. The schema errors read as
// OneLogin's validator writes them, as the seed's 422 shows.

// object is a request body's JSON object, its members still raw.
type object struct {
	members map[string]json.RawMessage
}

// readObject reads the request body as one JSON object. Any content type
// is read as JSON, as the seed's curl example would send it.
func readObject(w http.ResponseWriter, r *http.Request) (*object, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, envyhttp.DefaultMaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, envy.Errorf(envy.ETooLarge, "The request body is larger than %d bytes", mbe.Limit)
		}
		return nil, envy.Errorf(envy.EBadRequest, "The request body could not be read")
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, envy.Errorf(envy.EBadRequest, "A JSON request body is required")
	}
	// encoding/json would replace what is not UTF-8 with U+FFFD and so
	// store a value other than the one sent: refuse it instead.
	if !utf8.Valid(b) || loneSurrogate(b) {
		return nil, envy.Invalid(envy.Field("body", "invalid_utf8", "instance holds text that is not valid UTF-8"))
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return nil, envy.Errorf(envy.EBadRequest, "The request body is not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, envy.Errorf(envy.EBadRequest, "The request body is not valid JSON")
	}
	if k := bytes.TrimLeft(raw, " \t\r\n"); len(k) == 0 || k[0] != '{' {
		return nil, envy.Invalid(envy.Field("body", "type_error", "instance is not of a type(s) object"))
	}
	o := &object{}
	if err := json.Unmarshal(raw, &o.members); err != nil {
		return nil, envy.Errorf(envy.EBadRequest, "The request body is not valid JSON")
	}
	return o, nil
}

// only refuses members other than the allowed ones, naming the first in
// order as the seed's validator does.
func (o *object) only(allowed ...string) error {
	names := make([]string, 0, len(o.members))
	for k := range o.members {
		names = append(names, k)
	}
	sort.Strings(names)
next:
	for _, k := range names {
		for _, a := range allowed {
			if k == a {
				continue next
			}
		}
		return envy.Invalid(envy.Field("body."+k, "additional_property",
			"instance additionalProperty %s exists in instance when not allowed", strconv.Quote(k)))
	}
	return nil
}

// requiredString returns member name, which must be a string.
func (o *object) requiredString(name string) (string, error) {
	raw, ok := o.members[name]
	if !ok {
		return "", envy.Invalid(envy.Field("body."+name, "missing", "instance requires property %s", strconv.Quote(name)))
	}
	var s string
	if k := bytes.TrimLeft(raw, " \t\r\n"); len(k) == 0 || k[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", envy.Invalid(envy.Field("body."+name, "type_error", "instance.%s is not of a type(s) string", name))
	}
	return s, nil
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
