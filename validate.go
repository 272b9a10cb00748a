package envy

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits of the model.
const (
	MaxScopeSegments = 10
	MaxScopePath     = 512
	// MaxGlobWildcards bounds the "*" and "**" segments of one scope glob.
	MaxGlobWildcards = 8
	MaxSegment       = 100
	MaxNameLen       = 255
	MaxValueLen      = 65536 // code points
	MaxBulkKeys      = 1000
	MaxInheritDepth  = 16
	MaxDescription   = 1024
)

// ValidateScopePath returns nil when path is a valid scope path, else a
// FieldError at loc.
func ValidateScopePath(loc, path string) *FieldError {
	if path == "" {
		return fieldErr(loc, "missing", "scope path is required")
	}
	if len(path) > MaxScopePath {
		return fieldErr(loc, "too_long", "scope path is longer than %d characters", MaxScopePath)
	}
	segs := strings.Split(path, "/")
	if len(segs) > MaxScopeSegments {
		return fieldErr(loc, "too_many_segments", "scope path has more than %d segments", MaxScopeSegments)
	}
	for i, s := range segs {
		if !ValidSegment(s) {
			return fieldErr(loc, "invalid_segment", "segment %d of the scope path must match [A-Za-z0-9][A-Za-z0-9._~-]{0,99}", i+1)
		}
	}
	return nil
}

// ValidSegment reports whether s is a valid segment of a scope path (and
// so a valid id in a path).
func ValidSegment(s string) bool {
	if len(s) == 0 || len(s) > MaxSegment {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if alnum {
			continue
		}
		if i > 0 && (c == '.' || c == '_' || c == '~' || c == '-') {
			continue
		}
		return false
	}
	return true
}

// ValidateName returns nil when name is a valid var name that does not
// start with a reserved prefix.
func ValidateName(loc, name string, reserved []string) *FieldError {
	if name == "" {
		return fieldErr(loc, "missing", "name is required")
	}
	if len(name) > MaxNameLen {
		return fieldErr(loc, "too_long", "name is longer than %d characters", MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9'
		if !ok {
			return fieldErr(loc, "invalid_name", "name must match ^[A-Za-z_][A-Za-z0-9_]*$")
		}
	}
	for _, p := range reserved {
		if p != "" && strings.HasPrefix(name, p) {
			return fieldErr(loc, "reserved_prefix", "name starts with the reserved prefix %q", p)
		}
	}
	return nil
}

// ValidateValue returns nil when v is a valid value: valid UTF-8, no NUL, at
// most MaxValueLen code points. The message never holds the value.
func ValidateValue(loc string, v string) *FieldError {
	if !utf8.ValidString(v) {
		return fieldErr(loc, "invalid_utf8", "value is not valid UTF-8")
	}
	if strings.IndexByte(v, 0) >= 0 {
		return fieldErr(loc, "nul_byte", "value contains a NUL character")
	}
	if len(v) > MaxValueLen && utf8.RuneCountInString(v) > MaxValueLen {
		return fieldErr(loc, "too_long", "value is longer than %d characters", MaxValueLen)
	}
	return nil
}

// ValidateDescription returns nil when d is a valid description.
func ValidateDescription(loc, d string) *FieldError {
	if !utf8.ValidString(d) || strings.IndexByte(d, 0) >= 0 {
		return fieldErr(loc, "invalid_text", "description must be valid UTF-8 without NUL")
	}
	if utf8.RuneCountInString(d) > MaxDescription {
		return fieldErr(loc, "too_long", "description is longer than %d characters", MaxDescription)
	}
	return nil
}

// ValidateGlob returns nil when g is a valid scope glob: segments as in a
// scope path, or "*" or "**", at most MaxGlobWildcards of the latter.
func ValidateGlob(loc, g string) *FieldError {
	if g == "" || len(g) > MaxScopePath {
		return fieldErr(loc, "invalid_glob", "scope glob must be 1 to %d characters", MaxScopePath)
	}
	wild := 0
	for i, s := range strings.Split(g, "/") {
		if s != "*" && s != "**" && !ValidSegment(s) {
			return fieldErr(loc, "invalid_glob", "segment %d of the glob must be *, ** or a valid scope segment", i+1)
		}
		if s == "*" || s == "**" {
			wild++
		}
	}
	if wild > MaxGlobWildcards {
		return fieldErr(loc, "too_many_wildcards", "scope glob has %d wildcard segments (* or **); at most %d are allowed", wild, MaxGlobWildcards)
	}
	return nil
}

// MaxLabel is the most bytes of a token's name or owner.
const MaxLabel = 100

// ValidateLabel returns nil when s is a valid token name or owner (what
// names an actor in the audit log, the history and the dashboard): 1 to
// MaxLabel bytes of UTF-8, no space at either end, no control or
// invisible character (Unicode categories Cc, Cf, Zl, Zp) and no space
// but U+0020, so that no label looks like another. typ is the refusal's
// type, what the field's name.
func ValidateLabel(loc, typ, what, s string) *FieldError {
	if s == "" || len(s) > MaxLabel {
		return fieldErr(loc, typ, "%s must be 1 to %d bytes", what, MaxLabel)
	}
	if !utf8.ValidString(s) {
		return fieldErr(loc, typ, "%s must be valid UTF-8", what)
	}
	first, _ := utf8.DecodeRuneInString(s)
	last, _ := utf8.DecodeLastRuneInString(s)
	if unicode.IsSpace(first) || unicode.Is(unicode.Zs, first) || unicode.IsSpace(last) || unicode.Is(unicode.Zs, last) {
		return fieldErr(loc, typ, "%s must not begin or end with a space", what)
	}
	i := 0
	for _, r := range s {
		i++
		switch {
		case unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp):
			return fieldErr(loc, typ, "%s must not hold control or invisible characters (U+%04X, character %d)", what, r, i)
		case r != ' ' && unicode.Is(unicode.Zs, r):
			return fieldErr(loc, typ, "%s must not hold spaces other than U+0020 (U+%04X, character %d)", what, r, i)
		}
	}
	return nil
}

// Printable reports whether s holds no control character (below U+0020,
// or DEL).
func Printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// fieldErr is Field, for the validators that answer a *FieldError.
func fieldErr(loc, typ, format string, args ...any) *FieldError {
	f := Field(loc, typ, format, args...)
	return &f
}
