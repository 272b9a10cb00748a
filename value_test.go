package envy

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestSensitiveFormatsAsMaskForEveryVerb prints a Sensitive with every fmt
// verb, alone and inside the shapes that hold one (pointers, structs with
// exported and unexported fields, slices, arrays, maps, interfaces and the
// domain's own types), and checks that the plaintext shows in no form.
func TestSensitiveFormatsAsMaskForEveryVerb(t *testing.T) {
	const canary = "canary-1234"
	v := NewSensitive(canary)
	type exported struct{ V Sensitive }
	type unexported struct{ v Sensitive }
	type unexportedPtr struct{ v *Sensitive }
	type nested struct{ inner unexported }
	holders := []struct {
		name string
		x    any
		mask bool // fmt reaches the methods, so the mask shows
	}{
		{"value", v, true},
		{"pointer", &v, true},
		{"exported field", exported{v}, true},
		{"unexported field", unexported{v}, false},
		{"unexported pointer field", unexportedPtr{&v}, false},
		{"nested unexported", nested{unexported{v}}, false},
		{"slice", []Sensitive{v}, true},
		{"array", [1]Sensitive{v}, true},
		{"map", map[string]Sensitive{"K": v}, true},
		{"interface slice", []any{v}, true},
		{"EnvVar", EnvVar{Name: "K", Value: v}, true},
		{"Env", Env{Scope: "s", Vars: []EnvVar{{Name: "K", Value: v}}}, true},
		{"VarView", VarView{Name: "K", Value: &v}, true},
		{"VarInput", VarInput{Value: &v}, true},
	}
	verbs := []string{
		"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "% x", "%#x", "%d", "%o", "%O", "%b",
		"%c", "%U", "%e", "%E", "%f", "%F", "%g", "%G", "%t", "%p", "%T", "%10s", "%-20v", "%.3s",
		"%08d", "%+q", "%#q", "%w",
	}
	leaks := []string{
		canary,
		hex.EncodeToString([]byte(canary)),
		strings.ToUpper(hex.EncodeToString([]byte(canary))),
		fmt.Sprintf("% x", canary),
		"canary", // any part of it, as %.3s or a partial escape would show
	}
	for _, h := range holders {
		for _, verb := range verbs {
			got := fmt.Sprintf(verb, h.x)
			for _, l := range leaks {
				if strings.Contains(got, l) {
					t.Errorf("%s with %s printed %q", h.name, verb, got)
					break
				}
			}
			if h.mask && (verb == "%v" || verb == "%d" || verb == "%x") && !strings.Contains(got, "[sensitive]") {
				t.Errorf("%s with %s printed %q, want the mask", h.name, verb, got)
			}
		}
	}
}

func TestSensitiveNeverLeaksThroughEncoders(t *testing.T) {
	v := NewSensitive("canary-1234")
	var sb strings.Builder
	slog.New(slog.NewJSONHandler(&sb, nil)).Info("x", "v", v, "env", EnvVar{Name: "K", Value: v})
	b, err := json.Marshal(struct{ V Sensitive }{v})
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{sb.String(), string(b), v.String(), v.GoString(), v.LogValue().String()} {
		if strings.Contains(out, "canary") {
			t.Errorf("printed %q", out)
		}
	}
	if v.Reveal() != "canary-1234" || !v.Equal(NewSensitive("canary-1234")) || v.Equal(Sensitive{}) || v.Len() != 11 {
		t.Error("Reveal, Equal or Len lost the value")
	}
	if (Sensitive{}).Reveal() != "" || !(Sensitive{}).Equal(NewSensitive("")) {
		t.Error("the zero Sensitive is not the empty value")
	}
}

// TestMaskMatchesRunes checks Mask, which walks the value's bytes, against
// the plain definition over runes, invalid UTF-8 included.
func TestMaskMatchesRunes(t *testing.T) {
	byRunes := func(s string) string {
		r := []rune(s)
		n := len(r)
		if n < 12 {
			return maskFill
		}
		shown := min(n/4, 4) // at most 4 characters, at most a quarter
		suffix := shown / 3
		prefix := shown - suffix
		return string(r[:prefix]) + maskFill + string(r[n-suffix:])
	}
	values := []string{"", "short", "exactly-12ch", "sk-0123456789abcdef0123456789abcdef", "héllo wörld ünïcode ✓✓✓",
		"\xff\xfe invalid \xc3 utf-8 here", strings.Repeat("€", 40), "ab\x00cdefghijklmnop"}
	for _, v := range values {
		if got, want := Mask(NewSensitive(v)), byRunes(v); got != want {
			t.Errorf("Mask(%q) = %q, want %q", v, got, want)
		}
		if got, want := string(AppendMask([]byte("x"), v)), "x"+byRunes(v); got != want {
			t.Errorf("AppendMask(%q) = %q, want %q", v, got, want)
		}
	}
}

// A mask shows at most 4 characters of a secret, and never more than a
// quarter of it, whatever its length.
func TestAMaskShowsAtMostFourCharactersAndAQuarter(t *testing.T) {
	for n := 0; n <= 200; n++ {
		v := strings.Repeat("k", n)
		m := Mask(NewSensitive(v))
		shown := utf8.RuneCountInString(strings.Replace(m, maskFill, "", 1))
		if !strings.Contains(m, maskFill) || shown > 4 || shown*4 > n {
			t.Fatalf("a secret of %d characters masks as %q: %d characters shown", n, m, shown)
		}
	}
}
