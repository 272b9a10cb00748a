package postgres

import (
	"context"
	"testing"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/pgtest"
	"github.com/envy-dev/envy/storetest"
)

func openTest(t testing.TB, url string) *Store {
	t.Helper()
	s, err := Open(context.Background(), url, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	pgtest.ServerURL(t)
	storetest.Run(t, func(t *testing.T) envy.Store {
		return openTest(t, pgtest.NewDatabase(t))
	})
}
