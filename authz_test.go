package envy

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
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

// oldCover is globCovers as it was first written, recursive over
// strings.Split: the reference the linear matcher must agree with.
func oldCover(b, a []string) bool {
	if len(b) == 0 {
		return len(a) == 0
	}
	if b[0] == "**" {
		for i := 0; i <= len(a); i++ {
			if oldCover(b[1:], a[i:]) {
				return true
			}
		}
		return false
	}
	if len(a) == 0 || a[0] == "**" {
		return false
	}
	if b[0] == "*" || b[0] == a[0] && a[0] != "*" {
		return oldCover(b[1:], a[1:])
	}
	return false
}

// TestGlobMatchersAgreeWithRecursion compares the linear matchers with the
// recursive ones they replaced on random globs and paths of up to eight
// segments, many of them "**".
func TestGlobMatchersAgreeWithRecursion(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 1))
	parts := []string{"a", "b", "c", "*", "**", "**"}
	gen := func() string {
		n := 1 + rng.IntN(8)
		s := make([]string, n)
		for i := range s {
			s[i] = parts[rng.IntN(len(parts))]
		}
		return strings.Join(s, "/")
	}
	for range 200000 {
		g, p := gen(), gen()
		gs, ps := strings.Split(g, "/"), strings.Split(p, "/")
		if got, want := MatchGlob(g, p), splitMatch(gs, ps); got != want {
			t.Fatalf("MatchGlob(%q, %q) = %v, the recursive matcher says %v", g, p, got, want)
		}
		if got, want := globCovers(g, p), oldCover(gs, ps); got != want {
			t.Fatalf("globCovers(%q, %q) = %v, the recursive matcher says %v", g, p, got, want)
		}
	}
}

// TestGlobMatchIsNotExponential matches globs of many "**" (more than a
// token may hold, as a stored one could) against long paths that fail
// late: a matcher that tries every split would take longer than the age
// of the universe; a linear one answers at once. The wait has a deadline.
func TestGlobMatchIsNotExponential(t *testing.T) {
	glob := "acme/" + strings.Repeat("**/", 40) + "z"
	path := "acme/" + strings.Repeat("a/", 60) + "b"
	done := make(chan [2]bool, 1)
	go func() {
		done <- [2]bool{MatchGlob(glob, path), globCovers(glob, path+"/*/**/q")}
	}()
	select {
	case r := <-done:
		if r[0] || r[1] {
			t.Fatalf("matched: %v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a glob of 40 \"**\" segments did not match a 62-segment path within 10 s: the glob matcher backtracks exponentially")
	}
}
