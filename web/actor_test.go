package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestTheAuditPageShowsEachActorsTokenID: an actor is shown with the
// first 8 characters of its token's id, so that a token named like
// another is told apart.
func TestTheAuditPageShowsEachActorsTokenID(t *testing.T) {
	e := newTestEnv(t, false, Options{})
	admin, err := e.Svc.Authenticate(t.Context(), e.Admin)
	if err != nil {
		t.Fatal(err)
	}
	b := e.browser(t)
	csrf := b.signIn(e.Admin)
	if res := b.post("/ui/scopes", url.Values{"csrf": {csrf}, "path": {"acme/web"}}); res.Status != http.StatusSeeOther {
		t.Fatalf("create scope: %d\n%s", res.Status, res.Body)
	}
	res := b.get("/ui/audit")
	if res.Status != http.StatusOK || !strings.Contains(res.Body, "("+admin.ID[:8]+")") {
		t.Fatalf("the audit page does not show the actor's token id %s: %d\n%s", admin.ID[:8], res.Status, res.Body)
	}
}

// TestTheHistoryPageShowsEachActorsTokenID: likewise on a scope's history.
func TestTheHistoryPageShowsEachActorsTokenID(t *testing.T) {
	e := newTestEnv(t, false, Options{})
	admin, err := e.Svc.Authenticate(t.Context(), e.Admin)
	if err != nil {
		t.Fatal(err)
	}
	if r := e.Env.Do(t, "PUT", "/v1/scopes/acme/web/-/vars/A", e.Admin, `{"value":"1"}`); r.Status != 201 {
		t.Fatalf("set: %d %s", r.Status, r.Body)
	}
	b := e.browser(t)
	b.signIn(e.Admin)
	res := b.get("/ui/scopes/acme/web/-/history")
	if res.Status != http.StatusOK || !strings.Contains(res.Body, "("+admin.ID[:8]+")") {
		t.Fatalf("the history page does not show the actor's token id %s: %d\n%s", admin.ID[:8], res.Status, res.Body)
	}
}
