package service_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/postgres"
)

// tearingStore is a deaf store that, while armed, has the scope both
// trees inherit changed through another server right after each check or
// read of the env's own tree, before that of the scope it refers to:
// every read of the env's trees is torn, however often it is made again.
type tearingStore struct {
	deafStore
	armed  atomic.Bool
	writes atomic.Int32
	change func(n int32)
}

func (s *tearingStore) ScopeTree(ctx context.Context, path string) (map[string]*envy.ScopeVars, error) {
	t, err := s.deafStore.ScopeTree(ctx, path)
	if path == "g/app" && s.armed.Load() {
		s.change(s.writes.Add(1))
	}
	return t, err
}

func (s *tearingStore) Check(ctx context.Context, paths []string, revs []int64, token string) (bool, bool, error) {
	ok, live, err := s.deafStore.Check(ctx, paths, revs, token)
	if len(paths) > 0 && paths[0] == "g/app" && s.armed.Load() {
		s.change(s.writes.Add(1))
	}
	return ok, live, err
}

// TestAnEnvWhoseTreesAreTornOnEveryReadIsStillAnswered: g/app and g/db
// inherit g/base, and g/app refers to g/db. When g/base changes between
// the read of g/app's tree and that of g/db's on every attempt, reading
// the trees again never makes them agree: the env is resolved over the
// newest snapshot of each scope read, one state whose every part is
// what its deps say, rather than refused.
func TestAnEnvWhoseTreesAreTornOnEveryReadIsStillAnswered(t *testing.T) {
	ts := &tearingStore{}
	first, deaf, ctx := serversWith(t, func(st *postgres.Store) envy.Store { ts.deafStore = deafStore{st}; return ts })
	ts.change = func(n int32) { setVar(t, first, ctx, "g/base", "B", fmt.Sprintf("b%d", n+1)) }

	setVar(t, first, ctx, "g/base", "B", "b1")
	setVar(t, first, ctx, "g/db", "D", "d1")
	setVar(t, first, ctx, "g/app", "R", "${g/db:D}")
	inherit(t, first, ctx, "g/app", "g/base")
	inherit(t, first, ctx, "g/db", "g/base")
	if got := resolved(t, deaf, ctx, "g/app"); got != "B=b1 from g/base; R=d1 from g/app; " {
		t.Fatalf("before: %q", got)
	}

	// g/app's cached tree no longer current: the read takes it from the
	// store.
	setVar(t, first, ctx, "g/base", "B", "b1'")
	ts.armed.Store(true)
	env, err := deaf.Env(ctx, "g/app")
	ts.armed.Store(false)
	if err != nil {
		t.Fatalf("an env whose trees tear on every read: %v", err)
	}
	t.Logf("g/base changed %d times while the env was read", ts.writes.Load())
	if ts.writes.Load() < 1 {
		t.Fatal("g/base did not change while the env was read: the test tore nothing")
	}
	// One state: B as g/base held it at one of its revisions, R from g/db.
	vals := map[string]string{}
	for _, v := range env.Vars {
		vals[v.Name] = v.Value.Reveal() + " from " + v.From
	}
	okB := vals["B"] == "b1' from g/base"
	for n := int32(1); n <= ts.writes.Load()+1; n++ {
		okB = okB || vals["B"] == fmt.Sprintf("b%d from g/base", n)
	}
	if !okB || vals["R"] != "d1 from g/app" || len(vals) != 2 {
		t.Errorf("answered %v", vals)
	}
}

// TestAResolutionKeptByAnotherReaderIsNotTakenOverTornTrees: while one
// reader holds g/app's tree as checked, g/base changes and another reader
// resolves g/app at the new revision and keeps it. The first reader then
// reads g/db's tree at the new revision: its trees are torn, and the
// kept resolution, Current by g/db's newer snapshot of g/base, must not
// be answered beside g/app's tree with the older one (a layer at the new
// revision showing the old values).
func TestAResolutionKeptByAnotherReaderIsNotTakenOverTornTrees(t *testing.T) {
	ts := &tearingStore{}
	first, deaf, ctx := serversWith(t, func(st *postgres.Store) envy.Store { ts.deafStore = deafStore{st}; return ts })
	ts.change = func(int32) {
		ts.armed.Store(false) // once
		setVar(t, first, ctx, "g/base", "B", "b2")
		if _, err := deaf.Env(ctx, "g/app"); err != nil { // the other reader
			t.Error(err)
		}
	}

	setVar(t, first, ctx, "g/base", "B", "b1")
	setVar(t, first, ctx, "g/db", "D", "d1")
	setVar(t, first, ctx, "g/app", "R", "${g/db:D}")
	inherit(t, first, ctx, "g/app", "g/base")
	inherit(t, first, ctx, "g/db", "g/base")
	resolved(t, deaf, ctx, "g/app") // kept

	ts.armed.Store(true)
	torn, err := deaf.Resolved(ctx, "g/app", true)
	if err != nil {
		t.Fatal(err)
	}
	if ts.writes.Load() != 1 {
		t.Fatalf("g/base changed %d times during the read, want once", ts.writes.Load())
	}
	after, err := deaf.Resolved(ctx, "g/app", true)
	if err != nil {
		t.Fatal(err)
	}
	values := func(l envy.LayerView) string {
		out := ""
		for _, v := range l.Vars {
			out += v.Name + "=" + v.Value.Reveal() + " "
		}
		return out
	}
	for _, l := range torn.Layers {
		for _, m := range after.Layers {
			if l.Scope == m.Scope && l.Revision == m.Revision && values(l) != values(m) {
				t.Errorf("layer %s at revision %d holds %q, but %q at that revision", l.Scope, l.Revision, values(l), values(m))
			}
		}
	}
}

// TestAResolutionPutSinceItsPeekIsNotTakenForScopesItDidNotRead: a
// reader looks at the kept resolution of g/app (which refers to g/db) and
// reads g/db's tree for it; meanwhile another reader keeps a newer one,
// which also refers to g/new, missing then, and g/new is created through
// another server. The first reader must not take the newer resolution as
// current: it never read g/new, and would take it for still missing.
func TestAResolutionPutSinceItsPeekIsNotTakenForScopesItDidNotRead(t *testing.T) {
	first, deaf, _, ctx := twoServers(t)
	setVar(t, first, ctx, "g/db", "D", "d1")
	setVar(t, first, ctx, "g/app", "R", "${g/db:D}")
	resolved(t, deaf, ctx, "g/app") // kept: refers to g/db
	setVar(t, first, ctx, "g/app", "S", "${g/new:N}")

	var armed atomic.Bool
	armed.Store(true)
	deaf.SetAfterPeek(func() {
		if !armed.CompareAndSwap(true, false) {
			return
		}
		// The other reader keeps a resolution that refers to g/new, and
		// is refused: g/new does not exist yet.
		if _, err := deaf.Env(ctx, "g/app"); envy.ErrorCode(err) != envy.EInvalid {
			t.Errorf("the other reader, before g/new exists: %v", err)
		}
		setVar(t, first, ctx, "g/new", "N", "n1")
	})
	env, err := deaf.Env(ctx, "g/app")
	if err != nil {
		t.Fatal(err)
	}
	if armed.Load() {
		t.Fatal("the hook did not run")
	}
	got := map[string]string{}
	for _, v := range env.Vars {
		got[v.Name] = v.Value.Reveal()
	}
	if got["R"] != "d1" || got["S"] != "n1" {
		t.Errorf("the env after g/new was created reads R=%q S=%q, want d1 and n1", got["R"], got["S"])
	}
}
