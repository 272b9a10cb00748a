package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/storeutil"
)

// AppendAudit records entries that belong to no other write, such as a
// reveal or a refused request. They are durable when it returns.
func (s *Store) AppendAudit(ctx context.Context, entries ...envy.AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	return s.do(ctx, func(t *txn) error { return t.audit(entries, 0) })
}

// PutConsumer records a consumer's report: ENotFound when its scope does
// not exist; FirstSeen stays what the first report set.
func (s *Store) PutConsumer(ctx context.Context, c envy.Consumer, lim envy.ConsumerLimit) (bool, error) {
	var created bool
	err := s.do(ctx, func(t *txn) error {
		ok, err := t.exists(c.Scope)
		if err != nil {
			return err
		}
		if !ok {
			return storeutil.NotFound(c.Scope)
		}
		seen := storeutil.OrNow(c.SeenAt, t.now)
		var first int64
		switch err := t.queryRow(`SELECT first_seen FROM consumers WHERE scope = ? AND id = ?`, c.Scope, c.ID).Scan(&first); {
		case errors.Is(err, sql.ErrNoRows):
			created = true
			first = storeutil.Nanos(seen)
			if !c.FirstSeen.IsZero() {
				first = c.FirstSeen.UnixNano()
			}
		case err != nil:
			return dbErr("read a consumer", err)
		}
		if created && lim.Max > 0 {
			if err := t.makeRoom(c.Scope, lim); err != nil {
				return err
			}
		}
		if _, err := t.exec(`INSERT INTO consumers (scope, id, hostname, pid, revision, first_seen, seen_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (scope, id) DO UPDATE SET
				hostname = excluded.hostname, pid = excluded.pid, revision = excluded.revision, seen_at = excluded.seen_at`,
			c.Scope, c.ID, c.Hostname, c.PID, c.Revision, first, storeutil.Nanos(seen)); err != nil {
			return dbErr("write a consumer", err)
		}
		t.notify(envy.Notice{Kind: envy.NoticeConsumer, Scope: c.Scope})
		return nil
	})
	if err != nil {
		return false, err
	}
	return created, nil
}

// makeRoom makes room for one more consumer of scope, within lim.
func (t *txn) makeRoom(scope string, lim envy.ConsumerLimit) error {
	var n int
	if err := t.queryRow(`SELECT COUNT(*) FROM consumers WHERE scope = ?`, scope).Scan(&n); err != nil {
		return dbErr("count consumers", err)
	}
	if n < lim.Max {
		return nil
	}
	r, err := t.exec(`DELETE FROM consumers WHERE scope = ? AND seen_at < ?`, scope, storeutil.Nanos(lim.StaleBefore))
	if err != nil {
		return dbErr("delete stale consumers", err)
	}
	if gone, err := r.RowsAffected(); err != nil {
		return dbErr("delete stale consumers", err)
	} else if n-int(gone) >= lim.Max {
		return envy.Errorf(envy.EConflict, "scope %s has %d live consumers, the most it keeps", scope, n-int(gone))
	}
	return nil
}

// PruneConsumers deletes the consumers not seen since before.
func (s *Store) PruneConsumers(ctx context.Context, before time.Time) (int64, error) {
	return s.prune(ctx, `DELETE FROM consumers WHERE seen_at < ?`, before)
}

// PruneAudit deletes the audit entries older than before.
func (s *Store) PruneAudit(ctx context.Context, before time.Time) (int64, error) {
	return s.prune(ctx, `DELETE FROM audit WHERE at < ?`, before)
}

func (s *Store) prune(ctx context.Context, query string, before time.Time) (int64, error) {
	var n int64
	err := s.do(ctx, func(t *txn) error {
		r, err := t.exec(query, storeutil.Nanos(before))
		if err != nil {
			return dbErr("prune", err)
		}
		n, err = r.RowsAffected()
		return err
	})
	return n, err
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
