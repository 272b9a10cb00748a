package wire

import "strconv"

// Int reads an integer from a query parameter or a header: def when s is
// empty, and false when s is not a decimal integer from lo to hi. Each API
// words the refusal its own way.
func Int(s string, def, lo, hi int64) (int64, bool) {
	if s == "" {
		return def, true
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, false
	}
	return n, true
}
