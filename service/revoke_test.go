package service_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/pgtest"
	"github.com/envy-dev/envy/postgres"
	"github.com/envy-dev/envy/service"
	"github.com/envy-dev/envy/sqlite"
)

// watchEndWithin bounds how long a revoked token's watch may stay open.
const watchEndWithin = 20 * time.Second

// revocationStores are the stores whose notices carry a revocation to
// the token cache and the watch hub.
var revocationStores = []struct {
	name string
	open func(t *testing.T) envy.Store
}{
	{"sqlite", func(t *testing.T) envy.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "envy.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}},
	{"postgres", func(t *testing.T) envy.Store {
		s, err := postgres.Open(context.Background(), pgtest.NewDatabase(t), postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}},
}

// newFrozenService returns a service over store whose clock stands still,
// so that a cached token never outlives its time to live during a test:
// only a notice may make the cache forget it.
func newFrozenService(t *testing.T, store envy.Store) *service.Service {
	t.Helper()
	keys := openKeyring(t, store, filepath.Join(t.TempDir(), "master.key"))
	now := time.Now()
	svc := service.New(store, keys, service.Options{Now: func() time.Time { return now }})
	t.Cleanup(svc.Close)
	return svc
}

// lineage is an admin token, a token it minted (parent) and one that
// minted (child), each with its plaintext and a context that acts as it.
type lineage struct {
	admin, parent, child envy.Token
	plain                map[string]string // by token name
}

func (l lineage) as(ctx context.Context, tok envy.Token) context.Context {
	return service.WithCaller(ctx, &service.Caller{Token: &tok})
}

func newLineage(t *testing.T, ctx context.Context, svc *service.Service) lineage {
	t.Helper()
	plain, created, err := svc.Bootstrap(ctx, "")
	if err != nil || !created {
		t.Fatalf("Bootstrap: %v, %v", created, err)
	}
	l := lineage{plain: map[string]string{"admin": plain}}
	admin, err := svc.Authenticate(ctx, plain)
	if err != nil {
		t.Fatal(err)
	}
	l.admin = *admin
	all := []envy.Grant{{Scopes: "**", Actions: []envy.Action{envy.ActAdmin}}}
	parent, parentPlain, err := svc.CreateToken(l.as(ctx, l.admin), envy.TokenInput{Name: "parent", Permissions: all})
	if err != nil {
		t.Fatal(err)
	}
	l.parent, l.plain["parent"] = parent, parentPlain
	child, childPlain, err := svc.CreateToken(l.as(ctx, l.parent), envy.TokenInput{Name: "child", Permissions: all})
	if err != nil {
		t.Fatal(err)
	}
	l.child, l.plain["child"] = child, childPlain
	// Each is authenticated twice: the token cache holds them all.
	for name, p := range l.plain {
		for range 2 {
			if _, err := svc.Authenticate(ctx, p); err != nil {
				t.Fatalf("Authenticate(%s): %v", name, err)
			}
		}
	}
	return l
}

// watchAs opens a watch of scope as tok; the watch ends with the test.
func watchAs(t *testing.T, svc *service.Service, ctx context.Context, tok envy.Token, scope string) <-chan envy.Event {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	ch, err := svc.Watch(service.WithCaller(ctx, &service.Caller{Token: &tok}), scope, 0)
	if err != nil {
		t.Fatalf("Watch(%s) as %s: %v", scope, tok.Name, err)
	}
	return ch
}

// ended reports whether ch is closed within d (events before the close
// are drained).
func ended(ch <-chan envy.Event, d time.Duration) bool {
	deadline := time.After(d)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return true
			}
		case <-deadline:
			return false
		}
	}
}

// openAfter reports whether ch is still open (and silent or not) after d.
func openAfter(ch <-chan envy.Event, d time.Duration) bool {
	return !ended(ch, d)
}

// TestARevokedTokenIsRefusedAtOnceAndItsWatchesEnd: revoking a token
// revokes the tokens it minted; the next request with any of them is
// refused, although the token cache held them, and their watch streams
// end; a token not revoked keeps working and watching. The store's
// notices are the one way a revocation reaches the cache and the hub, on
// the server that made it too.
func TestARevokedTokenIsRefusedAtOnceAndItsWatchesEnd(t *testing.T) {
	for _, st := range revocationStores {
		t.Run(st.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			svc := newFrozenService(t, st.open(t))
			l := newLineage(t, ctx, svc)
			setVar(t, svc, l.as(ctx, l.admin), "app", "A", "1")
			watches := map[string]<-chan envy.Event{
				"admin":  watchAs(t, svc, ctx, l.admin, "app"),
				"parent": watchAs(t, svc, ctx, l.parent, "app"),
				"child":  watchAs(t, svc, ctx, l.child, "app"),
			}

			if err := svc.RevokeToken(l.as(ctx, l.admin), l.parent.ID); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"parent", "child"} {
				if tok, err := svc.Authenticate(ctx, l.plain[name]); envy.ErrorCode(err) != envy.EUnauthenticated {
					t.Errorf("the %s token, right after RevokeToken returned: %v, %v; want unauthenticated: a revocation must reach the token cache before RevokeToken returns", name, tok, err)
				}
			}
			if _, err := svc.Authenticate(ctx, l.plain["admin"]); err != nil {
				t.Errorf("the admin token, not revoked: %v", err)
			}
			deadline := time.Now().Add(watchEndWithin)
			for _, name := range []string{"parent", "child"} {
				if !ended(watches[name], time.Until(deadline)) {
					t.Errorf("the %s token's watch was still open %s after its revocation: a revocation must end the revoked tokens' watch streams", name, watchEndWithin)
				}
			}
			if !openAfter(watches["admin"], 100*time.Millisecond) {
				t.Error("the admin token's watch ended, but the admin token was not revoked")
			}
		})
	}
}

// lossyStore is a real SQLite store whose notices the test can hold back
// (as a PostgreSQL server misses them while its LISTEN connection is
// down) and then tell the service they were lost, as a reconnection
// does.
type lossyStore struct {
	*sqlite.Store
	mu   sync.Mutex
	deaf bool
	fns  []func(envy.Notice)
}

func (s *lossyStore) Subscribe(fn func(envy.Notice)) (cancel func()) {
	s.mu.Lock()
	s.fns = append(s.fns, fn)
	s.mu.Unlock()
	return s.Store.Subscribe(func(n envy.Notice) {
		s.mu.Lock()
		deaf := s.deaf
		s.mu.Unlock()
		if !deaf {
			fn(n)
		}
	})
}

func (s *lossyStore) setDeaf(deaf bool) {
	s.mu.Lock()
	s.deaf = deaf
	s.mu.Unlock()
}

// resync tells every subscriber that notices were lost.
func (s *lossyStore) resync() {
	s.mu.Lock()
	fns := s.fns
	s.mu.Unlock()
	for _, fn := range fns {
		fn(envy.Notice{Kind: envy.NoticeResync})
	}
}

// TestARevocationWhoseNoticeWasLostCountsAtTheResync: while notices are
// lost, a revocation can't reach the cache or the hub; the resync that
// follows must do what its notices would have done.
func TestARevocationWhoseNoticeWasLostCountsAtTheResync(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "envy.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	store := &lossyStore{Store: db}
	svc := newFrozenService(t, store)
	l := newLineage(t, ctx, svc)
	setVar(t, svc, l.as(ctx, l.admin), "app", "A", "1")
	watch := watchAs(t, svc, ctx, l.parent, "app")

	store.setDeaf(true)
	if err := svc.RevokeToken(l.as(ctx, l.admin), l.parent.ID); err != nil {
		t.Fatal(err)
	}
	if !openAfter(watch, 100*time.Millisecond) {
		t.Fatal("the watch ended although the revocation's notice was lost: RevokeToken must not reach the hub another way")
	}
	store.setDeaf(false)
	store.resync()
	for _, name := range []string{"parent", "child"} {
		if _, err := svc.Authenticate(ctx, l.plain[name]); envy.ErrorCode(err) != envy.EUnauthenticated {
			t.Errorf("the %s token after the resync: %v; want unauthenticated: a resync must make the token cache forget every token", name, err)
		}
	}
	if !ended(watch, watchEndWithin) {
		t.Errorf("the revoked token's watch was still open %s after the resync that followed the lost notice: a resync must end the watches of tokens revoked meanwhile", watchEndWithin)
	}
}

// Revoke counts the live tokens it ends, never one already revoked, and
// refuses to end the last global admin unless forced.
func TestRevokeCountsWhatItEndsAndKeepsAnAdmin(t *testing.T) {
	ctx := context.Background()
	store := revocationStores[0].open(t)
	svc := newFrozenService(t, store) // revocations share one instant
	l := newLineage(t, ctx, svc)
	as := l.as(ctx, l.admin)

	// admin → parent → child, all admin on **: ending admin ends them all.
	if n, err := svc.Revoke(as, l.admin.ID, service.RevokeOptions{DryRun: true}); envy.ErrorCode(err) != envy.EConflict || n != 3 {
		t.Fatalf("dry run of revoking every admin: %d, %v; want 3 and a conflict", n, err)
	}
	if n, err := svc.Revoke(as, l.child.ID, service.RevokeOptions{}); err != nil || n != 1 {
		t.Fatalf("revoke child: %d, %v; want 1", n, err)
	}
	if n, err := svc.Revoke(as, l.parent.ID, service.RevokeOptions{DryRun: true}); err != nil || n != 1 {
		t.Fatalf("dry run of revoke parent: %d, %v; want 1", n, err)
	}
	if _, err := svc.Authenticate(ctx, l.plain["parent"]); err != nil {
		t.Fatalf("a dry run revoked: %v", err)
	}
	if n, err := svc.Revoke(as, l.parent.ID, service.RevokeOptions{}); err != nil || n != 1 {
		t.Fatalf("revoke parent after its child: %d, %v; want 1 (the child was already revoked)", n, err)
	}
	err := svc.RevokeToken(as, l.admin.ID)
	if envy.ErrorCode(err) != envy.EConflict || !strings.Contains(err.Error(), "last live token with admin on **") || !strings.Contains(err.Error(), l.admin.ID) {
		t.Fatalf("revoke the last admin: %v; want a conflict naming it and why", err)
	}
	if _, err := svc.Authenticate(ctx, l.plain["admin"]); err != nil {
		t.Fatalf("a refused revocation revoked: %v", err)
	}
	if n, err := svc.Revoke(as, l.admin.ID, service.RevokeOptions{Force: true}); err != nil || n != 1 {
		t.Fatalf("forced revoke of the last admin: %d, %v; want 1", n, err)
	}
	if n, err := svc.Revoke(as, l.admin.ID, service.RevokeOptions{Force: true}); err != nil || n != 0 {
		t.Fatalf("revoke again: %d, %v; want 0", n, err)
	}
	tok, plain, err := svc.RecoverAdmin(ctx, "recovered")
	if err != nil || !envy.IsGlobalAdmin(&tok) {
		t.Fatalf("RecoverAdmin: %+v, %v", tok, err)
	}
	if _, err := svc.Authenticate(ctx, plain); err != nil {
		t.Fatalf("the recovered token: %v", err)
	}
}

// TestTwoServersRevokingTheLastTwoAdminsAtOnceKeepOne: two services (two
// servers: on PostgreSQL each with a store handle of its own on one
// database) each revoke one of the last two admins at once, again and
// again. The service's own count can't see the other's revocation in
// time; the store's check, in the revocation's transaction, must refuse
// one of each pair.
func TestTwoServersRevokingTheLastTwoAdminsAtOnceKeepOne(t *testing.T) {
	for _, st := range []struct {
		name string
		open func(t *testing.T) (envy.Store, envy.Store)
	}{
		{"sqlite", func(t *testing.T) (envy.Store, envy.Store) {
			s := revocationStores[0].open(t)
			return s, s // one server per file: two services over its one store
		}},
		{"postgres", func(t *testing.T) (envy.Store, envy.Store) {
			url := pgtest.NewDatabase(t)
			var out [2]envy.Store
			for i := range out {
				s, err := postgres.Open(context.Background(), url, postgres.Options{})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				out[i] = s
			}
			return out[0], out[1]
		}},
	} {
		t.Run(st.name, func(t *testing.T) {
			if st.name == "postgres" {
				pgtest.ServerURL(t)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			s1, s2 := st.open(t)
			keyFile := filepath.Join(t.TempDir(), "master.key")
			var svcs [2]*service.Service
			for i, s := range []envy.Store{s1, s2} {
				svcs[i] = service.New(s, openKeyring(t, s, keyFile), service.Options{})
				t.Cleanup(svcs[i].Close)
			}
			for round := range 10 {
				var admins [2]envy.Token
				for i := range admins {
					var err error
					if admins[i], _, err = svcs[0].RecoverAdmin(ctx, fmt.Sprintf("admin-%d-%d", round, i)); err != nil {
						t.Fatal(err)
					}
				}
				var errs [2]error
				var wg sync.WaitGroup
				for i := range admins {
					wg.Go(func() {
						as := service.WithCaller(ctx, &service.Caller{Token: &admins[i]})
						_, errs[i] = svcs[i].Revoke(as, admins[i].ID, service.RevokeOptions{})
					})
				}
				wg.Wait()
				refused := 0
				for _, err := range errs {
					switch {
					case envy.ErrorCode(err) == envy.EConflict && strings.Contains(err.Error(), "last live token with admin on **"):
						refused++
					case err != nil:
						t.Fatalf("round %d: %v", round, err)
					}
				}
				if refused != 1 {
					t.Fatalf("round %d: two servers revoking the last two admins at once: %d refused (%v); want one refused, one admin left", round, refused, errs)
				}
				// End the survivor: the next round's two are the last two.
				for i := range admins {
					as := service.WithCaller(ctx, &service.Caller{Token: &admins[i]})
					if _, err := svcs[0].Revoke(as, admins[i].ID, service.RevokeOptions{Force: true}); err != nil && envy.ErrorCode(err) != envy.EUnauthenticated {
						t.Fatal(err)
					}
				}
			}
		})
	}
}

// revokingStore revokes a token the first time a watch asks for its
// consumers or its scope's rollout policy: between the watch's check of
// the token and its joining the hub, where the revocation's notice finds
// no stream of it to end.
type revokingStore struct {
	*sqlite.Store
	once   sync.Once
	revoke func()
}

func (s *revokingStore) Consumers(ctx context.Context, path string, since time.Time) ([]envy.Consumer, error) {
	s.once.Do(s.revoke)
	return s.Store.Consumers(ctx, path, since)
}

// RolloutPolicy is the other read between the check and the join: a watch
// that names its consumer asks whether the scope has a policy.
func (s *revokingStore) RolloutPolicy(ctx context.Context, path string) (*envy.RolloutPolicy, error) {
	s.once.Do(s.revoke)
	return s.Store.RolloutPolicy(ctx, path)
}

// A token revoked while its watch is being opened: the watch is refused
// (or ends), never left open.
func TestAWatchOpenedAsItsTokenIsRevokedDoesNotStayOpen(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st := &revokingStore{Store: revocationStores[0].open(t).(*sqlite.Store)}
	svc := newFrozenService(t, st)
	l := newLineage(t, ctx, svc)
	setVar(t, svc, l.as(ctx, l.admin), "app", "A", "1")
	st.revoke = func() {
		if err := svc.RevokeToken(l.as(ctx, l.admin), l.parent.ID); err != nil {
			t.Error(err)
		}
	}
	ch, err := svc.WatchAs(l.as(ctx, l.parent), "app", 1, "c1")
	if envy.ErrorCode(err) == envy.EUnauthenticated {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if !ended(ch, 2*time.Second) {
		t.Fatal("the watch of a token revoked as it opened is still open")
	}
}
