package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/storeutil"
)

var trustSQL = storeutil.TrustSQL(storeutil.NumberedMark)

var _ envy.TrustStore = (*Store)(nil)

// PutTrust creates or replaces a JWT trust.
func (s *Store) PutTrust(ctx context.Context, tr envy.JWTTrust, audit []envy.AuditEntry) (bool, error) {
	spec, err := storeutil.EncodeTrust(tr)
	if err != nil {
		return false, dbErr("encode a trust", err)
	}
	var created bool
	err = s.do(ctx, func(t *txn) error {
		var exists bool
		if err := t.queryRow(trustSQL.Exists, tr.Name).Scan(&exists); err != nil {
			return dbErr("put a trust", err)
		}
		if _, err := t.exec(trustSQL.Upsert, tr.Name, spec, storeutil.Nanos(storeutil.OrNow(tr.CreatedAt, t.now))); err != nil {
			return dbErr("put a trust", err)
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
	switch err := s.readers.QueryRowContext(ctx, trustSQL.Get, name).Scan(&spec); {
	case errors.Is(err, sql.ErrNoRows):
		return envy.JWTTrust{}, envy.Errorf(envy.ENotFound, "trust %s not found", name)
	case err != nil:
		return envy.JWTTrust{}, dbErr("read a trust", err)
	}
	tr, err := storeutil.DecodeTrust(spec)
	if err != nil {
		return envy.JWTTrust{}, dbErr("decode a trust", err)
	}
	return tr, nil
}

// ListTrusts returns the trusts by name, after the cursor.
func (s *Store) ListTrusts(ctx context.Context, after string, limit int) ([]envy.JWTTrust, error) {
	if s.closed.Load() {
		return nil, storeutil.ErrClosed()
	}
	rows, err := s.readers.QueryContext(ctx, trustSQL.List, after, sqlLimit(limit))
	if err != nil {
		return nil, dbErr("list trusts", err)
	}
	defer rows.Close()
	var out []envy.JWTTrust
	for rows.Next() {
		var spec string
		if err := rows.Scan(&spec); err != nil {
			return nil, dbErr("list trusts", err)
		}
		tr, err := storeutil.DecodeTrust(spec)
		if err != nil {
			return nil, dbErr("decode a trust", err)
		}
		out = append(out, tr)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr("list trusts", err)
	}
	return out, nil
}

// DeleteTrust deletes a JWT trust.
func (s *Store) DeleteTrust(ctx context.Context, name string, audit []envy.AuditEntry) (bool, error) {
	var existed bool
	err := s.do(ctx, func(t *txn) error {
		res, err := t.exec(trustSQL.Delete, name)
		if err != nil {
			return dbErr("delete a trust", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return dbErr("delete a trust", err)
		}
		existed = n > 0
		return t.audit(audit, 0)
	})
	return existed && err == nil, err
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
