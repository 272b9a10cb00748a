package storecache_test

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/pgtest"
	"github.com/envy-dev/envy/postgres"
	"github.com/envy-dev/envy/sqlite"
	"github.com/envy-dev/envy/storecache"
	"github.com/envy-dev/envy/storetest"
)

const limit = 1 << 20

func openSQLite(t testing.TB) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "envy.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openPostgres(t testing.TB, url string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestContractOverSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) envy.Store { return storecache.New(openSQLite(t), limit) })
}

func TestContractOverPostgres(t *testing.T) {
	pgtest.ServerURL(t)
	storetest.Run(t, func(t *testing.T) envy.Store { return storecache.New(openPostgres(t, pgtest.NewDatabase(t)), limit) })
}

// write sets name to value in scope, creating it.
func write(t *testing.T, s envy.Store, scope, name, value string) int64 {
	t.Helper()
	ctx := context.Background()
	var base int64
	if tree, err := s.ScopeTree(ctx, scope); err == nil {
		for _, v := range tree[scope].Vars {
			if v.Name == name {
				base = v.Version
			}
		}
	}
	res, err := s.Write(ctx, envy.Write{Scope: scope, Actor: "tester", CreateScope: true, Changes: []envy.VarChange{
		{Name: name, ID: "id-" + name, Sealed: []byte(value), Version: base + 1, Base: base}}})
	if err != nil {
		t.Fatalf("write %s/%s: %v", scope, name, err)
	}
	return res.Revision
}

func inherit(t *testing.T, s envy.Store, scope string, parents ...string) {
	t.Helper()
	if _, _, err := s.PutScope(context.Background(), envy.ScopeWrite{Path: scope, Actor: "tester",
		Plan: func(*envy.Scope, func(string) (envy.Scope, error)) (string, []string, error) { return "", parents, nil }}); err != nil {
		t.Fatalf("PutScope %s: %v", scope, err)
	}
}

// value returns name's sealed bytes in scope's tree, read through s.
func value(t *testing.T, s envy.Store, scope, tscope, name string) string {
	t.Helper()
	tree, err := s.ScopeTree(context.Background(), scope)
	if err != nil {
		t.Fatalf("ScopeTree(%s): %v", scope, err)
	}
	sv, ok := tree[tscope]
	if !ok {
		return "<no scope " + tscope + ">"
	}
	for _, v := range sv.Vars {
		if v.Name == name {
			return string(v.Sealed)
		}
	}
	return "<none>"
}

// readYourWrites is the cache's promise, whatever the store: a read that
// starts after a write returned sees it, vars (NoticeScope), inherits
// (NoticeScopeMeta) and deletes alike, although each scope was cached.
func readYourWrites(t *testing.T, c *storecache.Store, other envy.Store) {
	ctx := context.Background()
	write(t, other, "base", "A", "base-1")
	write(t, other, "app", "A", "app-1")
	for range 2 { // a miss that fills, then a hit
		if got := value(t, c, "app", "app", "A"); got != "app-1" {
			t.Fatalf("app's A = %q, want app-1", got)
		}
	}
	if st := c.Stats(); st.Hits == 0 || st.Entries == 0 {
		t.Fatalf("stats after two reads = %+v: nothing was cached", st)
	}
	write(t, other, "app", "A", "app-2")
	if got := value(t, c, "app", "app", "A"); got != "app-2" {
		t.Fatalf("after a var write app's A = %q, want app-2 (a stale read)", got)
	}
	value(t, c, "base", "base", "A") // base cached too
	inherit(t, other, "app", "base")
	if got := value(t, c, "app", "base", "A"); got != "base-1" {
		t.Fatalf("after app came to inherit base, its tree's base A = %q, want base-1 (a stale read)", got)
	}
	if sc, err := c.GetScope(ctx, "app"); err != nil || !slices.Equal(sc.Inherits, []string{"base"}) {
		t.Fatalf("GetScope(app) after the inherits changed = %+v, %v", sc, err)
	}
	write(t, other, "base", "A", "base-2")
	if got := value(t, c, "app", "base", "A"); got != "base-2" {
		t.Fatalf("after a write to an inherited scope app's tree has base A = %q, want base-2", got)
	}
	inherit(t, other, "app")
	if tree, err := c.ScopeTree(ctx, "app"); err != nil || len(tree) != 1 {
		t.Fatalf("after app stopped inheriting, its tree = %d scopes, %v; want 1", len(tree), err)
	}
	if _, _, err := other.DeleteScope(ctx, "app", 0, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ScopeTree(ctx, "app"); envy.ErrorCode(err) != envy.ENotFound {
		t.Fatalf("ScopeTree of a deleted scope = %v, want not found", err)
	}
	if _, err := c.GetScope(ctx, "app"); envy.ErrorCode(err) != envy.ENotFound {
		t.Fatalf("GetScope of a deleted scope = %v, want not found", err)
	}
}

// On SQLite the notices evict: the writer publishes them before a write
// returns. A cache that ignored one (NoticeScope or NoticeScopeMeta)
// fails here.
func TestNoticesEvictOnSQLite(t *testing.T) {
	c := storecache.New(openSQLite(t), limit)
	readYourWrites(t, c, c)
}

// deaf is a store whose notices reach nobody.
type deaf struct{ *postgres.Store }

func (deaf) Subscribe(func(envy.Notice)) (cancel func()) { return func() {} }

// On PostgreSQL another server's change comes as a notice a moment after
// its commit: the cache checks every use instead. Here the cache hears no
// notice at all and another store instance (another server) writes
// directly to the database: nothing it serves may be stale.
func TestChecksOnPostgres(t *testing.T) {
	pgtest.ServerURL(t)
	url := pgtest.NewDatabase(t)
	c := storecache.New(deaf{openPostgres(t, url)}, limit)
	other := openPostgres(t, url)
	readYourWrites(t, c, other)

	// A Shared store without checks gets no cache.
	plain := storecache.New(noChecks{other}, limit)
	write(t, other, "x", "A", "1")
	value(t, plain, "x", "x", "A")
	value(t, plain, "x", "x", "A")
	if st := plain.Stats(); st.Entries != 0 || st.LimitBytes != 0 {
		t.Fatalf("a shared store without checks got a scope cache: %+v", st)
	}
}

// noChecks hides postgres.Store's Check.
type noChecks struct{ envy.Store }

// racing is a store whose ScopeTree runs hook after it has read, before
// it answers: the hook commits a write in between.
type racing struct {
	*sqlite.Store
	hook func()
}

func (r *racing) ScopeTree(ctx context.Context, path string) (map[string]*envy.ScopeVars, error) {
	tree, err := r.Store.ScopeTree(ctx, path)
	if h := r.hook; h != nil {
		r.hook = nil
		h()
	}
	return tree, err
}

// A reader that loaded a scope before a commit must not put that old
// snapshot in after the commit's notice evicted it: the next read would be
// stale for good.
func TestALoadOlderThanACommitIsNotPut(t *testing.T) {
	r := &racing{Store: openSQLite(t)}
	c := storecache.New(r, limit)
	write(t, c, "app", "A", "1")
	// A write's notice brings its committed state, which the cache keeps:
	// a change of the scope's description (a meta notice, no state)
	// evicts it, so that the next read loads.
	if _, _, err := r.Store.PutScope(context.Background(), envy.ScopeWrite{Path: "app", Actor: "t",
		Plan: func(cur *envy.Scope, _ func(string) (envy.Scope, error)) (string, []string, error) {
			return "evicted", cur.Inherits, nil
		}}); err != nil {
		t.Fatal(err)
	}
	r.hook = func() { write(t, r.Store, "app", "A", "2") }
	value(t, c, "app", "app", "A") // loads 1, then 2 commits and is noticed
	if got := value(t, c, "app", "app", "A"); got != "2" {
		t.Fatalf("after a load that raced with a commit, A = %q, want 2: the old snapshot was put back", got)
	}
}

// A reseal rewrites sealed bytes without a revision or a notice: through
// the cache, the cache lets go of the bytes it replaced.
func TestResealEvicts(t *testing.T) {
	ctx := context.Background()
	c := storecache.New(openSQLite(t), limit)
	if err := c.AddDataKey(ctx, envy.DataKey{ID: 1, Wrapped: []byte("w")}); err != nil {
		t.Fatal(err)
	}
	old := string([]byte{1, 0, 0, 0, 1}) + "v"
	write(t, c, "app", "A", old)
	value(t, c, "app", "app", "A") // cached
	vs, err := c.SealedNotUnder(ctx, 2, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i := range vs {
		vs[i].New = append([]byte{1, 0, 0, 0, 2}, vs[i].Sealed[5:]...)
	}
	if n, err := c.ReplaceSealed(ctx, vs); err != nil || n == 0 {
		t.Fatalf("ReplaceSealed = %d, %v", n, err)
	}
	if got := value(t, c, "app", "app", "A"); !bytes.Equal([]byte(got), append([]byte{1, 0, 0, 0, 2}, 'v')) {
		t.Fatalf("after a reseal the cache serves %q, the bytes from before", got)
	}
}

// counting counts the wrapped store's reads of scope trees.
type counting struct {
	*sqlite.Store
	reads int
}

func (s *counting) ScopeTree(ctx context.Context, path string) (map[string]*envy.ScopeVars, error) {
	s.reads++
	return s.Store.ScopeTree(ctx, path)
}

// A write's notice brings the scope as committed: the cache keeps it, so
// that the next write to the scope (or a read) plans from it without
// reading the scope again.
func TestAWritesCommittedStateIsKeptWithoutARead(t *testing.T) {
	s := &counting{Store: openSQLite(t)}
	c := storecache.New(s, limit)
	write(t, c, "app", "A", "1")
	write(t, c, "app", "B", "2")
	before := s.reads
	if got := value(t, c, "app", "app", "B"); got != "2" {
		t.Fatalf("B = %q, want 2", got)
	}
	if s.reads != before {
		t.Fatalf("a read after a write read the scope from the store again (%d reads): the committed state was not kept", s.reads-before)
	}
}
