package wire

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// JSON text that encoding/json would alter: bytes that are not UTF-8, and
// \u escapes of lone UTF-16 surrogates, both of which it replaces with
// U+FFFD, so that a value other than the one sent would be stored. The
// native API keeps such text in the string it decodes (Unquote), for the
// domain's validation to refuse at the field that holds it; a dialect
// refuses the whole body (ValidText). Both read escapes with escapeU.

// Kind returns the first byte of a JSON value: '{', '[', '"', 't', 'f',
// 'n' or a number's first character; 0 when there is none.
func Kind(raw json.RawMessage) byte {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return 0
	}
	return raw[0]
}

// Unquote decodes a JSON string whose syntax encoding/json has checked;
// ok is false when raw is another JSON type. Unlike encoding/json it keeps
// what is not valid UTF-8 (raw bytes, and lone surrogates of \u escapes,
// as their 3-byte forms) instead of replacing it with U+FFFD.
func Unquote(raw json.RawMessage) (s string, ok bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	raw = raw[1 : len(raw)-1]
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw), true
	}
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
			r, n, lone := escapeU(raw[i+1:])
			if n == 0 {
				return "", false // not reached: the syntax was checked
			}
			i += n
			if lone {
				// Not valid UTF-8 on purpose: validation refuses it.
				b = append(b, byte(0xE0|r>>12), byte(0x80|(r>>6)&0x3F), byte(0x80|r&0x3F))
				continue
			}
			b = utf8.AppendRune(b, r)
		default: // " \ /
			b = append(b, raw[i])
		}
	}
	return string(b), true
}

// ValidText reports whether a JSON text is valid UTF-8 and escapes no lone
// surrogate: whether encoding/json reads its strings as they were sent.
func ValidText(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		i++ // the escaped character; \\ and \" are skipped whole
		if i >= len(b) || b[i] != 'u' {
			continue
		}
		_, n, lone := escapeU(b[i+1:])
		if lone {
			return false
		}
		i += n
	}
	return true
}

// escapeU reads the hex digits of a \u escape, and of the low half that
// follows a high surrogate as "\uXXXX": the rune, how many bytes it read
// (0 when the escape is malformed), and whether the rune is a surrogate
// that is not half of a pair.
func escapeU(b []byte) (r rune, n int, lone bool) {
	r1, ok := hex4(b)
	if !ok {
		return 0, 0, false
	}
	if !utf16.IsSurrogate(r1) {
		return r1, 4, false
	}
	if len(b) >= 10 && b[4] == '\\' && b[5] == 'u' {
		if r2, ok := hex4(b[6:]); ok {
			if r := utf16.DecodeRune(r1, r2); r != utf8.RuneError {
				return r, 10, false
			}
		}
	}
	return r1, 4, true
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
