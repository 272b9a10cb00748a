package storeutil

import (
	"database/sql"
	"time"

	"github.com/envy-dev/envy"
)

// TokenColumns are the tokens columns, in the order of TokenRow.Dest and
// TokenArgs.
const TokenColumns = `id, name, owner, hash, permissions, created_at, created_by, expires_at, revoked_at, parent_id, root_id, trust, subject`

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
	return []any{&t.ID, &t.Name, &t.Owner, &t.Hash, &r.perms, &r.created, &t.CreatedBy, &r.expires, &r.revoked, &t.ParentID, &t.RootID, &t.Trust, &t.Subject}
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
		NullNanos(tok.ExpiresAt), NullNanos(tok.RevokedAt), tok.ParentID, tok.RootID, tok.Trust, tok.Subject}
}

// TokenTx is a store's write transaction as CreateToken uses it: the
// steps whose statements differ between the dialects.
type TokenTx interface {
	// AnyToken reports whether a token exists, such that no other
	// transaction inserts one before this one ends.
	AnyToken() (bool, error)
	// ParentLive reports whether the token id, which mints the new one,
	// exists and is not revoked, such that a revocation of it that is
	// under way or starts later revokes the new token too.
	ParentLive(id string) (bool, error)
	// InsertToken inserts tok, its permissions encoded as perms (see
	// TokenArgs). A token that is not revoked and has tok's owner and
	// name is ErrTokenName; one with tok's id or hash is ErrTokenTaken.
	InsertToken(tok envy.Token, perms string) error
	// Audit records entries in the transaction.
	Audit(entries []envy.AuditEntry) error
	// Notify sends n when the transaction commits.
	Notify(n envy.Notice)
}

// CreateToken runs a store's CreateToken (see envy.Store) in one of the
// store's transactions (run: the store's way of running one), the same
// steps on both stores: with onlyIfNone, nothing when a token exists
// (created is false); a minted token's parent must be live
// (EUnauthenticated otherwise); then the insert, its audit entries and its
// notice. created is true only once the transaction has committed.
func CreateToken(run func(func(TokenTx) error) error, tok envy.Token, perms string, onlyIfNone bool, audit []envy.AuditEntry) (created bool, err error) {
	err = run(func(t TokenTx) (err error) {
		created, err = createToken(t, tok, perms, onlyIfNone, audit)
		return err
	})
	return created && err == nil, err
}

func createToken(t TokenTx, tok envy.Token, perms string, onlyIfNone bool, audit []envy.AuditEntry) (bool, error) {
	if onlyIfNone {
		if exists, err := t.AnyToken(); err != nil || exists {
			return false, err
		}
	}
	if tok.ParentID != "" {
		live, err := t.ParentLive(tok.ParentID)
		if err != nil {
			return false, err
		}
		if !live {
			return false, envy.Errorf(envy.EUnauthenticated, "the token that mints is revoked")
		}
	}
	if err := t.InsertToken(tok, perms); err != nil {
		return false, err
	}
	if err := t.Audit(audit); err != nil {
		return false, err
	}
	t.Notify(envy.Notice{Kind: envy.NoticeToken, TokenID: tok.ID})
	return true, nil
}

// ErrTokenName is the conflict of a token whose owner already has a token
// of its name that is not revoked.
func ErrTokenName(tok envy.Token) error {
	return envy.Errorf(envy.EConflict, "owner %s already has a token named %s", tok.Owner, tok.Name)
}

// ErrTokenTaken is the conflict of a token whose id or secret (hash) is
// another token's.
func ErrTokenTaken() error {
	return envy.Errorf(envy.EConflict, "a token with this id or secret already exists")
}
