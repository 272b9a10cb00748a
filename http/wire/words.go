package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/envy-dev/envy"
)

// Words are how an API words the refusals of a request body. A nil field
// takes the default, worded as the native API words it.
type Words struct {
	TooLarge   func(limit int64) error // the body is larger than limit
	Unreadable error                   // reading or decompressing the body failed
	Empty      error                   // no body, or only white space
	// Malformed is called with encoding/json's error for a body that is
	// not one JSON value.
	Malformed func(err error) error
	// InvalidText refuses bytes that are not UTF-8 and \u escapes of lone
	// surrogates (see ValidText).
	InvalidText error
	NotObject   error // the body is a JSON value other than an object
	// Encoding refuses a Content-Encoding other than gzip, br, deflate.
	Encoding func(encoding string) error
	// Unknown refuses the members names (in body order) of the object at
	// loc that the request may not have.
	Unknown func(loc string, names []string) error
	// Missing refuses the absence of the required member name at loc.
	Missing func(loc, name string) error
	// WrongType refuses the member name at loc (name is "" for an array
	// item) for not being of the JSON type want: "string", "boolean",
	// "integer", "array" or "object".
	WrongType func(loc, name, want string) error
	// Duplicate refuses a member name that appears twice in the object at
	// loc; the default is a 400 naming it.
	Duplicate func(loc, name string) error
}

// The default refusals.
var (
	errUnreadable  = envy.Errorf(envy.EBadRequest, "the request body could not be read")
	errEmpty       = envy.Errorf(envy.EBadRequest, "a JSON request body is required")
	errInvalidText = envy.Invalid(envy.Field("body", "invalid_utf8", "the body holds text that is not valid UTF-8"))
	errNotObject   = envy.Invalid(envy.Field("body", "type_error", "the body must be a JSON object"))
)

func or(err, def error) error {
	if err != nil {
		return err
	}
	return def
}

func (ws *Words) tooLarge(limit int64) error {
	if ws.TooLarge != nil {
		return ws.TooLarge(limit)
	}
	return envy.Errorf(envy.ETooLarge, "the request body is larger than %d bytes", limit)
}

func (ws *Words) malformed(err error) error {
	if ws.Malformed != nil {
		return ws.Malformed(err)
	}
	return Malformed(err)
}

// Malformed is the default refusal of malformed JSON, at its byte.
func Malformed(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return envy.Errorf(envy.EBadRequest, "malformed JSON at byte %d", se.Offset)
	}
	return envy.Errorf(envy.EBadRequest, "malformed JSON")
}

func (ws *Words) encoding(enc string) error {
	if ws.Encoding != nil {
		return ws.Encoding(enc)
	}
	return envy.Errorf(envy.EUnsupportedMedia, "Content-Encoding %s is not supported: send the body as it is, or as gzip, br or deflate", strconv.Quote(enc))
}

func (ws *Words) unknown(loc string, names []string) error {
	if ws.Unknown != nil {
		return ws.Unknown(loc, names)
	}
	bad := make([]envy.FieldError, len(names))
	for i, n := range names {
		bad[i] = envy.Field(loc+"."+n, "unknown_field", "unknown field %s", strconv.Quote(n))
	}
	return envy.Invalid(bad...)
}

func (ws *Words) missing(loc, name string) error {
	if ws.Missing != nil {
		return ws.Missing(loc, name)
	}
	return envy.Invalid(envy.Field(loc, "missing", "%s is required", name))
}

func (ws *Words) duplicate(loc, name string) error {
	if ws.Duplicate != nil {
		return ws.Duplicate(loc, name)
	}
	return &envy.Error{Code: envy.EBadRequest,
		Message: "member " + strconv.Quote(name) + " appears more than once in " + loc + ": send each member once",
		Fields:  []envy.FieldError{envy.Field(loc+"."+name, "duplicate_member", "member %s appears more than once", strconv.Quote(name))}}
}

func (ws *Words) wrongType(loc, name, want string) error {
	if loc == "body" && want == "object" {
		return or(ws.NotObject, errNotObject)
	}
	if ws.WrongType != nil {
		return ws.WrongType(loc, name, want)
	}
	return TypeError(loc, want)
}

// TypeError is the default refusal of a value of the wrong JSON type.
func TypeError(loc, want string) error {
	article := "a "
	switch want[0] {
	case 'a', 'i', 'o':
		article = "an "
	}
	return envy.Invalid(envy.Field(loc, "type_error", "must be %s%s", article, want))
}

// Object is a decoded JSON object whose members are still raw, so that
// each is decoded with its own location, and an absent member can be told
// from a null one.
type Object struct {
	Loc     string // "body", or "body.NAME" for a nested object
	Members map[string]json.RawMessage
	Order   []string // member names in body order
	words   *Words
}

// ObjectAt decodes raw as a JSON object at loc. A member name that
// appears twice is refused (encoding/json would keep the last, so two
// readers of one body could disagree on what it says).
func (ws *Words) ObjectAt(loc string, raw json.RawMessage) (*Object, error) {
	if Kind(raw) != '{' {
		return nil, ws.wrongType(loc, lastName(loc), "object")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // {
		return nil, ws.malformed(err)
	}
	o := &Object{Loc: loc, Members: make(map[string]json.RawMessage), words: ws}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, ws.malformed(err)
		}
		name, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, ws.malformed(err)
		}
		if _, dup := o.Members[name]; dup {
			return nil, ws.duplicate(loc, name)
		}
		o.Order = append(o.Order, name)
		o.Members[name] = v
	}
	return o, nil
}

// ArrayAt decodes raw as a JSON array at loc.
func (ws *Words) ArrayAt(loc string, raw json.RawMessage) ([]json.RawMessage, error) {
	if Kind(raw) != '[' {
		return nil, ws.wrongType(loc, lastName(loc), "array")
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, ws.malformed(err)
	}
	return items, nil
}

// StringAt decodes raw as a JSON string at loc, keeping text that is not
// valid UTF-8 (see Unquote).
func (ws *Words) StringAt(loc string, raw json.RawMessage) (string, error) {
	s, ok := Unquote(raw)
	if !ok {
		return "", ws.wrongType(loc, lastName(loc), "string")
	}
	return s, nil
}

// StringList decodes raw as a JSON array of strings at loc.
func (ws *Words) StringList(loc string, raw json.RawMessage) ([]string, error) {
	items, err := ws.ArrayAt(loc, raw)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(items))
	for i, it := range items {
		if out[i], err = ws.StringAt(loc+"["+strconv.Itoa(i)+"]", it); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// lastName is the member name at the end of loc; "" for an array item.
func lastName(loc string) string {
	if loc == "" || loc[len(loc)-1] == ']' {
		return ""
	}
	if i := bytes.LastIndexByte([]byte(loc), '.'); i >= 0 {
		return loc[i+1:]
	}
	return loc
}

func (o *Object) loc(name string) string { return o.Loc + "." + name }

// Only refuses members other than the allowed ones.
func (o *Object) Only(allowed ...string) error {
	var bad []string
	for _, name := range o.Order {
		if !contains(allowed, name) {
			bad = append(bad, name)
		}
	}
	if len(bad) > 0 {
		return o.words.unknown(o.Loc, bad)
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

// OmitNull drops the named members that are null, for a schema whose
// members are "T | null": they read as absent.
func (o *Object) OmitNull(names ...string) {
	for _, n := range names {
		if raw, ok := o.Members[n]; ok && Kind(raw) == 'n' {
			delete(o.Members, n)
		}
	}
}

// String returns member name as a string; present is false when it is
// absent. null is a type error.
func (o *Object) String(name string) (v string, present bool, err error) {
	raw, ok := o.Members[name]
	if !ok {
		return "", false, nil
	}
	v, err = o.words.StringAt(o.loc(name), raw)
	return v, true, err
}

// StringPtr is String as a pointer: nil when absent.
func (o *Object) StringPtr(name string) (*string, error) {
	v, ok, err := o.String(name)
	if err != nil || !ok {
		return nil, err
	}
	return &v, nil
}

// RequiredString returns member name, which must be present and a string.
func (o *Object) RequiredString(name string) (string, error) {
	v, ok, err := o.String(name)
	if err == nil && !ok {
		err = o.words.missing(o.loc(name), name)
	}
	return v, err
}

// Bool returns member name as a bool; nil when absent.
func (o *Object) Bool(name string) (*bool, error) {
	raw, ok := o.Members[name]
	if !ok {
		return nil, nil
	}
	var b bool
	switch Kind(raw) {
	case 't':
		b = true
	case 'f':
	default:
		return nil, o.words.wrongType(o.loc(name), name, "boolean")
	}
	return &b, nil
}

// Integer returns member name as an integer.
func (o *Object) Integer(name string) (v int64, present bool, err error) {
	raw, ok := o.Members[name]
	if !ok {
		return 0, false, nil
	}
	k := Kind(raw)
	if k == '-' || k >= '0' && k <= '9' {
		if v, err = strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 64); err == nil {
			return v, true, nil
		}
	}
	return 0, true, o.words.wrongType(o.loc(name), name, "integer")
}

// RequiredInteger returns member name, which must be present and an integer.
func (o *Object) RequiredInteger(name string) (int64, error) {
	v, ok, err := o.Integer(name)
	if err == nil && !ok {
		err = o.words.missing(o.loc(name), name)
	}
	return v, err
}

// StringList returns member name as a list of strings; nil when absent.
func (o *Object) StringList(name string) (*[]string, error) {
	raw, ok := o.Members[name]
	if !ok {
		return nil, nil
	}
	l, err := o.words.StringList(o.loc(name), raw)
	if err != nil {
		return nil, err
	}
	return &l, nil
}

// Object returns member name as a nested object, decoded with the same
// words.
func (o *Object) Object(name string) (*Object, error) {
	return o.words.ObjectAt(o.loc(name), o.Members[name])
}
