package wire

import (
	"math"
	"testing"
)

func TestInt(t *testing.T) {
	for _, c := range []struct {
		s       string
		n       int64
		ok      bool
		comment string
	}{
		{"", 7, true, "absent: the default"},
		{"1", 1, true, "the lowest"},
		{"1000", 1000, true, "the highest"},
		{"0", 0, false, "below"},
		{"1001", 0, false, "above"},
		{"-5", 0, false, "negative"},
		{"12a", 0, false, "not a number"},
		{"1.5", 0, false, "not an integer"},
		{" 5", 0, false, "space"},
		{"99999999999999999999", 0, false, "past int64"},
	} {
		n, ok := Int(c.s, 7, 1, 1000)
		if n != c.n || ok != c.ok {
			t.Errorf("%s: Int(%q) = %d, %v; want %d, %v", c.comment, c.s, n, ok, c.n, c.ok)
		}
	}
	if n, ok := Int("9223372036854775807", 0, 0, math.MaxInt64); !ok || n != math.MaxInt64 {
		t.Errorf("the largest int64: %d, %v", n, ok)
	}
}
