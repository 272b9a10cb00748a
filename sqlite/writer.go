package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/storeutil"
)

// op is one mutation waiting for the writer goroutine, a storeutil.Committer
// that runs the queued ops in batches (runBatch).
type op = storeutil.Op[func(t *txn) error]

// do runs fn in the writer goroutine, inside a savepoint of the next group
// commit, and returns once that commit is durable (or has failed). fn's
// results, written to variables it closes over, may be read only when do
// returns nil. A caller whose context ends while fn is still queued gets
// the context's error and fn never runs; once fn is taken into a batch,
// the caller waits for the commit's outcome.
func (s *Store) do(ctx context.Context, fn func(t *txn) error) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return storeutil.ErrClosed()
	}
	defer func() {
		if isDiskFull(err) {
			s.fullAt.Store(time.Now().UnixNano())
		}
	}()
	return s.committer.Do(ctx, fn)
}

// batch is what the ops of one transaction did, to be published after
// the COMMIT.
type batch struct {
	scopes  map[string]*envy.ScopeVars // new state by path, for later ops; nil: gone, or not known
	rev     int64                      // the newest revision taken, starting from the committed one
	notices []envy.Notice              // what the ops did, in order, for subscribers
	// forget is set by an op that changes stored vars without a state of
	// the scope (a reseal, a load): Store.known is dropped after it.
	forget bool
	// keys is the ids of the data keys, read once per batch by the first
	// write that stores a sealed value (nil: not read; an op that adds or
	// deletes data keys sets it back to nil), and newestKey the highest.
	// keyGone: a write was refused for a retired data key.
	keys      map[uint32]bool
	newestKey uint32
	keyGone   bool
}

// maxKnown bounds Store.known; past it, it starts again empty.
const maxKnown = 1024

// runBatch runs the ops in one transaction, each in its own savepoint so
// that one failing op leaves the others' work in place, commits once,
// publishes its notices and only then answers. The
// committer gives it only ops whose callers wait for their answers.
func (s *Store) runBatch(live []*op) {
	var b *batch
	answer := func(errs []error, all error) {
		if b != nil && b.keyGone {
			// A write sealed under a retired data key was refused: the
			// keyring that sealed it reloads the data keys before its
			// caller tries again.
			s.Publish(storeutil.RetiredKeyNotice(b.newestKey))
		}
		for i, o := range live {
			if all != nil {
				o.Answer(all)
			} else {
				o.Answer(errs[i])
			}
		}
	}

	ctx := context.Background()
	if _, err := s.wexec(ctx, `BEGIN IMMEDIATE`); err != nil {
		answer(nil, unavailable("begin", err))
		return
	}
	b = &batch{scopes: make(map[string]*envy.ScopeVars), rev: s.rev.Load()}
	errs := make([]error, len(live))
	ok := 0
	for i, o := range live {
		t := &txn{s: s, ctx: context.WithoutCancel(o.Context()), b: b, now: storeutil.Now()}
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
			b.forget = b.forget || t.forget
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
	s.remember(b)
	// Publish before answering, so that a caller who got its answer reads
	// its own write: a cache that the notices evict (storecache) relies on
	// it.
	s.rev.Store(b.rev)
	s.Publish(b.notices...)
	answer(errs, nil)
}

// remember keeps in Store.known the scopes as batch b committed them. A
// batch that rolls back leaves known as it was: it held what the file
// holds. A batch with a reseal or a load keeps nothing, its own states
// neither: a write before the reseal in the batch kept the old bytes.
func (s *Store) remember(b *batch) {
	if b.forget || s.known == nil || len(s.known)+len(b.scopes) > maxKnown {
		s.known = make(map[string]*envy.ScopeVars)
	}
	if b.forget {
		return
	}
	for p, sv := range b.scopes {
		if sv == nil {
			delete(s.known, p)
		} else {
			s.known[p] = sv
		}
	}
}

// runOp runs one op inside a savepoint. err is the op's own failure,
// rolled back to the savepoint; fatal means the whole transaction is lost.
func (s *Store) runOp(t *txn, o *op) (err, fatal error) {
	ctx := context.Background()
	if _, err := s.wexec(ctx, `SAVEPOINT op`); err != nil {
		return nil, dbErr("savepoint", err)
	}
	err = storeutil.Safely(func() error { return o.Arg(t) })
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
	forget  bool // it changed stored vars without keeping their scope's state (batch.forget)
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
// does not exist: the state an earlier op of the batch left, when one
// kept it, or else the database's.
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
	} else if sv, ok := t.s.known[path]; ok && !t.forget && !t.b.forget {
		return sv, nil // as the last batch that wrote it committed it
	}
	t.s.loads.Add(1)
	return loadScopeVars(t.ctx, t.query, path)
}

// liveKeys checks that every data key of ids is in the store, as this
// transaction sees it: a value sealed under a key that a rotation retired
// since would open nowhere once the servers that hold the key restart
// (storeutil.RetiredKey). The writer is the one writer of the file, and a
// retirement runs on it too, so a check in the transaction is enough. The
// ids are read once per batch.
func (t *txn) liveKeys(ids []uint32) error {
	b := t.b
	if b.keys == nil {
		all, err := t.dataKeyIDs(-1)
		if err != nil {
			return err
		}
		keys, newest := make(map[uint32]bool, len(all)), uint32(0)
		for _, id := range all {
			keys[id], newest = true, max(newest, id)
		}
		b.keys, b.newestKey = keys, newest
	}
	for _, id := range ids {
		if !b.keys[id] {
			b.keyGone = true
			return storeutil.RetiredKey(id)
		}
	}
	return nil
}

// setScope records the scope's new state (nil: deleted) for the later ops
// of the batch.
func (t *txn) setScope(path string, sv *envy.ScopeVars) {
	if t.scopes == nil {
		t.scopes = make(map[string]*envy.ScopeVars)
	}
	t.scopes[path] = sv
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
