package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/envy-dev/envy"
)

// readBody reads a JSON request body: 415 unless its Content-Type is
// application/json, 413 beyond MaxBody. An empty body reads as nil.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return nil, envy.Errorf(envy.EUnsupportedMedia, "the request body must be application/json")
	}
	if r.ContentLength > s.opts.MaxBody {
		return nil, tooLarge(s.opts.MaxBody)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge(s.opts.MaxBody)
		}
		return nil, envy.Errorf(envy.EBadRequest, "the request body could not be read")
	}
	return body, nil
}

func tooLarge(max int64) error {
	return envy.Errorf(envy.ETooLarge, "the request body is larger than %d bytes", max)
}

// jsonObject is a decoded JSON object whose members are still raw, so
// that each is decoded with its own location, and an absent member can be
// told from a null one.
type jsonObject struct {
	loc     string // "body" or "body.NAME"
	members map[string]json.RawMessage
	order   []string // member names in body order
}

// parseBody parses a request body that must be one JSON object: 400 when
// it is missing, malformed or followed by anything else, 422 when it is
// another JSON type.
func parseBody(body []byte) (*jsonObject, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, envy.Errorf(envy.EBadRequest, "a JSON request body is required")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return nil, malformed(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, envy.Errorf(envy.EBadRequest, "malformed JSON: data after the top-level value")
	}
	return objectAt("body", raw)
}

func malformed(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return envy.Errorf(envy.EBadRequest, "malformed JSON at byte %d", se.Offset)
	}
	return envy.Errorf(envy.EBadRequest, "malformed JSON")
}

// objectAt decodes raw as a JSON object at loc.
func objectAt(loc string, raw json.RawMessage) (*jsonObject, error) {
	if jsonKind(raw) != '{' {
		return nil, typeError(loc, "an object")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // {
		return nil, malformed(err)
	}
	o := &jsonObject{loc: loc, members: make(map[string]json.RawMessage)}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, malformed(err)
		}
		name, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, malformed(err)
		}
		if _, dup := o.members[name]; !dup {
			o.order = append(o.order, name)
		}
		// The last of duplicate members wins, as in encoding/json.
		o.members[name] = v
	}
	return o, nil
}

// jsonKind returns the first byte of a JSON value: '{', '[', '"', 't',
// 'f', 'n' or a number's first character.
func jsonKind(raw json.RawMessage) byte {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return 0
	}
	return raw[0]
}

func isNull(raw json.RawMessage) bool { return jsonKind(raw) == 'n' }

func typeError(loc, want string) error {
	return envy.Invalid(envy.Field(loc, "type_error", "must be %s", want))
}

// only refuses members other than the allowed ones (422 at the first
// unknown one, in body order).
func (o *jsonObject) only(allowed ...string) error {
	var bad []envy.FieldError
	for _, name := range o.order {
		if !contains(allowed, name) {
			msg := "unknown field"
			if name == "masked_value" {
				msg = "masked_value is read-only"
			}
			bad = append(bad, envy.Field(o.loc+"."+name, "unknown_field", "%s", msg))
		}
	}
	if len(bad) > 0 {
		return envy.Invalid(bad...)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (o *jsonObject) has(name string) bool {
	_, ok := o.members[name]
	return ok
}

// str returns member name as a string; present is false when it is absent.
// null is a type error.
func (o *jsonObject) str(name string) (v string, present bool, err error) {
	raw, ok := o.members[name]
	if !ok {
		return "", false, nil
	}
	v, err = stringAt(o.loc+"."+name, raw)
	return v, true, err
}

// strPtr is str as a pointer: nil when absent.
func (o *jsonObject) strPtr(name string) (*string, error) {
	v, ok, err := o.str(name)
	if err != nil || !ok {
		return nil, err
	}
	return &v, nil
}

// boolPtr returns member name as a bool; nil when absent.
func (o *jsonObject) boolPtr(name string) (*bool, error) {
	raw, ok := o.members[name]
	if !ok {
		return nil, nil
	}
	var b bool
	switch jsonKind(raw) {
	case 't':
		b = true
	case 'f':
		b = false
	default:
		return nil, typeError(o.loc+"."+name, "a boolean")
	}
	return &b, nil
}

// integer returns member name as an integer.
func (o *jsonObject) integer(name string) (v int64, present bool, err error) {
	raw, ok := o.members[name]
	if !ok {
		return 0, false, nil
	}
	k := jsonKind(raw)
	if k != '-' && (k < '0' || k > '9') {
		return 0, true, typeError(o.loc+"."+name, "an integer")
	}
	v, err = strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 64)
	if err != nil {
		return 0, true, typeError(o.loc+"."+name, "an integer")
	}
	return v, true, nil
}

// stringList returns member name as a list of strings; nil when absent.
func (o *jsonObject) stringList(name string) (*[]string, error) {
	raw, ok := o.members[name]
	if !ok {
		return nil, nil
	}
	loc := o.loc + "." + name
	items, err := arrayAt(loc, raw)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(items))
	for i, it := range items {
		v, err := stringAt(loc+"["+strconv.Itoa(i)+"]", it)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return &out, nil
}

func arrayAt(loc string, raw json.RawMessage) ([]json.RawMessage, error) {
	if jsonKind(raw) != '[' {
		return nil, typeError(loc, "an array")
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, malformed(err)
	}
	return items, nil
}

// stringAt decodes a JSON string at loc. Unlike encoding/json it keeps
// what is not valid UTF-8 (raw bytes, and lone surrogates of \u escapes,
// encoded as their 3-byte forms) instead of replacing it with U+FFFD, so
// that the domain's validation sees and refuses it rather than storing a
// value other than the one sent.
func stringAt(loc string, raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", typeError(loc, "a string")
	}
	raw = raw[1 : len(raw)-1]
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw), nil
	}
	// The syntax was checked by encoding/json already.
	b := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' || i+1 >= len(raw) {
			b = append(b, c)
			continue
		}
		i++
		switch raw[i] {
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r1, ok := hex4(raw[i+1:])
			if !ok {
				return "", envy.Errorf(envy.EBadRequest, "malformed JSON: bad \\u escape")
			}
			i += 4
			if utf16.IsSurrogate(r1) && i+6 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
				if r2, ok := hex4(raw[i+3:]); ok {
					if r := utf16.DecodeRune(r1, r2); r != utf8.RuneError {
						b = utf8.AppendRune(b, r)
						i += 6
						continue
					}
				}
			}
			if utf16.IsSurrogate(r1) {
				// Not valid UTF-8 on purpose: validation refuses it.
				b = append(b, byte(0xE0|r1>>12), byte(0x80|(r1>>6)&0x3F), byte(0x80|r1&0x3F))
				continue
			}
			b = utf8.AppendRune(b, r1)
		default: // " \ /
			b = append(b, raw[i])
		}
	}
	return string(b), nil
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

// Query parameters.

// queryLimit reads ?limit=, 1–1000, default 100.
func queryLimit(r *http.Request) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return 100, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1000 {
		return 0, envy.Invalid(envy.Field("query.limit", "out_of_range", "limit must be an integer from 1 to 1000"))
	}
	return n, nil
}

// queryBool reads a true|false parameter, false when absent.
func queryBool(r *http.Request, name string) (bool, error) {
	switch r.URL.Query().Get(name) {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, envy.Invalid(envy.Field("query."+name, "invalid", "%s must be true or false", name))
}

// queryInt reads a positive integer parameter, 0 when absent.
func queryInt(r *http.Request, name string) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return 0, envy.Invalid(envy.Field("query."+name, "invalid", "%s must be a positive integer", name))
	}
	return n, nil
}

// queryTime reads an RFC 3339 parameter, zero when absent.
func queryTime(r *http.Request, name string) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, envy.Invalid(envy.Field("query."+name, "invalid", "%s must be an RFC 3339 time", name))
	}
	return t, nil
}

// queryEnum reads a parameter that takes one of values; the first is the
// default.
func queryEnum(r *http.Request, name string, values ...string) (string, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return values[0], nil
	}
	if contains(values, v) {
		return v, nil
	}
	return "", envy.Invalid(envy.Field("query."+name, "invalid", "%s must be one of %s", name, strings.Join(values, ", ")))
}

// cond reads If-Match: "<revision>" (quotes optional; * asks for no
// revision) into a write precondition.
func cond(r *http.Request) (envy.Cond, error) {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	if v == "" || v == "*" {
		return envy.Cond{}, nil
	}
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return envy.Cond{}, envy.Invalid(envy.Field("header.If-Match", "invalid", `If-Match must be a revision such as "42"`))
	}
	return envy.Cond{IfRevision: n}, nil
}

// setETag sets the ETag of a scope-level reply to its revision.
func setETag(w http.ResponseWriter, revision int64) {
	w.Header().Set("ETag", `"`+strconv.FormatInt(revision, 10)+`"`)
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
