package opt

import (
	"testing"
	"time"
)

func TestDefaultFillsWhatIsZeroOrNegativeAndKeepsTheRest(t *testing.T) {
	for _, tc := range []struct{ v, want time.Duration }{
		{0, time.Second},
		{-time.Millisecond, time.Second},
		{time.Millisecond, time.Millisecond},
	} {
		v := tc.v
		Default(&v, time.Second)
		if v != tc.want {
			t.Errorf("Default(%v, 1s) = %v, want %v", tc.v, v, tc.want)
		}
	}
	rate := -0.5
	Default(&rate, 2)
	n := 3
	Default(&n, 8)
	if rate != 2 || n != 3 {
		t.Errorf("rate %v, n %d: want 2 and 3", rate, n)
	}
}
