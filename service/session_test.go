package service_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/service"
	"github.com/envy-dev/envy/sqlite"
)

// swappingStore is a real SQLite store whose GetSession can answer with
// other sealed bytes, as a database someone tampered with would.
type swappingStore struct {
	*sqlite.Store
	sealed []byte // when set, the Sealed of every session read
}

func (s *swappingStore) GetSession(ctx context.Context, idHash []byte) (envy.Session, error) {
	row, err := s.Store.GetSession(ctx, idHash)
	if err == nil && s.sealed != nil {
		row.Sealed = s.sealed
	}
	return row, err
}

func TestASessionTokenIsSealedAndBoundToItsRow(t *testing.T) {
	var store *swappingStore
	svc, ctx := newServiceOver(t, service.Options{}, func(db *sqlite.Store) envy.Store {
		store = &swappingStore{Store: db}
		return store
	})
	at := time.Unix(1_700_000_000, 0).UTC()
	const token = "envy_thetokenplaintextthatmustnotbestored0123"
	a, err := svc.CreateSession(ctx, token, at)
	if err != nil {
		t.Fatal(err)
	}
	hash := func(id string) []byte { h := sha256.Sum256([]byte(id)); return h[:] }
	row, err := store.Store.GetSession(ctx, hash(a.ID))
	if err != nil {
		t.Fatalf("the session is not stored under the hash of its id: %v", err)
	}
	if bytes.Contains(row.Sealed, []byte(token)) || row.CSRF != a.CSRF || !row.CreatedAt.Equal(at) {
		t.Fatalf("stored: %+v", row)
	}
	got, err := svc.Session(ctx, a.ID)
	if err != nil || got.Token != token || got.CSRF != a.CSRF || !got.UsedAt.Equal(at) {
		t.Fatalf("Session = %+v, %v", got, err)
	}
	if _, err := svc.Session(ctx, "not-an-id"); envy.ErrorCode(err) != envy.ENotFound {
		t.Fatalf("an unknown session: %v", err)
	}

	// Another session's sealed token, or a var's sealed value, put in its
	// row does not open.
	b, err := svc.CreateSession(ctx, "envy_anothertoken", at)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := store.Store.GetSession(ctx, hash(b.ID))
	v := envy.NewSensitive("sk-live")
	if _, _, err := svc.SetVar(ctx, "acme/web", "API_KEY", envy.VarInput{Value: &v}, envy.SetOptions{}); err != nil {
		t.Fatal(err)
	}
	tree, err := store.ScopeTree(ctx, "acme/web")
	if err != nil {
		t.Fatal(err)
	}
	for what, sealed := range map[string][]byte{"another session's token": other.Sealed, "a var's value": tree["acme/web"].Vars[0].Sealed} {
		store.sealed = sealed
		if got, err := svc.Session(ctx, a.ID); envy.ErrorCode(err) != envy.ENotFound {
			t.Errorf("%s in the row: %+v, %v", what, got, err)
		}
	}
	store.sealed = nil

	if err := svc.EndSession(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Session(ctx, a.ID); envy.ErrorCode(err) != envy.ENotFound {
		t.Fatalf("an ended session: %v", err)
	}
}
