package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/storeutil"
)

// PutConsumer records a consumer's report: ENotFound when its scope does
// not exist; FirstSeen stays what the first report set; a report by
// another token than the one that first reported it (TokenID) is
// envy.ErrConsumerTaken.
func (s *Store) PutConsumer(ctx context.Context, c envy.Consumer, lim envy.ConsumerLimit) (bool, error) {
	var created bool
	err := s.tx(ctx, "write a consumer", func(t *txn) error {
		if lim.Max > 0 {
			if err := t.makeRoom(c, lim); err != nil {
				return err
			}
		}
		seen := storeutil.Nanos(storeutil.OrNow(c.SeenAt, t.now))
		first := seen
		if !c.FirstSeen.IsZero() {
			first = c.FirstSeen.UnixNano()
		}
		// The update happens only for the consumer's own token (or one
		// reported before consumers had tokens): no row comes back otherwise.
		err := t.QueryRow(t.ctx, `INSERT INTO consumers (scope, id, hostname, pid, revision, first_seen, seen_at, token_id, fallback_since)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			ON CONFLICT (scope, id) DO UPDATE SET
				hostname = excluded.hostname, pid = excluded.pid, revision = excluded.revision, seen_at = excluded.seen_at,
				token_id = excluded.token_id, fallback_since = excluded.fallback_since
			WHERE consumers.token_id IN ('', excluded.token_id)
			RETURNING xmax = 0`,
			c.Scope, c.ID, c.Hostname, c.PID, c.Revision, first, seen, c.TokenID, storeutil.OptNanos(c.FallbackSince)).Scan(&created)
		if isCode(err, "23503") {
			return storeutil.NotFound(c.Scope)
		}
		if errors.Is(err, pgx.ErrNoRows) {
			return envy.ErrConsumerTaken(c.Scope, c.ID)
		}
		if err != nil {
			return err
		}
		t.notify(envy.Notice{Kind: envy.NoticeConsumer, Scope: c.Scope})
		return nil
	})
	if err != nil {
		return false, err
	}
	return created, nil
}

// makeRoom makes room for c when it is a new consumer of its scope,
// within lim. New consumers of one scope take a lock, so that two can't
// both take the last place.
func (t *txn) makeRoom(c envy.Consumer, lim envy.ConsumerLimit) error {
	var known bool
	if err := t.QueryRow(t.ctx, `SELECT EXISTS (SELECT 1 FROM consumers WHERE scope = $1 AND id = $2)`, c.Scope, c.ID).Scan(&known); err != nil || known {
		return err
	}
	if _, err := t.Exec(t.ctx, `SELECT pg_advisory_xact_lock(hashtextextended('envy.consumers:' || $1, 0))`, c.Scope); err != nil {
		return err
	}
	var n int
	if err := t.QueryRow(t.ctx, `SELECT COUNT(*) FROM consumers WHERE scope = $1`, c.Scope).Scan(&n); err != nil || n < lim.Max {
		return err
	}
	tag, err := t.Exec(t.ctx, `DELETE FROM consumers WHERE scope = $1 AND seen_at < $2`, c.Scope, storeutil.Nanos(lim.StaleBefore))
	if err != nil {
		return err
	}
	if left := n - int(tag.RowsAffected()); left >= lim.Max {
		return envy.Errorf(envy.EConflict, "scope %s has %d live consumers, the most it keeps", c.Scope, left)
	}
	return nil
}

// DeleteConsumer deletes a consumer of a scope; an absent one is no error.
func (s *Store) DeleteConsumer(ctx context.Context, scope, id string) error {
	return s.tx(ctx, "delete a consumer", func(t *txn) error {
		tag, err := t.Exec(t.ctx, `DELETE FROM consumers WHERE scope = $1 AND id = $2`, scope, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() > 0 {
			t.notify(envy.Notice{Kind: envy.NoticeConsumer, Scope: scope})
		}
		return nil
	})
}

// PruneConsumers deletes the consumers not seen since before.
func (s *Store) PruneConsumers(ctx context.Context, before time.Time) (int64, error) {
	return s.execCount(ctx, "prune consumers", `DELETE FROM consumers WHERE seen_at < $1`, storeutil.Nanos(before))
}
