package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/storeutil"
)

// RewrapDataKeys replaces, in one transaction, the wrapped bytes of every
// data key (rewrapped must hold each key the store has, and no other:
// EConflict otherwise, as when another rotation ran meanwhile) and adds
// the keys in added. It is how `envy keys rotate` moves the data keys to
// a new master key.
func (s *Store) RewrapDataKeys(ctx context.Context, rewrapped, added []envy.DataKey) error {
	return s.do(ctx, func(t *txn) error {
		ids, err := t.dataKeyIDs(-1)
		if err != nil {
			return err
		}
		if err := storeutil.SameKeys(ids, rewrapped); err != nil {
			return err
		}
		for _, k := range rewrapped {
			if _, err := t.exec(`UPDATE data_keys SET wrapped = ? WHERE id = ?`, k.Wrapped, int64(k.ID)); err != nil {
				return dbErr("rewrap a data key", err)
			}
			t.notify(envy.Notice{Kind: envy.NoticeDataKey, KeyID: k.ID})
		}
		for _, k := range added {
			if err := t.insertDataKey(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// AddRetiredMasterKey keeps the check of a master key that a rotation
// retires (crypto.RetiredKeyStore).
func (s *Store) AddRetiredMasterKey(ctx context.Context, k envy.RetiredMasterKey) error {
	return s.do(ctx, func(t *txn) error {
		if _, err := t.exec(`INSERT INTO retired_master_keys (check_wrap, retired_at) VALUES (?, ?)`,
			k.Check, storeutil.Nanos(storeutil.OrNow(k.RetiredAt, t.now))); err != nil {
			return dbErr("keep a retired master key's check", err)
		}
		return nil
	})
}

// dataKeyIDs returns the ids of the data keys, all but except (-1 for
// none).
func (t *txn) dataKeyIDs(except int64) ([]uint32, error) {
	rows, err := t.query(t.ctx, `SELECT id FROM data_keys WHERE id <> ?`, except)
	if err != nil {
		return nil, dbErr("list data keys", err)
	}
	defer rows.Close()
	var ids []uint32
	for rows.Next() {
		var id uint32
		if err := rows.Scan(&id); err != nil {
			return nil, dbErr("list data keys", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr("list data keys", err)
	}
	return ids, nil
}

// SealedNotUnder returns up to limit stored values (vars and history)
// sealed under a data key other than keep.
func (s *Store) SealedNotUnder(ctx context.Context, keep uint32, limit int) ([]envy.SealedValue, error) {
	rows, err := s.readers.QueryContext(ctx, `
		SELECT scope, name, version, 0, sealed FROM vars WHERE substr(sealed, 2, 4) <> ?1
		UNION ALL
		SELECT scope, name, version, revision, sealed FROM history WHERE sealed IS NOT NULL AND substr(sealed, 2, 4) <> ?1
		LIMIT ?2`, storeutil.KeyIDBytes(keep), limit)
	if err != nil {
		return nil, dbErr("list values to reseal", err)
	}
	defer rows.Close()
	var out []envy.SealedValue
	for rows.Next() {
		var v envy.SealedValue
		if err := rows.Scan(&v.Scope, &v.Name, &v.Version, &v.Revision, &v.Sealed); err != nil {
			return nil, dbErr("list values to reseal", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr("list values to reseal", err)
	}
	return out, nil
}

// ReplaceSealed puts each value's New bytes in place of its Sealed ones,
// where they are still those (a value written meanwhile is left alone),
// in one transaction, and returns how many it replaced. The plaintext is
// the same, so nothing else changes: no revision, no notice.
func (s *Store) ReplaceSealed(ctx context.Context, vs []envy.SealedValue) (int, error) {
	n := 0
	err := s.do(ctx, func(t *txn) error {
		n = 0
		t.forget = true // the writer's states of these scopes hold the old bytes
		for _, v := range vs {
			var (
				res sql.Result
				err error
			)
			if v.Revision == 0 {
				res, err = t.exec(`UPDATE vars SET sealed = ? WHERE scope = ? AND name = ? AND sealed = ?`, v.New, v.Scope, v.Name, v.Sealed)
			} else {
				res, err = t.exec(`UPDATE history SET sealed = ? WHERE scope = ? AND revision = ? AND name = ? AND sealed = ?`, v.New, v.Scope, v.Revision, v.Name, v.Sealed)
			}
			if err != nil {
				return dbErr("reseal a value", err)
			}
			if k, _ := res.RowsAffected(); k > 0 {
				n++
			}
		}
		return nil
	})
	return n, err
}

// RetireDataKeys deletes every data key but keep, in one transaction that
// first checks that no value is sealed under them, and no webhook's
// secret nor OIDC provider's client secret either (EConflict otherwise;
// dashboard sessions are left out: one sealed under a retired key ends).
// It returns the ids it deleted.
func (s *Store) RetireDataKeys(ctx context.Context, keep uint32) ([]uint32, error) {
	var ids []uint32
	err := s.do(ctx, func(t *txn) error {
		t.b.keys = nil // the writes after it in the batch read the keys again
		var left int
		if err := t.queryRow(`SELECT (SELECT COUNT(*) FROM vars WHERE substr(sealed, 2, 4) <> ?1) +
			(SELECT COUNT(*) FROM history WHERE sealed IS NOT NULL AND substr(sealed, 2, 4) <> ?1)`, storeutil.KeyIDBytes(keep)).Scan(&left); err != nil {
			return dbErr("count values under old keys", err)
		}
		if left > 0 {
			return envy.Errorf(envy.EConflict, "%d values are still sealed under older data keys", left)
		}
		if err := t.secretsUnder(keep); err != nil {
			return err
		}
		var err error
		if ids, err = t.dataKeyIDs(int64(keep)); err != nil {
			return err
		}
		if _, err := t.exec(`DELETE FROM data_keys WHERE id <> ?`, int64(keep)); err != nil {
			return dbErr("delete old data keys", err)
		}
		return nil
	})
	return ids, err
}

// secretsUnder checks, in the transaction, that every webhook's secrets
// and every OIDC provider's client secret are sealed under data key keep
// (EConflict otherwise).
func (t *txn) secretsUnder(keep uint32) error {
	var hooks int
	if err := t.queryRow(storeutil.WebhookSecretsNotUnder(storeutil.NumberedMark), storeutil.KeyIDBytes(keep)).Scan(&hooks); err != nil {
		return dbErr("count webhook secrets under old keys", err)
	}
	if hooks > 0 {
		return envy.Errorf(envy.EConflict, "the secrets of %d webhooks are still sealed under older data keys", hooks)
	}
	rows, err := t.query(t.ctx, storeutil.OIDCSpecs)
	if err != nil {
		return dbErr("read the OIDC providers", err)
	}
	defer rows.Close()
	var specs []string
	for rows.Next() {
		var spec string
		if err := rows.Scan(&spec); err != nil {
			return dbErr("read the OIDC providers", err)
		}
		specs = append(specs, spec)
	}
	if err := rows.Err(); err != nil {
		return dbErr("read the OIDC providers", err)
	}
	n, err := storeutil.OIDCSecretsNotUnder(specs, keep)
	if err != nil {
		return dbErr("read the OIDC providers", err)
	}
	if n > 0 {
		return envy.Errorf(envy.EConflict, "the client secrets of %d OIDC providers are still sealed under older data keys", n)
	}
	return nil
}

// AddDataKey stores a new wrapped data key. An id that is taken is
// EConflict, never an overwrite: values sealed under the old key would
// become unreadable.
func (s *Store) AddDataKey(ctx context.Context, k envy.DataKey) error {
	if len(k.Wrapped) == 0 {
		return errors.New("sqlite: a data key needs its wrapped bytes")
	}
	return s.do(ctx, func(t *txn) error { return t.insertDataKey(k) })
}

// insertDataKey inserts a data key; a taken id is EConflict.
func (t *txn) insertDataKey(k envy.DataKey) error {
	t.b.keys = nil // the writes after it in the batch read the keys again
	if _, err := t.exec(`INSERT INTO data_keys (id, wrapped, created_at) VALUES (?, ?, ?)`,
		int64(k.ID), k.Wrapped, storeutil.Nanos(storeutil.OrNow(k.CreatedAt, t.now))); err != nil {
		if isUnique(err) {
			return envy.Errorf(envy.EConflict, "data key %d already exists", k.ID)
		}
		return dbErr("insert a data key", err)
	}
	t.notify(envy.Notice{Kind: envy.NoticeDataKey, KeyID: k.ID})
	return nil
}
