package service_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/crypto"
	"github.com/envy-dev/envy/service"
	"github.com/envy-dev/envy/sqlite"
)

// copyingStore is a real SQLite store that hands out fresh copies of its
// snapshots, as a store without a scope cache does, and counts token
// lookups.
type copyingStore struct {
	*sqlite.Store
	tokenLookups atomic.Int64
}

func (s *copyingStore) ScopeTree(ctx context.Context, path string) (map[string]*envy.ScopeVars, error) {
	tree, err := s.Store.ScopeTree(ctx, path)
	out := make(map[string]*envy.ScopeVars, len(tree))
	for p, sv := range tree {
		c := *sv
		c.Vars = slices.Clone(sv.Vars)
		out[p] = &c
	}
	return out, err
}

func (s *copyingStore) TokenByHash(ctx context.Context, hash []byte) (envy.Token, error) {
	s.tokenLookups.Add(1)
	return s.Store.TokenByHash(ctx, hash)
}

func newCacheService(t *testing.T, opts service.Options) (*service.Service, *copyingStore, context.Context) {
	t.Helper()
	var store *copyingStore
	svc, ctx := newServiceOver(t, opts, func(db *sqlite.Store) envy.Store {
		store = &copyingStore{Store: db}
		return store
	})
	return svc, store, ctx
}

// newServiceOver returns a Service over a new SQLite store as wrap wraps
// it, and a context whose caller is a global admin.
func newServiceOver(t *testing.T, opts service.Options, wrap func(*sqlite.Store) envy.Store) (*service.Service, context.Context) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "envy.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	mk, _, err := crypto.OpenMasterKeyFile(filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mk.Close() })
	keys, err := crypto.OpenKeyring(ctx, mk, db)
	if err != nil {
		t.Fatal(err)
	}
	svc := service.New(wrap(db), keys, opts)
	t.Cleanup(svc.Close)
	admin := &envy.Token{Name: "admin", Permissions: []envy.Grant{{Scopes: "**", Actions: []envy.Action{envy.ActAdmin}}}}
	return svc, service.WithCaller(ctx, &service.Caller{Token: admin})
}

func cacheStats(svc *service.Service, name string) service.CacheStats {
	for _, st := range svc.CacheStats() {
		if st.Name == name {
			return st
		}
	}
	panic("no cache " + name)
}

func setVar(t *testing.T, svc *service.Service, ctx context.Context, scope, name, value string) {
	t.Helper()
	v := envy.NewSensitive(value)
	if _, _, err := svc.SetVar(ctx, scope, name, envy.VarInput{Value: &v}, envy.SetOptions{}); err != nil {
		t.Fatal(err)
	}
}

func envValue(t *testing.T, svc *service.Service, ctx context.Context, scope, name string) string {
	t.Helper()
	env, err := svc.Env(ctx, scope)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range env.Vars {
		if v.Name == name {
			return v.Value.Reveal()
		}
	}
	return ""
}

// The resolved-env cache tells a hit by the layers' revisions, not by the
// snapshots' addresses: a store that hands out fresh snapshots still hits,
// and a change to an inherited scope still misses.
func TestEnvCacheHitsByRevision(t *testing.T) {
	svc, _, ctx := newCacheService(t, service.Options{})
	setVar(t, svc, ctx, "acme/base", "A", "base-1")
	setVar(t, svc, ctx, "acme/prod", "B", "prod-1")
	inherits := []string{"acme/base"}
	if _, _, err := svc.PutScope(ctx, "acme/prod", envy.ScopeInput{Inherits: &inherits}, envy.Cond{}); err != nil {
		t.Fatal(err)
	}
	if got := envValue(t, svc, ctx, "acme/prod", "A"); got != "base-1" {
		t.Fatalf("A = %q, want base-1", got)
	}
	before := cacheStats(svc, "env")
	envValue(t, svc, ctx, "acme/prod", "A")
	if after := cacheStats(svc, "env"); after.Hits != before.Hits+1 {
		t.Fatalf("a second read of an unchanged env: hits %d → %d, want one more", before.Hits, after.Hits)
	}
	setVar(t, svc, ctx, "acme/base", "A", "base-2")
	if got := envValue(t, svc, ctx, "acme/prod", "A"); got != "base-2" {
		t.Fatalf("after a write to the inherited scope A = %q, want base-2", got)
	}
	if _, err := svc.DeleteScope(ctx, "acme/prod", envy.Cond{}); err != nil {
		t.Fatal(err)
	}
	setVar(t, svc, ctx, "acme/prod", "B", "prod-2")
	if got := envValue(t, svc, ctx, "acme/prod", "A"); got != "" {
		t.Fatalf("a re-created scope that inherits nothing shows A = %q", got)
	}
}

// However many scopes are read, the resolved-env cache stays under its
// bound.
func TestEnvCacheStaysUnderItsBound(t *testing.T) {
	const limit = 64 << 10
	svc, _, ctx := newCacheService(t, service.Options{EnvCacheBytes: limit})
	for i := range 100 {
		scope := fmt.Sprintf("app%d/prod", i)
		for j := range 5 {
			setVar(t, svc, ctx, scope, fmt.Sprintf("V%d", j), fmt.Sprintf("value-%d-%d-%0100d", i, j, 0))
		}
		if got := envValue(t, svc, ctx, scope, "V0"); got == "" {
			t.Fatalf("%s has no V0", scope)
		}
		if st := cacheStats(svc, "env"); st.Bytes > limit || st.LimitBytes != limit {
			t.Fatalf("after %d scopes the env cache holds %d bytes (bound %d), want at most %d", i+1, st.Bytes, st.LimitBytes, limit)
		}
	}
	if st := cacheStats(svc, "env"); st.Evictions == 0 || st.Entries >= 100 {
		t.Fatalf("stats = %+v; want evictions and fewer than 100 entries", st)
	}
}

// Tokens are cached once, in the Service, for every store: a token used
// again is not looked up again, and the cache stays under its bound.
func TestTokenCacheIsTheServicesAndBounded(t *testing.T) {
	const limit = 16 << 10
	now := time.Now() // a still clock: no cached token outlives its time to live
	svc, store, ctx := newCacheService(t, service.Options{TokenCacheBytes: limit, Now: func() time.Time { return now }})
	// Create them all first: a token notice (a creation too) empties the cache.
	var plains []string
	for i := range 100 {
		_, plain, err := svc.CreateToken(ctx, envy.TokenInput{Name: fmt.Sprintf("t%d", i),
			Permissions: []envy.Grant{{Scopes: "acme/**", Actions: []envy.Action{envy.ActRead}}}})
		if err != nil {
			t.Fatal(err)
		}
		plains = append(plains, plain)
	}
	for i, plain := range plains {
		if _, err := svc.Authenticate(ctx, plain); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Authenticate(ctx, plains[0]); err != nil { // kept recent
			t.Fatal(err)
		}
		if st := cacheStats(svc, "tokens"); st.Bytes > limit {
			t.Fatalf("after %d tokens the token cache holds %d bytes, over its bound %d", i+1, st.Bytes, limit)
		}
	}
	if st := cacheStats(svc, "tokens"); st.Evictions == 0 || st.Hits < 99 {
		t.Fatalf("stats = %+v; want evictions, and a hit for each reuse of the first token", st)
	}
	if n := store.tokenLookups.Load(); n != 100 {
		t.Fatalf("the store was asked %d times for 200 authentications of 100 tokens", n)
	}
}
