package sqlite

import (
	"context"
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

// audit records entries in this transaction; rev, when > 0, is the
// revision that the op took.
func (t *txn) audit(entries []envy.AuditEntry, rev int64) error {
	// Reveals arrive in batches of hundreds: one INSERT of many rows costs
	// far less than one statement a row. Aggregated refusals add to their
	// minute's row, one statement each.
	const perInsert = 100
	const cols = `INSERT INTO audit (at, actor, action, scope, names, status, request_id, client, revision, token_id, count, bucket) VALUES `
	for len(entries) > 0 {
		if e := entries[0]; e.Aggregate {
			at := storeutil.OrNow(e.At, t.now)
			if _, err := t.exec(cols+`(?,?,?,?,'[]',?,?,?,0,?,?,?)
				ON CONFLICT (client, action, scope, status, token_id, bucket) WHERE bucket > 0 DO UPDATE SET count = count + excluded.count`,
				storeutil.Nanos(at), e.Actor, string(e.Action), e.Scope, int(e.Status), e.RequestID, e.Client, e.TokenID, max(e.Count, 1),
				at.Truncate(time.Minute).UnixNano()); err != nil {
				return dbErr("aggregate an audit entry", err)
			}
			entries = entries[1:]
			continue
		}
		n := 0
		for n < len(entries) && n < perInsert && !entries[n].Aggregate {
			n++
		}
		q := make([]byte, 0, 160+n*28)
		q = append(q, cols...)
		args := make([]any, 0, n*11)
		for i, e := range entries[:n] {
			if rev > 0 {
				e.Revision = rev
			}
			names, err := storeutil.JSONList(e.Names)
			if err != nil {
				return dbErr("encode audit names", err)
			}
			if i > 0 {
				q = append(q, ',')
			}
			q = append(q, "(?,?,?,?,?,?,?,?,?,?,?,0)"...)
			args = append(args, storeutil.Nanos(storeutil.OrNow(e.At, t.now)), e.Actor, string(e.Action), e.Scope, names, int(e.Status), e.RequestID, e.Client, e.Revision,
				e.TokenID, max(e.Count, 1))
		}
		if _, err := t.exec(string(q), args...); err != nil {
			return dbErr("insert audit entries", err)
		}
		entries = entries[n:]
	}
	return nil
}

// PruneAudit deletes the audit entries older than before.
func (s *Store) PruneAudit(ctx context.Context, before time.Time) (int64, error) {
	return s.execCount(ctx, "prune the audit log", `DELETE FROM audit WHERE at < ?`, storeutil.Nanos(before))
}

// execCount runs one statement in a write of its own and returns how
// many rows it changed; what names it in an error.
func (s *Store) execCount(ctx context.Context, what, query string, args ...any) (int64, error) {
	var n int64
	err := s.do(ctx, func(t *txn) error {
		r, err := t.exec(query, args...)
		if err != nil {
			return dbErr(what, err)
		}
		n, err = r.RowsAffected()
		return err
	})
	return n, err
}
