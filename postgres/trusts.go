package postgres

import (
	"context"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/storeutil"
)

var trustSQL = storeutil.TrustSQL(storeutil.DollarMark)

var _ envy.TrustStore = (*Store)(nil)

var trusts = storeutil.TrustTable(storeutil.DollarMark)

// PutTrust creates or replaces a JWT trust.
func (s *Store) PutTrust(ctx context.Context, tr envy.JWTTrust, audit []envy.AuditEntry) (bool, error) {
	return putSpec(ctx, s, trusts, tr, audit)
}

// GetTrust returns a JWT trust.
func (s *Store) GetTrust(ctx context.Context, name string) (envy.JWTTrust, error) {
	return getSpec(ctx, s, trusts, name)
}

// ListTrusts returns the trusts by name, after the cursor.
func (s *Store) ListTrusts(ctx context.Context, after string, limit int) ([]envy.JWTTrust, error) {
	return listSpec(ctx, s, trusts, after, limit)
}

// DeleteTrust deletes a JWT trust.
func (s *Store) DeleteTrust(ctx context.Context, name string, audit []envy.AuditEntry) (bool, error) {
	return deleteSpec(ctx, s, trusts, name, audit)
}

// TrustTokens returns the live tokens minted through a trust.
func (s *Store) TrustTokens(ctx context.Context, name string) ([]string, error) {
	if s.closed.Load() {
		return nil, storeutil.ErrClosed()
	}
	rows, err := s.pool.Query(ctx, trustSQL.Tokens, name)
	if err != nil {
		return nil, s.dbErr("list a trust's tokens", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, s.dbErr("list a trust's tokens", err)
		}
		out = append(out, id)
	}
	return out, s.dbErr("list a trust's tokens", rows.Err())
}

// PruneTrustTokens deletes the logins' tokens that ended before before.
func (s *Store) PruneTrustTokens(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.tx(ctx, "prune the logins' tokens", func(t *txn) error {
		tag, err := t.Exec(t.ctx, trustSQL.Prune, storeutil.Nanos(before))
		n = tag.RowsAffected()
		return err
	})
	return n, err
}
