package envy

import (
	"crypto/rand"
	"crypto/sha256"
	"math/big"
	"strings"
	"time"
)

// TokenInput creates a token.
type TokenInput struct {
	Name        string
	Owner       string // defaults to Name
	Permissions []Grant
	ExpiresAt   *time.Time
	ExpiresIn   string // a Go duration such as "12h"; exclusive with ExpiresAt
}

const tokenPrefix = "envy_"

// ValidTokenFormat reports whether s has the token format: "envy_" and at
// least 43 base62 characters.
func ValidTokenFormat(t string) bool {
	if !strings.HasPrefix(t, tokenPrefix) || len(t) < len(tokenPrefix)+43 || len(t) > 256 {
		return false
	}
	for i := len(tokenPrefix); i < len(t); i++ {
		c := t[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// NewTokenValue returns a new random token: 32 random bytes in base62,
// left-padded with '0' to 43 characters.
func NewTokenValue() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	n := new(big.Int).SetBytes(b[:])
	out := make([]byte, 0, 43)
	base := big.NewInt(62)
	mod := new(big.Int)
	for n.Sign() > 0 {
		n.DivMod(n, base, mod)
		out = append(out, base62[mod.Int64()])
	}
	for len(out) < 43 {
		out = append(out, '0')
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return tokenPrefix + string(out)
}

// HashToken returns the SHA-256 of a token's plaintext, as stored; a
// dashboard session's id, a bearer secret too, is stored the same way.
func HashToken(t string) []byte {
	h := sha256.Sum256([]byte(t))
	return h[:]
}
