package envy_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/envy-dev/envy"
)

// FuzzParseRefs: the parser never panics; every reference it returns is
// the text at its offsets and a valid scope path and name; an error is a
// RefSyntaxError at an offset of a "${" in the value, and never holds
// the value.
func FuzzParseRefs(f *testing.F) {
	for _, s := range []string{"", "plain", "${A}", "$${A}", "${acme/shared:DB_PASSWORD}", "${", "${}", "$$${A}", "x${a:b:c}", "${A}${B}$", "€${É}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		refs, err := envy.ParseRefs(v)
		if err != nil {
			var se *envy.RefSyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a RefSyntaxError", err)
			}
			if se.Off < 0 || se.Off+2 > len(v) || v[se.Off:se.Off+2] != "${" {
				t.Fatalf("error at offset %d, not at a ${ of %q", se.Off, v)
			}
			if len(v) > 8 && strings.Contains(err.Error(), v) {
				t.Fatalf("error %q holds the value", err)
			}
			return
		}
		last := 0
		for _, r := range refs {
			if r.Off < last || r.End > len(v) || v[r.Off:r.End] != "${"+r.String()+"}" {
				t.Fatalf("ref %+v is not the text at its offsets in %q", r, v)
			}
			last = r.End
			if envy.ValidateName("n", r.Name, nil) != nil || r.Scope != "" && envy.ValidateScopePath("s", r.Scope) != nil {
				t.Fatalf("ref %+v is not valid", r)
			}
		}
	})
}
