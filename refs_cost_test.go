package envy_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
