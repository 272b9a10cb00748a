package postgres

import (
	"context"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/storeutil"
)

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
