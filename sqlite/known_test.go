package sqlite

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/envy-dev/envy"
)

// The writer keeps each scope as it committed it: the next write to the
// scope starts from that state, without reading the scope from the file.
func TestAWriteStartsFromTheScopeAsCommitted(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "envy.db"))
	mustWrite(t, s, "app", "A", "1")
	before := s.loads.Load()
	mustWrite(t, s, "app", "B", "1")
	if n := s.loads.Load() - before; n != 0 {
		t.Errorf("a write to a scope the writer had just committed read it %d times", n)
	}
	if got := varsOf(t, s, "app"); len(got) != 2 {
		t.Errorf("app holds %d vars, want 2", len(got))
	}
}

// A reseal changes stored bytes without a state of their scope: the
// writer lets go of what it kept, so that the next write's committed
// state (which the scope cache keeps from its notice) holds the new bytes.
func TestAResealDropsTheWritersStates(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), "envy.db"))
	addKeys(t, s, 1, 2)
	old := string([]byte{1, 0, 0, 0, 1}) + "v"
	mustWrite(t, s, "app", "A", old)
	vs, err := s.SealedNotUnder(ctx, 2, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i := range vs {
		vs[i].New = append([]byte{1, 0, 0, 0, 2}, vs[i].Sealed[5:]...)
	}
	if n, err := s.ReplaceSealed(ctx, vs); err != nil || n == 0 {
		t.Fatalf("ReplaceSealed = %d, %v", n, err)
	}
	states := make(chan *envy.ScopeVars, 4)
	defer s.Subscribe(func(n envy.Notice) {
		if n.Kind == envy.NoticeScope && n.Scope == "app" {
			states <- n.State
		}
	})()
	mustWrite(t, s, "app", "B", "1")
	st := <-states
	for _, v := range st.Vars {
		if v.Name == "A" && !bytes.Equal(v.Sealed, append([]byte{1, 0, 0, 0, 2}, 'v')) {
			t.Fatalf("after a reseal, the next write's committed state holds A as %q, the bytes from before", v.Sealed)
		}
	}
}

// A write and a reseal in one batch, the write first: the write's state
// holds the bytes from before the reseal, so the writer keeps nothing of
// that batch, not the write's state either.
func TestAResealInTheBatchOfAWriteDropsItsState(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), "envy.db"))
	addKeys(t, s, 1, 2)
	mustWrite(t, s, "app", "A", string([]byte{1, 0, 0, 0, 1})+"v")
	cur := varsOf(t, s, "app")
	vs, err := s.SealedNotUnder(ctx, 2, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i := range vs {
		vs[i].New = append([]byte{1, 0, 0, 0, 2}, vs[i].Sealed[5:]...)
	}
	release := blockWriter(t, s)
	wrote, resealed := make(chan error, 1), make(chan error, 1)
	go func() {
		_, err := s.Write(ctx, envy.Write{Scope: "app", Actor: "tester", Changes: setVars(cur, "B", "1")})
		wrote <- err
	}()
	waitQueued(t, s, 1)
	go func() {
		_, err := s.ReplaceSealed(ctx, vs)
		resealed <- err
	}()
	waitQueued(t, s, 2)
	release()
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if err := <-resealed; err != nil {
		t.Fatal(err)
	}
	states := make(chan *envy.ScopeVars, 4)
	defer s.Subscribe(func(n envy.Notice) {
		if n.Kind == envy.NoticeScope && n.Scope == "app" {
			states <- n.State
		}
	})()
	mustWrite(t, s, "app", "C", "1")
	for _, v := range (<-states).Vars {
		if v.Name == "A" && !bytes.Equal(v.Sealed, append([]byte{1, 0, 0, 0, 2}, 'v')) {
			t.Fatalf("after a reseal batched behind a write, the next write's committed state holds A as %q, the bytes from before", v.Sealed)
		}
	}
}

// addKeys stores data keys ids: a write stores a value sealed under a
// data key only while the store holds the key.
func addKeys(t *testing.T, s *Store, ids ...uint32) {
	t.Helper()
	for _, id := range ids {
		if err := s.AddDataKey(context.Background(), envy.DataKey{ID: id, Wrapped: []byte("wrapped")}); err != nil {
			t.Fatal(err)
		}
	}
}
