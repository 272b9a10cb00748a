package storeutil

import "github.com/envy-dev/envy"

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
