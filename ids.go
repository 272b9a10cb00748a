package envy

import (
	"crypto/rand"
	"encoding/base64"
)

// RandomID returns 32 random bytes, base64url-encoded: an id no one can
// guess, such as a dashboard session's or a CSRF token.
func RandomID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
