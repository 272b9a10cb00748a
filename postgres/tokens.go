package postgres

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/storeutil"
)

const tokenColumns = storeutil.TokenColumns

func scanToken(row pgx.Row) (envy.Token, error) {
	var r storeutil.TokenRow
	if err := row.Scan(r.Dest()...); err != nil {
		return envy.Token{}, err
	}
	t, err := r.Token()
	if err != nil {
		return envy.Token{}, err
	}
	return t, nil
}

// CreateToken stores a new token; with onlyIfNone, only into an empty
// table, which an advisory lock makes atomic across servers.
func (s *Store) CreateToken(ctx context.Context, tok envy.Token, onlyIfNone bool, audit []envy.AuditEntry) (bool, error) {
	if tok.ID == "" || len(tok.Hash) == 0 {
		return false, errors.New("postgres: a token needs an id and a hash")
	}
	perms, err := storeutil.JSONList(tok.Permissions)
	if err != nil {
		return false, err
	}
	return storeutil.CreateToken(func(f func(storeutil.TokenTx) error) error {
		return s.tx(ctx, "create a token", func(t *txn) error { return f(tokenTx{t}) })
	}, tok, perms, onlyIfNone, audit)
}

// tokenTx is a transaction as storeutil.CreateToken uses it.
type tokenTx struct{ *txn }

// AnyToken takes tokensLock first: two servers that both find no token
// then take turns, and the second finds the first's.
func (t tokenTx) AnyToken() (bool, error) {
	if _, err := t.Exec(t.ctx, `SELECT pg_advisory_xact_lock($1)`, tokensLock); err != nil {
		return false, err
	}
	var exists bool
	if err := t.QueryRow(t.ctx, `SELECT EXISTS (SELECT 1 FROM tokens)`).Scan(&exists); err != nil {
		return false, err
	}
	return exists, nil
}

func (t tokenTx) ParentLive(id string) (bool, error) {
	// FOR SHARE: a revocation of the parent waits for this
	// transaction, and then its next pass sees this child.
	var revoked sql.NullInt64
	switch err := t.QueryRow(t.ctx, `SELECT revoked_at FROM tokens WHERE id = $1 FOR SHARE`, id).Scan(&revoked); {
	case errors.Is(err, pgx.ErrNoRows):
		return false, nil
	case err != nil:
		return false, err
	}
	return !revoked.Valid, nil
}

// InsertToken tells a taken name from a taken id or secret by the unique
// index the insert violated.
func (t tokenTx) InsertToken(tok envy.Token, perms string) error {
	if _, err := t.Exec(t.ctx, `INSERT INTO tokens (`+tokenColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		storeutil.TokenArgs(tok, perms, t.now)...); err != nil {
		if constraint(err) == "tokens_owner_name" {
			return storeutil.ErrTokenName(tok)
		}
		if isCode(err, "23505") {
			return storeutil.ErrTokenTaken()
		}
		return err
	}
	return nil
}

func (t tokenTx) Audit(entries []envy.AuditEntry) error { return t.audit(entries, 0) }

func (t tokenTx) Notify(n envy.Notice) { t.notify(n) }

// TokenByHash finds a token by the SHA-256 of its plaintext. Nothing is
// cached: a revocation through any server counts at once.
func (s *Store) TokenByHash(ctx context.Context, hash []byte) (envy.Token, error) {
	return s.token(ctx, `hash`, hash)
}

// GetToken returns the token with the given id.
func (s *Store) GetToken(ctx context.Context, id string) (envy.Token, error) {
	return s.token(ctx, `id`, id)
}

func (s *Store) token(ctx context.Context, column string, key any) (envy.Token, error) {
	if s.closed.Load() {
		return envy.Token{}, storeutil.ErrClosed()
	}
	t, err := scanToken(s.pool.QueryRow(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE `+column+` = $1`, key))
	if errors.Is(err, pgx.ErrNoRows) {
		return envy.Token{}, envy.Errorf(envy.ENotFound, "token not found")
	}
	if err != nil {
		return envy.Token{}, s.dbErr("read a token", err)
	}
	return t, nil
}

// ListTokens returns tokens in id order, after the cursor.
func (s *Store) ListTokens(ctx context.Context, after string, limit int) ([]envy.Token, error) {
	if s.closed.Load() {
		return nil, storeutil.ErrClosed()
	}
	rows, err := s.pool.Query(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE id > $1 ORDER BY id LIMIT $2`, after, sqlLimit(limit))
	if err != nil {
		return nil, s.dbErr("list tokens", err)
	}
	defer rows.Close()
	var out []envy.Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, s.dbErr("list tokens", err)
		}
		out = append(out, t)
	}
	return out, s.dbErr("list tokens", rows.Err())
}

// RevokeToken marks a token and its descendants revoked. Revoking again
// keeps the first time, so a retry doesn't rewrite history.
func (s *Store) RevokeToken(ctx context.Context, id string, at time.Time, audit []envy.AuditEntry) error {
	return s.revokeToken(ctx, id, at, audit, false)
}

// RevokeTokenKeepingAdmin is RevokeToken, refused with envy.ErrLastAdmin
// when it would end the last live global admin. The check reads every
// token after taking one advisory lock that every such revocation takes,
// on every server: the second of two racing revocations waits for the
// first to commit, and its read (READ COMMITTED: a statement sees what
// committed before it began) sees the first one's revocation.
func (s *Store) RevokeTokenKeepingAdmin(ctx context.Context, id string, at time.Time, audit []envy.AuditEntry) error {
	return s.revokeToken(ctx, id, at, audit, true)
}

func (s *Store) revokeToken(ctx context.Context, id string, at time.Time, audit []envy.AuditEntry, keepAdmin bool) error {
	return s.tx(ctx, "revoke a token", func(t *txn) error {
		if keepAdmin {
			if _, err := t.Exec(t.ctx, `SELECT pg_advisory_xact_lock(hashtextextended('envy.tokens:keep-admin', 0))`); err != nil {
				return err
			}
			rows, err := t.Query(t.ctx, `SELECT `+tokenColumns+` FROM tokens`)
			if err != nil {
				return err
			}
			all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (envy.Token, error) { return scanToken(r) })
			if err != nil {
				return err
			}
			if envy.CountRevocation(all, id, storeutil.OrNow(at, t.now)).LeavesNoAdmin() {
				return envy.ErrLastAdmin
			}
		}
		// Lock the token first: a minting under it that is under way
		// (CreateToken holds its parent FOR SHARE) commits before this
		// goes on, and one that starts later sees the revocation.
		var exists bool
		if err := t.QueryRow(t.ctx, `SELECT EXISTS (SELECT 1 FROM tokens WHERE id = $1 FOR UPDATE)`, id).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return envy.Errorf(envy.ENotFound, "token %s not found", id)
		}
		// Each statement sees what committed before it began (READ
		// COMMITTED): passes repeat until one finds no live descendant,
		// so a child minted while a pass waited is caught by the next.
		revokedAt := storeutil.Nanos(storeutil.OrNow(at, t.now))
		for {
			rows, err := t.Query(t.ctx, `WITH RECURSIVE lineage (id) AS (
					SELECT $1::text COLLATE "C" UNION SELECT tokens.id FROM tokens JOIN lineage ON tokens.parent_id = lineage.id
				)
				UPDATE tokens SET revoked_at = COALESCE(revoked_at, $2)
				WHERE id IN (SELECT id FROM lineage) AND revoked_at IS NULL
				RETURNING id`, id, revokedAt)
			if err != nil {
				return err
			}
			ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return err
			}
			for _, r := range ids {
				t.notify(envy.Notice{Kind: envy.NoticeToken, TokenID: r})
			}
			if len(ids) == 0 {
				break
			}
		}
		return t.audit(audit, 0)
	})
}
