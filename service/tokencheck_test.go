package service_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/sqlite"
)

// TestACachedTokenIsCheckedWithoutAllocating: the token check on every
// request hashes the plaintext and finds the token in the cache by its
// digest (never comparing the plaintext itself), without an allocation
// once the token is cached.
func TestACachedTokenIsCheckedWithoutAllocating(t *testing.T) {
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "envy.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc, ctx := newService(t, db)
	plain, _, err := svc.Bootstrap(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	check := func() {
		if tok, err := svc.AuthenticateFor(context.Background(), plain, "app"); err != nil || tok == nil {
			t.Fatalf("the token's check: %v, %v", tok, err)
		}
	}
	check() // cached from here
	if n := testing.AllocsPerRun(100, check); n > 0 {
		t.Errorf("a cached token's check makes %.0f allocations, want none", n)
	}
	if _, err := svc.AuthenticateFor(context.Background(), plain+"x", "app"); envy.ErrorCode(err) != envy.EUnauthenticated {
		t.Errorf("another token: %v, want unauthenticated", err)
	}
}
