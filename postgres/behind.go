package postgres

import (
	"context"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/storeutil"
)

// BehindConsumers, which the service asks after every write (is every
// workload of the scope in sync?), is answered many callers' at a time,
// as checks are (batcher): each statement is sent after its questions were
// queued, so it sees every consumer report committed before they were
// asked.

// behind is one caller's question and its answer.
type behind struct {
	scope string
	since int64
	rev   int64
	limit int

	out  []envy.Consumer
	err  error
	done chan struct{}
}

// BehindConsumers returns up to limit (≤ 0: all) consumers seen at or
// after since that run a revision older than rev, of scope or of any
// scope that inherits it, directly or not, by scope and id.
func (s *Store) BehindConsumers(ctx context.Context, scope string, since time.Time, rev int64, limit int) ([]envy.Consumer, error) {
	if s.closed.Load() {
		return nil, storeutil.ErrClosed()
	}
	if limit <= 0 {
		limit = math.MaxInt32
	}
	b := &behind{scope: scope, since: storeutil.Nanos(since), rev: rev, limit: limit, done: make(chan struct{})}
	s.behinds.add(b)
	select {
	case <-b.done:
		return b.out, b.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// behindBatch answers a batch of questions with one statement: each
// question's walk of the inheritors (an index lookup per scope, each
// scope once per question), its consumers behind, at most its limit.
func (s *Store) behindBatch(batch []*behind) {
	idx := make([]int32, len(batch))
	scopes := make([]string, len(batch))
	since, revs, limits := make([]int64, len(batch)), make([]int64, len(batch)), make([]int64, len(batch))
	for i, b := range batch {
		idx[i], scopes[i], since[i], revs[i], limits[i] = int32(i), b.scope, b.since, b.rev, int64(b.limit)
	}
	err := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
		defer cancel()
		rows, err := s.pool.Query(ctx, `WITH RECURSIVE
			q (i, root, since, rev, lim) AS (SELECT * FROM unnest($1::int[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[])),
			`+behindSelect, idx, scopes, since, revs, limits)
		if err != nil {
			return err
		}
		defer rows.Close()
		return scanBehind(rows, func(i int32, c envy.Consumer) { batch[i].out = append(batch[i].out, c) })
	}()
	err = s.dbErr("list consumers", err)
	for _, b := range batch {
		if err != nil {
			b.out, b.err = nil, err
		}
		close(b.done)
	}
}

// behindSelect is the statement of consumers behind, after its CTE q (i,
// root, since, rev, lim) of questions: each question's walk of the
// inheritors (an index lookup per scope, each scope once per question),
// and its consumers behind, at most its limit, by question, scope and id.
const behindSelect = `dep (i, path) AS (
				SELECT q.i, s.path FROM q JOIN scopes s ON s.path = q.root
				UNION
				SELECT dep.i, p.child FROM scope_parents p JOIN dep ON p.parent = dep.path
			)
			SELECT i, scope, id, hostname, pid, revision, first_seen, seen_at FROM (
				SELECT dep.i, c.scope, c.id, c.hostname, c.pid, c.revision, c.first_seen, c.seen_at, q.lim,
					row_number() OVER (PARTITION BY dep.i ORDER BY c.scope, c.id) AS n
				FROM dep JOIN q ON q.i = dep.i JOIN consumers c ON c.scope = dep.path
				WHERE c.seen_at >= q.since AND c.revision < q.rev
			) AS x
			WHERE n <= lim
			ORDER BY i, scope, id`

// scanBehind calls add for each row of behindSelect.
func scanBehind(rows pgx.Rows, add func(i int32, c envy.Consumer)) error {
	for rows.Next() {
		var (
			i           int32
			c           envy.Consumer
			first, seen int64
		)
		if err := rows.Scan(&i, &c.Scope, &c.ID, &c.Hostname, &c.PID, &c.Revision, &first, &seen); err != nil {
			return err
		}
		c.FirstSeen, c.SeenAt = storeutil.FromNanos(first), storeutil.FromNanos(seen)
		add(i, c)
	}
	return rows.Err()
}

// behindQuestions are the Behind questions of a batch's writes (by the
// write's index in the batch), answered by one statement after the
// batch's COMMIT in the same round trip. A write's EnvRevision is the
// batch's own 1…n when rel, counted from envy.lastbase, the revision
// before the batch, which countRevisions leaves in the session.
type behindQuestions struct {
	idx               []int32
	scopes            []string
	since, revs, lims []int64
	rel               []bool
}

func (q *behindQuestions) add(i int, scope string, since time.Time, rev int64, rel bool, limit int) {
	if limit <= 0 {
		limit = math.MaxInt32
	}
	q.idx, q.scopes, q.since = append(q.idx, int32(i)), append(q.scopes, scope), append(q.since, storeutil.Nanos(since))
	q.revs, q.rel, q.lims = append(q.revs, rev), append(q.rel, rel), append(q.lims, int64(limit))
}

// queue queues the statement, if any question was asked.
func (q *behindQuestions) queue(b *pgx.Batch) {
	if len(q.idx) == 0 {
		return
	}
	b.Queue(`WITH RECURSIVE
			q (i, root, since, rev, lim) AS (
				SELECT i, root, since, CASE WHEN rel THEN current_setting('envy.lastbase')::bigint + rev ELSE rev END, lim
				FROM unnest($1::int[], $2::text[], $3::bigint[], $4::bigint[], $5::bool[], $6::bigint[]) AS u(i, root, since, rev, rel, lim)),
			`+behindSelect, q.idx, q.scopes, q.since, q.revs, q.rel, q.lims)
}

// read reads the statement's answers, by the write's index: every
// question asked has one, empty when no consumer is behind.
func (q *behindQuestions) read(br pgx.BatchResults) (map[int][]envy.Consumer, error) {
	if len(q.idx) == 0 {
		return nil, nil
	}
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[int][]envy.Consumer, len(q.idx))
	for _, i := range q.idx {
		out[int(i)] = []envy.Consumer{}
	}
	if err := scanBehind(rows, func(i int32, c envy.Consumer) { out[int(i)] = append(out[int(i)], c) }); err != nil {
		return nil, err
	}
	return out, nil
}
