package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/storeutil"
)

var trustSQL = storeutil.TrustSQL(storeutil.DollarMark)

var _ envy.TrustStore = (*Store)(nil)

// PutTrust creates or replaces a JWT trust.
func (s *Store) PutTrust(ctx context.Context, tr envy.JWTTrust, audit []envy.AuditEntry) (bool, error) {
	spec, err := storeutil.EncodeTrust(tr)
	if err != nil {
		return false, s.dbErr("encode a trust", err)
	}
	var created bool
	err = s.tx(ctx, "put a trust", func(t *txn) error {
		var exists bool
		if err := t.QueryRow(t.ctx, trustSQL.Exists, tr.Name).Scan(&exists); err != nil {
			return err
		}
		if err := t.exec(trustSQL.Upsert, tr.Name, spec, storeutil.Nanos(storeutil.OrNow(tr.CreatedAt, t.now))); err != nil {
			return err
		}
		created = !exists
		return t.audit(audit, 0)
	})
	return created && err == nil, err
}

// GetTrust returns a JWT trust.
func (s *Store) GetTrust(ctx context.Context, name string) (envy.JWTTrust, error) {
	if s.closed.Load() {
		return envy.JWTTrust{}, storeutil.ErrClosed()
	}
	var spec string
	switch err := s.pool.QueryRow(ctx, trustSQL.Get, name).Scan(&spec); {
	case errors.Is(err, pgx.ErrNoRows):
		return envy.JWTTrust{}, envy.Errorf(envy.ENotFound, "trust %s not found", name)
	case err != nil:
		return envy.JWTTrust{}, s.dbErr("read a trust", err)
	}
	tr, err := storeutil.DecodeTrust(spec)
	if err != nil {
		return envy.JWTTrust{}, s.dbErr("decode a trust", err)
	}
	return tr, nil
}

// ListTrusts returns the trusts by name, after the cursor.
func (s *Store) ListTrusts(ctx context.Context, after string, limit int) ([]envy.JWTTrust, error) {
	if s.closed.Load() {
		return nil, storeutil.ErrClosed()
	}
	rows, err := s.pool.Query(ctx, trustSQL.List, after, sqlLimit(limit))
	if err != nil {
		return nil, s.dbErr("list trusts", err)
	}
	defer rows.Close()
	var out []envy.JWTTrust
	for rows.Next() {
		var spec string
		if err := rows.Scan(&spec); err != nil {
			return nil, s.dbErr("list trusts", err)
		}
		tr, err := storeutil.DecodeTrust(spec)
		if err != nil {
			return nil, s.dbErr("decode a trust", err)
		}
		out = append(out, tr)
	}
	return out, s.dbErr("list trusts", rows.Err())
}

// DeleteTrust deletes a JWT trust.
func (s *Store) DeleteTrust(ctx context.Context, name string, audit []envy.AuditEntry) (bool, error) {
	var existed bool
	err := s.tx(ctx, "delete a trust", func(t *txn) error {
		tag, err := t.Exec(t.ctx, trustSQL.Delete, name)
		if err != nil {
			return err
		}
		existed = tag.RowsAffected() > 0
		return t.audit(audit, 0)
	})
	return existed && err == nil, err
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
