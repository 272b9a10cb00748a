package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/envy-dev/envy"
)

// The scope page shows and edits the rollout policy; the sync page shows a
// paused rollout, why and who failed, and resumes it.
func TestTheDashboardShowsEditsAndResumesARollout(t *testing.T) {
	e := newTestEnv(t, false, Options{})
	b := e.browser(t)
	csrf := b.signIn(e.Admin)
	if res := b.post("/ui/scopes", url.Values{"csrf": {csrf}, "path": {"acme/web"}}); res.Status != http.StatusSeeOther {
		t.Fatalf("create scope: %d\n%s", res.Status, res.Body)
	}
	if res := b.get("/ui/scopes/acme/web"); !strings.Contains(res.Body, "No rollout policy") {
		t.Fatalf("scope page without a policy:\n%s", res.Body)
	}
	post := func(max, health string) page {
		return b.post("/ui/scopes/acme/web/-/rollout", url.Values{"csrf": {csrf}, "max_unavailable": {max}, "health_timeout": {health}, "debounce": {"5s"}})
	}
	if res := post("25%", "45s"); res.Status != http.StatusSeeOther {
		t.Fatalf("save: %d\n%s", res.Status, res.Body)
	}
	res := b.get("/ui/scopes/acme/web")
	if !strings.Contains(res.Body, "at most <strong>25%</strong>") || !strings.Contains(res.Body, "given 45s") || !strings.Contains(res.Body, "Saved the rollout policy") {
		t.Fatalf("scope page with a policy:\n%s", res.Body)
	}
	post("0", "45s")
	if res := b.get("/ui/scopes/acme/web"); !strings.Contains(res.Body, "max_unavailable must be 1") || !strings.Contains(res.Body, "at most <strong>25%</strong>") {
		t.Fatalf("a bad value is refused, naming it, and changes nothing:\n%s", res.Body)
	}

	// A paused rollout on the sync page.
	ctx := e.asToken(t, e.Admin)
	_, w, err := e.Svc.SetVar(ctx, "acme/web", "V", envyVar("1", false), setOpts())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Svc.ReportConsumer(ctx, "acme/web", "web-1", envy.ConsumerInput{Revision: w.Revision, Unhealthy: "not healthy within 45s"}); err != nil {
		t.Fatal(err)
	}
	res = b.get("/ui/scopes/acme/web/-/sync")
	if !strings.Contains(res.Body, "Rollout: paused") || !strings.Contains(res.Body, "<code>web-1</code>") || !strings.Contains(res.Body, "not healthy within 45s") {
		t.Fatalf("sync page of a paused rollout:\n%s", res.Body)
	}
	if res := b.post("/ui/scopes/acme/web/-/rollout/resume", url.Values{"csrf": {csrf}}); res.Status != http.StatusSeeOther {
		t.Fatalf("resume: %d\n%s", res.Status, res.Body)
	}
	if res := b.get("/ui/scopes/acme/web/-/sync"); !strings.Contains(res.Body, "Resumed the rollout") || strings.Contains(res.Body, "Rollout: paused") {
		t.Fatalf("sync page after resume:\n%s", res.Body)
	}
	if res := post("", ""); res.Status != http.StatusSeeOther {
		t.Fatalf("remove: %d", res.Status)
	}
	if res := b.get("/ui/scopes/acme/web"); !strings.Contains(res.Body, "No rollout policy") {
		t.Fatalf("scope page after removing the policy:\n%s", res.Body)
	}
}
