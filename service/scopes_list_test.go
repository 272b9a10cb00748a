package service_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/crypto"
	"github.com/envy-dev/envy/service"
	"github.com/envy-dev/envy/sqlite"
)

// scanCounter is a real store that counts the scopes a listing examines.
type scanCounter struct {
	envy.Store
	examined atomic.Int64
}

func (c *scanCounter) ListScopes(ctx context.Context, q envy.ScopeQuery) ([]envy.Scope, error) {
	allow := q.Allow
	q.Allow = func(p string) bool {
		c.examined.Add(1)
		return allow == nil || allow(p)
	}
	return c.Store.ListScopes(ctx, q)
}

func TestListingScopesReadsOnlyWhatTheTokenMaySee(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "envy.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	mk, _, err := crypto.OpenMasterKeyFile(filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	defer mk.Close()
	keys, err := crypto.OpenKeyring(ctx, mk, store)
	if err != nil {
		t.Fatal(err)
	}
	counter := &scanCounter{Store: store}
	svc := service.New(counter, keys, service.Options{})
	defer svc.Close()

	var paths []string
	for i := range 400 {
		paths = append(paths, fmt.Sprintf("other/s%03d", i))
	}
	paths = append(paths, "acme", "acme/web/prod", "acme/web/dev", "acme/api/prod", "acmex/a", "team/x/prod", "team/y/dev", "zeta/prod")
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for _, p := range paths {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if _, _, err := store.PutScope(ctx, envy.ScopeWrite{Path: p, Plan: func(*envy.Scope, func(string) (envy.Scope, error)) (string, []string, error) {
				return "", nil, nil
			}}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()

	read := []envy.Action{envy.ActRead}
	tok := &envy.Token{ID: "t", Name: "t", Permissions: []envy.Grant{
		{Scopes: "acme/**", Actions: read}, {Scopes: "team/*/prod", Actions: read}, {Scopes: "zeta/prod", Actions: read},
	}}
	as := service.WithCaller(ctx, &service.Caller{Token: tok})
	for _, tt := range []struct {
		prefix string
		want   []string
	}{
		{"", []string{"acme", "acme/api/prod", "acme/web/dev", "acme/web/prod", "team/x/prod", "zeta/prod"}},
		{"acme/web", []string{"acme/web/dev", "acme/web/prod"}},
		{"te", []string{"team/x/prod"}},
		{"other", nil},
	} {
		counter.examined.Store(0)
		var got []string
		cursor := ""
		for {
			page, err := svc.ListScopes(as, envy.ScopeListQuery{Prefix: tt.prefix, Cursor: cursor, Limit: 2})
			if err != nil {
				t.Fatal(err)
			}
			for _, sc := range page.Items {
				got = append(got, sc.Path)
			}
			if page.NextCursor == "" {
				break
			}
			cursor = page.NextCursor
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("prefix %q: listed %v, want %v", tt.prefix, got, tt.want)
		}
		// Every page reads at most its own ranges: a few dozen rows, not
		// the 400 under other/.
		if n := counter.examined.Load(); n > 60 {
			t.Errorf("prefix %q: the listing examined %d scopes", tt.prefix, n)
		}
	}
}
