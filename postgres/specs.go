package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

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
		return false, s.dbErr("encode a "+k.what, err)
	}
	var created bool
	err = s.tx(ctx, "put a "+k.what, func(t *txn) error {
		var exists bool
		if err := t.QueryRow(t.ctx, k.sql.Exists, k.name(v)).Scan(&exists); err != nil {
			return err
		}
		if err := t.exec(k.sql.Upsert, k.name(v), spec, storeutil.Nanos(storeutil.OrNow(k.at(v), t.now))); err != nil {
			return err
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
	switch err := s.pool.QueryRow(ctx, k.sql.Get, name).Scan(&spec); {
	case errors.Is(err, pgx.ErrNoRows):
		return zero, envy.Errorf(envy.ENotFound, "%s %s not found", k.what, name)
	case err != nil:
		return zero, s.dbErr("read a "+k.what, err)
	}
	v, err := storeutil.DecodeSpec[T](spec)
	if err != nil {
		return zero, s.dbErr("decode a "+k.what, err)
	}
	return v, nil
}

func (k specTable[T]) list(ctx context.Context, s *Store, after string, limit int) ([]T, error) {
	if s.closed.Load() {
		return nil, storeutil.ErrClosed()
	}
	rows, err := s.pool.Query(ctx, k.sql.List, after, sqlLimit(limit))
	if err != nil {
		return nil, s.dbErr("list "+k.what+"s", err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var spec string
		if err := rows.Scan(&spec); err != nil {
			return nil, s.dbErr("list "+k.what+"s", err)
		}
		v, err := storeutil.DecodeSpec[T](spec)
		if err != nil {
			return nil, s.dbErr("decode a "+k.what, err)
		}
		out = append(out, v)
	}
	return out, s.dbErr("list "+k.what+"s", rows.Err())
}

func (k specTable[T]) delete(ctx context.Context, s *Store, name string, audit []envy.AuditEntry) (bool, error) {
	var existed bool
	err := s.tx(ctx, "delete a "+k.what, func(t *txn) error {
		tag, err := t.Exec(t.ctx, k.sql.Delete, name)
		if err != nil {
			return err
		}
		existed = tag.RowsAffected() > 0
		return t.audit(audit, 0)
	})
	return existed && err == nil, err
}
