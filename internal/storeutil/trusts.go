package storeutil

import (
	"encoding/json"
	"strings"

	"github.com/envy-dev/envy"
)

// TrustStatements are the statements of JWT trusts (envy.TrustStore), the
// same on both stores but for their placeholders (mark: NumberedMark or
// DollarMark).
type TrustStatements struct {
	Exists, Upsert, Get, List, Delete, Tokens, Prune string
}

// TrustSQL returns the statements with the store's placeholders.
func TrustSQL(mark func(int) string) TrustStatements {
	m := func(s string) string {
		for i := 3; i >= 1; i-- {
			s = strings.ReplaceAll(s, "$"+string(rune('0'+i)), mark(i))
		}
		return s
	}
	return TrustStatements{
		Exists: m(`SELECT EXISTS (SELECT 1 FROM jwt_trusts WHERE name = $1)`),
		Upsert: m(`INSERT INTO jwt_trusts (name, spec, created_at) VALUES ($1, $2, $3)
			ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, created_at = excluded.created_at`),
		Get:    m(`SELECT spec FROM jwt_trusts WHERE name = $1`),
		List:   m(`SELECT spec FROM jwt_trusts WHERE name > $1 ORDER BY name LIMIT $2`),
		Delete: m(`DELETE FROM jwt_trusts WHERE name = $1`),
		Tokens: m(`SELECT id FROM tokens WHERE trust = $1 AND revoked_at IS NULL ORDER BY id`),
		Prune: m(`DELETE FROM tokens WHERE trust <> '' AND (expires_at < $1 OR revoked_at < $1)
			AND NOT EXISTS (SELECT 1 FROM tokens AS c WHERE c.parent_id = tokens.id)`),
	}
}

// EncodeTrust is the stored form of a trust.
func EncodeTrust(t envy.JWTTrust) (string, error) {
	b, err := json.Marshal(t)
	return string(b), err
}

// DecodeTrust reads a stored trust.
func DecodeTrust(spec string) (envy.JWTTrust, error) {
	var t envy.JWTTrust
	err := json.Unmarshal([]byte(spec), &t)
	return t, err
}
