package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/storeutil"
)

// AppendAudit records entries that belong to no other write, such as a
// reveal or a refused request. They are durable when it returns. They
// take no revision and none of the writes' locks, so they don't queue for
// the committer behind the writes (which serialize on the revision row):
// they go in a
// transaction of their own on a pool connection, BEGIN, the inserts and
// the COMMIT in one round trip, alongside the committer's and other
// calls' transactions. Aggregated refusals add to their minute's row with
// an upsert, which adds up under concurrency too. The caller's context
// counts until the transaction is sent; after that it runs to its end
// (bounded by txTimeout), as tx's do.
func (s *Store) AppendAudit(ctx context.Context, entries ...envy.AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	if s.closed.Load() {
		return storeutil.ErrClosed()
	}
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := s.appendAudit(ctx, entries)
		if retryable(err) && attempt < 5 {
			continue
		}
		return err
	}
}

func (s *Store) appendAudit(ctx context.Context, entries []envy.AuditEntry) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return s.dbErr("audit", err)
	}
	defer conn.Release()
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), txTimeout)
	defer cancel()
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	if aggregates(entries) > 1 {
		// Two transactions that each add to two of the same rows, in
		// another order, would wait for each other until PostgreSQL
		// found the deadlock, a second later: those that add to more
		// than one row take turns. (One that adds to one row holds no
		// row that another waits for.)
		b.Queue(`SELECT pg_advisory_xact_lock(hashtextextended('envy.audit:aggregates', 0))`)
	}
	t := &txn{ctx: tctx, now: storeutil.Now(), pending: b}
	if err := t.audit(entries, 0); err != nil {
		return err
	}
	b.Queue(`COMMIT`)
	if err := conn.SendBatch(tctx, b).Close(); err != nil {
		// What failed came before the COMMIT, which PostgreSQL then
		// skipped: the transaction is still open, aborted.
		if !conn.Conn().IsClosed() {
			conn.Exec(tctx, `ROLLBACK`)
		}
		if retryable(err) {
			return err
		}
		return s.dbErr("audit", err)
	}
	return nil
}

// aggregates counts the aggregated refusals among entries.
func aggregates(entries []envy.AuditEntry) int {
	n := 0
	for _, e := range entries {
		if e.Aggregate {
			n++
		}
	}
	return n
}

// PutConsumer records a consumer's report: ENotFound when its scope does
// not exist; FirstSeen stays what the first report set.
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
		err := t.QueryRow(t.ctx, `INSERT INTO consumers (scope, id, hostname, pid, revision, first_seen, seen_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (scope, id) DO UPDATE SET
				hostname = excluded.hostname, pid = excluded.pid, revision = excluded.revision, seen_at = excluded.seen_at
			RETURNING xmax = 0`,
			c.Scope, c.ID, c.Hostname, c.PID, c.Revision, first, seen).Scan(&created)
		if isCode(err, "23503") {
			return storeutil.NotFound(c.Scope)
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

// PruneConsumers deletes the consumers not seen since before.
func (s *Store) PruneConsumers(ctx context.Context, before time.Time) (int64, error) {
	return s.prune(ctx, `DELETE FROM consumers WHERE seen_at < $1`, before)
}

// PruneAudit deletes the audit entries older than before.
func (s *Store) PruneAudit(ctx context.Context, before time.Time) (int64, error) {
	return s.prune(ctx, `DELETE FROM audit WHERE at < $1`, before)
}

func (s *Store) prune(ctx context.Context, query string, before time.Time) (int64, error) {
	var n int64
	err := s.tx(ctx, "prune", func(t *txn) error {
		tag, err := t.Exec(t.ctx, query, storeutil.Nanos(before))
		n = tag.RowsAffected()
		return err
	})
	return n, err
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
