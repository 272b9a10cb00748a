package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync/atomic"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/storeutil"
)

// The states of a queued op. The caller and the writer race to move an op
// out of opQueued: the caller to give up when its context ends, the writer
// to run it. Whoever wins decides, so an op whose caller has gone is never
// run, and one that runs is always answered.
const (
	opQueued int32 = iota
	opTaken
	opCancelled
)

// op is one mutation waiting for the writer.
type op struct {
	ctx   context.Context
	run   func(t *txn) error
	state atomic.Int32
	done  chan error // buffered: the writer never waits for the caller
}

// do runs fn in the writer goroutine, inside a savepoint of the next group
// commit, and returns once that commit is durable (or has failed). fn's
// results, written to variables it closes over, may be read only when do
// returns nil.
func (s *Store) do(ctx context.Context, fn func(t *txn) error) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return storeutil.ErrClosed()
	}
	o := &op{ctx: ctx, run: fn, done: make(chan error, 1)}
	defer func() {
		if isDiskFull(err) {
			s.fullAt.Store(time.Now().UnixNano())
		}
	}()
	select {
	case s.queue <- o:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.quit:
		return storeutil.ErrClosed()
	}
	select {
	case err := <-o.done:
		return err
	case <-ctx.Done():
		if o.state.CompareAndSwap(opQueued, opCancelled) {
			return ctx.Err()
		}
		// Already part of a batch: its outcome is a commit away, and
		// reporting a cancellation for a write that then commits would
		// be a lie.
		return <-o.done
	case <-s.stopped:
		if o.state.CompareAndSwap(opQueued, opCancelled) {
			return storeutil.ErrClosed()
		}
		return <-o.done
	}
}

// writeLoop is the writer goroutine: it takes whatever is queued, up to
// maxBatch ops, and commits them together. While one batch waits for its
// fsync the next one queues up, so the number of fsyncs per second stays
// flat while the number of writes per fsync grows with the load.
func (s *Store) writeLoop() {
	defer close(s.stopped)
	batch := make([]*op, 0, maxBatch)
	prev := 0 // the size of the last batch
	for {
		select {
		case o := <-s.queue:
			batch = append(batch[:0], o)
		case <-s.quit:
			// Finish what was queued before Close, then stop. Ops
			// queued after this are refused by do, via s.stopped.
			for {
				batch = s.fill(batch[:0])
				if len(batch) == 0 {
					return
				}
				s.runBatch(batch)
				clear(batch)
			}
		}
		batch = s.linger(s.fill(batch), prev)
		prev = len(batch)
		s.runBatch(batch)
		clear(batch) // let the ops' closures be collected
	}
}

// How long the writer lingers for more ops before a commit; see linger.
const (
	lingerGap = 100 * time.Microsecond // stop once none came for this long
	lingerMax = time.Millisecond       // and never wait longer than this
)

// linger waits briefly for more ops when the last batch had several. Its
// callers were answered a moment ago and are likely on their way back
// with their next write; without the wait they miss this batch and the
// writers split into two cohorts that commit in turn, each paying a full
// fsync for half the writes. A lone writer (prev ≤ 1) never waits.
func (s *Store) linger(batch []*op, prev int) []*op {
	if prev < 2 {
		return batch
	}
	want := min(len(batch)+prev, maxBatch)
	deadline := time.Now().Add(lingerMax)
	timer := time.NewTimer(lingerGap)
	defer timer.Stop()
	for len(batch) < want {
		select {
		case o := <-s.queue:
			batch = s.fill(append(batch, o))
			left := time.Until(deadline)
			if left <= 0 {
				return batch
			}
			timer.Reset(min(lingerGap, left))
		case <-timer.C:
			return batch
		}
	}
	return batch
}

// fill adds to batch whatever is queued, without waiting.
func (s *Store) fill(batch []*op) []*op {
	for len(batch) < maxBatch {
		select {
		case o := <-s.queue:
			batch = append(batch, o)
		default:
			return batch
		}
	}
	return batch
}

// batch is what the ops of one transaction did, to be published after
// the COMMIT.
type batch struct {
	scopes  map[string]*envy.ScopeVars // new state by path; nil: gone, or not known
	rev     int64                      // the newest revision taken, starting from the committed one
	notices []envy.Notice              // what the ops did, in order, for subscribers
}

// runBatch runs the ops in one transaction, each in its own savepoint so
// that one failing op leaves the others' work in place, commits once,
// publishes the new state to the caches and only then answers.
func (s *Store) runBatch(ops []*op) {
	live := make([]*op, 0, len(ops))
	for _, o := range ops {
		if !o.state.CompareAndSwap(opQueued, opTaken) {
			continue // its caller gave up while it waited
		}
		if err := o.ctx.Err(); err != nil {
			o.done <- err
			continue
		}
		live = append(live, o)
	}
	if len(live) == 0 {
		return
	}
	answer := func(errs []error, all error) {
		for i, o := range live {
			if all != nil {
				o.done <- all
			} else {
				o.done <- errs[i]
			}
		}
	}

	ctx := context.Background()
	if _, err := s.wexec(ctx, `BEGIN IMMEDIATE`); err != nil {
		answer(nil, unavailable("begin", err))
		return
	}
	b := &batch{scopes: make(map[string]*envy.ScopeVars), rev: s.rev.Load()}
	errs := make([]error, len(live))
	ok := 0
	for i, o := range live {
		t := &txn{s: s, ctx: context.WithoutCancel(o.ctx), b: b, now: storeutil.Now()}
		err, fatal := s.runOp(t, o)
		if fatal != nil {
			// The transaction itself is broken (a failed savepoint
			// command, an I/O error that rolled everything back): no op
			// of this batch can be trusted to have happened.
			s.rollback()
			answer(nil, fatal)
			return
		}
		errs[i] = err
		if err == nil {
			ok++
			for p, sv := range t.scopes {
				b.scopes[p] = sv
			}
			b.rev = max(b.rev, t.rev)
			b.notices = append(b.notices, t.notices...)
		}
	}
	if ok == 0 {
		s.rollback()
		answer(errs, nil)
		return
	}
	if b.rev > s.rev.Load() {
		if _, err := s.wexec(ctx, `UPDATE meta SET revision = ? WHERE id = 1`, b.rev); err != nil {
			s.rollback()
			answer(nil, dbErr("store the revision", err))
			return
		}
	}
	if _, err := s.wexec(ctx, `COMMIT`); err != nil {
		s.rollback()
		answer(nil, dbErr("commit", err))
		return
	}
	s.commits.Add(1)
	s.fullAt.Store(0)
	// Publish before answering, so that a caller who got its answer reads
	// its own write.
	s.rev.Store(b.rev)
	s.scopes.apply(b.scopes)
	s.Publish(b.notices...)
	answer(errs, nil)
}

// runOp runs one op inside a savepoint. err is the op's own failure,
// rolled back to the savepoint; fatal means the whole transaction is lost.
func (s *Store) runOp(t *txn, o *op) (err, fatal error) {
	ctx := context.Background()
	if _, err := s.wexec(ctx, `SAVEPOINT op`); err != nil {
		return nil, dbErr("savepoint", err)
	}
	err = storeutil.Safely(func() error { return o.run(t) })
	if err == nil {
		if _, err := s.wexec(ctx, `RELEASE op`); err != nil {
			return nil, dbErr("release savepoint", err)
		}
		return nil, nil
	}
	if _, rerr := s.wexec(ctx, `ROLLBACK TO op`); rerr != nil {
		if isDiskFull(err) {
			// SQLite rolled the whole transaction back by itself: every
			// op of the batch fails, for want of space.
			return nil, err
		}
		return nil, dbErr("roll back to savepoint", rerr)
	}
	if _, err := s.wexec(ctx, `RELEASE op`); err != nil {
		return nil, dbErr("release savepoint", err)
	}
	return err, nil
}

// rollback ends the writer's transaction, if one is open. It fails when
// SQLite has already rolled back by itself, which is fine.
func (s *Store) rollback() {
	s.wconn.ExecContext(context.Background(), `ROLLBACK`)
}

// wstmt returns the writer's prepared statement for query, preparing it on
// first use: parsing SQL costs more than running these small statements.
func (s *Store) wstmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := s.wstmts[query]; ok {
		return st, nil
	}
	st, err := s.wconn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	s.wstmts[query] = st
	return st, nil
}

func (s *Store) wexec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := s.wstmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// txn is what an op sees of the batch's transaction.
type txn struct {
	s   *Store
	ctx context.Context
	b   *batch
	now time.Time

	// What this op did, merged into the batch only when it succeeds.
	scopes  map[string]*envy.ScopeVars
	rev     int64
	notices []envy.Notice
}

// notify queues a notice for the subscribers, published once the batch
// commits (and only if this op succeeds).
func (t *txn) notify(n envy.Notice) { t.notices = append(t.notices, n) }

func (t *txn) exec(query string, args ...any) (sql.Result, error) {
	return t.s.wexec(t.ctx, query, args...)
}

func (t *txn) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := t.s.wstmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (t *txn) queryRow(query string, args ...any) *sql.Row {
	st, err := t.s.wstmt(t.ctx, query)
	if err != nil {
		// Let Scan report the error: a Row can't be built with one
		// from outside database/sql.
		return t.s.wconn.QueryRowContext(t.ctx, query, args...)
	}
	return st.QueryRowContext(t.ctx, args...)
}

// nextRevision takes the next store-wide revision. The writer counts in
// memory: an op's number counts only once the op succeeds, so a failed op
// gives it back and no number is lost; the batch stores the last one in
// meta just before its COMMIT.
func (t *txn) nextRevision() (int64, error) {
	t.rev = t.b.rev + 1
	return t.rev, nil
}

// scope returns the scope at path as this transaction sees it, nil when it
// does not exist. The cache holds the committed state, so it answers
// unless this batch has touched the scope.
func (t *txn) scope(path string) (*envy.ScopeVars, error) {
	// nil in an overlay means "changed, state not kept": only the
	// database, which sees this transaction's writes, knows.
	if sv, ok := t.scopes[path]; ok {
		if sv != nil {
			return sv, nil
		}
	} else if sv, ok := t.b.scopes[path]; ok {
		if sv != nil {
			return sv, nil
		}
	} else if sv, ok := t.s.scopes.get(path); ok {
		return sv, nil
	}
	return loadScopeVars(t.ctx, t.query, path)
}

// setScope records the scope's new state (nil: deleted) for the cache.
func (t *txn) setScope(path string, sv *envy.ScopeVars) {
	if t.scopes == nil {
		t.scopes = make(map[string]*envy.ScopeVars)
	}
	t.scopes[path] = sv
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
				storeutil.Nanos(at), e.Actor, e.Action, e.Scope, e.Status, e.RequestID, e.Client, e.TokenID, max(e.Count, 1),
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
			args = append(args, storeutil.Nanos(storeutil.OrNow(e.At, t.now)), e.Actor, e.Action, e.Scope, names, e.Status, e.RequestID, e.Client, e.Revision,
				e.TokenID, max(e.Count, 1))
		}
		if _, err := t.exec(string(q), args...); err != nil {
			return dbErr("insert audit entries", err)
		}
		entries = entries[n:]
	}
	return nil
}

// exists reports whether the scope exists in this transaction.
func (t *txn) exists(path string) (bool, error) {
	var ok bool
	if err := t.queryRow(`SELECT EXISTS (SELECT 1 FROM scopes WHERE path = ?)`, path).Scan(&ok); err != nil {
		return false, dbErr("look up a scope", err)
	}
	return ok, nil
}

var errNoPlan = errors.New("sqlite: the write has no Plan")
