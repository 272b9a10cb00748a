package storeutil

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/envy-dev/envy"
)

// TrustStatements are the statements of JWT trusts (envy.TrustStore), the
// same on both stores but for their placeholders (mark: NumberedMark or
// DollarMark).
type TrustStatements struct {
	Exists, Upsert, Get, List, Delete, Tokens, Prune string
}

// TrustSQL returns the statements with the store's placeholders.
func TrustSQL(mark func(int) string) TrustStatements { return SpecSQL("jwt_trusts", mark) }

// OIDCSQL returns the statements of OIDC providers (envy.OIDCStore), kept
// as JWT trusts are: a name and a JSON document; Tokens and Prune are the
// trusts' (a provider's sign-ins are found as a trust's logins).
func OIDCSQL(mark func(int) string) TrustStatements { return SpecSQL("oidc_providers", mark) }

// SpecSQL returns the statements of a table of named JSON documents
// (name, spec, created_at) with the store's placeholders.
func SpecSQL(table string, mark func(int) string) TrustStatements {
	m := func(s string) string {
		s = strings.ReplaceAll(s, "{table}", table)
		for i := 3; i >= 1; i-- {
			s = strings.ReplaceAll(s, "$"+string(rune('0'+i)), mark(i))
		}
		return s
	}
	return TrustStatements{
		Exists: m(`SELECT EXISTS (SELECT 1 FROM {table} WHERE name = $1)`),
		Upsert: m(`INSERT INTO {table} (name, spec, created_at) VALUES ($1, $2, $3)
			ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, created_at = excluded.created_at`),
		Get:    m(`SELECT spec FROM {table} WHERE name = $1`),
		List:   m(`SELECT spec FROM {table} WHERE name > $1 ORDER BY name LIMIT $2`),
		Delete: m(`DELETE FROM {table} WHERE name = $1`),
		Tokens: m(`SELECT id FROM tokens WHERE trust = $1 AND revoked_at IS NULL ORDER BY id`),
		Prune: m(`DELETE FROM tokens WHERE trust <> '' AND (expires_at < $1 OR revoked_at < $1)
			AND NOT EXISTS (SELECT 1 FROM tokens AS c WHERE c.parent_id = tokens.id)`),
	}
}

// EncodeTrust is the stored form of a trust.
func EncodeTrust(t envy.JWTTrust) (string, error) { return EncodeSpec(t) }

// DecodeTrust reads a stored trust.
func DecodeTrust(spec string) (envy.JWTTrust, error) { return DecodeSpec[envy.JWTTrust](spec) }

// EncodeSpec is the stored form of a named JSON document (a trust, an
// OIDC provider).
func EncodeSpec(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// DecodeSpec reads a stored document.
func DecodeSpec[T any](spec string) (T, error) {
	var v T
	err := json.Unmarshal([]byte(spec), &v)
	return v, err
}

// SpecTable is a table of named JSON documents (JWT trusts, OIDC
// providers) as both stores keep it: what names one kind in errors
// ("trust"), its statements, and its document's name and creation time.
type SpecTable[T any] struct {
	What string
	SQL  TrustStatements
	Name func(T) string
	At   func(T) time.Time
	// Sealed, when set, returns the sealed secrets a document holds,
	// whose data keys must exist when it is written (SecretKeyIDs).
	Sealed func(T) [][]byte
}

// TrustTable is the JWT trusts' table.
func TrustTable(mark func(int) string) SpecTable[envy.JWTTrust] {
	return SpecTable[envy.JWTTrust]{What: "trust", SQL: TrustSQL(mark),
		Name: func(t envy.JWTTrust) string { return t.Name }, At: func(t envy.JWTTrust) time.Time { return t.CreatedAt }}
}

// OIDCTable is the OIDC providers' table.
func OIDCTable(mark func(int) string) SpecTable[envy.OIDCProvider] {
	return SpecTable[envy.OIDCProvider]{What: "OIDC provider", SQL: OIDCSQL(mark),
		Name: func(p envy.OIDCProvider) string { return p.Name }, At: func(p envy.OIDCProvider) time.Time { return p.CreatedAt },
		Sealed: func(p envy.OIDCProvider) [][]byte { return [][]byte{p.SealedSecret} }}
}
