package sqlite

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/storetest"
)

func openTest(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) envy.Store {
		// A real file on disk: the durability settings are part of what
		// is under test, and an in-memory database has none.
		return openTest(t, filepath.Join(t.TempDir(), "envy.db"))
	})
}

// setVars plans setting each name to its value from the vars cur, the
// way the service would: same id and next version for an existing var.
func setVars(cur []envy.StoredVar, kv ...string) []envy.VarChange {
	var out []envy.VarChange
	for i := 0; i+1 < len(kv); i += 2 {
		c := envy.VarChange{Name: kv[i], ID: "id-" + kv[i], Version: 1, Sealed: []byte(kv[i+1])}
		for _, v := range cur {
			if v.Name == kv[i] {
				c.Version, c.Base = v.Version+1, v.Version
			}
		}
		out = append(out, c)
	}
	return out
}

// varsOf returns a scope's vars as they are now, none when it is missing.
func varsOf(t testing.TB, s *Store, scope string) []envy.StoredVar {
	t.Helper()
	tree, err := s.ScopeTree(context.Background(), scope)
	if envy.ErrorCode(err) == envy.ENotFound {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return tree[scope].Vars
}

func mustWrite(t testing.TB, s *Store, scope string, kv ...string) envy.WriteResult {
	t.Helper()
	res, err := s.Write(context.Background(), envy.Write{Scope: scope, Actor: "tester", CreateScope: true, Changes: setVars(varsOf(t, s, scope), kv...)})
	if err != nil {
		t.Fatalf("write %s: %v", scope, err)
	}
	return res
}

func TestDurableAcrossCloseAndReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "data", "envy.db") // the parent dir doesn't exist yet
	s := openTest(t, path)
	mustWrite(t, s, "app", "A", "1", "B", "2")
	last := mustWrite(t, s, "app", "A", "3")
	if _, _, err := s.PutScope(ctx, envy.ScopeWrite{Path: "child", Plan: func(*envy.Scope, func(string) (envy.Scope, error)) (string, []string, error) {
		return "kid", []string{"app"}, nil
	}}); err != nil {
		t.Fatal(err)
	}
	tok := envy.Token{ID: "t1", Name: "admin", Owner: "admin", Hash: []byte("h1"), CreatedAt: time.Now()}
	if _, err := s.CreateToken(ctx, tok, true, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.AddDataKey(ctx, envy.DataKey{ID: 1, Wrapped: []byte("w")}); err != nil {
		t.Fatal(err)
	}
	wantRev, _ := s.Revision(ctx)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, path)
	defer s.Close()
	if rev, _ := s.Revision(ctx); rev != wantRev {
		t.Fatalf("Revision after reopen = %d, want %d", rev, wantRev)
	}
	tree, err := s.ScopeTree(ctx, "child")
	if err != nil {
		t.Fatal(err)
	}
	app := tree["app"]
	if app == nil || len(app.Vars) != 2 || string(app.Vars[0].Sealed) != "3" || app.Vars[0].Version != 2 || app.Scope.Revision != last.Revision {
		t.Fatalf("app after reopen = %+v", app)
	}
	if _, err := s.TokenByHash(ctx, []byte("h1")); err != nil {
		t.Fatalf("token after reopen: %v", err)
	}
	if keys, err := s.DataKeys(ctx); err != nil || len(keys) != 1 {
		t.Fatalf("data keys after reopen = %v, %v", keys, err)
	}
	if hist, err := s.History(ctx, "app", envy.HistoryCursor{}, 0); err != nil || len(hist) != 3 {
		t.Fatalf("history after reopen = %d changes, %v; want 3", len(hist), err)
	}
	// The counter goes on from where it was, never reusing a number.
	if res := mustWrite(t, s, "app", "C", "1"); res.Revision != wantRev+1 {
		t.Fatalf("first revision after reopen = %d, want %d", res.Revision, wantRev+1)
	}
}

func TestMigrationsAreIdempotentOnReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "envy.db")
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("embedded migrations: %v, %v", files, err)
	}
	for i := range 3 {
		s := openTest(t, path)
		if i == 0 {
			mustWrite(t, s, "app", "A", "1")
		}
		var n, newest int
		if err := s.readers.QueryRowContext(ctx, `SELECT COUNT(*), MAX(version) FROM schema_migrations`).Scan(&n, &newest); err != nil {
			t.Fatal(err)
		}
		// The newest is the last file's number (a number may be missing:
		// a migration of a branch not merged yet).
		last, _, _ := strings.Cut(filepath.Base(files[len(files)-1]), "_")
		if n != len(files) || strconv.Itoa(newest) != strings.TrimLeft(last, "0") {
			t.Fatalf("open #%d: schema_migrations has %d rows up to %d, want %d up to %s", i+1, n, newest, len(files), last)
		}
		if sc, err := s.GetScope(ctx, "app"); err != nil || sc.VarCount != 1 {
			t.Fatalf("open #%d: app = %+v, %v", i+1, sc, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenRefusesANewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "envy.db")
	s := openTest(t, path)
	if _, err := s.wconn.ExecContext(context.Background(), `INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err := Open(context.Background(), path)
	if err == nil {
		s.Close()
		t.Fatal("Open accepted a database from a newer binary")
	}
	if !strings.Contains(err.Error(), "schema version 999") || !strings.Contains(err.Error(), "newer than this binary") {
		t.Fatalf("Open failed, but not for the newer schema: %v", err)
	}
}

// blockWriter occupies the writer goroutine until release is called, so
// that a test can queue ops behind it and see them form one batch.
func blockWriter(t *testing.T, s *Store) (release func()) {
	t.Helper()
	entered := make(chan struct{})
	gate := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.do(context.Background(), func(*txn) error {
			close(entered)
			<-gate
			return nil
		})
	}()
	<-entered
	return func() {
		close(gate)
		if err := <-done; err != nil {
			t.Errorf("blocking op: %v", err)
		}
	}
}

// waitQueued waits until n ops wait in the writer's queue.
func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(s.queue) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d ops queued, want %d", len(s.queue), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestGroupCommit(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "envy.db"))
	defer s.Close()
	mustWrite(t, s, "app", "A", "0")

	release := blockWriter(t, s)
	before := s.commits.Load()
	const n = 20
	boom := envy.Errorf(envy.EInvalid, "boom")
	type result struct {
		i   int
		res envy.WriteResult
		err error
	}
	results := make(chan result, n)
	a := varsOf(t, s, "app")[0]
	for i := range n {
		// The first two queue in order and both change A: the second is
		// planned from the version the first leaves, so it goes through
		// only if it sees the first's work in the same batch.
		w := envy.Write{Scope: "app", Actor: "tester", Changes: setVars(nil, fmt.Sprintf("V%02d", i), "x")}
		switch {
		case i < 2:
			w.Changes = []envy.VarChange{{Name: "A", ID: a.ID, Version: a.Version + int64(i) + 1, Base: a.Version + int64(i), Sealed: []byte(fmt.Sprint(i))}}
		case i%4 == 3:
			// Stale, after the ops before it wrote: its savepoint must
			// undo only its own work.
			w.Changes = append(setVars(nil, "BAD", "x"), envy.VarChange{Name: "A", Delete: true, Base: -1})
		}
		go func() {
			res, err := s.Write(context.Background(), w)
			results <- result{i, res, err}
		}()
		if i < 2 {
			waitQueued(t, s, i+1)
		}
	}
	// And an op that fails after it took a revision and wrote: rolling
	// back to its savepoint must undo both.
	ghost := make(chan error, 1)
	go func() {
		ghost <- s.do(context.Background(), func(t *txn) error {
			rev, err := t.nextRevision()
			if err != nil {
				return err
			}
			if _, err := t.exec(`INSERT INTO scopes (path, description, inherits, revision, created_at, updated_at) VALUES ('ghost', '', '[]', ?, 0, 0)`, rev); err != nil {
				return err
			}
			return boom
		})
	}()
	waitQueued(t, s, n+1)
	release()
	if err := <-ghost; err != boom {
		t.Fatalf("failing op = %v, want its error", err)
	}
	if _, err := s.GetScope(context.Background(), "ghost"); envy.ErrorCode(err) != envy.ENotFound {
		t.Fatalf("GetScope(ghost) = %v: a failed op's write survived", err)
	}

	revs := map[int64]bool{}
	for range n {
		r := <-results
		if r.i%4 == 3 {
			if !errors.Is(r.err, envy.ErrStale) {
				t.Errorf("write %d = %v, want ErrStale", r.i, r.err)
			}
			continue
		}
		if r.err != nil {
			t.Fatalf("write %d: %v", r.i, r.err)
		}
		if revs[r.res.Revision] {
			t.Fatalf("revision %d given twice", r.res.Revision)
		}
		revs[r.res.Revision] = true
	}
	// The blocking op's own commit, then one for all twenty.
	if got := s.commits.Load() - before; got > 2 {
		t.Errorf("%d commits for %d queued writes, want them grouped into one", got, n)
	}
	sv, err := s.ScopeTree(context.Background(), "app")
	if err != nil {
		t.Fatal(err)
	}
	vars := sv["app"].Vars
	if len(vars) != 1+n-n/4-2 {
		t.Fatalf("app has %d vars, want %d", len(vars), 1+n-n/4-2)
	}
	for _, v := range vars {
		if v.Name == "BAD" {
			t.Fatal("a failed op's write survived")
		}
	}
	if a := vars[0]; a.Name != "A" || a.Version != 3 {
		t.Fatalf("A = %+v, want version 3: each op sees the ones before it in the batch", a)
	}
	if rev, _ := s.Revision(context.Background()); rev != int64(1+n-n/4) {
		t.Fatalf("Revision = %d, want %d: failed ops must give their numbers back", rev, 1+n-n/4)
	}
}

func TestCancelWhileQueued(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "envy.db"))
	defer s.Close()
	release := blockWriter(t, s)

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := s.Write(ctx, envy.Write{Scope: "app", CreateScope: true, Changes: setVars(nil, "A", "1")})
		errc <- err
	}()
	waitQueued(t, s, 1)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Write = %v, want context.Canceled while queued", err)
	}
	release()
	mustWrite(t, s, "other", "B", "1") // the writer goes on, and has skipped the cancelled op
	if _, err := s.GetScope(context.Background(), "app"); envy.ErrorCode(err) != envy.ENotFound {
		t.Fatalf("GetScope(app) = %v, want not found", err)
	}
}

func TestAPanickingOpFailsOnlyItself(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "envy.db"))
	defer s.Close()
	err := s.do(context.Background(), func(*txn) error { panic("op bug") })
	if err == nil || envy.ErrorCode(err) != envy.EInternal {
		t.Fatalf("do = %v, want an internal error", err)
	}
	mustWrite(t, s, "app", "A", "1")
}

func TestCloseFinishesQueuedWritesThenRefuses(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "envy.db")
	s := openTest(t, path)
	release := blockWriter(t, s)
	const n = 5
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			_, err := s.Write(ctx, envy.Write{Scope: fmt.Sprintf("s%d", i), CreateScope: true, Changes: setVars(nil, "A", "1")})
			errs <- err
		})
	}
	waitQueued(t, s, n)
	closed := make(chan error)
	go func() { closed <- s.Close() }()
	for !s.closed.Load() {
		time.Sleep(time.Millisecond)
	}
	release()
	wg.Wait()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a write queued before Close failed: %v", err)
		}
	}
	_, err := s.Write(ctx, envy.Write{Scope: "late", CreateScope: true, Changes: setVars(nil, "A", "1")})
	if envy.ErrorCode(err) != envy.EUnavailable {
		t.Fatalf("Write after Close = %v, want unavailable", err)
	}
	if _, err := s.ScopeTree(ctx, "s0"); envy.ErrorCode(err) != envy.EUnavailable {
		t.Fatalf("ScopeTree after Close = %v, want unavailable", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	s = openTest(t, path)
	defer s.Close()
	if rev, _ := s.Revision(ctx); rev != n {
		t.Fatalf("Revision after reopen = %d, want %d", rev, n)
	}
}

// BenchmarkWriteParallel measures durable single-var writes with 32
// concurrent writers (on GOMAXPROCS=2, as in docs/benchmarks.md), each write
// acknowledged only after its group commit is on disk.
func BenchmarkWriteParallel(b *testing.B) {
	s := openTest(b, filepath.Join(b.TempDir(), "envy.db"))
	defer s.Close()
	ctx := context.Background()
	// A 50-var scope, as the design's benchmark uses.
	var kv []string
	for i := range 50 {
		kv = append(kv, fmt.Sprintf("VAR_%02d", i), "value")
	}
	mustWrite(b, s, "bench", kv...)
	var (
		n         atomic.Int64
		mu        sync.Mutex
		latencies []time.Duration
	)
	b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			i := n.Add(1)
			name := fmt.Sprintf("VAR_%02d", i%50)
			t0 := time.Now()
			// Planned again when another writer changed the var meanwhile,
			// as the service does.
			var err error
			for {
				_, err = s.Write(ctx, envy.Write{Scope: "bench", Actor: "bench", Changes: setVars(varsOf(b, s, "bench"), name, fmt.Sprint(i))})
				if !errors.Is(err, envy.ErrStale) {
					break
				}
			}
			if err != nil {
				b.Error(err)
				return
			}
			mine = append(mine, time.Since(t0))
		}
		mu.Lock()
		latencies = append(latencies, mine...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "writes/s")
	if len(latencies) > 0 {
		slices.Sort(latencies)
		b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
	}
	if c := s.commits.Load(); c > 0 {
		b.ReportMetric(float64(b.N)/float64(c), "writes/commit")
	}
}

// BenchmarkScopeTreeParallel measures the hot read path: a 50-var scope
// with one inherited scope, as in docs/benchmarks.md, served from the cache.
func BenchmarkScopeTreeParallel(b *testing.B) {
	s := openTest(b, filepath.Join(b.TempDir(), "envy.db"))
	defer s.Close()
	ctx := context.Background()
	var kv []string
	for i := range 50 {
		kv = append(kv, fmt.Sprintf("VAR_%02d", i), "sk-0123456789abcdef0123456789abcdef")
	}
	mustWrite(b, s, "base", kv[:20]...)
	mustWrite(b, s, "app", kv...)
	if _, _, err := s.PutScope(ctx, envy.ScopeWrite{Path: "app", Plan: func(*envy.Scope, func(string) (envy.Scope, error)) (string, []string, error) {
		return "", []string{"base"}, nil
	}}); err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			tree, err := s.ScopeTree(ctx, "app")
			if err != nil || len(tree) != 2 {
				b.Errorf("ScopeTree = %d scopes, %v", len(tree), err)
				return
			}
		}
	})
}
