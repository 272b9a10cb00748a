package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/envy-dev/envy"
)

// KeepAdminRace revokes admins a and b, the last two live tokens with
// admin on ** of their stores, at once, through RevokeTokenKeepingAdmin of
// sa and sb (one store, or two handles of one database, as two servers
// have). Exactly one revocation must succeed and the other be refused with
// envy.ErrLastAdmin, leaving one admin live. It returns what went wrong.
func KeepAdminRace(ctx context.Context, sa, sb envy.Store, a, b string) error {
	at := time.Now()
	errs := make([]error, 2)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, r := range []struct {
		s  envy.Store
		id string
	}{{sa, a}, {sb, b}} {
		wg.Go(func() {
			<-start
			errs[i] = r.s.RevokeTokenKeepingAdmin(ctx, r.id, at, nil)
		})
	}
	close(start)
	wg.Wait()
	refused := 0
	for i, err := range errs {
		switch {
		case errors.Is(err, envy.ErrLastAdmin):
			refused++
		case err != nil:
			return fmt.Errorf("revoking admin %d: %v", i, err)
		}
	}
	live := 0
	for _, id := range []string{a, b} {
		tok, err := sa.GetToken(ctx, id)
		if err != nil {
			return err
		}
		if tok.RevokedAt == nil {
			live++
		}
	}
	if refused != 1 || live != 1 {
		return fmt.Errorf("two concurrent revocations of the last two admins: %d refused, %d admins left live (errors %v); want one refused and one admin left", refused, live, errs)
	}
	return nil
}

func testKeepAdmin(t *testing.T, s envy.Store) {
	ctx := t.Context()
	admin := []envy.Grant{{Scopes: "**", Actions: []envy.Action{envy.ActAdmin}}}
	create := func(id, parent string, perms []envy.Grant, expires *time.Time) {
		t.Helper()
		if _, err := s.CreateToken(ctx, envy.Token{ID: id, Name: "n-" + id, Owner: "o", Hash: []byte("hash-" + id), ParentID: parent,
			Permissions: perms, CreatedAt: t0, CreatedBy: "x", ExpiresAt: expires}, false, nil); err != nil {
			t.Fatalf("CreateToken(%s): %v", id, err)
		}
	}
	revoked := func(id string) bool {
		t.Helper()
		tok, err := s.GetToken(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return tok.RevokedAt != nil
	}
	past := time.Now().Add(-time.Hour)
	create("root", "", admin, nil)
	create("child", "root", admin, nil)                                                           // in root's lineage: no admin left
	create("expired", "", admin, &past)                                                           // not live
	create("reader", "", []envy.Grant{{Scopes: "**", Actions: []envy.Action{envy.ActRead}}}, nil) // no admin
	create("subtree", "", []envy.Grant{{Scopes: "acme/**", Actions: []envy.Action{envy.ActAdmin}}}, nil)

	at := time.Now()
	err := s.RevokeTokenKeepingAdmin(ctx, "root", at, []envy.AuditEntry{{Actor: "x", Action: envy.AuditTokenRevoke, Names: []string{"n-root"}}})
	if !errors.Is(err, envy.ErrLastAdmin) || envy.ErrorCode(err) != envy.EConflict {
		t.Fatalf("revoking the last admin and its admin child: %v, want ErrLastAdmin (conflict)", err)
	}
	if revoked("root") || revoked("child") {
		t.Fatal("a refused revocation revoked a token")
	}
	if got, err := s.ListAudit(ctx, envy.AuditQuery{Actor: "x"}); err != nil || len(got) != 0 {
		t.Fatalf("a refused revocation left audit entries: %v %v", got, err)
	}
	// The child alone leaves root: allowed, and so is a token without admin.
	for _, id := range []string{"child", "reader", "subtree"} {
		if err := s.RevokeTokenKeepingAdmin(ctx, id, at, nil); err != nil || !revoked(id) {
			t.Fatalf("revoking %s while root is left: %v", id, err)
		}
	}
	wantCode(t, s.RevokeTokenKeepingAdmin(ctx, "nope", at, nil), envy.ENotFound)
	if err := s.RevokeTokenKeepingAdmin(ctx, "root", at, nil); !errors.Is(err, envy.ErrLastAdmin) {
		t.Fatalf("revoking the last admin: %v, want ErrLastAdmin", err)
	}
	// RevokeToken (forced) ends it.
	if err := s.RevokeToken(ctx, "root", at, nil); err != nil || !revoked("root") {
		t.Fatalf("RevokeToken of the last admin: %v", err)
	}

	// Two revocations of the last two admins at once, again and again:
	// one of each pair is refused.
	for i := range 10 {
		a, b := fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i)
		create(a, "", admin, nil)
		create(b, "", admin, nil)
		if err := KeepAdminRace(ctx, s, s, a, b); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		// End the survivor, so that the next pair is the last two.
		for _, id := range []string{a, b} {
			if err := s.RevokeToken(ctx, id, at, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
}
