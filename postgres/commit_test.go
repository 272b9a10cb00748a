package postgres

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/pgtest"
	"github.com/envy-dev/envy/internal/storeutil"
)

// setChange is the change that sets name to value from the var's state
// cur (nil: new).
func setChange(name, value string, cur *envy.StoredVar) envy.VarChange {
	c := envy.VarChange{Name: name, ID: rand.Text(), Version: 1, Sealed: []byte(value)}
	if cur != nil {
		c.ID, c.Version, c.Base = cur.ID, cur.Version+1, cur.Version
	}
	return c
}

// varOf reads a var as the store holds it, nil when it is missing.
func varOf(t testing.TB, s *Store, scope, name string) *envy.StoredVar {
	t.Helper()
	tree, err := s.ScopeTree(context.Background(), scope)
	if envy.ErrorCode(err) == envy.ENotFound {
		return nil
	}
	if err != nil {
		t.Fatalf("ScopeTree(%s): %v", scope, err)
	}
	for _, v := range tree[scope].Vars {
		if v.Name == name {
			return &v
		}
	}
	return nil
}

// set writes one var, planned from what the store holds.
func set(t testing.TB, s *Store, scope, name, value string) envy.WriteResult {
	t.Helper()
	res, err := s.Write(context.Background(), envy.Write{Scope: scope, Actor: "tester", CreateScope: true,
		Changes: []envy.VarChange{setChange(name, value, varOf(t, s, scope, name))}})
	if err != nil {
		t.Fatalf("write %s/%s: %v", scope, name, err)
	}
	return res
}

// blocker holds the advisory lock of a scope from a connection of its
// own, so that a write to it, once the committer has taken it into a
// batch, waits in PostgreSQL: the committer is busy and the ops queued
// after it form the next batch together.
type blocker struct {
	t    *testing.T
	tx   pgx.Tx
	conn *pgx.Conn
	res  chan error
}

const blockedScope = "blocked"

// block blocks a write to blockedScope whose caller has ctx. With set, it
// sets a var; without, it changes nothing and takes no revision.
func block(t *testing.T, s *Store, url string, ctx context.Context, set bool) *blocker {
	t.Helper()
	conn, tx := ownTx(t, url)
	if _, err := tx.Exec(context.Background(), `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, blockedScope); err != nil {
		t.Fatal(err)
	}
	b := &blocker{t: t, tx: tx, conn: conn, res: make(chan error, 1)}
	var changes []envy.VarChange
	if set {
		changes = []envy.VarChange{setChange("B", "1", nil)}
	}
	go func() {
		_, err := s.Write(ctx, envy.Write{Scope: blockedScope, Actor: "tester", CreateScope: true, Changes: changes})
		b.res <- err
	}()
	b.waitLockWaiters(1)
	return b
}

// ownTx begins a transaction on a connection of the test's own.
func ownTx(t *testing.T, url string) (*pgx.Conn, pgx.Tx) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	tx, err := conn.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return conn, tx
}

// waitLockWaiters waits until n transactions wait for an advisory lock.
func (b *blocker) waitLockWaiters(n int) {
	b.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting int
		if err := b.conn.QueryRow(context.Background(), `SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`).Scan(&waiting); err != nil {
			b.t.Fatal(err)
		}
		if waiting >= n {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%d transactions wait for an advisory lock, want %d", waiting, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// release lets the blocked writes commit and checks that they did.
func (b *blocker) release() {
	b.t.Helper()
	if err := b.tx.Rollback(context.Background()); err != nil {
		b.t.Fatal(err)
	}
	if err := <-b.res; err != nil {
		b.t.Fatalf("the blocked write: %v", err)
	}
}

// waitQueued waits until n ops wait in the committer's queue.
func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(s.committer.Queue) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d ops queued, want %d", len(s.committer.Queue), n)
		}
		time.Sleep(time.Millisecond)
	}
}

type outcome struct {
	res envy.WriteResult
	err error
}

// queue starts each write in turn, in order behind the blocker, and
// returns where each one's outcome arrives.
func queue(t *testing.T, s *Store, ws ...envy.Write) []chan outcome {
	t.Helper()
	out := make([]chan outcome, len(ws))
	for i, w := range ws {
		out[i] = make(chan outcome, 1)
		go func() {
			res, err := s.Write(context.Background(), w)
			out[i] <- outcome{res, err}
		}()
		waitQueued(t, s, i+1)
	}
	return out
}

// TestBatchAnswersEachWrite: writes queued together commit in one
// transaction, in queue order; a stale one is answered ErrStale and left
// out without failing the others; a write that depends on the revision
// of a scope an earlier write of the batch changed gets the answer it
// would get one at a time.
func TestBatchAnswersEachWrite(t *testing.T) {
	url := pgtest.NewDatabase(t)
	s := openTest(t, url)
	set(t, s, "app", "A", "0")
	a := varOf(t, s, "app", "A")
	b := block(t, s, url, context.Background(), false)
	before := s.commits.Load()

	out := queue(t, s,
		// Sets A.
		envy.Write{Scope: "app", Actor: "one", Changes: []envy.VarChange{setChange("A", "1", a)}},
		// Planned from the same A: stale once the first has applied.
		envy.Write{Scope: "app", Actor: "stale", Changes: []envy.VarChange{setChange("A", "2", a)}},
		// Another var of the same scope, and a new scope.
		envy.Write{Scope: "app", Actor: "two", Changes: []envy.VarChange{setChange("C", "1", nil)}},
		envy.Write{Scope: "new", Actor: "three", CreateScope: true, Changes: []envy.VarChange{setChange("N", "1", nil)}},
		// If-Match on the revision that the write to "new" takes: it
		// holds, serially, and so must it here.
		envy.Write{Scope: "new", Actor: "four", IfRevision: 4, Changes: []envy.VarChange{setChange("M", "1", nil)}},
		// A write that changes nothing answers the scope's revision: the
		// one that "two" takes.
		envy.Write{Scope: "app", Actor: "none", Changes: []envy.VarChange{{Name: "GONE", Delete: true}}},
	)
	b.release()
	got := make([]outcome, len(out))
	for i, c := range out {
		got[i] = <-c
	}
	for i, want := range []int64{2, 0, 3, 4, 5, 3} {
		if i == 1 {
			if !errors.Is(got[i].err, envy.ErrStale) {
				t.Errorf("write %d = %+v, %v; want ErrStale", i, got[i].res, got[i].err)
			}
			// It holds app as the batch committed it, for the service to
			// plan again from: A set by write 0, C by write 2, revision 3.
			var se *envy.StaleError
			if !errors.As(got[i].err, &se) || se.Current == nil {
				t.Errorf("write %d's error %v holds no scope", i, got[i].err)
				continue
			}
			cur := se.Current
			if a := storeutilFind(cur.Vars, "A"); cur.Scope.Revision != 3 || a == nil || string(a.Sealed) != "1" || a.Revision != 2 || storeutilFind(cur.Vars, "C") == nil {
				t.Errorf("write %d's error holds app at revision %d with vars %+v; want app as the batch committed it (revision 3, A=1 at revision 2, C)", i, cur.Scope.Revision, cur.Vars)
			}
			continue
		}
		if got[i].err != nil || got[i].res.Revision != want {
			t.Errorf("write %d = %+v, %v; want revision %d", i, got[i].res, got[i].err, want)
		}
	}
	if !got[3].res.ScopeCreated || got[0].res.ScopeCreated || got[4].res.ScopeCreated {
		t.Errorf("ScopeCreated = %v %v %v, want only the write that created the scope", got[0].res.ScopeCreated, got[3].res.ScopeCreated, got[4].res.ScopeCreated)
	}
	if got[5].res.Changed {
		t.Errorf("the write that changes nothing answered %+v", got[5].res)
	}
	// The blocked write's transaction, one for the batch, one for the
	// two writes that waited for the batch's revisions.
	if n := s.commits.Load() - before; n != 3 {
		t.Errorf("%d transactions, want 3", n)
	}
	if v := varOf(t, s, "app", "A"); v == nil || string(v.Sealed) != "1" || v.Revision != 2 {
		t.Errorf("A = %+v, want the first write's", v)
	}
	if rev, _ := s.Revision(context.Background()); rev != 5 {
		t.Errorf("Revision = %d, want 5: the stale write takes none", rev)
	}
	hist, err := s.History(context.Background(), "app", envy.HistoryCursor{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 3 {
		t.Errorf("app has %d history rows, want 3", len(hist))
	}
}

// TestAFailingOpFailsOnlyItself: when one op of a batch breaks the
// transaction (here a value PostgreSQL refuses: text can't hold a NUL),
// the batch runs again one op per transaction, so the others commit and
// the failing one alone gets the error.
func TestAFailingOpFailsOnlyItself(t *testing.T) {
	url := pgtest.NewDatabase(t)
	s := openTest(t, url)
	b := block(t, s, url, context.Background(), false)

	bad := setChange("BAD", "x", nil)
	bad.Description = "nul\x00"
	out := queue(t, s,
		envy.Write{Scope: "app", Actor: "tester", CreateScope: true, Changes: []envy.VarChange{setChange("A", "1", nil)}},
		envy.Write{Scope: "app", Actor: "tester", Changes: []envy.VarChange{bad}},
		envy.Write{Scope: "other", Actor: "tester", CreateScope: true, Changes: []envy.VarChange{setChange("B", "1", nil)}},
	)
	// Audit entries of no write don't queue behind the writes (see
	// AppendAudit): they are answered while the writes wait, each call
	// with its own outcome.
	if err := s.AppendAudit(context.Background(), envy.AuditEntry{Actor: "nul\x00", Action: "reveal", Scope: "app", Status: 200}); err == nil {
		t.Error("the audit entry PostgreSQL refuses was accepted")
	}
	if err := s.AppendAudit(context.Background(), envy.AuditEntry{Actor: "ok", Action: "reveal", Scope: "app", Status: 200}); err != nil {
		t.Errorf("a good audit entry: %v", err)
	}
	b.release()

	for i, c := range out {
		o := <-c
		if (o.err != nil) != (i == 1) {
			t.Errorf("write %d = %+v, %v", i, o.res, o.err)
		}
	}
	if s.split.Load() != 1 {
		t.Errorf("%d batches ran op by op, want 1", s.split.Load())
	}
	if varOf(t, s, "app", "A") == nil || varOf(t, s, "other", "B") == nil || varOf(t, s, "app", "BAD") != nil {
		t.Error("the good writes must be in, the bad one out")
	}
	if rev, _ := s.Revision(context.Background()); rev != 2 {
		t.Errorf("Revision = %d, want 2: the failed write gives its number back", rev)
	}
	entries, err := s.ListAudit(context.Background(), envy.AuditQuery{Actor: "ok"})
	if err != nil || len(entries) != 1 {
		t.Errorf("ListAudit = %v, %v; want the good entry", entries, err)
	}
}

// TestAFailedCommitFailsOnlyItsOwnWrite makes the COMMIT of a batch fail
// for real, with a deferred foreign key that PostgreSQL checks at COMMIT
// and nowhere before (here on the history's actor: one write's actor is
// not in the table it references): the batch runs again one write per
// transaction, and only the write that breaks the constraint fails; the
// others commit, each with its own revision, and none is acknowledged
// that did not commit.
func TestAFailedCommitFailsOnlyItsOwnWrite(t *testing.T) {
	url := pgtest.NewDatabase(t)
	s := openTest(t, url)
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), `CREATE TABLE actors (name TEXT PRIMARY KEY);
		INSERT INTO actors VALUES ('good');
		ALTER TABLE history ADD CONSTRAINT history_actor FOREIGN KEY (actor) REFERENCES actors (name) DEFERRABLE INITIALLY DEFERRED`); err != nil {
		t.Fatal(err)
	}
	b := block(t, s, url, context.Background(), false)
	var ws []envy.Write
	for i := range 6 {
		actor := "good"
		if i == 3 {
			actor = "poison"
		}
		ws = append(ws, envy.Write{Scope: "app", Actor: actor, CreateScope: true, Changes: []envy.VarChange{setChange(fmt.Sprintf("V%d", i), "x", nil)}})
	}
	out := queue(t, s, ws...)
	b.release()
	revs := map[int64]bool{}
	for i, c := range out {
		o := <-c
		if i == 3 {
			if o.err == nil {
				t.Errorf("the write whose COMMIT fails was acknowledged: %+v", o.res)
			}
			continue
		}
		if o.err != nil {
			t.Errorf("write %d: %v", i, o.err)
			continue
		}
		revs[o.res.Revision] = true
	}
	if s.split.Load() != 1 {
		t.Errorf("%d batches ran op by op, want 1", s.split.Load())
	}
	if varOf(t, s, "app", "V3") != nil {
		t.Error("the write whose COMMIT failed is in")
	}
	for i := range 6 {
		if v := varOf(t, s, "app", fmt.Sprintf("V%d", i)); (v != nil) != (i != 3) {
			t.Errorf("V%d = %+v", i, v)
		}
	}
	if rev, _ := s.Revision(context.Background()); rev != 5 || len(revs) != 5 {
		t.Errorf("Revision = %d, %d revisions answered; want 5 of each: the failed write gives its number back", rev, len(revs))
	}
}

// TestACancelledCallerGetsTheRealOutcome: a caller whose context ends
// while its write waits in the queue is told so and the write never runs;
// one whose write was already taken into a batch waits for that batch and
// hears that it committed.
func TestACancelledCallerGetsTheRealOutcome(t *testing.T) {
	url := pgtest.NewDatabase(t)
	s := openTest(t, url)

	// Taken: a blocked write is in the committer's transaction.
	ctx, cancel := context.WithCancel(context.Background())
	b := block(t, s, url, ctx, true)
	taken := b.res

	// Queued behind it.
	qctx, qcancel := context.WithCancel(context.Background())
	queued := make(chan error, 1)
	go func() {
		_, err := s.Write(qctx, envy.Write{Scope: "queued", CreateScope: true, Changes: []envy.VarChange{setChange("A", "1", nil)}})
		queued <- err
	}()
	waitQueued(t, s, 1)
	qcancel()
	if err := <-queued; !errors.Is(err, context.Canceled) {
		t.Fatalf("the queued write = %v, want context.Canceled", err)
	}

	cancel()
	select {
	case err := <-taken:
		t.Fatalf("the taken write answered %v before its transaction ended", err)
	case <-time.After(50 * time.Millisecond):
	}
	b.release() // fails unless the taken write's answer is that it committed
	if varOf(t, s, blockedScope, "B") == nil {
		t.Fatal("the taken write is not in")
	}
	set(t, s, "after", "A", "1") // the committer went on, past the cancelled op
	if _, err := s.GetScope(context.Background(), "queued"); envy.ErrorCode(err) != envy.ENotFound {
		t.Fatalf("GetScope(queued) = %v: a write whose caller gave up while it was queued ran", err)
	}
}

// TestManyWritersOnTwoServersShareCommits: many writers on two stores
// sharing one database, to one hot scope and to scopes of their own, lose
// nothing; the revisions are exactly 1..N; each store's subscribers hear
// every write's notice, in revision order; and writes share commits.
func TestManyWritersOnTwoServersShareCommits(t *testing.T) {
	url := pgtest.NewDatabase(t)
	stores := []*Store{openTest(t, url), openTest(t, url)}
	const writers, each = 16, 20 // per store
	const total = 2 * writers * each

	heard := make([]chan int64, len(stores))
	for i, s := range stores {
		heard[i] = make(chan int64, total+100)
		cancel := s.Subscribe(func(n envy.Notice) {
			if n.Kind == envy.NoticeScope {
				heard[i] <- n.Revision
			}
		})
		defer cancel()
	}

	var (
		mu   sync.Mutex
		revs = map[int64]string{}
		wg   sync.WaitGroup
	)
	errs := make(chan error, 2*writers)
	for si, s := range stores {
		for w := range writers {
			wg.Go(func() {
				scope := fmt.Sprintf("own/%d/%d", si, w)
				if w%2 == 0 {
					scope = "hot"
				}
				name := fmt.Sprintf("V_%d_%d", si, w)
				var cur *envy.StoredVar
				for i := range each {
					res, err := s.Write(context.Background(), envy.Write{Scope: scope, Actor: name, CreateScope: true,
						Changes: []envy.VarChange{setChange(name, fmt.Sprint(i), cur)}})
					if err != nil {
						errs <- fmt.Errorf("%s: %w", name, err)
						return
					}
					cur = &res.Vars[0]
					mu.Lock()
					if other, ok := revs[res.Revision]; ok {
						errs <- fmt.Errorf("revision %d given to %s and %s", res.Revision, other, name)
					}
					revs[res.Revision] = name
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for r := int64(1); r <= total; r++ {
		if revs[r] == "" {
			t.Fatalf("revision %d is missing: %d revisions for %d writes", r, len(revs), total)
		}
	}
	for i := range stores {
		for want := int64(1); want <= total; want++ {
			select {
			case got := <-heard[i]:
				if got != want {
					t.Fatalf("store %d heard revision %d, want %d: notices come in revision order", i, got, want)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("store %d heard no notice of revision %d", i, want)
			}
		}
	}
	for si := range stores {
		for w := range writers {
			scope := fmt.Sprintf("own/%d/%d", si, w)
			if w%2 == 0 {
				scope = "hot"
			}
			if v := varOf(t, stores[0], scope, fmt.Sprintf("V_%d_%d", si, w)); v == nil || v.Version != each {
				t.Errorf("%s V_%d_%d = %+v, want version %d", scope, si, w, v, each)
			}
		}
	}
	var commits, ops int64
	for _, s := range stores {
		commits, ops = commits+s.commits.Load(), ops+s.committed.Load()
	}
	if ops != total || commits >= ops {
		t.Errorf("%d writes in %d transactions: want them to share commits", ops, commits)
	}
}

// BenchmarkWriteParallel measures single-var writes of 32 writers to one
// 50-var scope, each to a var of its own, and how many writes share a
// transaction.
func BenchmarkWriteParallel(b *testing.B) {
	s := openTest(b, pgtest.NewDatabase(b))
	for i := range 50 {
		set(b, s, "bench", fmt.Sprintf("VAR_%02d", i), "value")
	}
	var n atomic.Int64
	commits, ops := s.commits.Load(), s.committed.Load()
	b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		// Each writer its own var, planned from its last write.
		name := fmt.Sprintf("VAR_%02d", n.Add(1)%50)
		cur := varOf(b, s, "bench", name)
		for i := 0; pb.Next(); i++ {
			res, err := s.Write(context.Background(), envy.Write{Scope: "bench", Actor: "bench",
				Changes: []envy.VarChange{setChange(name, fmt.Sprint(i), cur)}})
			if err != nil {
				b.Error(err)
				return
			}
			cur = &res.Vars[0]
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "writes/s")
	if c := s.commits.Load() - commits; c > 0 {
		b.ReportMetric(float64(s.committed.Load()-ops)/float64(c), "writes/commit")
	}
}

// Audit entries of no write take no revision: they commit while a write
// waits for the revision row, which another transaction holds, instead
// of queueing behind it. Aggregated refusals appended at once, in batches
// that name their buckets in opposite orders, add up to the exact count.
func TestAuditAppendsDontWaitForTheRevisionRow(t *testing.T) {
	url := pgtest.NewDatabase(t)
	s := openTest(t, url)
	conn, tx := ownTx(t, url)
	if _, err := tx.Exec(context.Background(), `SELECT revision FROM meta WHERE id = 1 FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	wrote := make(chan error, 1)
	go func() {
		_, err := s.Write(context.Background(), envy.Write{Scope: "app", Actor: "tester", CreateScope: true, Changes: []envy.VarChange{setChange("A", "1", nil)},
			Audit: []envy.AuditEntry{{Actor: "tester", Action: "var.set", Scope: "app", Status: 200, RequestID: "req-write"}}})
		wrote <- err
	}()
	// The committer's transaction waits for the row.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		var waiting int
		if err := conn.QueryRow(context.Background(), `SELECT COUNT(*) FROM pg_locks WHERE NOT granted`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the write never waited for the revision row")
		}
	}

	// A bound, so that a failure does not hang; nothing depends on its length.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.AppendAudit(ctx, envy.AuditEntry{Actor: "tester", Action: "reveal", Scope: "app", Status: 200, RequestID: "req-reveal"}); err != nil {
		t.Fatalf("an audit entry appended while a write waits for the revision row: %v", err)
	}
	at := time.Now()
	refusal := func(client string) envy.AuditEntry {
		return envy.AuditEntry{At: at, Action: "env.read", Scope: "app", Status: 401, Client: client, Count: 1, Aggregate: true}
	}
	const goroutines, each = 8, 25
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				a, b := refusal("10.0.0.1"), refusal("10.0.0.2")
				if g%2 == 1 {
					a, b = b, a
				}
				if err := s.AppendAudit(ctx, a, b); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-wrote:
		t.Fatalf("the write finished while the revision row was held: %v", err)
	default:
	}
	if err := tx.Rollback(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}

	entries, err := s.ListAudit(context.Background(), envy.AuditQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int64{}
	for _, e := range entries {
		switch {
		case e.Aggregate || e.Status == 401:
			counts[e.Client] += e.Count
		default:
			counts[e.RequestID] += e.Count
		}
	}
	want := map[string]int64{"10.0.0.1": goroutines * each, "10.0.0.2": goroutines * each, "req-reveal": 1, "req-write": 1}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("%s counts %d, want %d", k, counts[k], n)
		}
	}
}

// TestAWriteThatLosesASerializationRaceIsRetried: PostgreSQL aborts a
// transaction that lost a race (a serialization failure, a deadlock); the
// committer runs it again, and the writer sees only its success. The
// failures are made by a trigger that raises serialization_failure the
// first two times (a sequence counts them: it does not roll back).
func TestAWriteThatLosesASerializationRaceIsRetried(t *testing.T) {
	url := pgtest.NewDatabase(t)
	s := openTest(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `CREATE SEQUENCE races;
		CREATE FUNCTION lose_a_race() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF nextval('races') <= 2 THEN
				RAISE EXCEPTION 'lost a race' USING ERRCODE = 'serialization_failure';
			END IF;
			RETURN NEW;
		END $$;
		CREATE TRIGGER lose_a_race BEFORE INSERT ON history FOR EACH ROW EXECUTE FUNCTION lose_a_race()`); err != nil {
		t.Fatal(err)
	}
	res, err := s.Write(ctx, envy.Write{Scope: "app", Actor: "a", CreateScope: true, Changes: []envy.VarChange{setChange("A", "1", nil)}})
	if err != nil {
		t.Fatalf("a write that lost two serialization races: %v; want it retried and committed", err)
	}
	var races int64
	if err := conn.QueryRow(ctx, `SELECT last_value FROM races`).Scan(&races); err != nil {
		t.Fatal(err)
	}
	if races < 3 || res.Revision == 0 {
		t.Fatalf("the write committed at revision %d after %d attempts, want a revision after 3 attempts", res.Revision, races)
	}
}

func storeutilFind(vars []envy.StoredVar, name string) *envy.StoredVar {
	return storeutil.Find(vars, name)
}
