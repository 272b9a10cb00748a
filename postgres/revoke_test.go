package postgres

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/pgtest"
	"github.com/envy-dev/envy/storetest"
)

// TestARevocationCatchesAGrandchildMintedWhileItWaits: a grandchild is
// being minted under a child (its transaction holds the child FOR SHARE,
// as CreateToken does) when the grandparent is revoked. The revocation's
// first pass waits on the child's lock and, once the minting commits,
// revokes the child; the grandchild, committed after that pass began, is
// only found by another pass. Stopping after one pass leaves it live.
func TestARevocationCatchesAGrandchildMintedWhileItWaits(t *testing.T) {
	pgtest.ServerURL(t)
	url := pgtest.NewDatabase(t)
	s := openTest(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	now := time.Now()
	for _, tok := range []envy.Token{
		{ID: "tok_parent", Name: "parent", Owner: "o", Hash: []byte("hash-parent"), CreatedAt: now},
		{ID: "tok_child", Name: "child", Owner: "o", Hash: []byte("hash-child"), CreatedAt: now, ParentID: "tok_parent"},
	} {
		if _, err := s.CreateToken(ctx, tok, false, nil); err != nil {
			t.Fatal(err)
		}
	}

	mint, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer mint.Close(context.Background())
	for _, q := range []string{
		"BEGIN",
		"SELECT 1 FROM tokens WHERE id = 'tok_child' FOR SHARE",
		`INSERT INTO tokens (id, name, owner, hash, permissions, created_at, created_by, parent_id)
			VALUES ('tok_grandchild', 'grandchild', 'o', 'hash-grandchild', '[]', 1, 'child', 'tok_child')`,
	} {
		if _, err := mint.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}

	revoked := make(chan error, 1)
	go func() { revoked <- s.RevokeToken(ctx, "tok_parent", time.Time{}, nil) }()
	// Wait until the revocation waits on the child's lock, then let the
	// minting commit.
	probe, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close(context.Background())
	for waiting := false; !waiting; {
		if err := probe.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%lineage%')`).Scan(&waiting); err != nil {
			t.Fatalf("the revocation never waited on the child's lock: %v", err)
		}
		if !waiting {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if _, err := mint.Exec(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-revoked:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("the revocation did not return within a minute of the minting's commit")
	}
	for _, id := range []string{"tok_child", "tok_grandchild"} {
		tok, err := s.GetToken(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if tok.RevokedAt == nil {
			t.Errorf("%s is live after its grandparent was revoked: the revocation's passes stopped before finding it", id)
		}
	}
}

// TestTwoServersCantRevokeTheLastTwoAdminsAtOnce: two store handles on one
// database, as two servers have, each revoke one of the last two admins
// at once, again and again; one of each pair must be refused.
func TestTwoServersCantRevokeTheLastTwoAdminsAtOnce(t *testing.T) {
	pgtest.ServerURL(t)
	url := pgtest.NewDatabase(t)
	s1, s2 := openTest(t, url), openTest(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin := []envy.Grant{{Scopes: "**", Actions: []envy.Action{envy.ActAdmin}}}
	for i := range 20 {
		a, b := fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i)
		for _, id := range []string{a, b} {
			if _, err := s1.CreateToken(ctx, envy.Token{ID: id, Name: id, Owner: "o", Hash: []byte("hash-" + id), Permissions: admin, CreatedAt: time.Now()}, false, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := storetest.KeepAdminRace(ctx, s1, s2, a, b); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		for _, id := range []string{a, b} {
			if err := s2.RevokeToken(ctx, id, time.Time{}, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
}
