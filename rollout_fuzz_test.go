package envy_test

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/envy-dev/envy"
)

var maxUnavailableRE = regexp.MustCompile(`^[0-9]+%?$`)

// FuzzParseMaxUnavailable holds max_unavailable's parser to its rule: a
// number of instances 1–MaxRolloutInstances, or a percentage 1%–100%
// (surrounding space allowed), and to a round trip through
// MaxUnavailableString; anything else is refused with a field error.
func FuzzParseMaxUnavailable(f *testing.F) {
	for _, s := range []string{"2", "25%", "100%", "0", "101%", "-1", "+3", "1e3", " 7 ", "%", "", "10000", "10001", "007"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, pct, fe := envy.ParseMaxUnavailable("body.rollout.max_unavailable", s)
		trimmed := strings.TrimSpace(s)
		want := maxUnavailableRE.MatchString(trimmed)
		if want {
			digits := strings.TrimSuffix(trimmed, "%")
			v, err := strconv.Atoi(digits)
			hi := envy.MaxRolloutInstances
			if strings.HasSuffix(trimmed, "%") {
				hi = 100
			}
			want = err == nil && v >= 1 && v <= hi
		}
		if (fe == nil) != want {
			t.Fatalf("ParseMaxUnavailable(%q) = %d, %v, %v; accepted should be %v", s, n, pct, fe, want)
		}
		if fe != nil {
			if fe.Loc != "body.rollout.max_unavailable" || fe.Msg == "" {
				t.Fatalf("field error %+v", fe)
			}
			return
		}
		p := envy.RolloutPolicy{MaxUnavailable: n, Percent: pct}
		n2, pct2, fe2 := envy.ParseMaxUnavailable("x", p.MaxUnavailableString())
		if fe2 != nil || n2 != n || pct2 != pct {
			t.Fatalf("round trip of %q: %d %v %v", s, n2, pct2, fe2)
		}
		if slots := p.Slots(1000); slots < 1 || slots > max(n, 1000) {
			t.Fatalf("Slots(1000) of %q = %d", s, slots)
		}
	})
}
