package http_test

import (
	"testing"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/testenv"
)

// TestAWriteThatChangesNothingTakesNoRevision: for a caller who may see
// the value, writing a var as it already is takes no revision (and so
// restarts no workload); for one who may not, it always takes one, so
// that the revision never confirms a guessed value.
func TestAWriteThatChangesNothingTakesNoRevision(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	rev := func(r testenv.Response) float64 {
		t.Helper()
		if r.Status >= 300 {
			t.Fatalf("write: %d %s", r.Status, r.Body)
		}
		return r.JSON(t)["revision"].(float64)
	}
	const s = "/v1/scopes/acme/noop"
	rev(e.Do(t, "PUT", s+"/-/vars/A", e.Admin, `{"value":"x","description":"d"}`))
	rev(e.Do(t, "PUT", s+"/-/vars/S", e.Admin, `{"value":"guess-me-1234","secret":true}`))
	r2 := rev(e.Do(t, "GET", s, e.Admin, ""))
	for _, w := range []struct{ method, path, body string }{
		{"PUT", "/-/vars/A", `{"value":"x"}`},
		{"PUT", "/-/vars/A", `{"value":"x","description":"d","secret":false}`},
		{"PATCH", "/-/vars/A", `{"description":"d"}`},
		{"PATCH", "/-/vars", `{"A":"x"}`},
		{"PATCH", "/-/vars", `{"A":{"value":"x"},"S":{"value":"guess-me-1234","secret":true}}`},
		{"PUT", "/-/vars/S", `{"value":"guess-me-1234"}`},
	} {
		r := e.Do(t, w.method, s+w.path, e.Admin, w.body)
		if got := rev(r); got != r2 {
			t.Errorf("%s %s %s by admin: revision %v, want %v (nothing changed)", w.method, w.path, w.body, got, r2)
		}
		if r.Status != 200 {
			t.Errorf("%s %s: status %d, want 200", w.method, w.path, r.Status)
		}
	}
	if r := e.Do(t, "PUT", s+"/-/vars/A", e.Admin, `{"value":"x"}`); r.JSON(t)["version"] != float64(1) || r.JSON(t)["value"] != "x" {
		t.Errorf("the reply of an unchanged write: %s", r.Body)
	}
	if h := e.Do(t, "GET", s+"/-/history", e.Admin, "").JSON(t)["items"].([]any); len(h) != 2 {
		t.Errorf("history has %d entries, want 2", len(h))
	}

	// A writer without reveal can't tell whether its guess of the secret
	// was right; one without read can't for any var.
	noReveal := e.Token(t, "no-reveal", envy.Grant{Scopes: "acme/**", Actions: []envy.Action{envy.ActRead, envy.ActWrite}})
	writeOnly := e.Token(t, "write-only", envy.Grant{Scopes: "acme/**", Actions: []envy.Action{envy.ActWrite}})
	last := r2
	for _, w := range []struct{ token, path, body string }{
		{noReveal, "/-/vars/S", `{"value":"guess-me-1234"}`},
		{writeOnly, "/-/vars/A", `{"value":"x"}`},
		{writeOnly, "/-/vars/S", `{"value":"guess-me-1234"}`},
	} {
		got := rev(e.Do(t, "PUT", s+w.path, w.token, w.body))
		if got <= last {
			t.Errorf("PUT %s by a caller who may not see it: revision %v, want a new one after %v", w.path, got, last)
		}
		last = got
	}
	got := rev(e.Do(t, "PATCH", s+"/-/vars", noReveal, `{"S":{"value":"guess-me-1234","secret":true}}`))
	if got <= last {
		t.Errorf("bulk write of the secret without reveal: revision %v, want a new one after %v", got, last)
	}
}
