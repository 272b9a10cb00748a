package envy_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envy-dev/envy"
)

// TestExpandOfMultibyteValuesCostsTheirLengthOnce: a value built past
// MaxValueLen bytes while within MaxValueLen characters (multibyte text)
// costs the expansion its length once, not once per reference it holds
// (each reference recounting the characters of the value built so far:
// 4 values of 16,384 references over 262,144 bytes take seconds to
// minutes that way, milliseconds counted as they grow). The bound still
// holds to the character.
func TestExpandOfMultibyteValuesCostsTheirLengthOnce(t *testing.T) {
	x := strings.Repeat("😀", envy.MaxValueLen) // 65,536 characters, 262,144 bytes
	vars := map[string]string{"X": x, "Y": "", "Z": "é"}
	for i := range 4 {
		// 65,536 characters: X, then 16,383 references to an empty value.
		vars[fmt.Sprintf("B%d", i)] = "${X}" + strings.Repeat("${Y}", envy.MaxValueLen/4-1)
	}
	w := &world{vars: map[string]map[string]string{"m": vars}}
	r, err := w.resolve(t, "m")
	if err != nil {
		t.Fatal(err)
	}
	const limit = 3 * time.Second // the expansion takes milliseconds
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	start := time.Now()
	vals, err := r.ExpandContext(ctx, openRaw)
	if took := time.Since(start); err != nil || took > limit {
		t.Fatalf("expanding 4 values of 65,536 multibyte characters, 16,384 references each: %v after %v, want the values well within %v", err, took.Round(time.Millisecond), limit)
	}
	for i, v := range r.Vars {
		if strings.HasPrefix(v.Name, "B") && vals[i] != x {
			t.Errorf("%s expands to %d bytes, want X's %d", v.Name, len(vals[i]), len(x))
		}
	}

	// One character more is refused.
	vars["B0"] = "${X}${Z}"
	if r, err = w.resolve(t, "m"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Expand(openRaw); envy.ErrorCode(err) != envy.EInvalid || !strings.Contains(err.Error(), "B0: its value is longer than 65536 characters") {
		t.Errorf("expanding a value of 65,537 multibyte characters: %v, want a 422 on the value limit naming B0", err)
	}
}

// TestExpandStopsWhenItsContextEnds: an expansion whose caller went away
// stops within a few vars, with the context's error, rather than opening
// and expanding every var of the env.
func TestExpandStopsWhenItsContextEnds(t *testing.T) {
	vars := map[string]string{"W": "w"}
	for i := range 2000 {
		vars[fmt.Sprintf("V%04d", i)] = "${W}-"
	}
	w := &world{vars: map[string]map[string]string{"c": vars}}
	r, err := w.resolve(t, "c")
	if err != nil {
		t.Fatal(err)
	}
	for _, how := range []string{"Expand", "Expander"} {
		ctx, cancel := context.WithCancel(context.Background())
		opens := 0
		open := func(v *envy.StoredVar) (string, error) {
			opens++
			if opens == 10 {
				cancel()
			}
			return openRaw(v)
		}
		if how == "Expand" {
			_, err = r.ExpandContext(ctx, open)
		} else {
			x := r.ExpanderContext(ctx, open)
			for _, v := range r.Vars {
				if _, err = x.Value(v.Name); err != nil {
					break
				}
			}
		}
		if !errors.Is(err, context.Canceled) || opens > 10+2*64 {
			t.Errorf("%s cancelled at the 10th of 2001 values: %v after opening %d, want context.Canceled within a few more", how, err, opens)
		}
	}
}

// wide is the shape of a reference graph whose per-var walks cost the
// square of its vars: n vars A_i = ${H}, H refers to each of n vars B_j,
// and B_j refers to nothing.
func wide(n int) map[string]string {
	vars := map[string]string{}
	var h strings.Builder
	for j := range n {
		vars[fmt.Sprintf("B%04d", j)] = "b"
		fmt.Fprintf(&h, "${B%04d}", j)
		vars[fmt.Sprintf("A%04d", j)] = "${H}"
	}
	vars["H"] = h.String()
	return vars
}

// countRefSteps counts the references that walks of reference graphs follow
// until the test ends.
func countRefSteps(t *testing.T) *atomic.Int64 {
	var n atomic.Int64
	envy.SetRefStepHook(func() { n.Add(1) })
	t.Cleanup(func() { envy.SetRefStepHook(nil) })
	return &n
}

// TestSecrecyOfEveryVarIsWorkedOutInOnePass: which vars a secret spreads
// to is worked out once per resolution, in one pass over the reference
// graph, not by a walk from each var (quadratic in the vars: 4,000 vars
// referring to one var that refers to 4,000 took seconds per read).
func TestSecrecyOfEveryVarIsWorkedOutInOnePass(t *testing.T) {
	const n = 500
	vars := wide(n)
	vars[fmt.Sprintf("B%04d", n-1)] = "!secret" // the last reference each walk meets
	w := &world{vars: map[string]map[string]string{"w": vars}}
	steps := countRefSteps(t)
	r, err := w.resolve(t, "w")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range r.Vars {
		want := v.Name[0] != 'B' || v.Name == fmt.Sprintf("B%04d", n-1)
		if got := r.Secret(v.Name); got != want {
			t.Fatalf("Secret(%s) = %v, want %v", v.Name, got, want)
		}
	}
	if got, most := steps.Load(), int64(4*len(r.Vars)); got > most {
		t.Errorf("resolving and asking Secret of each of %d vars followed %d references, want at most %d (one pass, not one walk per var)", len(r.Vars), got, most)
	}
}

// TestRefFinderFindsWhatAWalkFromEachVarFinds: over random reference
// graphs without cycles (references within a scope, to another scope, to
// a var or a scope that does not exist, inherited values whose ${NAME}
// names the inheriting scope's var), the RefFinder's answer for each var
// and Secret are those of a walk from that var, the first reference it
// stops at included; and so when a var is asked again.
func TestRefFinderFindsWhatAWalkFromEachVarFinds(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	scopes := []string{"base", "app", "s1", "s2", "s3"}
	for round := range 200 {
		w := &world{inherits: map[string][]string{"app": {"base"}}, vars: map[string]map[string]string{}}
		// A var refers only to vars of a higher rank: no cycle.
		type slot struct{ scope, name string }
		var slots []slot
		for _, s := range scopes {
			w.vars[s] = map[string]string{}
			for i := range 1 + rnd.IntN(5) {
				slots = append(slots, slot{s, fmt.Sprintf("V%d", i)})
			}
		}
		rnd.Shuffle(len(slots), func(i, j int) { slots[i], slots[j] = slots[j], slots[i] })
		rank := map[slot]int{}
		for i, sl := range slots {
			rank[sl] = i
		}
		for i, sl := range slots {
			var b strings.Builder
			if rnd.IntN(4) == 0 {
				b.WriteString("!")
			}
			for range rnd.IntN(4) {
				j := i + 1 + rnd.IntN(len(slots)+2)
				switch {
				case j >= len(slots)+1:
					fmt.Fprintf(&b, "${missing:V0}")
				case j == len(slots):
					fmt.Fprintf(&b, "${V9}")
				case slots[j].scope == sl.scope && rnd.IntN(2) == 0:
					fmt.Fprintf(&b, "${%s}", slots[j].name)
				default:
					fmt.Fprintf(&b, "${%s:%s}", slots[j].scope, slots[j].name)
				}
			}
			w.vars[sl.scope][sl.name] = b.String()
		}
		r, err := w.resolve(t, "app")
		if err != nil {
			t.Fatal(err)
		}
		if c := r.Cycle(); c != "" {
			continue // an inherited ${NAME} can close one; reads refuse it
		}
		bad := func(e envy.RefEdge) bool { return e.Ref.Scope == "s2" || e.Ref.Name == "V3" }
		f := r.RefFinder(context.Background(), bad)
		for pass := range 2 {
			for _, v := range r.Vars {
				var want envy.RefEdge
				walked := !r.WalkRefs(v.Name, func(e envy.RefEdge) bool {
					if bad(e) {
						want = e
						return false
					}
					return true
				})
				got, found, err := f.First(v.Name)
				if err != nil || found != walked || got != want {
					t.Fatalf("round %d pass %d: First(%s) = %v, %v, %v; the walk finds %v, %v\n%v", round, pass, v.Name, got, found, err, want, walked, w.vars)
				}
				secret := v.Secret
				r.WalkRefs(v.Name, func(e envy.RefEdge) bool {
					if secret {
						return false
					}
					to := r
					if e.Ref.Scope != "" && e.Ref.Scope != r.Scope {
						to = r.Referenced[e.Ref.Scope]
					} else if e.Ref.Scope == "" && strings.Contains(e.From, ":") {
						to = r.Referenced[e.From[:strings.LastIndexByte(e.From, ':')]]
					}
					if to != nil {
						if w, ok := to.Winner(e.Ref.Name); ok && w.Secret {
							secret = true
						}
					}
					return true
				})
				if got := r.Secret(v.Name); got != secret {
					t.Fatalf("round %d: Secret(%s) = %v, the walk finds %v\n%v", round, v.Name, got, secret, w.vars)
				}
			}
		}
	}
}

// TestRefFinderEndsOnACycle: a cycle is refused at write time, but a
// resolution that holds one (a planned write's, checked for cycles) is
// worked out without looping, a var on the current path adding nothing.
func TestRefFinderEndsOnACycle(t *testing.T) {
	w := &world{vars: map[string]map[string]string{
		"a": {"A": "${B}", "B": "${b:C}${S}", "S": "!s", "P": "${A}"},
		"b": {"C": "${a:A}"},
	}}
	r, err := w.resolve(t, "a")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"A", "B", "P"} {
		if !r.Secret(name) {
			t.Errorf("Secret(%s) = false, want true (it refers to S through B)", name)
		}
	}
	f := r.RefFinder(context.Background(), func(e envy.RefEdge) bool { return e.Ref.Name == "Q" })
	for _, name := range []string{"P", "A", "B"} {
		if e, found, err := f.First(name); found || err != nil {
			t.Errorf("First(%s) = %v, %v, %v, want none", name, e, found, err)
		}
	}
}

// TestRefFinderStopsWhenItsContextEnds: a RefFinder whose caller went
// away stops within a few vars, with the context's error.
func TestRefFinderStopsWhenItsContextEnds(t *testing.T) {
	w := &world{vars: map[string]map[string]string{"w": wide(2000)}}
	r, err := w.resolve(t, "w")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tests := 0
	f := r.RefFinder(ctx, func(e envy.RefEdge) bool {
		if tests++; tests == 10 {
			cancel()
		}
		return false
	})
	for _, v := range r.Vars {
		if _, _, err = f.First(v.Name); err != nil {
			break
		}
	}
	if !errors.Is(err, context.Canceled) || tests > 10+2*64 {
		t.Errorf("RefFinder cancelled at its 10th test: %v after %d tests, want context.Canceled within a few more", err, tests)
	}
}

// TestExpandBoundsTheCharactersAfterTheLastReference: the bound on an
// expanded value counts the literal text after its last reference too.
func TestExpandBoundsTheCharactersAfterTheLastReference(t *testing.T) {
	w := &world{vars: map[string]map[string]string{"l": {
		"X":    strings.Repeat("é", envy.MaxValueLen),
		"FITS": "${X}",
		"LONG": "${X}abc",
	}}}
	r, err := w.resolve(t, "l")
	if err != nil {
		t.Fatal(err)
	}
	x := r.Expander(openRaw)
	if v, err := x.Value("FITS"); err != nil || len(v) != 2*envy.MaxValueLen {
		t.Errorf("a value of 65,536 characters once expanded: %d bytes, %v, want it", len(v), err)
	}
	if v, err := x.Value("LONG"); envy.ErrorCode(err) != envy.EInvalid || !strings.Contains(err.Error(), "LONG: its value is longer than 65536 characters") {
		t.Errorf("a value of 65,539 characters once expanded: %d bytes, %v, want a 422 on the value limit naming LONG", len(v), err)
	}
}
