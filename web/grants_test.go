package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/envy-dev/envy"
)

// TestTheTokenFormBoundsItsGrants: the dashboard's token form takes at
// most envy.MaxGrants permission lines, says so, and refuses an action
// written twice on a line, naming the line.
func TestTheTokenFormBoundsItsGrants(t *testing.T) {
	e := newTestEnv(t, false, Options{})
	b := e.browser(t)
	csrf := b.signIn(e.Admin)
	if p := b.get("/ui/tokens"); !strings.Contains(p.Body, fmt.Sprintf("at most %d lines", envy.MaxGrants)) {
		t.Errorf("the form does not say how many permissions it takes:\n%.2000s", p.Body)
	}
	lines := func(n int) string {
		var sb strings.Builder
		for i := range n {
			fmt.Fprintf(&sb, "acme/s%d/**=read\n\n", i)
		}
		return sb.String()
	}
	create := func(name, grants string) page {
		return b.post("/ui/tokens", url.Values{"csrf": {csrf}, "name": {name}, "grants": {grants}, "expires": {""}})
	}
	if p := create("many", lines(envy.MaxGrants+1)); p.Status != http.StatusUnprocessableEntity ||
		!strings.Contains(p.Body, fmt.Sprintf("at most %d permissions", envy.MaxGrants)) {
		t.Fatalf("%d permission lines: %d\n%.300s", envy.MaxGrants+1, p.Status, p.Body)
	}
	if p := create("dup", "acme/web/**=read\nacme/**=read,Write, write"); p.Status != http.StatusUnprocessableEntity ||
		!strings.Contains(p.Body, "grants line 2") || !strings.Contains(p.Body, "write is written twice") {
		t.Fatalf("an action twice: %d\n%.300s", p.Status, p.Body)
	}
	if p := create("bound", lines(envy.MaxGrants)); p.Status != http.StatusCreated {
		t.Fatalf("%d permission lines: %d\n%.300s", envy.MaxGrants, p.Status, p.Body)
	}
}
