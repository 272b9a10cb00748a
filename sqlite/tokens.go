package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/storeutil"
)

const tokenColumns = storeutil.TokenColumns

func scanToken(sc interface{ Scan(...any) error }) (envy.Token, error) {
	var r storeutil.TokenRow
	if err := sc.Scan(r.Dest()...); err != nil {
		return envy.Token{}, err
	}
	t, err := r.Token()
	if err != nil {
		return envy.Token{}, dbErr("decode permissions", err)
	}
	return t, nil
}

// CreateToken stores a new token; with onlyIfNone, only into an empty
// table. Checking and inserting in the writer makes that atomic.
func (s *Store) CreateToken(ctx context.Context, tok envy.Token, onlyIfNone bool, audit []envy.AuditEntry) (bool, error) {
	if tok.ID == "" || len(tok.Hash) == 0 {
		return false, errors.New("sqlite: a token needs an id and a hash")
	}
	perms, err := storeutil.JSONList(tok.Permissions)
	if err != nil {
		return false, dbErr("encode permissions", err)
	}
	return storeutil.CreateToken(func(f func(storeutil.TokenTx) error) error {
		return s.do(ctx, func(t *txn) error { return f(tokenTx{t}) })
	}, tok, perms, onlyIfNone, audit)
}

// tokenTx is the writer's transaction as storeutil.CreateToken uses it.
// The writer is the file's only one, so what a step reads stays true
// until the commit.
type tokenTx struct{ *txn }

func (t tokenTx) AnyToken() (bool, error) {
	var exists bool
	if err := t.queryRow(`SELECT EXISTS (SELECT 1 FROM tokens)`).Scan(&exists); err != nil {
		return false, dbErr("count tokens", err)
	}
	return exists, nil
}

func (t tokenTx) ParentLive(id string) (bool, error) {
	var revoked sql.NullInt64
	switch err := t.queryRow(`SELECT revoked_at FROM tokens WHERE id = ?`, id).Scan(&revoked); {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, dbErr("read the parent token", err)
	}
	return !revoked.Valid, nil
}

// InsertToken looks for a live token of the same owner and name first, so
// that a taken name is told apart from a taken id or secret.
func (t tokenTx) InsertToken(tok envy.Token, perms string) error {
	if tok.RevokedAt == nil {
		var taken bool
		if err := t.queryRow(`SELECT EXISTS (SELECT 1 FROM tokens WHERE owner = ? AND name = ? AND revoked_at IS NULL)`,
			tok.Owner, tok.Name).Scan(&taken); err != nil {
			return dbErr("look up a token name", err)
		}
		if taken {
			return storeutil.ErrTokenName(tok)
		}
	}
	if _, err := t.exec(`INSERT INTO tokens (`+tokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		storeutil.TokenArgs(tok, perms, t.now)...); err != nil {
		if isUnique(err) {
			return storeutil.ErrTokenTaken()
		}
		return dbErr("insert a token", err)
	}
	return nil
}

func (t tokenTx) Audit(entries []envy.AuditEntry) error { return t.audit(entries, 0) }

func (t tokenTx) Notify(n envy.Notice) { t.notify(n) }

// TokenByHash finds a token by the SHA-256 of its plaintext. The Service
// caches what it finds, so the store does not.
func (s *Store) TokenByHash(ctx context.Context, hash []byte) (envy.Token, error) {
	if s.closed.Load() {
		return envy.Token{}, storeutil.ErrClosed()
	}
	t, err := scanToken(s.readers.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash = ?`, hash))
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return envy.Token{}, envy.Errorf(envy.ENotFound, "token not found")
		}
		return envy.Token{}, dbErr("look up a token", err)
	}
	return t, nil
}

// GetToken returns the token with the given id.
func (s *Store) GetToken(ctx context.Context, id string) (envy.Token, error) {
	if s.closed.Load() {
		return envy.Token{}, storeutil.ErrClosed()
	}
	t, err := scanToken(s.readers.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE id = ?`, id))
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return envy.Token{}, envy.Errorf(envy.ENotFound, "token %s not found", id)
		}
		return envy.Token{}, dbErr("read a token", err)
	}
	return t, nil
}

// ListTokens returns tokens in id order, after the cursor.
func (s *Store) ListTokens(ctx context.Context, after string, limit int) ([]envy.Token, error) {
	if s.closed.Load() {
		return nil, storeutil.ErrClosed()
	}
	rows, err := s.readers.QueryContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE id > ? ORDER BY id LIMIT ?`, after, sqlLimit(limit))
	if err != nil {
		return nil, dbErr("list tokens", err)
	}
	defer rows.Close()
	var out []envy.Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, dbErr("list tokens", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr("list tokens", err)
	}
	return out, nil
}

// RevokeToken marks a token and its descendants revoked. Revoking again
// keeps the first time, so a retry doesn't rewrite history.
func (s *Store) RevokeToken(ctx context.Context, id string, at time.Time, audit []envy.AuditEntry) error {
	return s.revokeToken(ctx, id, at, audit, false)
}

// RevokeTokenKeepingAdmin is RevokeToken, refused with envy.ErrLastAdmin
// when it would end the last live global admin. The check reads every
// token on the writer, inside the revocation's transaction: writes run
// one at a time there (the ops of a group commit one after the other, each
// seeing those before it), so two revocations can't both see the other's
// admin alive.
func (s *Store) RevokeTokenKeepingAdmin(ctx context.Context, id string, at time.Time, audit []envy.AuditEntry) error {
	return s.revokeToken(ctx, id, at, audit, true)
}

func (s *Store) revokeToken(ctx context.Context, id string, at time.Time, audit []envy.AuditEntry, keepAdmin bool) error {
	return s.do(ctx, func(t *txn) error {
		if keepAdmin {
			all, err := t.allTokens()
			if err != nil {
				return dbErr("revoke a token", err)
			}
			if envy.CountRevocation(all, id, storeutil.OrNow(at, t.now)).LeavesNoAdmin() {
				return envy.ErrLastAdmin
			}
		}
		var exists bool
		if err := t.queryRow(`SELECT EXISTS (SELECT 1 FROM tokens WHERE id = ?)`, id).Scan(&exists); err != nil {
			return dbErr("revoke a token", err)
		}
		if !exists {
			return envy.Errorf(envy.ENotFound, "token %s not found", id)
		}
		// UNION, not UNION ALL: a cycle (which minting can't make) would
		// still end.
		rows, err := t.query(t.ctx, `WITH RECURSIVE lineage (id) AS (
				SELECT ? UNION SELECT tokens.id FROM tokens JOIN lineage ON tokens.parent_id = lineage.id
			)
			UPDATE tokens SET revoked_at = ? WHERE id IN (SELECT id FROM lineage) AND revoked_at IS NULL
			RETURNING id`,
			id, storeutil.Nanos(storeutil.OrNow(at, t.now)))
		if err != nil {
			return dbErr("revoke a token", err)
		}
		var revoked []string
		for rows.Next() {
			var r string
			if err := rows.Scan(&r); err != nil {
				rows.Close()
				return dbErr("revoke a token", err)
			}
			revoked = append(revoked, r)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return dbErr("revoke a token", err)
		}
		for _, r := range revoked {
			t.notify(envy.Notice{Kind: envy.NoticeToken, TokenID: r})
		}
		if err := t.audit(audit, 0); err != nil {
			return err
		}
		return nil
	})
}

// allTokens reads every token on the writer, inside the transaction.
func (t *txn) allTokens() ([]envy.Token, error) {
	rows, err := t.query(t.ctx, `SELECT `+tokenColumns+` FROM tokens`)
	if err != nil {
		return nil, err
	}
	var all []envy.Token
	for rows.Next() {
		tok, err := scanToken(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		all = append(all, tok)
	}
	return all, errors.Join(rows.Err(), rows.Close())
}
