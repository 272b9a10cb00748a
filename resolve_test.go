package envy_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/envy-dev/envy"
)

// graph builds a tree for Resolve: scope → inherits, and scope → the
// names of its own vars.
type graph struct {
	inherits map[string][]string
	vars     map[string][]string
}

func (g graph) tree(root string) map[string]*envy.ScopeVars {
	tree := map[string]*envy.ScopeVars{}
	queue := []string{root}
	rev := int64(0)
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if tree[p] != nil {
			continue
		}
		rev++
		sv := &envy.ScopeVars{Scope: envy.Scope{Path: p, Inherits: g.inherits[p], Revision: rev}}
		names := slices.Clone(g.vars[p])
		slices.Sort(names)
		for _, n := range slices.Compact(names) {
			sv.Vars = append(sv.Vars, envy.StoredVar{Scope: p, Name: n, Version: rev})
		}
		tree[p] = sv
		queue = append(queue, g.inherits[p]...)
	}
	return tree
}

// slowResolve is the reference: the full depth-first walk of inherits,
// every path of the graph, a parent's inherits in order before it; a
// later occurrence of a scope wins over an earlier one, and a later layer's
// var over an earlier one's.
func slowResolve(path string, tree map[string]*envy.ScopeVars) (layers []string, from map[string]string) {
	var walk []string
	var visit func(p string)
	visit = func(p string) {
		sv := tree[p]
		if sv == nil {
			return
		}
		for _, q := range sv.Scope.Inherits {
			visit(q)
		}
		walk = append(walk, p)
	}
	visit(path)
	last := map[string]int{}
	for i, p := range walk {
		last[p] = i
	}
	for i, p := range walk {
		if last[p] == i {
			layers = append(layers, p)
		}
	}
	from = map[string]string{}
	for _, p := range walk {
		for _, v := range tree[p].Vars {
			from[v.Name] = p
		}
	}
	return layers, from
}

// walkLen is how many scopes the full walk visits, so that the reference
// is only run where it ends.
func walkLen(path string, tree map[string]*envy.ScopeVars, memo map[string]int) int {
	if n, ok := memo[path]; ok {
		return n
	}
	n := 1
	for _, q := range tree[path].Scope.Inherits {
		n += walkLen(q, tree, memo)
		if n > 1e6 {
			n = 1e6
		}
	}
	memo[path] = n
	return n
}

func checkAgainstReference(t *testing.T, root string, tree map[string]*envy.ScopeVars) {
	t.Helper()
	r, err := envy.Resolve(root, tree)
	if err != nil {
		t.Fatal(err)
	}
	wantLayers, wantFrom := slowResolve(root, tree)
	var got []string
	for _, l := range r.Layers {
		got = append(got, l.Path)
	}
	if !slices.Equal(got, wantLayers) {
		t.Fatalf("layers of %s: got %v, the full walk gives %v", root, got, wantLayers)
	}
	if len(r.Vars) != len(wantFrom) {
		t.Fatalf("env of %s has %d vars, the full walk %d", root, len(r.Vars), len(wantFrom))
	}
	var maxRev int64
	for _, sv := range tree {
		maxRev = max(maxRev, sv.Scope.Revision)
	}
	if r.Revision != maxRev {
		t.Fatalf("revision %d, want the tree's newest %d", r.Revision, maxRev)
	}
	for i, v := range r.Vars {
		if i > 0 && r.Vars[i-1].Name >= v.Name {
			t.Fatalf("vars not sorted by name: %s before %s", r.Vars[i-1].Name, v.Name)
		}
		if wantFrom[v.Name] != v.Scope {
			t.Fatalf("%s comes from %s, the full walk says %s", v.Name, v.Scope, wantFrom[v.Name])
		}
		for _, l := range r.Layers {
			for _, lv := range l.Vars {
				if lv.Name != v.Name {
					continue
				}
				sh := r.ShadowedBy(l.Path, lv.Name)
				if (l.Path == v.Scope) != (sh == "") || (sh != "" && sh != v.Scope) {
					t.Fatalf("%s in %s: shadowed by %q, but %s wins", lv.Name, l.Path, sh, v.Scope)
				}
			}
		}
	}
	deps := slices.Sorted(func(yield func(string) bool) {
		for p := range tree {
			if !yield(p) {
				return
			}
		}
	})
	var gotDeps []string
	for _, d := range r.Deps {
		gotDeps = append(gotDeps, d.Path)
		if d.Revision != tree[d.Path].Scope.Revision {
			t.Fatalf("dep %s at %d, the tree has it at %d", d.Path, d.Revision, tree[d.Path].Scope.Revision)
		}
	}
	if !r.Current(tree) {
		t.Fatal("a resolution is not current over the tree it was resolved from")
	}
	if !slices.Equal(gotDeps, deps) {
		t.Fatalf("deps %v, want every scope of the tree %v", gotDeps, deps)
	}
}

func TestResolveTheDiamondServesTheLaterLayer(t *testing.T) {
	// a inherits b then c; both inherit d; X is set in b and in d. The
	// full walk is d b d c a: d's last place is after b, so d's X wins
	// and b's is shadowed by d.
	g := graph{
		inherits: map[string][]string{"a": {"b", "c"}, "b": {"d"}, "c": {"d"}},
		vars:     map[string][]string{"b": {"X"}, "d": {"X", "Y"}},
	}
	tree := g.tree("a")
	r, err := envy.Resolve("a", tree)
	if err != nil {
		t.Fatal(err)
	}
	var layers []string
	for _, l := range r.Layers {
		layers = append(layers, l.Path)
	}
	if want := []string{"b", "d", "c", "a"}; !slices.Equal(layers, want) {
		t.Fatalf("layers %v, want %v (each scope once, at its last place)", layers, want)
	}
	if w, _ := r.Winner("X"); w.Scope != "d" {
		t.Fatalf("X comes from %s, want d", w.Scope)
	}
	if got := r.ShadowedBy("b", "X"); got != "d" {
		t.Fatalf("b's X is shadowed by %q, want d", got)
	}
	if got := r.ShadowedBy("d", "X"); got != "" {
		t.Fatalf("d's X is shadowed by %q, want in effect", got)
	}
	checkAgainstReference(t, "a", tree)

	// A change to any layer, however deep, makes the resolution stale.
	changed := maps.Clone(tree)
	d := *tree["d"]
	d.Scope.Revision = 99
	changed["d"] = &d
	if r.Current(changed) {
		t.Error("the resolution is current after d changed")
	}
	delete(changed, "d")
	if r.Current(changed) {
		t.Error("the resolution is current after d left the tree")
	}
}

func TestResolveMatchesTheFullWalkOnRandomGraphs(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"A", "B", "C", "D", "E", "F", "G", "H"}
	for i := range 2000 {
		// Scopes s0..sN-1; each inherits some of the higher-numbered ones
		// (so there is no cycle), in random order: chains, diamonds and
		// wide layers alike.
		n := 2 + rng.IntN(40)
		if i%10 == 0 {
			n = 2 + rng.IntN(envy.MaxTreeScopes-2)
		}
		g := graph{inherits: map[string][]string{}, vars: map[string][]string{}}
		fanout := 1 + rng.IntN(6)
		for s := range n {
			p := fmt.Sprintf("s%d", s)
			for k := 0; k < fanout && s+1 < n; k++ {
				q := fmt.Sprintf("s%d", s+1+rng.IntN(min(n-s-1, 1+rng.IntN(8))))
				if !slices.Contains(g.inherits[p], q) {
					g.inherits[p] = append(g.inherits[p], q)
				}
			}
			rng.Shuffle(len(g.inherits[p]), func(a, b int) { g.inherits[p][a], g.inherits[p][b] = g.inherits[p][b], g.inherits[p][a] })
			for range rng.IntN(4) {
				g.vars[p] = append(g.vars[p], names[rng.IntN(len(names))])
			}
		}
		tree := g.tree("s0")
		if walkLen("s0", tree, map[string]int{}) > 200000 {
			continue // the reference would not end; Resolve would, but can't be checked
		}
		checkAgainstReference(t, "s0", tree)
	}
}

// layered is the hostile graph: layers of width scopes, each inheriting
// all of the layer below. The full walk of its top visits width^depth
// scopes.
func layered(depth, width int) graph {
	g := graph{inherits: map[string][]string{}, vars: map[string][]string{}}
	for l := range depth {
		for i := range width {
			p := fmt.Sprintf("l%d/s%d", l, i)
			g.vars[p] = []string{fmt.Sprintf("V%d", i), "SHARED"}
			if l+1 < depth {
				for j := range width {
					g.inherits[p] = append(g.inherits[p], fmt.Sprintf("l%d/s%d", l+1, j))
				}
			}
		}
	}
	return g
}

func TestResolveIsLinearOnTheLayeredGraph(t *testing.T) {
	g := layered(8, 16)
	g.inherits["top"] = []string{"l0/s0"}
	tree := g.tree("top")
	r, err := envy.Resolve("top", tree)
	if err != nil {
		t.Fatal(err)
	}
	// 16^7 paths; each scope once.
	if len(r.Layers) != len(tree) {
		t.Fatalf("%d layers for a tree of %d scopes", len(r.Layers), len(tree))
	}
	if w, _ := r.Winner("SHARED"); w.Scope != "l0/s0" {
		t.Fatalf("SHARED comes from %s, want the nearest layer l0/s0", w.Scope)
	}
}

func TestResolveOfAMissingScopeIsNotFound(t *testing.T) {
	_, err := envy.Resolve("nope", map[string]*envy.ScopeVars{})
	if envy.ErrorCode(err) != envy.ENotFound {
		t.Fatalf("got %v, want not found", err)
	}
}

func TestResolveSurvivesACycleAndAMissingParent(t *testing.T) {
	// Neither is written by a valid write; a read between two commits may
	// still see a parent gone, and Resolve must end whatever it is given.
	g := graph{inherits: map[string][]string{"a": {"b", "gone"}, "b": {"a"}}, vars: map[string][]string{"a": {"X"}, "b": {"X", "Y"}}}
	tree := g.tree("a")
	delete(tree, "gone")
	r, err := envy.Resolve("a", tree)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Layers) != 2 || r.Layers[1].Path != "a" {
		t.Fatalf("layers %+v, want b then a", r.Layers)
	}
	if w, _ := r.Winner("X"); w.Scope != "a" {
		t.Fatalf("X from %s, want the scope's own", w.Scope)
	}
}

// lookupOf serves CheckInherits from a graph, counting lookups; past
// ten times the graph's scopes it fails, so that a check gone exponential
// fails at once rather than running for hours.
func lookupOf(g graph, n *int) func(string) (envy.Scope, error) {
	budget := 10 * (len(g.vars) + len(g.inherits) + 10)
	return func(p string) (envy.Scope, error) {
		*n++
		if *n > budget {
			return envy.Scope{}, fmt.Errorf("more than %d lookups for a graph of at most %d scopes: the check is not linear", budget, len(g.vars)+len(g.inherits))
		}
		if _, ok := g.vars[p]; !ok {
			if _, ok := g.inherits[p]; !ok {
				return envy.Scope{}, envy.Errorf(envy.ENotFound, "scope %s not found", p)
			}
		}
		return envy.Scope{Path: p, Inherits: g.inherits[p]}, nil
	}
}

func TestCheckInheritsLooksUpEachScopeOnce(t *testing.T) {
	g := layered(8, 16)
	var n int
	if err := envy.CheckInherits("top", []string{"l0/s0", "l0/s1"}, lookupOf(g, &n)); err != nil {
		t.Fatal(err)
	}
	// Two scopes of the top layer, then all 16 of each of the 7 below.
	if want := 2 + 7*16; n != want {
		t.Fatalf("%d lookups for a tree of %d scopes: the check must visit each once", n, want)
	}
}

func TestCheckInheritsRefusesWhatBreaksABound(t *testing.T) {
	chain := graph{inherits: map[string][]string{}, vars: map[string][]string{}}
	for i := range 20 {
		chain.vars[fmt.Sprintf("c%d", i)] = nil
		if i+1 < 20 {
			chain.inherits[fmt.Sprintf("c%d", i)] = []string{fmt.Sprintf("c%d", i+1)}
		}
	}
	wide := layered(2, envy.MaxTreeScopes)
	cyc := graph{inherits: map[string][]string{"x": {"y"}, "y": {"top"}}, vars: map[string][]string{"x": nil, "y": nil}}
	for _, c := range []struct {
		name     string
		g        graph
		inherits []string
		typ      string
	}{
		{"a chain of 17 below the scope is too deep", chain, []string{"c3"}, "too_deep"},
		{"a tree of more than MaxTreeScopes scopes is too large", wide, []string{"l0/s0"}, "too_many_scopes"},
		{"a chain back to the scope is a cycle", cyc, []string{"x"}, "cycle"},
		{"a scope that does not exist is not found", chain, []string{"c15", "missing"}, "not_found"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var n int
			err := envy.CheckInherits("top", c.inherits, lookupOf(c.g, &n))
			fs := envy.ErrorFields(err)
			if envy.ErrorCode(err) != envy.EInvalid || len(fs) != 1 || fs[0].Type != c.typ {
				t.Fatalf("got %v (%+v), want a validation error of type %s", err, fs, c.typ)
			}
		})
	}
	// At the bound exactly: the scope and 255 others.
	g := layered(1, envy.MaxTreeScopes-1)
	var all []string
	for i := range envy.MaxTreeScopes - 1 {
		all = append(all, fmt.Sprintf("l0/s%d", i))
	}
	g.inherits["hub"] = all
	g.vars["hub"] = nil
	var n int
	if err := envy.CheckInherits("top", []string{"hub"}, lookupOf(g, &n)); envy.ErrorCode(err) != envy.EInvalid {
		t.Fatalf("the scope, hub and 255 others: got %v, want too_many_scopes", err)
	}
	g.inherits["hub"] = all[:len(all)-1]
	if err := envy.CheckInherits("top", []string{"hub"}, lookupOf(g, &n)); err != nil {
		t.Fatalf("a tree of exactly %d scopes: %v", envy.MaxTreeScopes, err)
	}
}
