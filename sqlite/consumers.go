package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/storeutil"
)

// PutConsumer records a consumer's report: ENotFound when its scope does
// not exist; FirstSeen stays what the first report set; a report by
// another token than the one that first reported it (TokenID) is
// envy.ErrConsumerTaken.
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
		var owner string
		switch err := t.queryRow(`SELECT first_seen, token_id FROM consumers WHERE scope = ? AND id = ?`, c.Scope, c.ID).Scan(&first, &owner); {
		case errors.Is(err, sql.ErrNoRows):
			created = true
			first = storeutil.Nanos(seen)
			if !c.FirstSeen.IsZero() {
				first = c.FirstSeen.UnixNano()
			}
		case err != nil:
			return dbErr("read a consumer", err)
		case owner != "" && owner != c.TokenID:
			return envy.ErrConsumerTaken(c.Scope, c.ID)
		}
		if created && lim.Max > 0 {
			if err := t.makeRoom(c.Scope, lim); err != nil {
				return err
			}
		}
		if _, err := t.exec(`INSERT INTO consumers (scope, id, hostname, pid, revision, first_seen, seen_at, token_id, fallback_since)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (scope, id) DO UPDATE SET
				hostname = excluded.hostname, pid = excluded.pid, revision = excluded.revision, seen_at = excluded.seen_at,
				token_id = excluded.token_id, fallback_since = excluded.fallback_since`,
			c.Scope, c.ID, c.Hostname, c.PID, c.Revision, first, storeutil.Nanos(seen), c.TokenID, storeutil.OptNanos(c.FallbackSince)); err != nil {
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

// DeleteConsumer deletes a consumer of a scope; an absent one is no error.
func (s *Store) DeleteConsumer(ctx context.Context, scope, id string) error {
	return s.do(ctx, func(t *txn) error {
		r, err := t.exec(`DELETE FROM consumers WHERE scope = ? AND id = ?`, scope, id)
		if err != nil {
			return dbErr("delete a consumer", err)
		}
		if n, err := r.RowsAffected(); err != nil {
			return dbErr("delete a consumer", err)
		} else if n > 0 {
			t.notify(envy.Notice{Kind: envy.NoticeConsumer, Scope: scope})
		}
		return nil
	})
}

// PruneConsumers deletes the consumers not seen since before.
func (s *Store) PruneConsumers(ctx context.Context, before time.Time) (int64, error) {
	return s.execCount(ctx, "prune consumers", `DELETE FROM consumers WHERE seen_at < ?`, storeutil.Nanos(before))
}
