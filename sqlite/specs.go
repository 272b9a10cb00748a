package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/storeutil"
)

// The tables of named JSON documents (JWT trusts, OIDC providers): what
// names one kind in errors ("trust"), its statements, and its codec.
type specTable[T any] struct {
	what string
	sql  storeutil.TrustStatements
	name func(T) string
	at   func(T) time.Time
}

func (k specTable[T]) put(ctx context.Context, s *Store, v T, audit []envy.AuditEntry) (bool, error) {
	spec, err := storeutil.EncodeSpec(v)
	if err != nil {
		return false, dbErr("encode a "+k.what, err)
	}
	var created bool
	err = s.do(ctx, func(t *txn) error {
		var exists bool
		if err := t.queryRow(k.sql.Exists, k.name(v)).Scan(&exists); err != nil {
			return dbErr("put a "+k.what, err)
		}
		if _, err := t.exec(k.sql.Upsert, k.name(v), spec, storeutil.Nanos(storeutil.OrNow(k.at(v), t.now))); err != nil {
			return dbErr("put a "+k.what, err)
		}
		created = !exists
		return t.audit(audit, 0)
	})
	return created && err == nil, err
}

func (k specTable[T]) get(ctx context.Context, s *Store, name string) (T, error) {
	var zero T
	if s.closed.Load() {
		return zero, storeutil.ErrClosed()
	}
	var spec string
	switch err := s.readers.QueryRowContext(ctx, k.sql.Get, name).Scan(&spec); {
	case errors.Is(err, sql.ErrNoRows):
		return zero, envy.Errorf(envy.ENotFound, "%s %s not found", k.what, name)
	case err != nil:
		return zero, dbErr("read a "+k.what, err)
	}
	v, err := storeutil.DecodeSpec[T](spec)
	if err != nil {
		return zero, dbErr("decode a "+k.what, err)
	}
	return v, nil
}

func (k specTable[T]) list(ctx context.Context, s *Store, after string, limit int) ([]T, error) {
	if s.closed.Load() {
		return nil, storeutil.ErrClosed()
	}
	rows, err := s.readers.QueryContext(ctx, k.sql.List, after, sqlLimit(limit))
	if err != nil {
		return nil, dbErr("list "+k.what+"s", err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var spec string
		if err := rows.Scan(&spec); err != nil {
			return nil, dbErr("list "+k.what+"s", err)
		}
		v, err := storeutil.DecodeSpec[T](spec)
		if err != nil {
			return nil, dbErr("decode a "+k.what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr("list "+k.what+"s", err)
	}
	return out, nil
}

func (k specTable[T]) delete(ctx context.Context, s *Store, name string, audit []envy.AuditEntry) (bool, error) {
	var existed bool
	err := s.do(ctx, func(t *txn) error {
		res, err := t.exec(k.sql.Delete, name)
		if err != nil {
			return dbErr("delete a "+k.what, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return dbErr("delete a "+k.what, err)
		}
		existed = n > 0
		return t.audit(audit, 0)
	})
	return existed && err == nil, err
}
