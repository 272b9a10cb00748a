package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/storeutil"
)

// The tables of named JSON documents (JWT trusts, OIDC providers), each
// a storeutil.SpecTable.

// putSpec creates or replaces a document of k and tells whether it created it.
func putSpec[T any](ctx context.Context, s *Store, k storeutil.SpecTable[T], v T, audit []envy.AuditEntry) (bool, error) {
	spec, err := storeutil.EncodeSpec(v)
	if err != nil {
		return false, s.dbErr("encode a "+k.What, err)
	}
	var created bool
	err = s.tx(ctx, "put a "+k.What, func(t *txn) error {
		if k.Sealed != nil {
			if err := s.liveKeys(t, storeutil.SecretKeyIDs(k.Sealed(v)...)); err != nil {
				return err
			}
		}
		var exists bool
		if err := t.QueryRow(t.ctx, k.SQL.Exists, k.Name(v)).Scan(&exists); err != nil {
			return err
		}
		if err := t.exec(k.SQL.Upsert, k.Name(v), spec, storeutil.Nanos(storeutil.OrNow(k.At(v), t.now))); err != nil {
			return err
		}
		created = !exists
		return t.audit(audit, 0)
	})
	return created && err == nil, err
}

// getSpec returns the document name of k; ENotFound when there is none.
func getSpec[T any](ctx context.Context, s *Store, k storeutil.SpecTable[T], name string) (T, error) {
	var zero T
	if s.closed.Load() {
		return zero, storeutil.ErrClosed()
	}
	var spec string
	switch err := s.pool.QueryRow(ctx, k.SQL.Get, name).Scan(&spec); {
	case errors.Is(err, pgx.ErrNoRows):
		return zero, envy.Errorf(envy.ENotFound, "%s %s not found", k.What, name)
	case err != nil:
		return zero, s.dbErr("read a "+k.What, err)
	}
	v, err := storeutil.DecodeSpec[T](spec)
	if err != nil {
		return zero, s.dbErr("decode a "+k.What, err)
	}
	return v, nil
}

// listSpec returns the documents of k by name, those after the cursor.
func listSpec[T any](ctx context.Context, s *Store, k storeutil.SpecTable[T], after string, limit int) ([]T, error) {
	if s.closed.Load() {
		return nil, storeutil.ErrClosed()
	}
	rows, err := s.pool.Query(ctx, k.SQL.List, after, sqlLimit(limit))
	if err != nil {
		return nil, s.dbErr("list "+k.What+"s", err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var spec string
		if err := rows.Scan(&spec); err != nil {
			return nil, s.dbErr("list "+k.What+"s", err)
		}
		v, err := storeutil.DecodeSpec[T](spec)
		if err != nil {
			return nil, s.dbErr("decode a "+k.What, err)
		}
		out = append(out, v)
	}
	return out, s.dbErr("list "+k.What+"s", rows.Err())
}

// deleteSpec deletes the document name of k and tells whether it existed.
func deleteSpec[T any](ctx context.Context, s *Store, k storeutil.SpecTable[T], name string, audit []envy.AuditEntry) (bool, error) {
	var existed bool
	err := s.tx(ctx, "delete a "+k.What, func(t *txn) error {
		tag, err := t.Exec(t.ctx, k.SQL.Delete, name)
		if err != nil {
			return err
		}
		existed = tag.RowsAffected() > 0
		return t.audit(audit, 0)
	})
	return existed && err == nil, err
}
