package envy

import (
	"strings"
	"testing"
)

func TestScopePathRules(t *testing.T) {
	long := strings.Repeat("a", 100)
	tests := []struct {
		name, path string
		ok         bool
	}{
		{"a simple three-segment path is valid", "acme/web/prod", true},
		{"tilde and dots inside a segment are valid", "acts/janedoe~my-actor/versions/0.1", true},
		{"an empty path is refused", "", false},
		{"a leading slash is refused", "/acme", false},
		{"an empty segment is refused", "acme//prod", false},
		{"a segment starting with a dash is refused", "acme/-", false},
		{"a segment of 100 characters is valid", long, true},
		{"a segment of 101 characters is refused", long + "a", false},
		{"ten segments are valid", "a/b/c/d/e/f/g/h/i/j", true},
		{"eleven segments are refused", "a/b/c/d/e/f/g/h/i/j/k", false},
		{"a space is refused", "ac me", false},
		{"more than 512 characters are refused", strings.Repeat(long+"/", 5) + "abcdefghijklm", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := ValidateScopePath("path.scope", tt.path)
			if (f == nil) != tt.ok {
				t.Fatalf("ValidateScopePath(%q) = %v, want ok=%v", tt.path, f, tt.ok)
			}
		})
	}
}

func TestNameRules(t *testing.T) {
	tests := []struct {
		name, in string
		typ      string
	}{
		{"an upper-case name is valid", "DATABASE_URL", ""},
		{"a leading underscore is valid", "_X1", ""},
		{"a leading digit is refused", "1X", "invalid_name"},
		{"a dash is refused", "A-B", "invalid_name"},
		{"an empty name is refused", "", "missing"},
		{"a reserved prefix is refused", "ENVY_TOKEN", "reserved_prefix"},
		{"the prefix is case-sensitive", "envy_token", ""},
		{"256 characters are refused", strings.Repeat("A", 256), "too_long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := ValidateName("path.name", tt.in, []string{"ENVY_"})
			got := ""
			if f != nil {
				got = f.Type
			}
			if got != tt.typ {
				t.Fatalf("ValidateName(%q) type = %q, want %q", tt.in, got, tt.typ)
			}
		})
	}
}

func TestValueRules(t *testing.T) {
	tests := []struct {
		name, in string
		typ      string
	}{
		{"an empty value is valid", "", ""},
		{"newlines and unicode are valid", "a\nb ✓ 🙂", ""},
		{"65536 multi-byte characters are valid", strings.Repeat("é", MaxValueLen), ""},
		{"65537 characters are refused", strings.Repeat("a", MaxValueLen+1), "too_long"},
		{"a NUL is refused", "a\x00b", "nul_byte"},
		{"invalid UTF-8 is refused", "a\xffb", "invalid_utf8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := ValidateValue("body.value", tt.in)
			got := ""
			if f != nil {
				got = f.Type
				if strings.Contains(f.Msg, tt.in) && tt.in != "" {
					t.Fatalf("message %q holds the value", f.Msg)
				}
			}
			if got != tt.typ {
				t.Fatalf("type = %q, want %q", got, tt.typ)
			}
		})
	}
}

func TestMask(t *testing.T) {
	tests := []struct{ in, want string }{
		{"short", "••••"},
		{"elevenchars", "••••"},
		{"twelve-chars", "tw••••s"},
		{"sk-proj-abcdefghijklmnopqrstuvwxyz0123456789", "sk-••••9"},
		{"sixteen-chars-ab", "six••••b"},
		{"fifteen-chars-a", "fi••••a"},
		{"ééééééééééééééé🙂", "ééé••••🙂"},
	}
	for _, tt := range tests {
		if got := Mask(NewSensitive(tt.in)); got != tt.want {
			t.Errorf("Mask(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSensitiveNeverPrintsItsValue(t *testing.T) {
	v := NewSensitive("canary-1234")
	for _, s := range []string{v.String(), v.GoString(), v.LogValue().String()} {
		if strings.Contains(s, "canary") {
			t.Fatalf("printed %q", s)
		}
	}
}

func TestGlobs(t *testing.T) {
	tests := []struct {
		glob, path string
		want       bool
	}{
		{"acme/web/prod", "acme/web/prod", true},
		{"acme/*/prod", "acme/web/prod", true},
		{"acme/*", "acme/web/prod", false},
		{"acme/**", "acme/web/prod", true},
		{"acme/**", "acme", true},
		{"**", "x/y", true},
		{"acme/**/prod", "acme/a/b/prod", true},
		{"acme/**/prod", "acme/a/b/dev", false},
		{"*/prod", "acme/web/prod", false},
	}
	for _, tt := range tests {
		if got := MatchGlob(tt.glob, tt.path); got != tt.want {
			t.Errorf("MatchGlob(%q, %q) = %v, want %v", tt.glob, tt.path, got, tt.want)
		}
	}
}

func TestGlobCovers(t *testing.T) {
	tests := []struct {
		holder, asked string
		want          bool
	}{
		{"**", "acme/**", true},
		{"acme/**", "acme/web/*", true},
		{"acme/**", "**", false},
		{"acme/*", "acme/**", false},
		{"acme/*", "acme/web", true},
		{"acme/web", "acme/*", false},
		{"acme/*/prod", "acme/*/prod", true},
	}
	for _, tt := range tests {
		if got := globCovers(tt.holder, tt.asked); got != tt.want {
			t.Errorf("globCovers(%q, %q) = %v, want %v", tt.holder, tt.asked, got, tt.want)
		}
	}
}

func TestTokenFormat(t *testing.T) {
	for i := 0; i < 100; i++ {
		v := NewTokenValue()
		if !ValidTokenFormat(v) || len(v) != len("envy_")+43 {
			t.Fatalf("NewTokenValue() = %q is not valid", v)
		}
	}
	for _, bad := range []string{"", "envy_", "envy_abc", "xnvy_" + strings.Repeat("a", 43), "envy_" + strings.Repeat("a", 42) + "!"} {
		if ValidTokenFormat(bad) {
			t.Errorf("ValidTokenFormat(%q) = true", bad)
		}
	}
}

func TestPermissions(t *testing.T) {
	tok := &Token{Permissions: []Grant{
		{Scopes: "acme/**", Actions: []Action{ActRead}},
		{Scopes: "acme/web/dev", Actions: []Action{ActWrite}},
		{Scopes: "ops/*", Actions: []Action{ActReveal}},
	}}
	tests := []struct {
		a     Action
		scope string
		want  bool
	}{
		{ActRead, "acme/web/prod", true},
		{ActWrite, "acme/web/prod", false},
		{ActWrite, "acme/web/dev", true},
		{ActRead, "ops/x", true}, // reveal implies read
		{ActReveal, "acme/web/prod", false},
		{ActRead, "other", false},
	}
	for _, tt := range tests {
		if got := Can(tok, tt.a, tt.scope); got != tt.want {
			t.Errorf("can(%s, %s) = %v, want %v", tt.a, tt.scope, got, tt.want)
		}
	}
	if Visible(tok, "other/x") || !Visible(tok, "acme") {
		t.Error("visibility is wrong")
	}
}
