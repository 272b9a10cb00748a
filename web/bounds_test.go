package web

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/internal/testenv"
	"github.com/envy-dev/envy/sqlite"
)

// openStream opens a GET that streams (no client timeout; the test's
// context ends it) and returns the response with its first line read
// when it is 200.
func openStream(t *testing.T, ctx context.Context, client *http.Client, url, token string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("Accept", "text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

// The dashboard's event streams count against --max-watches-per-token,
// in the same count as the API's watch streams.
func TestTheDashboardsEventStreamsCountAgainstTheWatchCap(t *testing.T) {
	e := newTestEnvWith(t, false, Options{}, testenv.Options{HTTP: envyhttp.Options{MaxWatchesPerToken: 2}})
	ctx := e.asToken(t, e.Admin)
	if _, _, err := e.Svc.SetVar(ctx, "acme/web", "A", envyVar("1", false), setOpts()); err != nil {
		t.Fatal(err)
	}
	_, plain := e.mint(t, "watcher", "acme/** read")
	b := e.browser(t)
	b.signIn(plain)
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := &http.Client{Jar: b.client.Jar}
	events := e.URL + "/ui/scopes/acme/web/-/events"
	for i := range 2 {
		res := openStream(t, sctx, client, events, "")
		if res.StatusCode != http.StatusOK {
			t.Fatalf("event stream %d of 2: %d", i+1, res.StatusCode)
		}
		if line, err := bufio.NewReader(res.Body).ReadString('\n'); err != nil || line != "event: status\n" {
			t.Fatalf("event stream %d: first line %q, %v", i+1, line, err)
		}
	}
	res := openStream(t, sctx, client, events, "")
	if res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a 3rd event stream of a token capped at 2: %d, want 429: the dashboard's streams escape --max-watches-per-token", res.StatusCode)
	}
	var body strings.Builder
	bufio.NewReader(res.Body).WriteTo(&body)
	if !strings.Contains(body.String(), "--max-watches-per-token") {
		t.Errorf("the refusal does not name the flag: %q", body.String())
	}
	// The same count: the token's native watch is refused too.
	w := openStream(t, sctx, http.DefaultClient, e.URL+"/v1/scopes/acme/web/-/watch", plain)
	if w.StatusCode != http.StatusTooManyRequests {
		t.Errorf("a native watch of a token holding 2 event streams: %d, want 429 (one count for both)", w.StatusCode)
	}
}

// historyCounter counts the history rows a store hands out.
type historyCounter struct {
	envy.Store
	rows atomic.Int64
}

func (c *historyCounter) History(ctx context.Context, scope string, after envy.HistoryCursor, limit int) ([]envy.Change, error) {
	out, err := c.Store.History(ctx, scope, after, limit)
	c.rows.Add(int64(len(out)))
	return out, err
}

// The rollback preview costs what the scope's vars cost, not its history:
// it reads no history row (the state at the revision is one stored row
// per var), however long the history.
func TestTheRollbackPreviewReadsNoHistory(t *testing.T) {
	var counter *historyCounter
	e := newTestEnvWith(t, false, Options{}, testenv.Options{WrapStore: func(db *sqlite.Store) envy.Store {
		counter = &historyCounter{Store: db}
		return counter
	}})
	ctx := e.asToken(t, e.Admin)
	set := func(name, value string, secret bool) {
		t.Helper()
		if _, _, err := e.Svc.SetVar(ctx, "acme/web", name, envyVar(value, secret), setOpts()); err != nil {
			t.Fatal(err)
		}
	}
	set("KEEP", "same", false)
	set("PLAIN", "then", false)
	set("GONE", "x", false)
	set("TOKEN", "s1", true)
	sc, err := e.Svc.GetScope(ctx, "acme/web")
	if err != nil {
		t.Fatal(err)
	}
	to := sc.Revision
	for i := range 150 {
		set("PLAIN", fmt.Sprint("v", i), false)
	}
	set("PLAIN", "then", false) // back to its value then: unchanged
	set("TOKEN", "s2", true)
	set("NEW", "n", false)
	if _, err := e.Svc.DeleteVar(ctx, "acme/web", "GONE", envy.Cond{}); err != nil {
		t.Fatal(err)
	}
	_, plain := e.mint(t, "reader", "acme/** read")
	b := e.browser(t)
	b.signIn(plain)
	before := counter.rows.Load()
	p := b.get("/ui/scopes/acme/web/-/rollback?to=" + fmt.Sprint(to))
	if p.Status != http.StatusOK {
		t.Fatalf("rollback preview: %d\n%s", p.Status, p.Body)
	}
	if n := counter.rows.Load() - before; n != 0 {
		t.Errorf("the rollback preview read %d history rows: its cost grows with the history, not the vars", n)
	}
	section := func(class string) string {
		i := strings.Index(p.Body, `class="`+class+`"`)
		if i < 0 {
			return ""
		}
		rest := p.Body[i:]
		if j := strings.Index(rest, "</ul>"); j >= 0 {
			rest = rest[:j]
		}
		return rest
	}
	for _, c := range []struct{ class, has, lacks string }{
		{"added", "GONE", "KEEP"},
		{"removed", "NEW", "KEEP"},
		{"changed", "TOKEN", "PLAIN"},
	} {
		s := section(c.class)
		if !strings.Contains(s, "<code>"+c.has+"</code>") || strings.Contains(s, "<code>"+c.lacks+"</code>") {
			t.Errorf("the preview's %s list %q: want %s in it and not %s", c.class, s, c.has, c.lacks)
		}
	}
}

// An import preview is the first half of a write: a token that may only
// read is refused one, and holds nothing on the server.
func TestAnImportPreviewNeedsWrite(t *testing.T) {
	e := newTestEnv(t, false, Options{})
	if _, _, err := e.Svc.SetVar(e.asToken(t, e.Admin), "acme/web", "A", envyVar("1", false), setOpts()); err != nil {
		t.Fatal(err)
	}
	_, plain := e.mint(t, "reader", "acme/** read")
	b := e.browser(t)
	csrf := b.signIn(plain)
	p := b.post("/ui/scopes/acme/web/-/import", url.Values{"csrf": {csrf}, "dotenv": {"A=1\nB=" + strings.Repeat("x", 1000) + "\n"}})
	if p.Status != http.StatusForbidden {
		t.Fatalf("a read-only token's import preview: %d, want 403: a reader can make the server hold plaintext\n%s", p.Status, p.Body)
	}
	if n := e.Web.sessions.pendingBytes; n != 0 {
		t.Errorf("a refused preview holds %d bytes", n)
	}
}

// A token keeps at most MaxSessionsPerToken sessions here (its oldest
// ends), at most MaxImportsPerToken pending previews (its oldest ends),
// and all previews together at most ImportBytes (503 beyond).
func TestSessionsAndPendingImportsAreBounded(t *testing.T) {
	e := newTestEnv(t, false, Options{MaxSessionsPerToken: 2, MaxImportsPerToken: 1, ImportBytes: 4096})
	if _, _, err := e.Svc.SetVar(e.asToken(t, e.Admin), "acme/web", "A", envyVar("1", false), setOpts()); err != nil {
		t.Fatal(err)
	}
	_, plain := e.mint(t, "writer", "acme/** read,write")
	first, second := e.browser(t), e.browser(t)
	c1, c2 := first.signIn(plain), second.signIn(plain)
	preview := func(b *browser, csrf, file string) page {
		t.Helper()
		return b.post("/ui/scopes/acme/web/-/import", url.Values{"csrf": {csrf}, "dotenv": {file}})
	}
	p1 := preview(first, c1, "A=1\nB=2\n")
	if p1.Status != http.StatusOK {
		t.Fatalf("preview: %d\n%s", p1.Status, p1.Body)
	}
	id1 := regexp1(t, p1.Body, `name="id" value="([^"]+)"`)
	// A second preview of the same token ends the first.
	if p := preview(second, c2, "A=1\nC=3\n"); p.Status != http.StatusOK {
		t.Fatalf("second preview: %d\n%s", p.Status, p.Body)
	}
	first.post("/ui/scopes/acme/web/-/import/apply", url.Values{"csrf": {c1}, "id": {id1}})
	if p := first.get("/ui/scopes/acme/web"); !strings.Contains(p.Body, "no longer pending") {
		t.Errorf("a token holds 2 pending previews with MaxImportsPerToken 1: the older applied\n%s", p.Body)
	}
	// Previews larger than what all may hold are refused, saying why: a
	// file of many short vars, within the form's bound (ImportBytes too),
	// whose names and values hold more with their bookkeeping.
	var many strings.Builder
	for i := range 70 {
		fmt.Fprintf(&many, "V%d=1\n", 100+i)
	}
	big := preview(second, c2, many.String())
	if big.Status != http.StatusSeeOther {
		t.Fatalf("a preview over ImportBytes: %d\n%s", big.Status, big.Body)
	}
	if p := second.get("/ui/scopes/acme/web"); !strings.Contains(p.Body, "--max-import-bytes") {
		t.Errorf("a preview over ImportBytes is not refused naming the flag\n%s", p.Body)
	}
	if n := e.Web.sessions.pendingBytes; n < 0 || n > 4096 {
		t.Errorf("pending previews hold %d bytes, bound 4096", n)
	}
	// A third sign-in ends the token's oldest session.
	third := e.browser(t)
	third.signIn(plain)
	if p := first.get("/ui/scopes"); p.Status != http.StatusSeeOther || !strings.Contains(p.Header.Get("Location"), "/ui/signin") {
		t.Errorf("the oldest of 3 sessions of a token capped at 2 is still signed in: %d %q", p.Status, p.Header.Get("Location"))
	}
	for i, b := range []*browser{second, third} {
		if p := b.get("/ui/scopes"); p.Status != http.StatusOK {
			t.Errorf("session %d of the last 2 ended: %d", i+2, p.Status)
		}
	}
}
