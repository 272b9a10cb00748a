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

// Revocation is what revoking a token would end: the live tokens of its
// lineage (the token and every token minted under it, transitively) and
// whether a live token holding admin on ** would remain. It is the one
// rule of "never the last global admin", counted by the service before a
// revocation and by the store again inside the revocation's transaction.
type Revocation struct {
	Ending     int  // live tokens of the lineage
	EndsAdmin  bool // one of them holds admin on **
	AdminsLeft int  // live tokens outside the lineage that hold admin on **
}

// ErrLastAdmin is the store's refusal of RevokeTokenKeepingAdmin: the
// revocation would end the last live token that holds admin on **.
var ErrLastAdmin = &Error{Code: EConflict, Message: "the revocation would end the last live token with admin on **; nothing revoked"}

// LeavesNoAdmin reports whether the revocation ends the last live token
// that holds admin on **.
func (r Revocation) LeavesNoAdmin() bool { return r.EndsAdmin && r.AdminsLeft == 0 }

// CountRevocation counts what revoking id would end among all, the tokens
// of the store, at now (a token past its expiry is not live).
func CountRevocation(all []Token, id string, now time.Time) Revocation {
	ending := Lineage(all, id)
	var r Revocation
	for i := range all {
		x := &all[i]
		if !x.LiveAt(now) {
			continue
		}
		if ending[x.ID] {
			r.Ending++
			r.EndsAdmin = r.EndsAdmin || IsGlobalAdmin(x)
		} else if IsGlobalAdmin(x) {
			r.AdminsLeft++
		}
	}
	return r
}

// LiveAt reports whether t is neither revoked nor expired at now.
func (t *Token) LiveAt(now time.Time) bool {
	return t.RevokedAt == nil && (t.ExpiresAt == nil || now.Before(*t.ExpiresAt))
}

// Lineage is the set of id and every token minted under it, transitively.
func Lineage(all []Token, id string) map[string]bool {
	children := map[string][]string{}
	for _, t := range all {
		if t.ParentID != "" {
			children[t.ParentID] = append(children[t.ParentID], t.ID)
		}
	}
	set := map[string]bool{id: true}
	for queue := []string{id}; len(queue) > 0; queue = queue[1:] {
		for _, c := range children[queue[0]] {
			if !set[c] {
				set[c] = true
				queue = append(queue, c)
			}
		}
	}
	return set
}
