package envy_test

import (
	"bytes"
	"regexp"
	"testing"

	"github.com/envy-dev/envy"
)

// tokenRE is the token format: "envy_" and at least 43 base62 characters,
// 256 characters in all at most.
var tokenRE = regexp.MustCompile(`^envy_[0-9A-Za-z]{43,251}$`)

// FuzzValidTokenFormat holds the token parser to the format, and checks
// that a well-formed token's hash is stable and tells tokens apart. Seeds
// are in testdata/fuzz/FuzzValidTokenFormat/.
func FuzzValidTokenFormat(f *testing.F) {
	f.Fuzz(func(t *testing.T, tok string) {
		got := envy.ValidTokenFormat(tok)
		if want := tokenRE.MatchString(tok); got != want {
			t.Fatalf("ValidTokenFormat(%q) = %v; the format says %v", tok, got, want)
		}
		if !got {
			return
		}
		h := envy.HashToken(tok)
		if len(h) != 32 || !bytes.Equal(h, envy.HashToken(tok)) {
			t.Fatalf("HashToken(%q) = %x: want 32 stable bytes", tok, h)
		}
		if other := tok + "0"; bytes.Equal(h, envy.HashToken(other)) {
			t.Fatalf("HashToken gives %q and %q the same hash", tok, other)
		}
	})
}
