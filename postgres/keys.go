package postgres

import (
	"context"
	"errors"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/storeutil"
)

// AddRetiredMasterKey keeps the check of a master key that a rotation
// retires (crypto.RetiredKeyStore).
func (s *Store) AddRetiredMasterKey(ctx context.Context, k envy.RetiredMasterKey) error {
	return s.tx(ctx, "keep a retired master key's check", func(t *txn) error {
		_, err := t.Exec(t.ctx, `INSERT INTO retired_master_keys (check_wrap, retired_at) VALUES ($1, $2)`,
			k.Check, storeutil.Nanos(storeutil.OrNow(k.RetiredAt, t.now)))
		return err
	})
}

// RewrapDataKeys replaces, in one transaction, the wrapped bytes of every
// data key (rewrapped must hold each key the store has, and no other:
// EConflict otherwise, as when another rotation ran meanwhile) and adds
// the keys in added. Every server sharing the database hears of it.
func (s *Store) RewrapDataKeys(ctx context.Context, rewrapped, added []envy.DataKey) error {
	return s.tx(ctx, "rewrap the data keys", func(t *txn) error {
		// The lock makes two rotations run one after the other, so that
		// the second sees the first's keys and is refused.
		rows, err := t.Query(t.ctx, `SELECT id FROM data_keys ORDER BY id FOR UPDATE`)
		if err != nil {
			return err
		}
		var ids []uint32
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, uint32(id))
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if err := storeutil.SameKeys(ids, rewrapped); err != nil {
			return err
		}
		for _, k := range rewrapped {
			if _, err := t.Exec(t.ctx, `UPDATE data_keys SET wrapped = $1 WHERE id = $2`, k.Wrapped, int64(k.ID)); err != nil {
				return err
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

// notUnder selects the values sealed under another data key than $1.
const notUnder = `
	SELECT scope, name, version, 0::bigint AS revision, sealed FROM vars WHERE substring(sealed from 2 for 4) <> $1
	UNION ALL
	SELECT scope, name, version, revision, sealed FROM history WHERE sealed IS NOT NULL AND substring(sealed from 2 for 4) <> $1`

// SealedNotUnder returns up to limit stored values (vars and history)
// sealed under a data key other than keep.
func (s *Store) SealedNotUnder(ctx context.Context, keep uint32, limit int) ([]envy.SealedValue, error) {
	rows, err := s.pool.Query(ctx, notUnder+` LIMIT $2`, storeutil.KeyIDBytes(keep), limit)
	if err != nil {
		return nil, s.dbErr("list values to reseal", err)
	}
	defer rows.Close()
	var out []envy.SealedValue
	for rows.Next() {
		var v envy.SealedValue
		if err := rows.Scan(&v.Scope, &v.Name, &v.Version, &v.Revision, &v.Sealed); err != nil {
			return nil, s.dbErr("list values to reseal", err)
		}
		out = append(out, v)
	}
	return out, s.dbErr("list values to reseal", rows.Err())
}

// ReplaceSealed puts each value's New bytes in place of its Sealed ones,
// where they are still those (a value written meanwhile is left alone),
// in one transaction, and returns how many it replaced. The plaintext is
// the same, so nothing else changes: no revision, no notice.
func (s *Store) ReplaceSealed(ctx context.Context, vs []envy.SealedValue) (int, error) {
	n := 0
	err := s.tx(ctx, "reseal values", func(t *txn) error {
		n = 0
		for _, v := range vs {
			var q string
			args := []any{v.New, v.Scope, v.Name, v.Sealed}
			if v.Revision == 0 {
				q = `UPDATE vars SET sealed = $1 WHERE scope = $2 AND name = $3 AND sealed = $4`
			} else {
				q = `UPDATE history SET sealed = $1 WHERE scope = $2 AND name = $3 AND sealed = $4 AND revision = $5`
				args = append(args, v.Revision)
			}
			tag, err := t.Exec(t.ctx, q, args...)
			if err != nil {
				return err
			}
			if tag.RowsAffected() > 0 {
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
// It returns the ids it deleted. It first locks the rows of the keys it
// deletes, in the order of their ids: a write locks (FOR KEY SHARE) the
// keys its values are sealed under, which are sealed before the write
// begins, so the lock waits for every write that stores a value under one
// of them, and the count (a statement of its own, under READ COMMITTED)
// sees what they wrote; a write that comes after waits for the deletion,
// then finds its key gone and is refused (storeutil.RetiredKey). The
// revision row is not locked: the writes of values under the kept key go
// on meanwhile. A share lock on the webhooks and the OIDC providers holds
// off their writes until it commits.
func (s *Store) RetireDataKeys(ctx context.Context, keep uint32) ([]uint32, error) {
	var ids []uint32
	err := s.tx(ctx, "retire old data keys", func(t *txn) error {
		ids = nil
		if _, err := t.Exec(t.ctx, `SELECT id FROM data_keys WHERE id <> $1 ORDER BY id FOR UPDATE`, int64(keep)); err != nil {
			return err
		}
		var left int
		if err := t.QueryRow(t.ctx, `SELECT COUNT(*) FROM (`+notUnder+`) AS old`, storeutil.KeyIDBytes(keep)).Scan(&left); err != nil {
			return err
		}
		if left > 0 {
			return envy.Errorf(envy.EConflict, "%d values are still sealed under older data keys", left)
		}
		if err := t.secretsUnder(keep); err != nil {
			return err
		}
		rows, err := t.Query(t.ctx, `DELETE FROM data_keys WHERE id <> $1 RETURNING id`, int64(keep))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return err
			}
			ids = append(ids, uint32(id))
		}
		return rows.Err()
	})
	return ids, err
}

// secretsUnder checks, in the transaction, that every webhook's secrets
// and every OIDC provider's client secret are sealed under data key keep
// (EConflict otherwise). It takes their tables' share locks first, held
// until the retirement commits, as the keys' row locks are for values:
// no secret can be written between the check and the deletion.
func (t *txn) secretsUnder(keep uint32) error {
	if _, err := t.Exec(t.ctx, `LOCK TABLE webhooks, oidc_providers IN SHARE MODE`); err != nil {
		return err
	}
	var hooks int
	if err := t.QueryRow(t.ctx, storeutil.WebhookSecretsNotUnder(storeutil.DollarMark), storeutil.KeyIDBytes(keep)).Scan(&hooks); err != nil {
		return err
	}
	if hooks > 0 {
		return envy.Errorf(envy.EConflict, "the secrets of %d webhooks are still sealed under older data keys", hooks)
	}
	rows, err := t.Query(t.ctx, storeutil.OIDCSpecs)
	if err != nil {
		return err
	}
	specs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	n, err := storeutil.OIDCSecretsNotUnder(specs, keep)
	if err != nil {
		return err
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
		return errors.New("postgres: a data key needs its wrapped bytes")
	}
	return s.tx(ctx, "add a data key", func(t *txn) error { return t.insertDataKey(k) })
}

// insertDataKey inserts a data key; a taken id is EConflict.
func (t *txn) insertDataKey(k envy.DataKey) error {
	if _, err := t.Exec(t.ctx, `INSERT INTO data_keys (id, wrapped, created_at) VALUES ($1, $2, $3)`,
		int64(k.ID), k.Wrapped, storeutil.Nanos(storeutil.OrNow(k.CreatedAt, t.now))); err != nil {
		if isCode(err, "23505") {
			return envy.Errorf(envy.EConflict, "data key %d already exists", k.ID)
		}
		return err
	}
	t.notify(envy.Notice{Kind: envy.NoticeDataKey, KeyID: k.ID})
	return nil
}

// liveKeys locks (FOR KEY SHARE, in the order of their ids, as a write's
// batch does) the data keys ids that a secret about to be stored is
// sealed under, and refuses (storeutil.RetiredKey) when one is gone: a
// key a reseal retired since the secret was sealed would leave it
// opening nowhere once the servers restart. This server's keyring is then
// told to reload its data keys, so that the retry seals under the
// newest. A retirement locks the keys it deletes before it counts what
// is left under them, so the two wait for each other in one order.
func (s *Store) liveKeys(t *txn, ids []uint32) error {
	if len(ids) == 0 {
		return nil
	}
	arr := make([]int64, len(ids))
	for i, id := range ids {
		arr[i] = int64(id)
	}
	rows, err := t.Query(t.ctx, `SELECT id FROM data_keys WHERE id = ANY($1) ORDER BY id FOR KEY SHARE`, arr)
	if err != nil {
		return err
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return err
	}
	for _, id := range ids {
		if !slices.Contains(found, int64(id)) {
			s.Publish(storeutil.RetiredKeyNotice(0))
			return storeutil.RetiredKey(id)
		}
	}
	return nil
}
