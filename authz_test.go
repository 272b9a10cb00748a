package envy

import (
	"context"
	"strings"
	"testing"
)

func TestCanAnswersForTheCaller(t *testing.T) {
	s := NewService(nil, nil, Options{})
	defer s.Close()
	tok := &Token{Name: "t", Permissions: []Grant{
		{Scopes: "acme/**", Actions: []Action{ActRead}},
		{Scopes: "acme/web/dev", Actions: []Action{ActWrite}},
		{Scopes: "ops/*", Actions: []Action{ActAdmin}},
	}}
	ctx := WithCaller(context.Background(), &Caller{Token: tok})
	tests := []struct {
		a     Action
		scope string
		want  bool
	}{
		{ActRead, "acme/web/prod", true},
		{ActWrite, "acme/web/prod", false},
		{ActWrite, "acme/web/dev", true},
		{ActReveal, "acme/web/dev", false},
		{ActReveal, "ops/x", true}, // admin implies everything
		{ActWrite, "ops/x/y", false},
		{ActRead, "other", false},
	}
	for _, tt := range tests {
		if got := s.Can(ctx, tt.a, tt.scope); got != tt.want {
			t.Errorf("Can(%s, %s) = %v, want %v", tt.a, tt.scope, got, tt.want)
		}
	}
	if s.Can(context.Background(), ActRead, "acme") {
		t.Error("Can without a caller = true, want false")
	}
}

// splitMatch is MatchGlob as it was written first, over strings.Split:
// the reference that the allocation-free walk must agree with.
func splitMatch(g, p []string) bool {
	for len(g) > 0 {
		if g[0] == "**" {
			if len(g) == 1 {
				return true
			}
			for i := 0; i <= len(p); i++ {
				if splitMatch(g[1:], p[i:]) {
					return true
				}
			}
			return false
		}
		if len(p) == 0 || (g[0] != "*" && g[0] != p[0]) {
			return false
		}
		g, p = g[1:], p[1:]
	}
	return len(p) == 0
}

func TestMatchGlobAgreesWithSplitting(t *testing.T) {
	parts := []string{"a", "b", "*", "**", ""}
	// Every path of one to four segments made of parts.
	var all []string
	var gen func(segs []string)
	gen = func(segs []string) {
		if len(segs) > 0 {
			all = append(all, strings.Join(segs, "/"))
		}
		if len(segs) == 4 {
			return
		}
		for _, p := range parts {
			gen(append(segs, p))
		}
	}
	gen(nil)
	for _, g := range all {
		for _, p := range all {
			if got, want := MatchGlob(g, p), splitMatch(strings.Split(g, "/"), strings.Split(p, "/")); got != want {
				t.Fatalf("MatchGlob(%q, %q) = %v, splitting says %v", g, p, got, want)
			}
		}
	}
	if n := testing.AllocsPerRun(100, func() { MatchGlob("acme/**/prod", "acme/a/b/prod") }); n != 0 {
		t.Errorf("MatchGlob allocates %.0f times", n)
	}
}
