package sqlite

import (
	"context"
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
	return s.do(ctx, func(t *txn) error { return t.audit(entries, 0) })
}

// audit records entries in this transaction; rev, when > 0, is the
// revision that the op took.
func (t *txn) audit(entries []envy.AuditEntry, rev int64) error {
	// Reveals arrive in batches of hundreds: one INSERT of many rows costs
	// far less than one statement a row. Aggregated entries (reveals,
	// refusals) add to their window's row, one statement each, after the
	// others.
	const perInsert = 100
	plain := storeutil.Plain(entries)
	for len(plain) > 0 {
		n := min(len(plain), perInsert)
		q := make([]byte, 0, 160+n*24)
		q = append(q, `INSERT INTO audit (at, actor, action, scope, names, status, request_id, client, revision, token_id, count) VALUES `...)
		args := make([]any, 0, n*11)
		for i, e := range plain[:n] {
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
			q = append(q, "(?,?,?,?,?,?,?,?,?,?,?)"...)
			args = append(args, storeutil.Nanos(storeutil.OrNow(e.At, t.now)), e.Actor, string(e.Action), e.Scope, names, int(e.Status), e.RequestID, e.Client, e.Revision,
				e.TokenID, max(e.Count, 1))
		}
		if _, err := t.exec(string(q), args...); err != nil {
			return dbErr("insert audit entries", err)
		}
		plain = plain[n:]
	}
	aggs, err := storeutil.Aggregates(entries, t.now)
	if err != nil {
		return dbErr("aggregate audit entries", err)
	}
	for _, a := range aggs {
		e := a.E
		if _, err := t.exec(aggregateAudit, a.At, e.Actor, string(e.Action), e.Scope, a.Names, int(e.Status), e.RequestID, e.Client, e.TokenID,
			e.Count, a.Bucket, a.LastAt, a.RequestIDs); err != nil {
			return dbErr("aggregate an audit entry", err)
		}
	}
	return nil
}

// aggregateAudit adds an aggregated entry to its window's row, or makes
// the row: the count adds up, last_at moves on, and request_ids keeps the
// first envy.MaxAuditRequestIDs ids in the order they came.
var aggregateAudit = `INSERT INTO audit (at, actor, action, scope, names, status, request_id, client, revision, token_id, count, bucket, last_at, request_ids)
	VALUES (?,?,?,?,?,?,?,?,0,?,?,?,?,?)
	ON CONFLICT (client, action, scope, status, token_id, names, bucket) WHERE bucket > 0 DO UPDATE SET
		count = count + excluded.count,
		last_at = max(last_at, excluded.last_at),
		request_ids = CASE WHEN excluded.request_ids = '[]' OR json_array_length(request_ids) >= ` + maxIDs + ` THEN request_ids
			ELSE (SELECT json_group_array(value) FROM (
				SELECT value FROM (
					SELECT value, key AS o FROM json_each(audit.request_ids)
					UNION ALL SELECT value, ` + maxIDs + ` + key FROM json_each(excluded.request_ids))
				ORDER BY o LIMIT ` + maxIDs + `)) END`

var maxIDs = strconv.Itoa(envy.MaxAuditRequestIDs)

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
