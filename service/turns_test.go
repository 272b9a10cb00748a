package service_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/sqlite"
)

type slowKey struct{}

// slowStore makes every read of a scope by a context marked slowKey take
// a while, as planning does on a loaded machine.
type slowStore struct {
	envy.Store
}

func (s slowStore) ScopeTree(ctx context.Context, path string) (map[string]*envy.ScopeVars, error) {
	tree, err := s.Store.ScopeTree(ctx, path)
	if ctx.Value(slowKey{}) != nil {
		time.Sleep(20 * time.Millisecond) // what it read ages meanwhile
	}
	return tree, err
}

// TestASlowWriterToAHotVarGetsItsTurn: a writer that plans slowly, among
// fast writers of the same var, would find the var changed on every
// attempt and give up; once it has found it changed, the writers of that
// scope take turns and its write goes through.
func TestASlowWriterToAHotVarGetsItsTurn(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "envy.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc, ctx := newService(t, slowStore{st})
	set := func(ctx context.Context, value string) error {
		v := envy.NewSensitive(value)
		_, _, err := svc.SetVar(ctx, "hot/var", "COUNT", envy.VarInput{Value: &v}, envy.SetOptions{})
		return err
	}
	if err := set(ctx, "start"); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var fast atomic.Int64
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				if err := set(ctx, fmt.Sprintf("fast-%d-%d", w, i)); err != nil {
					t.Errorf("fast writer: %v", err)
					return
				}
				fast.Add(1)
			}
		})
	}
	for fast.Load() < 10 {
		time.Sleep(time.Millisecond)
	}
	slow := context.WithValue(ctx, slowKey{}, true)
	for i := range 3 {
		if err := set(slow, fmt.Sprintf("slow-%d", i)); err != nil {
			t.Errorf("slow write %d among %d fast ones: %v", i, fast.Load(), err)
			break
		}
	}
	stop.Store(true)
	wg.Wait()
}

// TestWritersOfOtherVarsDontWaitForATurn: while writers of one var of a
// scope take turns, a writer of another var of that scope does not wait
// for them (they don't conflict; waiting would make a hot scope's writers
// go one commit at a time), while a writer of the whole scope does.
func TestWritersOfOtherVarsDontWaitForATurn(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "envy.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc, ctx := newService(t, st)
	set := func(ctx context.Context, name string) error {
		v := envy.NewSensitive("value")
		_, _, err := svc.SetVar(ctx, "hot/scope", name, envy.VarInput{Value: &v}, envy.SetOptions{})
		return err
	}
	if err := set(ctx, "A"); err != nil {
		t.Fatal(err)
	}
	release, err := svc.TakeTurn(ctx, "hot/scope", []string{"A"}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	other, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := set(other, "B"); err != nil {
		t.Fatalf("a write of B waited for the turn of A's writers: %v", err)
	}
	// The turn is held, so a writer of A waits for it until its context
	// ends.
	short, cancel2 := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel2()
	if err := set(short, "A"); err == nil {
		t.Fatal("a write of A went through while another writer of A held the turn")
	}
}
