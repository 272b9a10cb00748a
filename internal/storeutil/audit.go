package storeutil

import (
	"cmp"
	"fmt"
	"slices"
	"time"

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
const AuditColumns = `id, at, actor, action, scope, names, status, request_id, client, revision, token_id, count, last_at, request_ids`

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
			e          envy.AuditEntry
			at, last   int64
			names, ids string
		)
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Scope, &names, &e.Status, &e.RequestID, &e.Client, &e.Revision, &e.TokenID, &e.Count,
			&last, &ids); err != nil {
			return nil, err
		}
		e.At, e.LastAt = FromNanos(at), FromOptNanos(last)
		var err error
		if e.Names, err = ParseList[string](names); err != nil {
			return nil, fmt.Errorf("decode audit names: %w", err)
		}
		if e.RequestIDs, err = ParseList[string](ids); err != nil {
			return nil, fmt.Errorf("decode audit request ids: %w", err)
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

// Aggregated is an aggregated audit entry as both stores write it: the
// key of its row (client, action, scope, status, token, names, bucket)
// and what adds up.
type Aggregated struct {
	At, LastAt int64 // UTC nanoseconds
	Bucket     int64
	Names      string // JSON
	RequestIDs string // JSON, the first envy.MaxAuditRequestIDs
	E          envy.AuditEntry
}

// Aggregates returns the aggregated entries among entries, those of one
// row added up, ordered by their rows' keys: a transaction that adds to
// several rows takes their locks in that order (PostgreSQL), so that two
// of them never wait for each other; the window first, so that rows are
// made in the order of time. now stands in for a missing At.
func Aggregates(entries []envy.AuditEntry, now time.Time) ([]Aggregated, error) {
	var out []Aggregated
next:
	for _, e := range entries {
		if !e.Aggregate {
			continue
		}
		e.At = OrNow(e.At, now)
		bucket := e.Bucket()
		// A batch holds few rows' keys: a search costs less than a map.
		for i := range out {
			if o := &out[i]; o.Bucket == bucket && sameRow(&o.E, &e) {
				o.E.Coalesce(e)
				continue next
			}
		}
		e.Count = max(e.Count, 1)
		out = append(out, Aggregated{Bucket: bucket, E: e})
	}
	for i := range out {
		a := &out[i]
		a.At, a.LastAt = Nanos(a.E.At), Nanos(a.E.LastAt)
		a.LastAt = max(a.LastAt, a.At)
		ids := a.E.RequestIDs
		if len(ids) == 0 && a.E.RequestID != "" {
			ids = []string{a.E.RequestID}
		}
		var err error
		if a.Names, err = JSONList(a.E.Names); err != nil {
			return nil, fmt.Errorf("encode audit names: %w", err)
		}
		a.E.RequestIDs = ids[:min(len(ids), envy.MaxAuditRequestIDs)]
		if a.RequestIDs, err = JSONList(a.E.RequestIDs); err != nil {
			return nil, fmt.Errorf("encode audit request ids: %w", err)
		}
	}
	slices.SortFunc(out, func(a, b Aggregated) int {
		return cmp.Or(cmp.Compare(a.Bucket, b.Bucket), cmp.Compare(a.E.Client, b.E.Client), cmp.Compare(a.E.Action, b.E.Action), cmp.Compare(a.E.Scope, b.E.Scope),
			cmp.Compare(a.E.Status, b.E.Status), cmp.Compare(a.E.TokenID, b.E.TokenID), cmp.Compare(a.Names, b.Names))
	})
	return out, nil
}

// sameRow reports whether two aggregated entries of one window add up in
// one row: the same client, action, scope, status, token and names.
func sameRow(a, b *envy.AuditEntry) bool {
	return a.Client == b.Client && a.Action == b.Action && a.Scope == b.Scope && a.Status == b.Status && a.TokenID == b.TokenID &&
		slices.Equal(a.Names, b.Names)
}

// Plain returns the entries that are not aggregated, in order.
func Plain(entries []envy.AuditEntry) []envy.AuditEntry {
	n := 0
	for _, e := range entries {
		if !e.Aggregate {
			n++
		}
	}
	if n == len(entries) {
		return entries
	}
	out := make([]envy.AuditEntry, 0, n)
	for _, e := range entries {
		if !e.Aggregate {
			out = append(out, e)
		}
	}
	return out
}
