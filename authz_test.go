package envy

import (
	"strings"
	"testing"
)

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
