package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/crypto"
	"github.com/envy-dev/envy/service"
	"github.com/envy-dev/envy/sqlite"
)

// TestACiphertextCopiedToAnotherRowFailsToOpen copies one var's sealed
// value onto another var with plain SQL, as someone with the database but
// not the master key could, and shows that reading it fails instead of
// giving the first var's value, and that the error holds no plaintext.
func TestACiphertextCopiedToAnotherRowFailsToOpen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "envy.db")
	open := func() (*sqlite.Store, *service.Service, context.Context) {
		store, err := sqlite.Open(ctx, dbPath)
		if err != nil {
			t.Fatal(err)
		}
		mk, _, err := crypto.OpenMasterKeyFile(filepath.Join(dir, "master.key"))
		if err != nil {
			t.Fatal(err)
		}
		keys, err := crypto.OpenKeyring(ctx, mk, store)
		if err != nil {
			t.Fatal(err)
		}
		svc := service.New(store, keys, service.Options{})
		admin := &envy.Token{Name: "admin", Permissions: []envy.Grant{{Scopes: "**", Actions: []envy.Action{envy.ActAdmin}}}}
		return store, svc, service.WithCaller(ctx, &service.Caller{Token: admin})
	}

	store, svc, actx := open()
	secretA := envy.NewSensitive("plaintext-of-A-0123456789")
	secretB := envy.NewSensitive("plaintext-of-B-9876543210")
	for name, v := range map[string]*envy.Sensitive{"A": &secretA, "B": &secretB} {
		if _, _, err := svc.SetVar(actx, "acme/prod", name, envy.VarInput{Value: v}, envy.SetOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := svc.SetVar(actx, "acme/other", "A", envy.VarInput{Value: &secretA}, envy.SetOptions{}); err != nil {
		t.Fatal(err)
	}
	svc.Close()
	store.Close()

	tests := []struct {
		name, sql, scope, read string
	}{
		{"onto another name in the same scope", `UPDATE vars SET sealed = (SELECT sealed FROM vars WHERE scope='acme/prod' AND name='A') WHERE scope='acme/prod' AND name='B'`, "acme/prod", "B"},
		{"onto the same name in another scope", `UPDATE vars SET sealed = (SELECT sealed FROM vars WHERE scope='acme/prod' AND name='A') WHERE scope='acme/other' AND name='A'`, "acme/other", "A"},
		{"onto the same var with another version", `UPDATE vars SET version = version + 1 WHERE scope='acme/prod' AND name='A'`, "acme/prod", "A"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := sql.Open("sqlite", dbPath)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(tt.sql); err != nil {
				t.Fatal(err)
			}
			db.Close()

			store, svc, actx := open()
			defer store.Close()
			defer svc.Close()
			_, err = svc.GetVar(actx, tt.scope, tt.read, true)
			if envy.ErrorCode(err) != envy.EInternal {
				t.Fatalf("read after tampering: %v, want an internal error", err)
			}
			for _, s := range []string{err.Error(), envy.ErrorMessage(err)} {
				if strings.Contains(s, "plaintext-of") {
					t.Fatalf("the error holds a value: %s", s)
				}
			}
			if _, err := svc.Env(actx, tt.scope); envy.ErrorCode(err) != envy.EInternal {
				t.Fatalf("env after tampering: %v", err)
			}
			// Nothing was revealed, so the audit log says nothing was:
			// a reveal is recorded only once its values are ready.
			page, err := svc.Audit(actx, envy.AuditListQuery{Scope: tt.scope})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range page.Items {
				if e.Action == envy.AuditReveal && e.Status == envy.OutcomeOK {
					t.Fatalf("a read that failed is recorded as an answered reveal: %+v", e)
				}
			}
		})
	}
}
