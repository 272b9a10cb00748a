package sqlite

import (
	"context"

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
		rows, err := t.query(t.ctx, `SELECT id FROM data_keys`)
		if err != nil {
			return dbErr("list data keys", err)
		}
		var ids []uint32
		for rows.Next() {
			var id uint32
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return dbErr("list data keys", err)
			}
			ids = append(ids, id)
		}
		rows.Close()
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
