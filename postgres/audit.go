package postgres

import (
	"context"
	"errors"
	"strconv"
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
	return s.tx(ctx, "append audit entries", func(t *txn) error { return t.audit(entries, 0) })
}

// ListAudit returns audit entries, newest first.
func (s *Store) ListAudit(ctx context.Context, q envy.AuditQuery) ([]envy.AuditEntry, error) {
	if s.closed.Load() {
		return nil, storeutil.ErrClosed()
	}
	query, args := storeutil.AuditQuery(q, sqlLimit(q.Limit), func(n int) string { return "$" + strconv.Itoa(n) })
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, s.dbErr("list audit entries", err)
	}
	defer rows.Close()
	var out []envy.AuditEntry
	for rows.Next() {
		var (
			e      envy.AuditEntry
			at     int64
			names  string
			status int32
		)
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Scope, &names, &status, &e.RequestID, &e.Client, &e.Revision, &e.TokenID, &e.Count); err != nil {
			return nil, s.dbErr("list audit entries", err)
		}
		e.At, e.Status = storeutil.FromNanos(at), int(status)
		if e.Names, err = storeutil.ParseList[string](names); err != nil {
			return nil, s.dbErr("decode audit names", err)
		}
		out = append(out, e)
	}
	return out, s.dbErr("list audit entries", rows.Err())
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

// Consumers returns the consumers of a scope seen at or after since, by id.
func (s *Store) Consumers(ctx context.Context, scope string, since time.Time) ([]envy.Consumer, error) {
	if s.closed.Load() {
		return nil, storeutil.ErrClosed()
	}
	if err := s.checkScope(ctx, scope); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT id, hostname, pid, revision, first_seen, seen_at
		FROM consumers WHERE scope = $1 AND seen_at >= $2 ORDER BY id`, scope, storeutil.Nanos(since))
	if err != nil {
		return nil, s.dbErr("list consumers", err)
	}
	defer rows.Close()
	var out []envy.Consumer
	for rows.Next() {
		c := envy.Consumer{Scope: scope}
		var (
			first, seen int64
			pid         int32
		)
		if err := rows.Scan(&c.ID, &c.Hostname, &pid, &c.Revision, &first, &seen); err != nil {
			return nil, s.dbErr("list consumers", err)
		}
		c.PID, c.FirstSeen, c.SeenAt = int(pid), storeutil.FromNanos(first), storeutil.FromNanos(seen)
		out = append(out, c)
	}
	return out, s.dbErr("list consumers", rows.Err())
}

// DataKeys returns every wrapped data key, by id.
func (s *Store) DataKeys(ctx context.Context) ([]envy.DataKey, error) {
	if s.closed.Load() {
		return nil, storeutil.ErrClosed()
	}
	rows, err := s.pool.Query(ctx, `SELECT id, wrapped, created_at FROM data_keys ORDER BY id`)
	if err != nil {
		return nil, s.dbErr("list data keys", err)
	}
	defer rows.Close()
	var out []envy.DataKey
	for rows.Next() {
		var (
			k      envy.DataKey
			id, at int64
		)
		if err := rows.Scan(&id, &k.Wrapped, &at); err != nil {
			return nil, s.dbErr("list data keys", err)
		}
		k.ID, k.CreatedAt = uint32(id), storeutil.FromNanos(at)
		out = append(out, k)
	}
	return out, s.dbErr("list data keys", rows.Err())
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
