package service_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/pgtest"
	"github.com/envy-dev/envy/postgres"
	"github.com/envy-dev/envy/service"
	"github.com/envy-dev/envy/sqlite"
)

// newService returns a service over store with an admin caller's context.
func newService(t *testing.T, store envy.Store) (*service.Service, context.Context) {
	t.Helper()
	return newServiceKeyed(t, store, filepath.Join(t.TempDir(), "master.key"))
}

// newServiceKeyed is newService with the master key in keyFile (made when
// missing), which servers sharing a database share.
func newServiceKeyed(t *testing.T, store envy.Store, keyFile string) (*service.Service, context.Context) {
	t.Helper()
	keys := openKeyring(t, store, keyFile)
	svc := service.New(store, keys, service.Options{})
	t.Cleanup(svc.Close)
	admin := &envy.Token{ID: "admin", Name: "admin", Permissions: []envy.Grant{{Scopes: "**", Actions: []envy.Action{envy.ActAdmin}}}}
	return svc, service.WithCaller(context.Background(), &service.Caller{Token: admin})
}

// TestManyWritersToOneScopeLoseNothing: writers to one hot scope plan from
// what they read and the store applies a write only if the vars it
// changes are as planned, so writes to one var are never lost (each takes
// a version) and writes to different vars go through side by side.
func TestManyWritersToOneScopeLoseNothing(t *testing.T) {
	stores := map[string]func(t *testing.T) envy.Store{
		"sqlite": func(t *testing.T) envy.Store {
			s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "envy.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
		"postgres": func(t *testing.T) envy.Store {
			s, err := postgres.Open(context.Background(), pgtest.NewDatabase(t), postgres.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			svc, ctx := newService(t, open(t))
			const writers, each = 8, 25
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			for w := range writers {
				wg.Go(func() {
					for i := range each {
						v := envy.NewSensitive(fmt.Sprintf("%d-%d", w, i))
						if _, _, err := svc.SetVar(ctx, "hot/scope", "COUNT", envy.VarInput{Value: &v}, envy.SetOptions{}); err != nil {
							errs <- err
							return
						}
						if _, _, err := svc.SetVar(ctx, "hot/scope", fmt.Sprintf("OWN_%d", w), envy.VarInput{Value: &v}, envy.SetOptions{}); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			list, err := svc.ListVars(ctx, "hot/scope", true)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range list.Items {
				want := int64(each)
				if v.Name == "COUNT" {
					want = writers * each
				}
				if v.Version != want {
					t.Errorf("%s is at version %d, want %d: a write was lost", v.Name, v.Version, want)
				}
			}
			if len(list.Items) != writers+1 {
				t.Errorf("%d vars, want %d", len(list.Items), writers+1)
			}
		})
	}
}
