package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/envy-dev/envy"
)

// testCommittedState checks the state a scope notice carries
// (envy.Notice.State, which the scope cache keeps instead of reading the
// scope again): when a store gives one, it must be the scope exactly as a
// read at that revision returns it. A store that gives none passes.
func testCommittedState(t *testing.T, s envy.Store) {
	ctx := t.Context()
	heard := make(chan envy.Notice, 64)
	cancel := s.Subscribe(func(n envy.Notice) {
		if n.Kind == envy.NoticeScope {
			heard <- n
		}
	})
	defer cancel()
	putScope(t, s, "state/base")
	steps := []struct {
		what  string
		scope string
		w     func() envy.WriteResult
	}{
		{"a write that creates its scope", "state/app", func() envy.WriteResult { return write(t, s, "state/app", set("A", "1"), set("B", "2")) }},
		{"a write of one var", "state/app", func() envy.WriteResult { return write(t, s, "state/app", set("B", "3")) }},
		{"a write that adds and deletes", "state/app", func() envy.WriteResult { return write(t, s, "state/app", set("C", "4"), del("A")) }},
		{"a description only", "state/app", func() envy.WriteResult {
			cur := current(t, s, "state/app")
			ch := plan(cur, set("B", "3"))
			ch[0].Sealed, ch[0].Description = findVar(cur.Vars, "B").Sealed, "the B"
			res, err := s.Write(ctx, envy.Write{Scope: "state/app", Actor: "tester", Changes: ch})
			if err != nil {
				t.Fatal(err)
			}
			return res
		}},
		{"a write to a scope with inherits", "state/base", func() envy.WriteResult { return write(t, s, "state/base", set("X", "5")) }},
	}
	putScope(t, s, "state/app2", "state/base")
	for _, st := range steps {
		res := st.w()
		deadline := time.After(10 * time.Second)
	wait:
		for {
			select {
			case n := <-heard:
				if n.Scope != st.scope || n.Revision != res.Revision {
					continue
				}
				if n.State == nil {
					break wait // this store gives no state: nothing to compare
				}
				read := current(t, s, st.scope)
				if err := sameState(n.State, &read); err != nil {
					t.Fatalf("%s: the notice's state is not the scope as read: %v", st.what, err)
				}
				break wait
			case <-deadline:
				t.Fatalf("%s: no notice of revision %d of %s within 10 s", st.what, res.Revision, st.scope)
			}
		}
	}
}

// sameState compares two snapshots of a scope, times by their instant.
func sameState(got, want *envy.ScopeVars) error {
	g, w := got.Scope, want.Scope
	switch {
	case g.Path != w.Path, g.Description != w.Description, !slices.Equal(g.Inherits, w.Inherits):
		return fmt.Errorf("scope %+v, want %+v", g, w)
	case g.Revision != w.Revision, g.EnvRevision != w.EnvRevision:
		return fmt.Errorf("scope at revision %d (env %d), want %d (env %d)", g.Revision, g.EnvRevision, w.Revision, w.EnvRevision)
	case !g.CreatedAt.Equal(w.CreatedAt), !g.UpdatedAt.Equal(w.UpdatedAt):
		return fmt.Errorf("scope created %v updated %v, want %v and %v", g.CreatedAt, g.UpdatedAt, w.CreatedAt, w.UpdatedAt)
	case len(got.Vars) != len(want.Vars):
		return fmt.Errorf("%d vars, want %d", len(got.Vars), len(want.Vars))
	}
	for i := range got.Vars {
		a, b := got.Vars[i], want.Vars[i]
		if !a.CreatedAt.Equal(b.CreatedAt) || !a.UpdatedAt.Equal(b.UpdatedAt) {
			return fmt.Errorf("var %s created %v updated %v, want %v and %v", a.Name, a.CreatedAt, a.UpdatedAt, b.CreatedAt, b.UpdatedAt)
		}
		a.CreatedAt, a.UpdatedAt, b.CreatedAt, b.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if fmt.Sprintf("%+v", a) != fmt.Sprintf("%+v", b) {
			return fmt.Errorf("var %+v, want %+v", a, b)
		}
	}
	return nil
}
