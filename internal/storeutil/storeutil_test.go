package storeutil

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/envy-dev/envy"
)

// TestMerge checks Merge against its definition, built with a map and a
// sort, over random scopes and changes: replacing only (the fast path),
// adding, deleting and both; cur is never changed.
func TestMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 500 {
		var cur []envy.StoredVar
		for i := range rng.IntN(20) {
			cur = append(cur, envy.StoredVar{Name: fmt.Sprintf("V%02d", i*2), Version: 1})
		}
		before := slices.Clone(cur)
		next := map[string]*envy.StoredVar{}
		for range rng.IntN(4) {
			name := fmt.Sprintf("V%02d", rng.IntN(40))
			switch {
			case round%3 == 0 && Find(cur, name) == nil: // replace only in a third of the rounds
			case rng.IntN(4) == 0 && round%3 != 0:
				next[name] = nil
			default:
				next[name] = &envy.StoredVar{Name: name, Version: 2}
			}
		}
		want := map[string]envy.StoredVar{}
		for _, v := range cur {
			want[v.Name] = v
		}
		for name, nv := range next {
			if nv == nil {
				delete(want, name)
			} else {
				want[name] = *nv
			}
		}
		var wantList []envy.StoredVar
		for _, v := range want {
			wantList = append(wantList, v)
		}
		sort.Slice(wantList, func(i, j int) bool { return wantList[i].Name < wantList[j].Name })
		got := Merge(cur, next)
		if !slices.EqualFunc(got, wantList, func(a, b envy.StoredVar) bool { return a.Name == b.Name && a.Version == b.Version }) {
			t.Fatalf("round %d: Merge(%v, %v) = %v, want %v", round, names(cur), next, names(got), names(wantList))
		}
		if !slices.EqualFunc(cur, before, func(a, b envy.StoredVar) bool { return a.Name == b.Name && a.Version == b.Version }) {
			t.Fatalf("round %d: Merge changed cur", round)
		}
	}
}

func names(vs []envy.StoredVar) []string {
	var out []string
	for _, v := range vs {
		out = append(out, fmt.Sprint(v.Name, "@", v.Version))
	}
	return out
}

// BenchmarkMergeReplace is the common write: one var of a 50-var scope
// set anew.
func BenchmarkMergeReplace(b *testing.B) {
	var cur []envy.StoredVar
	for i := range 50 {
		cur = append(cur, envy.StoredVar{Name: fmt.Sprintf("VAR_%02d", i)})
	}
	next := map[string]*envy.StoredVar{"VAR_07": {Name: "VAR_07", Version: 2}}
	b.ReportAllocs()
	for b.Loop() {
		Merge(cur, next)
	}
}
