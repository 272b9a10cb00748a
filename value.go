package envy

import (
	"fmt"
	"io"
	"log/slog"
	"unicode/utf8"
)

// Sensitive holds a variable's plaintext value. Every way fmt, log/slog,
// encoding/json and encoding/text print it shows a mask, so that a stray
// log line or Sprintf can't leak it: String, GoString, Format (every verb,
// %d and %x included), LogValue and MarshalText. Reveal is the one
// explicit way to the plaintext.
//
// The plaintext sits behind a pointer: fmt prints a struct's unexported
// fields by reflection without calling their methods, and so would print a
// string field of a Sensitive nested in another type's unexported field;
// a pointer it prints as an address. Compare values with Equal (== would
// compare the pointers, so it does not compile).
type Sensitive struct {
	p *string
	_ [0]func() // not comparable
}

// NewSensitive wraps a plaintext value.
func NewSensitive(s string) Sensitive { return Sensitive{p: &s} }

// WrapSensitive wraps each of vals into out at the same index, in place:
// out[i] points at vals[i], so that many values cost the one allocation of
// vals rather than one each. vals must not be changed afterwards.
func WrapSensitive(out []Sensitive, vals []string) {
	for i := range vals {
		out[i] = Sensitive{p: &vals[i]}
	}
}

// Reveal returns the plaintext.
func (v Sensitive) Reveal() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

// Len returns the value's length in code points.
func (v Sensitive) Len() int { return utf8.RuneCountInString(v.Reveal()) }

// Equal reports whether two values are equal.
func (v Sensitive) Equal(o Sensitive) bool { return v.Reveal() == o.Reveal() }

const sensitiveMask = "[sensitive]"

func (v Sensitive) String() string               { return sensitiveMask }
func (v Sensitive) GoString() string             { return "envy.Sensitive{" + sensitiveMask + "}" }
func (v Sensitive) LogValue() slog.Value         { return slog.StringValue(sensitiveMask) }
func (v Sensitive) MarshalText() ([]byte, error) { return []byte(sensitiveMask), nil }

// Format prints the mask for every verb and flag: %#v as GoString, all
// others as String. Without it %d, %x and the like would format the
// plaintext.
func (v Sensitive) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		io.WriteString(f, v.GoString())
		return
	}
	io.WriteString(f, sensitiveMask)
}

// MaskRune is the character that masks hidden parts of a secret.
const MaskRune = '•'

const maskFill = "••••"

// maskShown bounds the characters of a secret that its mask shows.
const maskShown = 4

// Mask returns what reads show of a secret's value: at most a quarter of it
// and never more than 4 characters (3 from its start, 1 from its end), the
// rest replaced by a fixed "••••" so that the mask does not tell the
// length; values shorter than 12 characters mask whole.
func Mask(v Sensitive) string {
	s := v.Reveal()
	if utf8.RuneCountInString(s) < 12 {
		return maskFill
	}
	var buf [64]byte
	return string(AppendMask(buf[:0], s))
}

// AppendMask appends Mask's result for the value s to b; invalid UTF-8
// counts and shows as U+FFFD, as a conversion to runes does.
func AppendMask(b []byte, s string) []byte {
	n := utf8.RuneCountInString(s)
	if n < 12 {
		return append(b, maskFill...)
	}
	shown := min(n/4, maskShown)
	suffix := shown / 3
	prefix := shown - suffix
	i := 0
	for range prefix {
		r, size := utf8.DecodeRuneInString(s[i:])
		b = utf8.AppendRune(b, r)
		i += size
	}
	b = append(b, maskFill...)
	for range n - suffix - prefix {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		b = utf8.AppendRune(b, r)
		i += size
	}
	return b
}
