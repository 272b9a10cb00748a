package postgres

import (
	"context"
	"fmt"
	"strconv"
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
// calls' transactions. Aggregated refusals add to their minute's row
// with an upsert, which adds up under concurrency too (and across
// servers); reveals add up within the transaction (txn.audit). The
// caller's context
// counts until the transaction is sent; after that it runs to its end
// (bounded by txTimeout), as tx's do.
func (s *Store) AppendAudit(ctx context.Context, entries ...envy.AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	return s.retry(ctx, func() error { return s.appendAudit(ctx, entries) })
}

func (s *Store) appendAudit(ctx context.Context, entries []envy.AuditEntry) error {
	return s.appendAuditWith(ctx, entries, nil)
}

var _ envy.CheckedAuditor = (*Store)(nil)

// AppendAuditChecked is AppendAudit for entries of which some carry a
// check (envy.CheckedAuditor), in the same one round trip: the entries
// without one go as AppendAudit's, and those with one in one statement
// that checks every distinct check and inserts the entries of those that
// pass, in one snapshot, taken after each entry's caller asked. Entries of
// one check aggregate as AppendAudit's reveals do, within the commit.
func (s *Store) AppendAuditChecked(ctx context.Context, entries []envy.AuditEntry, checks []*envy.AuditCheck) (ok []bool, err error) {
	if len(checks) != len(entries) {
		return nil, fmt.Errorf("postgres: %d audit checks for %d entries", len(checks), len(entries))
	}
	if len(entries) == 0 {
		return nil, nil
	}
	var (
		plain  []envy.AuditEntry
		groups [][]envy.AuditEntry // the entries of each distinct check
		keys   = map[string]int{}  // a check's key: its index in groups
		group  = make([]int, len(entries))
		first  []*envy.AuditCheck
	)
	for i, e := range entries {
		c := checks[i]
		if c == nil {
			group[i] = -1
			plain = append(plain, e)
			continue
		}
		k := checkKey(c)
		g, seen := keys[k]
		if !seen {
			g = len(groups)
			keys[k] = g
			groups = append(groups, nil)
			first = append(first, c)
		}
		group[i] = g
		groups[g] = append(groups[g], e)
	}
	passed := make([]bool, len(groups))
	var more func(t *txn) error
	if len(groups) > 0 {
		more = func(t *txn) error { return t.checkedAudit(groups, first, passed) }
	}
	err = s.retry(ctx, func() error {
		clear(passed)
		return s.appendAuditWith(ctx, plain, more)
	})
	if err != nil {
		return nil, err
	}
	ok = make([]bool, len(entries))
	for i, g := range group {
		ok[i] = g < 0 || passed[g]
	}
	return ok, nil
}

// checkKey is what tells two checks apart: equal keys, equal checks.
func checkKey(c *envy.AuditCheck) string {
	b := make([]byte, 0, 64)
	b = strconv.AppendQuote(b, c.Token)
	for _, d := range c.Deps {
		b = strconv.AppendQuote(b, d.Path)
		b = strconv.AppendInt(b, d.Revision, 10)
	}
	return string(b)
}

// checkedAudit queues the statement that checks each of checks and
// inserts the entries of groups[i] when checks[i] passes, aggregated as
// audit aggregates reveals (auditRows); it sets passed[i] from the
// statement's reply.
func (t *txn) checkedAudit(groups [][]envy.AuditEntry, checks []*envy.AuditCheck, passed []bool) error {
	var (
		rows    []envy.AuditEntry
		cond    []int64
		tokens  = make([]string, len(checks))
		depOf   []int64
		depPath []string
		depRev  []int64
	)
	for g, entries := range groups {
		r, upserts, err := auditRows(entries, t.now)
		if err != nil {
			return err
		}
		if len(upserts) > 0 { // a check is a reveal's (envy.CheckedAuditor)
			return fmt.Errorf("postgres: a checked audit entry of action %s, not a reveal", upserts[0].E.Action)
		}
		rows = append(rows, r...)
		for range r {
			cond = append(cond, int64(g+1))
		}
		tokens[g] = checks[g].Token
		for _, d := range checks[g].Deps {
			depOf, depPath, depRev = append(depOf, int64(g+1)), append(depPath, d.Path), append(depRev, d.Revision)
		}
	}
	cols, args, err := auditColumns(rows, 0, t.now)
	if err != nil {
		return err
	}
	n := len(args)
	args = append(args, cond, tokens, depOf, depPath, depRev)
	// A check passes when its token, if any, is live and no dep is other
	// than it was: at another revision, gone, or there though it was not
	// (0).
	t.pending.Queue(`WITH passed AS (
			SELECT k FROM unnest($`+strconv.Itoa(n+2)+`::text[]) WITH ORDINALITY AS c(token, k)
			WHERE (c.token = '' OR EXISTS (SELECT 1 FROM tokens WHERE id = c.token AND revoked_at IS NULL))
			AND NOT EXISTS (
				SELECT 1 FROM unnest($`+strconv.Itoa(n+3)+`::bigint[], $`+strconv.Itoa(n+4)+`::text[], $`+strconv.Itoa(n+5)+`::bigint[]) AS d(k, path, revision)
				WHERE d.k = c.k AND (SELECT revision FROM scopes WHERE path = d.path) IS DISTINCT FROM NULLIF(d.revision, 0))
		), recorded AS (
			INSERT INTO audit (`+auditInsertColumns+`)
			SELECT `+auditSelectColumns("revision")+`
			FROM unnest(`+cols+`, $`+strconv.Itoa(n+1)+`::bigint[])
			WITH ORDINALITY AS e(`+auditInsertColumns+`, cond, n)
			WHERE e.cond IN (SELECT k FROM passed) ORDER BY n
		)
		SELECT k FROM passed`, args...).Query(func(rs pgx.Rows) error {
		for rs.Next() {
			var k int64
			if err := rs.Scan(&k); err != nil {
				return err
			}
			passed[k-1] = true
		}
		return rs.Err()
	})
	return nil
}

// appendAuditWith is appendAudit; more, when set, queues more statements
// of the transaction after the entries'.
func (s *Store) appendAuditWith(ctx context.Context, entries []envy.AuditEntry, more func(t *txn) error) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return s.dbErr("audit", err)
	}
	defer conn.Release()
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), txTimeout)
	defer cancel()
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	t := &txn{ctx: tctx, now: storeutil.Now(), pending: b}
	if len(entries) > 0 {
		if err := t.audit(entries, 0); err != nil {
			return err
		}
	}
	if more != nil {
		if err := more(t); err != nil {
			return err
		}
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

// audit records entries in this transaction; rev, when > 0, is the
// revision that the write took. The entries that are not aggregated go
// in one INSERT, in order, with the reveals of this commit, those of one
// row added up (storeutil.Aggregates); the aggregated refusals then add
// to their window's rows, one upsert each, in the order of their rows'
// keys: two transactions that add to the same two rows lock them in the
// same order, so that neither waits for the other until PostgreSQL finds
// a deadlock.
//
// Reveals coalesce within a commit here, not across commits as on
// SQLite: the audit loop commits two batches at once on PostgreSQL (and
// servers share the database), and two batches adding to one row take
// turns at it, the second waiting for the first's commit. Measured at 32
// connections on one token and scope, that cost the env read 13–27% of
// its rate (two paired runs); rows of their own cost none of it.
func (t *txn) audit(entries []envy.AuditEntry, rev int64) error {
	rows, upserts, err := auditRows(entries, t.now)
	if err != nil {
		return err
	}
	if len(rows) > 0 {
		if err := t.insertAudit(rows, rev); err != nil {
			return err
		}
	}
	for _, a := range upserts {
		e := a.E
		if err := t.exec(aggregateAudit, a.At, e.Actor, string(e.Action), e.Scope, a.Names, int(e.Status), e.RequestID, e.Client, e.TokenID,
			e.Count, a.Bucket, a.LastAt, a.RequestIDs); err != nil {
			return err
		}
	}
	return nil
}

// auditRows splits entries into the rows this commit inserts, in order
// (those not aggregated, then the reveals of this commit added up), and
// the aggregated entries that add to their window's row (upserts).
func auditRows(entries []envy.AuditEntry, now time.Time) (rows []envy.AuditEntry, upserts []storeutil.Aggregated, err error) {
	aggs, err := storeutil.Aggregates(entries, now)
	if err != nil {
		return nil, nil, err
	}
	rows = storeutil.Plain(entries)
	for _, a := range aggs {
		if a.E.Action == envy.AuditReveal && a.E.Status == envy.OutcomeOK {
			e := a.E
			e.Aggregate = false
			rows = append(rows[:len(rows):len(rows)], e) // never into entries
			continue
		}
		upserts = append(upserts, a)
	}
	return rows, upserts, nil
}

// aggregateAudit adds an aggregated entry to its window's row, or makes
// the row: the count adds up, last_at moves on, and request_ids keeps the
// first envy.MaxAuditRequestIDs ids in the order they came.
var aggregateAudit = `INSERT INTO audit (at, actor, action, scope, names, status, request_id, client, revision, token_id, count, bucket, last_at, request_ids)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10, $11, $12, $13)
	ON CONFLICT (client, action, scope, status, token_id, md5(names), bucket) WHERE bucket > 0 DO UPDATE SET
		count = audit.count + excluded.count,
		at = LEAST(audit.at, excluded.at), -- batches in flight at once may commit out of order
		last_at = GREATEST(audit.last_at, excluded.last_at),
		request_ids = CASE WHEN excluded.request_ids = '[]' OR json_array_length(audit.request_ids::json) >= ` + maxIDs + ` THEN audit.request_ids
			ELSE (SELECT json_agg(v ORDER BY o)::text FROM (
				SELECT v, o FROM (
					SELECT v, o FROM json_array_elements_text(audit.request_ids::json) WITH ORDINALITY AS a(v, o)
					UNION ALL SELECT v, ` + maxIDs + ` + o FROM json_array_elements_text(excluded.request_ids::json) WITH ORDINALITY AS b(v, o)) ids
				ORDER BY o LIMIT ` + maxIDs + `) first) END`

var maxIDs = strconv.Itoa(envy.MaxAuditRequestIDs)

func (t *txn) insertAudit(entries []envy.AuditEntry, rev int64) error {
	cols, args, err := auditColumns(entries, rev, t.now)
	if err != nil {
		return err
	}
	revision := "revision"
	if t.relative { // a batch whose revisions are counted from envy.base (commit.go)
		revision = `CASE WHEN revision > 0 THEN ` + baseRev + ` + revision ELSE 0 END`
	}
	return t.exec(`INSERT INTO audit (`+auditInsertColumns+`)
		SELECT `+auditSelectColumns(revision)+`
		FROM unnest(`+cols+`)
		WITH ORDINALITY AS e(`+auditInsertColumns+`, n) ORDER BY n`, args...)
}

// auditInsertColumns are the columns of an audit row that insertAudit
// sets, in the order of auditColumns' arrays.
const auditInsertColumns = `at, actor, action, scope, names, status, request_id, client, revision, token_id, count, last_at, request_ids`

// auditSelectColumns is auditInsertColumns with revision, an expression
// of the column of that name, in its place.
func auditSelectColumns(revision string) string {
	return `at, actor, action, scope, names, status, request_id, client, ` + revision + `, token_id, count, last_at, request_ids`
}

// auditColumns returns the arguments that are entries' rows, an array per
// column of auditInsertColumns, and the parameters ($1…) that unnest them;
// rev, when > 0, is the revision of each, and now the time of those
// without one.
func auditColumns(entries []envy.AuditEntry, rev int64, now time.Time) (cols string, args []any, err error) {
	n := len(entries)
	var (
		at, revs, counts     = make([]int64, n), make([]int64, n), make([]int64, n)
		actor, action, scope = make([]string, n), make([]string, n), make([]string, n)
		names, reqID, client = make([]string, n), make([]string, n), make([]string, n)
		tokenID, ids         = make([]string, n), make([]string, n)
		status               = make([]int32, n)
		last                 = make([]int64, n)
	)
	for i, e := range entries {
		if rev > 0 {
			e.Revision = rev
		}
		ns, err := storeutil.JSONList(e.Names)
		if err != nil {
			return "", nil, fmt.Errorf("encode audit names: %w", err)
		}
		if ids[i], err = storeutil.JSONList(e.RequestIDs[:min(len(e.RequestIDs), envy.MaxAuditRequestIDs)]); err != nil {
			return "", nil, fmt.Errorf("encode audit request ids: %w", err)
		}
		at[i], actor[i], action[i], scope[i], names[i] = storeutil.Nanos(storeutil.OrNow(e.At, now)), e.Actor, string(e.Action), e.Scope, ns
		status[i], reqID[i], client[i], revs[i] = int32(e.Status), e.RequestID, e.Client, e.Revision
		tokenID[i], counts[i], last[i] = e.TokenID, max(e.Count, 1), storeutil.OptNanos(e.LastAt)
	}
	return `$1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::text[], $8::text[], $9::bigint[], $10::text[], $11::bigint[], $12::bigint[], $13::text[]`,
		[]any{at, actor, action, scope, names, status, reqID, client, revs, tokenID, counts, last, ids}, nil
}

// PruneAudit deletes the audit entries older than before.
func (s *Store) PruneAudit(ctx context.Context, before time.Time) (int64, error) {
	return s.execCount(ctx, "prune the audit log", `DELETE FROM audit WHERE at < $1`, storeutil.Nanos(before))
}

// execCount runs one statement in a transaction of its own and returns
// how many rows it changed; what names it in an error.
func (s *Store) execCount(ctx context.Context, what, query string, args ...any) (int64, error) {
	var n int64
	err := s.tx(ctx, what, func(t *txn) error {
		tag, err := t.Exec(t.ctx, query, args...)
		n = tag.RowsAffected()
		return err
	})
	return n, err
}
