package dialect

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/envy-dev/envy"
	envyhttp "github.com/envy-dev/envy/http"
)

// Body reads a dialect's request bodies: up to the server's limit, as one
// JSON value of any Content-Type (the seeds' clients send JSON whatever
// they label it), refusing text that encoding/json would alter. The error
// fields are the dialect's words for each refusal; a nil one takes the
// default, worded as the native API words it.
type Body struct {
	// Limit is the largest body read; 0 means envyhttp.DefaultMaxBody.
	// Register sets it from the server's MaxBody.
	Limit int64

	TooLarge   func(limit int64) error // the body is larger than limit
	Unreadable error                   // reading the body failed
	Empty      error                   // no body, or only white space
	// Malformed is called with encoding/json's error for a body that is
	// not one JSON value.
	Malformed func(err error) error
	// InvalidUTF8 refuses bytes that are not UTF-8 and \u escapes of lone
	// surrogates, which encoding/json would store as U+FFFD: a value other
	// than the one sent.
	InvalidUTF8 error
	NotObject   error // a JSON value other than an object, to Object

	// SyntaxFirst checks the JSON syntax before the text's encoding, so
	// that a body that is both malformed and not UTF-8 reads as malformed;
	// otherwise it reads as not UTF-8.
	SyntaxFirst bool
}

// Read reads the request body as one JSON value.
func (b *Body) Read(w http.ResponseWriter, r *http.Request) (json.RawMessage, error) {
	limit := b.Limit
	if limit <= 0 {
		limit = envyhttp.DefaultMaxBody
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, b.tooLarge(mbe.Limit)
		}
		return nil, or(b.Unreadable, errUnreadable)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, or(b.Empty, errEmpty)
	}
	if !b.SyntaxFirst && !validText(data) {
		return nil, or(b.InvalidUTF8, errInvalidUTF8)
	}
	var raw json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, b.malformed(err)
	}
	if b.SyntaxFirst && !validText(data) {
		return nil, or(b.InvalidUTF8, errInvalidUTF8)
	}
	return raw, nil
}

// Object reads the request body as one JSON object whose members are
// still raw, so that each is decoded with the dialect's own words.
func (b *Body) Object(w http.ResponseWriter, r *http.Request) (map[string]json.RawMessage, error) {
	raw, err := b.Read(w, r)
	if err != nil {
		return nil, err
	}
	if Kind(raw) != '{' {
		return nil, or(b.NotObject, errNotObject)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, b.malformed(err)
	}
	return m, nil
}

// The default refusals.
var (
	errUnreadable  = envy.Errorf(envy.EBadRequest, "the request body could not be read")
	errEmpty       = envy.Errorf(envy.EBadRequest, "a JSON request body is required")
	errInvalidUTF8 = envy.Invalid(envy.Field("body", "invalid_utf8", "the body holds text that is not valid UTF-8"))
	errNotObject   = envy.Invalid(envy.Field("body", "type_error", "the body must be a JSON object"))
)

func or(err, def error) error {
	if err != nil {
		return err
	}
	return def
}

func (b *Body) tooLarge(limit int64) error {
	if b.TooLarge != nil {
		return b.TooLarge(limit)
	}
	return envy.Errorf(envy.ETooLarge, "the request body is larger than %d bytes", limit)
}

func (b *Body) malformed(err error) error {
	if b.Malformed != nil {
		return b.Malformed(err)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return envy.Errorf(envy.EBadRequest, "malformed JSON at byte %d", se.Offset)
	}
	return envy.Errorf(envy.EBadRequest, "malformed JSON")
}

// Kind returns the first byte of a JSON value: '{', '[', '"', 't', 'f',
// 'n' or a number's first character; 0 when there is none.
func Kind(raw json.RawMessage) byte {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return 0
	}
	return raw[0]
}

// String decodes raw as a JSON string; ok is false when it is another
// JSON type (null included).
func String(raw json.RawMessage) (s string, ok bool) {
	if Kind(raw) != '"' || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// StringAt decodes raw as a JSON string, refusing another type at loc as
// the native API does.
func StringAt(loc string, raw json.RawMessage) (string, error) {
	s, ok := String(raw)
	if !ok {
		return "", envy.Invalid(envy.Field(loc, "type_error", "must be a string"))
	}
	return s, nil
}

// Unknown returns the names of the members other than the allowed ones,
// in order.
func Unknown(members map[string]json.RawMessage, allowed ...string) []string {
	var out []string
	for _, k := range SortedKeys(members) {
		if !slices.Contains(allowed, k) {
			out = append(out, k)
		}
	}
	return out
}

// Only refuses the members other than the allowed ones, all of them in
// order, each a field error of type typ saying `unknown field "name"`.
func Only(members map[string]json.RawMessage, typ string, allowed ...string) error {
	var bad []envy.FieldError
	for _, k := range Unknown(members, allowed...) {
		bad = append(bad, envy.Field("body."+k, typ, "unknown field %s", strconv.Quote(k)))
	}
	if len(bad) > 0 {
		return envy.Invalid(bad...)
	}
	return nil
}

// validText reports whether a JSON text is valid UTF-8 and escapes no
// lone surrogate, the two things encoding/json would replace with U+FFFD.
func validText(b []byte) bool {
	return utf8.Valid(b) && !loneSurrogate(b)
}

// loneSurrogate reports whether a JSON text escapes a UTF-16 surrogate
// that is not half of a pair (\ud800 alone).
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
