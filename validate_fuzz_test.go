package envy_test

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/envy-dev/envy"
)

// The fuzz targets below hold each validator to a reference written
// straight from the model's rules (docs/api.md): a regular expression and
// the length limits. Seeds are in testdata/fuzz/<target>/.

var (
	segmentRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._~-]{0,99}$`)
	nameRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

func refScopePath(path string) bool {
	if path == "" || len(path) > envy.MaxScopePath {
		return false
	}
	segs := strings.Split(path, "/")
	if len(segs) > envy.MaxScopeSegments {
		return false
	}
	for _, s := range segs {
		if !segmentRE.MatchString(s) {
			return false
		}
	}
	return true
}

// checkField checks what every refusal must be: at the given loc, with a
// type and a message.
func checkField(t *testing.T, fe *envy.FieldError, loc string) {
	t.Helper()
	if fe.Loc != loc || fe.Type == "" || fe.Msg == "" {
		t.Fatalf("refusal %+v: want loc %q, a type and a message", *fe, loc)
	}
}

func FuzzValidateScopePath(f *testing.F) {
	f.Fuzz(func(t *testing.T, path string) {
		fe := envy.ValidateScopePath("path.path", path)
		if want := refScopePath(path); (fe == nil) != want {
			t.Fatalf("ValidateScopePath(%q) = %v; the rules say valid=%v", path, fe, want)
		}
		if fe != nil {
			checkField(t, fe, "path.path")
		}
	})
}

func FuzzValidateName(f *testing.F) {
	f.Fuzz(func(t *testing.T, name, reserved string) {
		fe := envy.ValidateName("path.name", name, []string{reserved})
		want := nameRE.MatchString(name) && len(name) <= envy.MaxNameLen &&
			(reserved == "" || !strings.HasPrefix(name, reserved))
		if (fe == nil) != want {
			t.Fatalf("ValidateName(%q, reserved %q) = %v; the rules say valid=%v", name, reserved, fe, want)
		}
		if fe != nil {
			checkField(t, fe, "path.name")
		}
	})
}

func FuzzValidateValue(f *testing.F) {
	f.Fuzz(func(t *testing.T, v string) {
		fe := envy.ValidateValue("body.value", v)
		want := utf8.ValidString(v) && !strings.ContainsRune(v, 0) && utf8.RuneCountInString(v) <= envy.MaxValueLen
		if (fe == nil) != want {
			t.Fatalf("ValidateValue(%d bytes) = %v; the rules say valid=%v", len(v), fe, want)
		}
		if fe != nil {
			// A value is a secret: the message must not hold any of it.
			switch fe.Msg {
			case "value is not valid UTF-8", "value contains a NUL character", "value is longer than 65536 characters":
			default:
				t.Fatalf("unexpected message %q: a refusal of a value must not describe it", fe.Msg)
			}
			checkField(t, fe, "body.value")
		}
	})
}

func FuzzValidateGlob(f *testing.F) {
	f.Fuzz(func(t *testing.T, g string) {
		fe := envy.ValidateGlob("body.permissions[0].scopes", g)
		want := g != "" && len(g) <= envy.MaxScopePath
		if want {
			wild := 0
			for _, s := range strings.Split(g, "/") {
				if s != "*" && s != "**" && !segmentRE.MatchString(s) {
					want = false
				}
				if s == "*" || s == "**" {
					wild++
				}
			}
			if wild > envy.MaxGlobWildcards {
				want = false
			}
		}
		if (fe == nil) != want {
			t.Fatalf("ValidateGlob(%q) = %v; the rules say valid=%v", g, fe, want)
		}
		if fe != nil {
			checkField(t, fe, "body.permissions[0].scopes")
		}
	})
}
