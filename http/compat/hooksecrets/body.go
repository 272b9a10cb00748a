package hooksecrets

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/envy-dev/envy"
	envyhttp "github.com/envy-dev/envy/http"
)

// Request bodies are parsed for their shape only; what a name or a value
// may be is the service's to say.

// readJSON reads the request body as one JSON value. Any content type is
// read as JSON, as the seed's examples send it.
func readJSON(w http.ResponseWriter, r *http.Request) (json.RawMessage, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, envyhttp.DefaultMaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, envy.Errorf(envy.ETooLarge, "the request body is larger than %d bytes", mbe.Limit)
		}
		return nil, envy.Errorf(envy.EBadRequest, "the request body could not be read")
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, envy.Errorf(envy.EBadRequest, "a JSON request body is required")
	}
	var raw json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, envy.Errorf(envy.EBadRequest, "malformed JSON at byte %d", se.Offset)
		}
		return nil, envy.Errorf(envy.EBadRequest, "malformed JSON")
	}
	// encoding/json would replace what is not UTF-8 with U+FFFD and so
	// store a value other than the one sent: refuse it instead.
	if !utf8.Valid(b) || loneSurrogate(b) {
		return nil, envy.Invalid(envy.Field("body", "invalid_utf8", "the body holds text that is not valid UTF-8"))
	}
	return raw, nil
}

// readStringMap reads the body as a JSON object of string values, the
// seed's "object of key-value pairs".
func readStringMap(w http.ResponseWriter, r *http.Request) (map[string]string, error) {
	raw, err := readJSON(w, r)
	if err != nil {
		return nil, err
	}
	if bytes.TrimLeft(raw, " \t\r\n")[0] != '{' {
		return nil, envy.Invalid(envy.Field("body", "type_error", "the body must be an object of secret names and values"))
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, envy.Errorf(envy.EBadRequest, "malformed JSON")
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		s, err := stringValue("body."+k, v)
		if err != nil {
			return nil, err
		}
		out[k] = s
	}
	return out, nil
}

// readStringList reads the body as a JSON array of strings.
func readStringList(w http.ResponseWriter, r *http.Request) ([]string, error) {
	raw, err := readJSON(w, r)
	if err != nil {
		return nil, err
	}
	if bytes.TrimLeft(raw, " \t\r\n")[0] != '[' {
		return nil, envy.Invalid(envy.Field("body", "type_error", "the body must be an array of secret names"))
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, envy.Errorf(envy.EBadRequest, "malformed JSON")
	}
	out := make([]string, len(items))
	for i, it := range items {
		s, err := stringValue("body["+strconv.Itoa(i)+"]", it)
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

// stringValue decodes a member that must be a JSON string.
func stringValue(loc string, raw json.RawMessage) (string, error) {
	var s string
	if k := bytes.TrimLeft(raw, " \t\r\n"); len(k) == 0 || k[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", envy.Invalid(envy.Field(loc, "type_error", "must be a string"))
	}
	return s, nil
}

// loneSurrogate reports whether a JSON text holds a \u escape of a UTF-16
// surrogate that is not part of a valid pair.
func loneSurrogate(b []byte) bool {
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		i++
		if i >= len(b) || b[i] != 'u' {
			continue // an escaped character such as \\ or \"
		}
		r, ok := hex4(b[i+1:])
		if !ok {
			continue
		}
		i += 4
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return true
		case r >= 0xD800 && r <= 0xDBFF:
			if i+6 >= len(b) || b[i+1] != '\\' || b[i+2] != 'u' {
				return true
			}
			r2, ok := hex4(b[i+3:])
			if !ok || r2 < 0xDC00 || r2 > 0xDFFF {
				return true
			}
			i += 6
		}
	}
	return false
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	v, err := strconv.ParseUint(string(b[:4]), 16, 32)
	return rune(v), err == nil
}

func setETag(w http.ResponseWriter, revision int64) {
	if revision > 0 {
		w.Header().Set("ETag", `"`+strconv.FormatInt(revision, 10)+`"`)
	}
}

// writeJSON answers v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err) // the reply types always encode
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
