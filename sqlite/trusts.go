package sqlite

import (
	"context"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/storeutil"
)

var trustSQL = storeutil.TrustSQL(storeutil.NumberedMark)

var _ envy.TrustStore = (*Store)(nil)

var trusts = storeutil.TrustTable(storeutil.NumberedMark)

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
	rows, err := s.readers.QueryContext(ctx, trustSQL.Tokens, name)
	if err != nil {
		return nil, dbErr("list a trust's tokens", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, dbErr("list a trust's tokens", err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr("list a trust's tokens", err)
	}
	return out, nil
}

// PruneTrustTokens deletes the logins' tokens that ended before before.
func (s *Store) PruneTrustTokens(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.do(ctx, func(t *txn) error {
		res, err := t.exec(trustSQL.Prune, storeutil.Nanos(before))
		if err != nil {
			return dbErr("prune the logins' tokens", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}
