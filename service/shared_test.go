package service_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/pgtest"
	"github.com/envy-dev/envy/postgres"
	"github.com/envy-dev/envy/service"
)

// deafStore is a real PostgreSQL store whose notices reach nobody.
type deafStore struct{ *postgres.Store }

func (deafStore) Subscribe(func(envy.Notice)) (cancel func()) { return func() {} }

// twoServers returns two services on one new PostgreSQL database, as two
// servers sharing it, with an admin caller's context. The second hears no
// notice at all, so whatever it serves right after a change made through
// the first owes nothing to a notice.
func twoServers(t *testing.T) (first, deaf *service.Service, second *postgres.Store, ctx context.Context) {
	t.Helper()
	first, deaf, ctx = serversWith(t, func(st *postgres.Store) envy.Store {
		second = st
		return deafStore{st}
	})
	return first, deaf, second, ctx
}

// serversWith returns two services on one new PostgreSQL database, as two
// servers sharing it, with an admin caller's context. The second serves
// what wrap makes of its own store (nil: the store as it is).
func serversWith(t *testing.T, wrap func(*postgres.Store) envy.Store) (first, second *service.Service, ctx context.Context) {
	t.Helper()
	url := pgtest.NewDatabase(t)
	keyFile := filepath.Join(t.TempDir(), "master.key")
	first, ctx = newServiceKeyed(t, openShared(t, url), keyFile)
	st := openShared(t, url)
	var store envy.Store = st
	if wrap != nil {
		store = wrap(st)
	}
	second, _ = newServiceKeyed(t, store, keyFile)
	return first, second, ctx
}

// openShared opens the PostgreSQL database at url as one more server
// would, closed when the test ends.
func openShared(t *testing.T, url string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// resolved reads a resolved env as "NAME=value from scope; " in name order.
func resolved(t *testing.T, svc *service.Service, ctx context.Context, scope string) string {
	t.Helper()
	e, err := svc.Env(ctx, scope)
	if err != nil {
		t.Fatalf("Env(%s): %v", scope, err)
	}
	var b strings.Builder
	for _, v := range e.Vars {
		fmt.Fprintf(&b, "%s=%s from %s; ", v.Name, v.Value.Reveal(), v.From)
	}
	return b.String()
}

// own reads a scope's own vars as "NAME=value; " in name order.
func own(t *testing.T, svc *service.Service, ctx context.Context, scope string) string {
	t.Helper()
	l, err := svc.ListVars(ctx, scope, true)
	if err != nil {
		t.Fatalf("ListVars(%s): %v", scope, err)
	}
	var b strings.Builder
	for _, v := range l.Items {
		fmt.Fprintf(&b, "%s=%s; ", v.Name, v.Value.Reveal())
	}
	return b.String()
}

func inherit(t *testing.T, svc *service.Service, ctx context.Context, scope string, parents ...string) {
	t.Helper()
	if _, _, err := svc.PutScope(ctx, scope, envy.ScopeInput{Inherits: &parents}, envy.Cond{}); err != nil {
		t.Fatal(err)
	}
}

// TestAWriteIsReadThroughAnotherServerAtOnce: servers on one PostgreSQL
// database keep the scopes they read, yet a read that starts after a
// write was acknowledged by another server sees it, with no notice to
// help: each use of what a server keeps is checked against the database.
// What it keeps is used (the scope cache's hits count) while nothing
// changed.
func TestAWriteIsReadThroughAnotherServerAtOnce(t *testing.T) {
	first, deaf, _, ctx := twoServers(t)
	setVar(t, first, ctx, "base", "A", "1")
	setVar(t, first, ctx, "base", "B", "1")
	setVar(t, first, ctx, "app", "C", "1")
	inherit(t, first, ctx, "app", "base")

	check := func(step, wantEnv, wantList string) {
		t.Helper()
		if got := resolved(t, deaf, ctx, "app"); got != wantEnv {
			t.Errorf("%s: the other server's env is %q, want %q", step, got, wantEnv)
		}
		if got := own(t, deaf, ctx, "app"); got != wantList {
			t.Errorf("%s: the other server's list is %q, want %q", step, got, wantList)
		}
	}
	check("first read", "A=1 from base; B=1 from base; C=1 from app; ", "C=1; ")
	hits := cacheStats(deaf, "scopes").Hits
	check("nothing changed", "A=1 from base; B=1 from base; C=1 from app; ", "C=1; ")
	if got := cacheStats(deaf, "scopes").Hits; got < hits+2 {
		t.Errorf("reading again what did not change made %d hits of the scope cache, want 2", got-hits)
	}

	setVar(t, first, ctx, "base", "A", "2") // an inherited scope's var
	check("an inherited var changed", "A=2 from base; B=1 from base; C=1 from app; ", "C=1; ")
	setVar(t, first, ctx, "app", "C", "2") // the scope's own var
	check("an own var changed", "A=2 from base; B=1 from base; C=2 from app; ", "C=2; ")

	// Re-parented: app inherits other instead of base.
	setVar(t, first, ctx, "other", "A", "3")
	inherit(t, first, ctx, "app", "other")
	check("re-parented", "A=3 from other; C=2 from app; ", "C=2; ")

	// The inherited scope deleted and made again with other vars, while
	// the other server keeps the old one.
	inherit(t, first, ctx, "app")
	if _, err := first.DeleteScope(ctx, "other", envy.Cond{}); err != nil {
		t.Fatal(err)
	}
	setVar(t, first, ctx, "other", "D", "4")
	inherit(t, first, ctx, "app", "other")
	check("inherited scope deleted and made again", "C=2 from app; D=4 from other; ", "C=2; ")

	// The scope itself deleted.
	inherit(t, first, ctx, "app")
	check("no longer inherits", "C=2 from app; ", "C=2; ")
	if _, err := first.DeleteScope(ctx, "app", envy.Cond{}); err != nil {
		t.Fatal(err)
	}
	if _, err := deaf.Env(ctx, "app"); envy.ErrorCode(err) != envy.ENotFound {
		t.Errorf("Env of a scope deleted through the other server: %v, want not found", err)
	}
	if _, err := deaf.ListVars(ctx, "app", false); envy.ErrorCode(err) != envy.ENotFound {
		t.Errorf("ListVars of a scope deleted through the other server: %v, want not found", err)
	}
	if st := cacheStats(deaf, "scopes"); st.Entries != 2 { // base and other, not app
		t.Errorf("the scope cache keeps %d scopes once app is found deleted, want 2", st.Entries)
	}
}

// TestATokenRevokedThroughAnotherServerIsRefusedAtOnce: servers on one
// PostgreSQL database keep the tokens they authenticated (the token
// cache's hits count), yet one revoked through another server is refused
// at once, with no notice to help; so is the token it minted.
func TestATokenRevokedThroughAnotherServerIsRefusedAtOnce(t *testing.T) {
	first, deaf, _, _ := twoServers(t)
	bg := context.Background()
	plain, created, err := first.Bootstrap(bg, "")
	if err != nil || !created {
		t.Fatalf("Bootstrap: %v, %v", created, err)
	}
	as := func(plain string) context.Context {
		t.Helper()
		tok, err := first.Authenticate(bg, plain)
		if err != nil {
			t.Fatal(err)
		}
		return service.WithCaller(bg, &service.Caller{Token: tok})
	}
	all := []envy.Grant{{Scopes: "**", Actions: []envy.Action{envy.ActAdmin}}}
	parent, parentPlain, err := first.CreateToken(as(plain), envy.TokenInput{Name: "ci", Permissions: all})
	if err != nil {
		t.Fatal(err)
	}
	_, childPlain, err := first.CreateToken(as(parentPlain), envy.TokenInput{Name: "child", Permissions: all})
	if err != nil {
		t.Fatal(err)
	}

	for _, p := range []string{parentPlain, childPlain, parentPlain, childPlain} {
		if _, err := deaf.Authenticate(bg, p); err != nil {
			t.Fatalf("Authenticate on the other server: %v", err)
		}
	}
	if st := cacheStats(deaf, "tokens"); st.Hits < 2 {
		t.Errorf("authenticating each token twice made %d hits of the token cache, want 2", st.Hits)
	}

	if err := first.RevokeToken(as(plain), parent.ID); err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]string{"the revoked token": parentPlain, "the token it minted": childPlain} {
		if _, err := deaf.Authenticate(bg, p); envy.ErrorCode(err) != envy.EUnauthenticated {
			t.Errorf("%s on the other server, at once: %v, want unauthenticated", name, err)
		}
	}
	if _, err := deaf.Authenticate(bg, plain); err != nil {
		t.Errorf("a token not revoked: %v", err)
	}
}

// requestAbout returns the context of a request about scope with the
// token plain, authenticated as the HTTP layer does: the token and the
// cached tree of scope checked together.
func requestAbout(t *testing.T, svc *service.Service, plain, scope string) context.Context {
	t.Helper()
	ctx, _ := authenticated(t, svc.AuthenticateFor, plain, scope)
	return ctx
}

// authenticated returns the context of a request about scope with the
// token plain, and its caller, authenticated by auth (one of the
// Service's Authenticate methods) as the HTTP layer does.
func authenticated(t *testing.T, auth func(ctx context.Context, plain, scope string) (*envy.Token, error), plain, scope string) (context.Context, *service.Caller) {
	t.Helper()
	c := &service.Caller{}
	ctx := service.WithCaller(context.Background(), c)
	tok, err := auth(ctx, plain, scope)
	if err != nil {
		t.Fatal(err)
	}
	c.Token = tok
	return ctx, c
}

// TestAuthenticationChecksTheRequestsScope: a request about a scope has
// its token and the scope's cached tree checked together, and its read of
// that tree uses the check: the tree as kept when it had not changed, the
// tree read again when it had, through another server, before the request.
func TestAuthenticationChecksTheRequestsScope(t *testing.T) {
	first, deaf, _, ctx := twoServers(t)
	plain, _, err := first.Bootstrap(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	setVar(t, first, ctx, "base", "A", "1")
	setVar(t, first, ctx, "app", "B", "1")
	inherit(t, first, ctx, "app", "base")
	request := func() string { // as the HTTP layer authenticates, then reads
		t.Helper()
		return resolved(t, deaf, requestAbout(t, deaf, plain, "app"), "app")
	}
	request() // keeps the token and the tree
	hits := cacheStats(deaf, "scopes").Hits
	if got, want := request(), "A=1 from base; B=1 from app; "; got != want {
		t.Errorf("env %q, want %q", got, want)
	}
	if got := cacheStats(deaf, "scopes").Hits; got != hits+1 {
		t.Errorf("a request about a scope that did not change made %d hits of the scope cache, want 1", got-hits)
	}
	setVar(t, first, ctx, "base", "A", "2")
	if got, want := request(), "A=2 from base; B=1 from app; "; got != want {
		t.Errorf("after a change through the other server, env %q, want %q", got, want)
	}
}

// TestChecksOfManyCallers: checks asked at once, which share queries, each
// get their own answer.
func TestChecksOfManyCallers(t *testing.T) {
	first, _, store, ctx := twoServers(t)
	setVar(t, first, ctx, "a", "X", "1")
	setVar(t, first, ctx, "b", "X", "1")
	revOf := func(p string) int64 {
		sc, err := store.GetScope(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		return sc.Revision
	}
	a, b := revOf("a"), revOf("b")
	cases := []struct {
		paths []string
		revs  []int64
		token string
		want  bool
	}{
		{paths: []string{"a"}, revs: []int64{a}, want: true},
		{paths: []string{"a", "b"}, revs: []int64{a, b}, want: true},
		{paths: []string{"a", "b"}, revs: []int64{a, b + 1}},
		{paths: []string{"b"}, revs: []int64{a}},
		{paths: []string{"a", "gone"}, revs: []int64{a, a}},
		{token: "nope"},
	}
	errs := make(chan error, 20*len(cases))
	for range 20 {
		for _, c := range cases {
			go func() {
				scopesOK, live, err := store.Check(ctx, c.paths, c.revs, c.token)
				got := scopesOK
				if c.token != "" {
					got = scopesOK && live
				}
				if err == nil && got != c.want {
					err = fmt.Errorf("check of %v %v %q = %v, want %v", c.paths, c.revs, c.token, got, c.want)
				}
				errs <- err
			}()
		}
	}
	for range 20 * len(cases) {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestWritesOnPostgreSQLPlanFromTheCommittedState: on PostgreSQL, a
// server's write comes back through LISTEN with the scope as committed,
// which the cache keeps: the next write to that scope plans from it with
// one lookup of the cache, a hit, and reads nothing (the check of a plain
// value for reference cycles reads no tree either).
func TestWritesOnPostgreSQLPlanFromTheCommittedState(t *testing.T) {
	url := pgtest.NewDatabase(t)
	store, err := postgres.Open(context.Background(), url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	svc, ctx := newServiceKeyed(t, store, filepath.Join(t.TempDir(), "master.key"))
	heard := make(chan envy.Notice, 16)
	defer store.Subscribe(func(n envy.Notice) {
		if n.Kind == envy.NoticeScope {
			heard <- n
		}
	})()
	// waitFor returns once the notices of the writes before it have been published
	// to every subscriber: the notice of a later change, to another scope,
	// comes after it, on the same goroutine.
	sentinel := 0
	waitFor := func() {
		t.Helper()
		sentinel++
		setVar(t, svc, ctx, "sentinel", "S", fmt.Sprint(sentinel))
		deadline := time.After(10 * time.Second)
		for {
			select {
			case n := <-heard:
				if n.Scope == "sentinel" {
					return
				}
			case <-deadline:
				t.Fatal("no notice of the sentinel's write within 10 s")
			}
		}
	}
	setVar(t, svc, ctx, "hot", "A", "1")
	waitFor()
	setVar(t, svc, ctx, "hot", "B", "1")
	waitFor()
	before := cacheStats(svc, "scopes")
	setVar(t, svc, ctx, "hot", "A", "2")
	after := cacheStats(svc, "scopes")
	if misses := after.Misses - before.Misses; misses != 0 {
		t.Errorf("a write to a scope this server just wrote missed the scope cache %d times: the committed state was not kept, or the tree was read twice", misses)
	}
	if hits := after.Hits - before.Hits; hits != 1 {
		t.Errorf("a write of a plain value looked the scope up %d times, want 1 (its plan)", hits)
	}
	if got := own(t, svc, ctx, "hot"); got != "A=2; B=1; " {
		t.Errorf("hot holds %q, want A=2; B=1; ", got)
	}
}

// TestAWritePlannedFromAStaleCacheIsSafe: on a shared store, a write whose
// request found the cached tree of its scope changed plans from that tree
// rather than reading the scope (planTree). Every way an older tree could
// mislead the plan is caught: a var deleted and set again since (same
// version, another id, now secret) is not overwritten by a change planned
// from the old one; a value that the old tree already holds is written,
// not taken for unchanged; an update of a var the old tree lacks is not
// refused as missing.
func TestAWritePlannedFromAStaleCacheIsSafe(t *testing.T) {
	first, deaf, _, ctx := twoServers(t)
	plain, _, err := first.Bootstrap(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	// on runs f as a request to the deaf server about scope.
	on := func(scope string, f func(rctx context.Context)) {
		t.Helper()
		f(requestAbout(t, deaf, plain, scope))
	}
	setVar(t, first, ctx, "app", "X", "1")
	setVar(t, first, ctx, "app", "SAME", "1")
	on("app", func(rctx context.Context) { own(t, deaf, rctx, "app") }) // the deaf server caches app
	// Each case changes app through the other server first, so that the
	// deaf server's cached tree is older than what the case writes over.
	setVar(t, first, ctx, "app", "SAME", "2")
	on("app", func(rctx context.Context) { setVar(t, deaf, rctx, "app", "SAME", "1") })
	setVar(t, first, ctx, "app", "NEW", "1")
	on("app", func(rctx context.Context) {
		v := envy.NewSensitive("2")
		if _, _, err := deaf.SetVar(rctx, "app", "NEW", envy.VarInput{Value: &v}, envy.SetOptions{Mode: envy.UpdateOnly}); err != nil {
			t.Errorf("an update of NEW, which the deaf server's cache lacks: %v", err)
		}
	})
	// X deleted and set again as a secret: a new var at version 1.
	if _, err := first.DeleteVar(ctx, "app", "X", envy.Cond{}); err != nil {
		t.Fatal(err)
	}
	secret, v := true, envy.NewSensitive("s3cret")
	if _, _, err := first.SetVar(ctx, "app", "X", envy.VarInput{Value: &v, Secret: &secret}, envy.SetOptions{}); err != nil {
		t.Fatal(err)
	}
	on("app", func(rctx context.Context) {
		d := "described"
		if _, _, err := deaf.SetVar(rctx, "app", "X", envy.VarInput{Description: &d}, envy.SetOptions{}); err != nil {
			t.Fatalf("a description of X through the deaf server: %v", err)
		}
	})
	if got, want := own(t, first, ctx, "app"), "NEW=2; SAME=1; X=s3cret; "; got != want {
		t.Errorf("app holds %q, want %q", got, want)
	}
	l, err := first.ListVars(ctx, "app", true)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range l.Items {
		if x.Name == "X" && (!x.Secret || x.Description != "described") {
			t.Errorf("X is secret %v with description %q, want a secret described: the change was planned from the var deleted since", x.Secret, x.Description)
		}
	}
}

// TestAnotherServersWriteKeepsTheCachedScope: on a shared store a notice
// of another server's write leaves the cached scope in place (every use
// of it is checked anyway), so that the next write to the scope through
// this server plans from it, as from the notice of its own write, instead
// of reading the whole scope again: servers that write one scope by turns
// would otherwise each read it for nearly every write.
func TestAnotherServersWriteKeepsTheCachedScope(t *testing.T) {
	var secondStore *postgres.Store
	first, second, ctx := serversWith(t, func(st *postgres.Store) envy.Store { secondStore = st; return st })
	plain, _, err := first.Bootstrap(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	heard := make(chan envy.Notice, 16)
	defer secondStore.Subscribe(func(n envy.Notice) {
		if n.Kind == envy.NoticeScope {
			heard <- n
		}
	})()
	setVar(t, first, ctx, "app", "A", "1")
	own(t, second, requestAbout(t, second, plain, "app"), "app") // the second server caches app
	b := envy.NewSensitive("1")
	_, info, err := first.SetVar(ctx, "app", "B", envy.VarInput{Value: &b}, envy.SetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.After(10 * time.Second); ; {
		select {
		case n := <-heard:
			if n.Scope != "app" || n.Revision < info.Revision {
				continue
			}
		case <-deadline:
			t.Fatal("the second server heard no notice of the first's write within 10 s")
		}
		break
	}
	before := cacheStats(second, "scopes")
	setVar(t, second, requestAbout(t, second, plain, "app"), "app", "C", "1")
	if misses := cacheStats(second, "scopes").Misses - before.Misses; misses != 0 {
		t.Errorf("a write to app after another server's write missed the scope cache %d times: the notice dropped the cached scope, which the write then read again", misses)
	}
	if got := own(t, first, ctx, "app"); got != "A=1; B=1; C=1; " {
		t.Errorf("app holds %q, want A=1; B=1; C=1; ", got)
	}
}

// gatedTrees is a PostgreSQL store whose reads of scope trees, once armed,
// are counted and wait at gate before they answer what they read.
type gatedTrees struct {
	*postgres.Store
	armed atomic.Bool
	reads atomic.Int32
	gate  chan struct{}
}

func (g *gatedTrees) ScopeTree(ctx context.Context, path string) (map[string]*envy.ScopeVars, error) {
	tree, err := g.Store.ScopeTree(ctx, path)
	if g.armed.Load() {
		g.reads.Add(1)
		<-g.gate
	}
	return tree, err
}

// TestWritesToAnUncachedScopeShareOneRead: writers who reach a scope that
// the cache lacks at the same moment (a new scope, or one not read since
// a restart) plan from one read of it, not one each; every write still
// lands.
func TestWritesToAnUncachedScopeShareOneRead(t *testing.T) {
	g := &gatedTrees{Store: openShared(t, pgtest.NewDatabase(t)), gate: make(chan struct{})}
	svc, ctx := newServiceKeyed(t, g, filepath.Join(t.TempDir(), "master.key"))
	plain, _, err := svc.Bootstrap(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	const writers = 16
	ctxs := make([]context.Context, writers)
	for i := range ctxs {
		ctxs[i] = requestAbout(t, svc, plain, "fresh")
	}
	g.armed.Store(true)
	errs := make(chan error, writers)
	for i, rctx := range ctxs {
		go func() {
			v := envy.NewSensitive("1")
			_, _, err := svc.SetVar(rctx, "fresh", fmt.Sprintf("V_%02d", i), envy.VarInput{Value: &v}, envy.SetOptions{})
			errs <- err
		}()
	}
	// Give every writer the time to reach the read, then let it go.
	for deadline := time.Now().Add(2 * time.Second); g.reads.Load() < writers && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	close(g.gate)
	for range writers {
		if err := <-errs; err != nil {
			t.Fatalf("a write to fresh: %v", err)
		}
	}
	if n := g.reads.Load(); n > writers/2 {
		t.Errorf("%d writers of a scope the cache lacked read it %d times, want them to share a read", writers, n)
	}
	if got := own(t, svc, ctx, "fresh"); strings.Count(got, "=1; ") != writers {
		t.Errorf("fresh holds %q, want %d vars", got, writers)
	}
}

// A write that joins another's read of a scope may get a state from
// before the request: a scope that read found missing, but that was
// created (through another server) before the request, is read again
// before the write is refused for it.
func TestAJoinedReadOfAMissingScopeIsReadAgain(t *testing.T) {
	var g *gatedTrees
	first, second, ctx := serversWith(t, func(st *postgres.Store) envy.Store {
		g = &gatedTrees{Store: st, gate: make(chan struct{})}
		return g
	})
	plain, _, err := first.Bootstrap(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	c1, c2 := requestAbout(t, second, plain, "later"), requestAbout(t, second, plain, "later")
	g.armed.Store(true)
	done := make(chan error, 2)
	go func() { // its read of "later" starts before the scope exists
		v := envy.NewSensitive("1")
		_, _, err := second.SetVar(c1, "later", "A", envy.VarInput{Value: &v}, envy.SetOptions{})
		done <- err
	}()
	for deadline := time.Now().Add(5 * time.Second); g.reads.Load() < 1; {
		if time.Now().After(deadline) {
			t.Fatal("the first write never read the scope")
		}
		time.Sleep(5 * time.Millisecond)
	}
	setVar(t, first, ctx, "later", "X", "1") // acknowledged before the delete's request
	go func() {
		_, err := second.DeleteVar(c2, "later", "X", envy.Cond{})
		done <- err
	}()
	// The delete joins the read in flight (or, unjoined, starts its own).
	for deadline := time.Now().Add(300 * time.Millisecond); g.reads.Load() < 2 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	close(g.gate)
	for range 2 {
		if err := <-done; err != nil {
			t.Errorf("a write to later through the second server: %v", err)
		}
	}
	if got := own(t, first, ctx, "later"); got != "A=1; " {
		t.Errorf("later holds %q, want A=1; ", got)
	}
}

// countedTrees is a deaf PostgreSQL store (no notices) that counts its
// reads of scope trees.
type countedTrees struct {
	deafStore
	reads atomic.Int32
}

func (c *countedTrees) ScopeTree(ctx context.Context, path string) (map[string]*envy.ScopeVars, error) {
	c.reads.Add(1)
	return c.deafStore.ScopeTree(ctx, path)
}

// countedServers is twoServers whose deaf server counts its reads of
// scope trees, with the first's bootstrapped admin token.
func countedServers(t *testing.T) (first, second *service.Service, counted *countedTrees, plain string, ctx context.Context) {
	t.Helper()
	first, second, ctx = serversWith(t, func(st *postgres.Store) envy.Store {
		counted = &countedTrees{deafStore: deafStore{st}}
		return counted
	})
	plain, _, err := first.Bootstrap(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return first, second, counted, plain, ctx
}

// TestAStaleWritePlansAgainFromWhatTheStoreFound: a write planned from a
// cached scope that another server changed since is refused by the store
// as stale; the store read the scope under its lock anyway, and hands it
// back (envy.StaleError), so the write plans again from it without
// reading the scope again, and lands.
func TestAStaleWritePlansAgainFromWhatTheStoreFound(t *testing.T) {
	first, second, counted, plain, ctx := countedServers(t)
	setVar(t, first, ctx, "app", "X", "1")
	own(t, second, requestAbout(t, second, plain, "app"), "app") // the second server caches app
	setVar(t, first, ctx, "app", "X", "2")                       // and the first changes it
	before := counted.reads.Load()
	setVar(t, second, requestAbout(t, second, plain, "app"), "app", "X", "3")
	if reads := counted.reads.Load() - before; reads != 0 {
		t.Errorf("the write planned from a stale cached app read app's tree %d times: it must plan again from the scope the store found", reads)
	}
	if got := own(t, first, ctx, "app"); got != "X=3; " {
		t.Errorf("app holds %q, want X=3; ", got)
	}
}

// TestAWriteWhoseTokenItChecksPlansFromTheCachedScope: a var write that
// left its token's check to itself (AuthenticateWrite) checked no cached
// tree either: it plans from the scope as cached, though another server
// changed it since (another var), without a check or a read of its own,
// and lands, the store checking the var it changes.
func TestAWriteWhoseTokenItChecksPlansFromTheCachedScope(t *testing.T) {
	first, second, counted, plain, ctx := countedServers(t)
	setVar(t, first, ctx, "app", "X", "1")
	own(t, second, requestAbout(t, second, plain, "app"), "app") // the second server caches app and the token
	setVar(t, first, ctx, "app", "Y", "1")                       // the first changes app
	wctx, c := writeRequest(t, second, plain, "app")
	if !c.Deferred() {
		t.Fatal("AuthenticateWrite of a cached token on a shared store did not leave its check to the write")
	}
	before := counted.reads.Load()
	setVar(t, second, wctx, "app", "X", "2")
	if reads := counted.reads.Load() - before; reads != 0 {
		t.Errorf("the write read app's tree %d times: it must plan from the cached scope", reads)
	}
	if got := own(t, first, ctx, "app"); got != "X=2; Y=1; " {
		t.Errorf("app holds %q, want X=2; Y=1; ", got)
	}
}

// writeRequest returns the context of a var write with the token plain,
// authenticated as the HTTP layer does (AuthenticateWrite).
func writeRequest(t *testing.T, svc *service.Service, plain, scope string) (context.Context, *service.Caller) {
	t.Helper()
	return authenticated(t, svc.AuthenticateWrite, plain, scope)
}

// TestAMergePlannedFromAnOlderScopeLosesNothing: a merge planned from a
// cached scope older than the database (another server changed it since)
// may take one of its values for unchanged, or skip the delete of a var
// the cached scope lacks, while its other changes land: what it left out
// was decided from the older scope, which the store can't check, so it
// is decided again from a fresh read. Both ways a request plans from the
// cache: with its token's check left to the write, and with a check that
// found the cached scope changed.
func TestAMergePlannedFromAnOlderScopeLosesNothing(t *testing.T) {
	for _, how := range []string{"deferred", "checked"} {
		t.Run(how, func(t *testing.T) {
			first, second, _, plain, ctx := countedServers(t)
			setVar(t, first, ctx, "app", "A", "1")
			own(t, second, requestAbout(t, second, plain, "app"), "app") // the second server caches app
			setVar(t, first, ctx, "app", "A", "5")                       // the first changes A
			setVar(t, first, ctx, "app", "D", "x")                       // and creates D
			rctx := requestAbout(t, second, plain, "app")
			if how == "deferred" {
				rctx, _ = writeRequest(t, second, plain, "app")
			}
			one, two := envy.NewSensitive("1"), envy.NewSensitive("2")
			if _, err := second.MergeVars(rctx, "app", map[string]*envy.VarInput{"A": {Value: &one}, "B": {Value: &two}, "D": nil}, envy.SetOptions{}); err != nil {
				t.Fatal(err)
			}
			if got := own(t, first, ctx, "app"); got != "A=1; B=2; " {
				t.Errorf("app holds %q after merging A=1, B=2 and deleting D, want A=1; B=2; ", got)
			}
		})
	}
}
