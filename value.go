package envy

import (
	"log/slog"
	"unicode/utf8"
)

// Sensitive holds a variable's plaintext value. Its String, GoString,
// Format and LogValue methods print a mask, so that a stray log line or %v
// cannot leak it; Reveal is the one explicit way to the plaintext.
type Sensitive struct{ s string }

// NewSensitive wraps a plaintext value.
func NewSensitive(s string) Sensitive { return Sensitive{s: s} }

// Reveal returns the plaintext.
func (v Sensitive) Reveal() string { return v.s }

// Len returns the value's length in code points.
func (v Sensitive) Len() int { return utf8.RuneCountInString(v.s) }

// Equal reports whether two values are equal.
func (v Sensitive) Equal(o Sensitive) bool { return v.s == o.s }

func (v Sensitive) String() string               { return "[sensitive]" }
func (v Sensitive) GoString() string             { return "envy.Sensitive{[sensitive]}" }
func (v Sensitive) LogValue() slog.Value         { return slog.StringValue("[sensitive]") }
func (v Sensitive) MarshalText() ([]byte, error) { return []byte("[sensitive]"), nil }

// MaskRune is the character that masks hidden parts of a secret.
const MaskRune = '•'

const maskFill = "••••"

// Mask returns what reads show of a secret's value: at most a quarter of it
// and never more than 9 characters, the rest replaced by a fixed "••••" so
// that the mask does not tell the length; values shorter than 12 characters
// mask whole.
func Mask(v Sensitive) string {
	r := []rune(v.s)
	n := len(r)
	if n < 12 {
		return maskFill
	}
	shown := n / 4
	if shown > 9 {
		shown = 9
	}
	suffix := shown / 3
	prefix := shown - suffix
	return string(r[:prefix]) + maskFill + string(r[n-suffix:])
}
