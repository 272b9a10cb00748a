package storeutil

import (
	"fmt"

	"github.com/envy-dev/envy"
)

// AuditQuery is the SELECT of q's audit entries, newest first, with its
// arguments: mark(n) is the dialect's placeholder for the nth (from 1),
// limit the dialect's value for LIMIT. Its columns are AuditColumns.
func AuditQuery(q envy.AuditQuery, limit any, mark func(n int) string) (string, []any) {
	query := `SELECT ` + AuditColumns + ` FROM audit WHERE 1 = 1`
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return mark(len(args))
	}
	if q.Scope != "" {
		query += ` AND scope = ` + arg(q.Scope)
	}
	if q.Actor != "" {
		query += ` AND actor = ` + arg(q.Actor)
	}
	if !q.Since.IsZero() {
		query += ` AND at >= ` + arg(q.Since.UnixNano())
	}
	if q.Before > 0 {
		query += ` AND id < ` + arg(q.Before)
	}
	query += ` ORDER BY id DESC LIMIT ` + arg(limit)
	return query, args
}

// AuditColumns are the audit columns that AuditQuery selects.
const AuditColumns = `id, at, actor, action, scope, names, status, request_id, client, revision, token_id, count`

// Scanner is what the result sets of both drivers (database/sql and pgx)
// offer for reading; the caller closes them.
type Scanner interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// ScanAudit reads the rows of AuditQuery.
func ScanAudit(rows Scanner) ([]envy.AuditEntry, error) {
	var out []envy.AuditEntry
	for rows.Next() {
		var (
			e     envy.AuditEntry
			at    int64
			names string
		)
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Scope, &names, &e.Status, &e.RequestID, &e.Client, &e.Revision, &e.TokenID, &e.Count); err != nil {
			return nil, err
		}
		e.At = FromNanos(at)
		var err error
		if e.Names, err = ParseList[string](names); err != nil {
			return nil, fmt.Errorf("decode audit names: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// ScanConsumers reads rows of a scope's consumers (id, hostname, pid,
// revision, first_seen, seen_at, token_id).
func ScanConsumers(rows Scanner, scope string) ([]envy.Consumer, error) {
	var out []envy.Consumer
	for rows.Next() {
		c := envy.Consumer{Scope: scope}
		var first, seen, fallback int64
		if err := rows.Scan(&c.ID, &c.Hostname, &c.PID, &c.Revision, &first, &seen, &c.TokenID, &fallback); err != nil {
			return nil, err
		}
		c.FirstSeen, c.SeenAt, c.FallbackSince = FromNanos(first), FromNanos(seen), FromOptNanos(fallback)
		out = append(out, c)
	}
	return out, rows.Err()
}
