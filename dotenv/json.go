package dotenv

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
)

// ParseJSON reads a JSON object of names to values, in file order. Numbers
// and booleans are taken as the text they are written as ("8080", "true");
// null, objects and arrays are errors. The reply of GET /v1/scopes/…/-/env,
// {"scope":…,"revision":…,"env":{…},"secrets":[…]}, is read as its env.
//
// encoding/json's own error texts are not passed on: a syntax error quotes
// the offending character, which may belong to a value.
func ParseJSON(r io.Reader) ([]KV, error) {
	kvs, _, err := parseJSON(r)
	return kvs, err
}

// parseJSON is ParseJSON, with the flags of the members that give one.
func parseJSON(r io.Reader) (kvs []KV, flags Flags, err error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, nil, err
	}
	data = bytes.TrimPrefix(data, []byte("\uFEFF"))
	if _, err := prepare(data); err != nil {
		return nil, nil, err
	}
	members, err := jsonObject(data, data, 0)
	if err != nil {
		return nil, nil, err
	}
	if env, ok := envReply(members); ok {
		members, err = jsonObject(data, env.raw, env.valueOffset)
		if err != nil {
			return nil, nil, err
		}
	}
	kvs = make([]KV, 0, len(members))
	for _, m := range members {
		// The line is counted only for an error: counting it for every
		// member would make a large file quadratic.
		if !validName(m.name) {
			return nil, nil, &ParseError{Line: lineAt(data, int(m.offset)), Msg: msgBadName}
		}
		v, secret, err := jsonVar(m.raw)
		if err != nil {
			return nil, nil, &ParseError{Line: lineAt(data, int(m.offset)), Name: m.name, Msg: err.Error()}
		}
		if secret != nil {
			if flags == nil {
				flags = Flags{}
			}
			flags[m.name] = *secret || flags[m.name]
		}
		kvs = append(kvs, KV{Name: m.name, Value: v})
	}
	return dedupe(kvs), flags, nil
}

type jsonMember struct {
	name        string
	raw         json.RawMessage
	offset      int64 // of the member's name in the whole input
	valueOffset int64 // of its value in the whole input
}

// jsonObject reads the members of the object in data, in order. data sits
// at offset base of all, the whole input, which line numbers count in.
func jsonObject(all, data []byte, base int64) ([]jsonMember, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	syntax := func(err error) error {
		var se *json.SyntaxError
		off := dec.InputOffset()
		if errors.As(err, &se) {
			off = se.Offset
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			off = int64(len(data))
		}
		return &ParseError{Line: lineAt(all, int(min(base+off, int64(len(all))))), Msg: msgSyntax}
	}
	tok, err := dec.Token()
	if err == io.EOF {
		return nil, nil // an empty file holds no variables
	}
	if err != nil {
		return nil, syntax(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, &ParseError{Line: 1, Msg: msgNotObject}
	}
	var out []jsonMember
	for dec.More() {
		off := dec.InputOffset()
		for off < int64(len(data)) && strings.IndexByte(" \t\r\n,", data[off]) >= 0 {
			off++
		}
		tok, err := dec.Token()
		if err != nil {
			return nil, syntax(err)
		}
		name, _ := tok.(string)
		// InputOffset is just past the name; skip the ':' and blanks to
		// where the value starts.
		voff := dec.InputOffset()
		for voff < int64(len(data)) && strings.IndexByte(" \t\r\n:", data[voff]) >= 0 {
			voff++
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, syntax(err)
		}
		out = append(out, jsonMember{name: name, raw: raw, offset: base + off, valueOffset: base + voff})
	}
	if _, err := dec.Token(); err != nil { // '}'
		return nil, syntax(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, syntax(err)
	}
	return out, nil
}

// envReply recognises {"scope":…,"revision":…,"env":{…}}.
func envReply(members []jsonMember) (jsonMember, bool) {
	var env jsonMember
	found := false
	for _, m := range members {
		switch m.name {
		case "env":
			if len(m.raw) == 0 || m.raw[0] != '{' {
				return env, false
			}
			env, found = m, true
		case "scope", "revision", "synced", "secrets":
		default:
			return env, false
		}
	}
	return env, found
}

// jsonVar reads one member's value: a scalar, or the form that keeps the
// flag, {"value":"…","secret":true|false} (writeJSON writes it for a var
// flags names), whose secret it returns too. Nothing else may be in that
// object.
func jsonVar(raw json.RawMessage) (string, *bool, error) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || t[0] != '{' {
		v, err := jsonScalar(raw)
		return v, nil, err
	}
	var obj struct {
		Value  *string `json:"value"`
		Secret *bool   `json:"secret"`
	}
	dec := json.NewDecoder(bytes.NewReader(t))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&obj); err != nil || obj.Value == nil {
		return "", nil, constError(msgNotVarObject)
	}
	return *obj.Value, obj.Secret, nil
}

func jsonScalar(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", constError(msgSyntax)
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", constError(msgSyntax)
		}
		return s, nil
	case 'n':
		return "", constError(msgNull)
	case '{', '[':
		return "", constError(msgNotScalar)
	}
	// true, false or a number: its text as written.
	return string(raw), nil
}

// WriteJSON writes kvs as one JSON object, in order, two-space indented.
func WriteJSON(w io.Writer, kvs []KV) error { return writeJSON(w, kvs, nil) }

// writeJSON is WriteJSON; a var flags names is written as
// {"value": "…", "secret": true|false}.
func writeJSON(w io.Writer, kvs []KV, flags Flags) error {
	if len(kvs) == 0 {
		_, err := io.WriteString(w, "{}\n")
		return err
	}
	var b strings.Builder
	b.WriteString("{\n")
	for i, kv := range kvs {
		if err := checkKV(kv); err != nil {
			return err
		}
		b.WriteString("  ")
		b.WriteString(jsonString(kv.Name))
		b.WriteString(": ")
		if secret, ok := flags[kv.Name]; ok {
			b.WriteString(`{"value": `)
			b.WriteString(jsonString(kv.Value))
			b.WriteString(`, "secret": `)
			b.WriteString(strconv.FormatBool(secret))
			b.WriteString("}")
		} else {
			b.WriteString(jsonString(kv.Value))
		}
		if i < len(kvs)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// jsonString encodes s without encoding/json's HTML escaping, so that
// "a<b" stays readable.
func jsonString(s string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(buf.String(), "\n")
}
