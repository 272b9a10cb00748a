package storeutil

import (
	"database/sql"
	"time"

	"github.com/envy-dev/envy"
)

// TokenColumns are the tokens columns, in the order of TokenRow.Dest and
// TokenArgs.
const TokenColumns = `id, name, owner, hash, permissions, created_at, created_by, expires_at, revoked_at, parent_id`

// TokenRow is one row of TokenColumns as a store scans it.
type TokenRow struct {
	tok              envy.Token
	perms            string
	created          int64
	expires, revoked sql.NullInt64
}

// Dest is what to scan a row of TokenColumns into.
func (r *TokenRow) Dest() []any {
	t := &r.tok
	return []any{&t.ID, &t.Name, &t.Owner, &t.Hash, &r.perms, &r.created, &t.CreatedBy, &r.expires, &r.revoked, &t.ParentID}
}

// Token decodes the scanned row; an error is the permissions' JSON.
func (r *TokenRow) Token() (envy.Token, error) {
	t := r.tok
	var err error
	if t.Permissions, err = ParseList[envy.Grant](r.perms); err != nil {
		return envy.Token{}, err
	}
	t.CreatedAt = FromNanos(r.created)
	t.ExpiresAt, t.RevokedAt = FromNullNanos(r.expires), FromNullNanos(r.revoked)
	return t, nil
}

// TokenArgs are the values of TokenColumns that store tok, its
// permissions encoded as perms; a zero CreatedAt is now.
func TokenArgs(tok envy.Token, perms string, now time.Time) []any {
	return []any{tok.ID, tok.Name, tok.Owner, tok.Hash, perms, Nanos(OrNow(tok.CreatedAt, now)), tok.CreatedBy,
		NullNanos(tok.ExpiresAt), NullNanos(tok.RevokedAt), tok.ParentID}
}
