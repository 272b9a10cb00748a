package web

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/envy-dev/envy"
)

func TestEveryPageHasStrictSecurityHeaders(t *testing.T) {
	e := newTestEnv(t, false, Options{})
	b := e.browser(t)
	csrf := b.signIn(e.Admin)
	if res := b.post("/ui/scopes", url.Values{"csrf": {csrf}, "path": {"acme/web"}}); res.Status != http.StatusSeeOther {
		t.Fatalf("create scope: %d\n%s", res.Status, res.Body)
	}
	for _, path := range []string{"/ui/signin", "/ui/scopes", "/ui/scopes/acme/web", "/ui/scopes/acme/web/-/history",
		"/ui/scopes/acme/web/-/sync", "/ui/tokens", "/ui/audit", "/ui/static/app.css", "/ui/nope", "/ui/scopes/missing"} {
		res := b.get(path)
		h := res.Header
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "form-action 'self'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s: CSP allows unsafe sources: %q", path, csp)
		}
		if h.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: X-Frame-Options %q", path, h.Get("X-Frame-Options"))
		}
		if h.Get("Referrer-Policy") == "" || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: Referrer-Policy %q, X-Content-Type-Options %q", path, h.Get("Referrer-Policy"), h.Get("X-Content-Type-Options"))
		}
		if h.Get("X-Request-Id") == "" {
			t.Errorf("%s: no X-Request-Id: the API's middleware is not in front", path)
		}
		if strings.Contains(res.Body, "<script>") || strings.Contains(res.Body, " style=") || strings.Contains(res.Body, "onclick") {
			t.Errorf("%s: inline script or style in the page", path)
		}
	}
}

func sessionCookieOf(t *testing.T, res page) *http.Cookie {
	t.Helper()
	for _, c := range (&http.Response{Header: res.Header}).Cookies() {
		if c.Name == sessionCookie {
			return c
		}
	}
	t.Fatalf("no session cookie set; headers %v", res.Header)
	return nil
}

func TestSessionCookieFlags(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		e := newTestEnv(t, useTLS, Options{SessionMax: 2 * time.Hour})
		b := e.browser(t)
		p := b.get("/ui/signin")
		res := b.post("/ui/signin", url.Values{"signin": {field(t, p.Body, "signin")}, "token": {e.Admin}})
		if res.Status != http.StatusSeeOther {
			t.Fatalf("sign in: %d\n%s", res.Status, res.Body)
		}
		c := sessionCookieOf(t, res)
		if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/ui/" || c.MaxAge != 7200 {
			t.Errorf("tls=%v: cookie %+v: want HttpOnly, SameSite=Strict, Path=/ui/, Max-Age=7200", useTLS, c)
		}
		if c.Secure != useTLS {
			t.Errorf("tls=%v: cookie Secure=%v", useTLS, c.Secure)
		}
		if strings.Contains(c.Value, e.Admin) || strings.Contains(res.Body, e.Admin) {
			t.Errorf("the token is in the cookie or the reply")
		}
	}
}

func TestSignInRefusesABadTokenAndAuditsIt(t *testing.T) {
	e := newTestEnv(t, false, Options{})
	b := e.browser(t)
	p := b.get("/ui/signin")
	res := b.post("/ui/signin", url.Values{"signin": {field(t, p.Body, "signin")}, "token": {"envy_" + strings.Repeat("x", 43)}})
	if res.Status != http.StatusUnauthorized || !strings.Contains(res.Body, "That token is not valid") {
		t.Fatalf("bad token: %d\n%s", res.Status, res.Body)
	}
	// Without the sign-in form's own cookie value: a login CSRF.
	res = b.post("/ui/signin", url.Values{"signin": {"forged"}, "token": {e.Admin}})
	if res.Status != http.StatusForbidden {
		t.Fatalf("forged sign-in form: %d", res.Status)
	}
	if res := b.get("/ui/scopes"); res.Status != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/ui/signin?") {
		t.Fatalf("not signed in: scopes answered %d %q", res.Status, res.Header.Get("Location"))
	}
	page, err := e.Svc.Audit(e.asToken(t, e.Admin), envy.AuditListQuery{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range page.Items {
		found = found || a.Action == "auth" && a.Status == 401
	}
	if !found {
		t.Errorf("the failed sign-in is not in the audit log: %+v", page.Items)
	}
}

func TestFormsWithoutTheSessionsCSRFTokenAreRefused(t *testing.T) {
	e := newTestEnv(t, false, Options{})
	b := e.browser(t)
	csrf := b.signIn(e.Admin)
	cases := []struct {
		name string
		form url.Values
		hdr  map[string]string
	}{
		{"no token", url.Values{"path": {"evil/a"}}, nil},
		{"wrong token", url.Values{"path": {"evil/b"}, "csrf": {"not-the-token"}}, nil},
		{"token of another session", url.Values{"path": {"evil/c"}, "csrf": {e.browser(t).signIn(e.Admin)}}, nil},
		{"cross-origin", url.Values{"path": {"evil/d"}, "csrf": {csrf}}, map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}},
	}
	for _, c := range cases {
		res := b.do("POST", "/ui/scopes", c.form, c.hdr)
		if res.Status != http.StatusForbidden || !strings.Contains(res.Body, "refused") {
			t.Errorf("%s: status %d\n%s", c.name, res.Status, res.Body)
		}
	}
	ctx := e.asToken(t, e.Admin)
	if p, _ := e.Svc.ListScopes(ctx, envy.ScopeListQuery{}); len(p.Items) != 0 {
		t.Fatalf("a refused form made scopes: %+v", p.Items)
	}
	if res := b.post("/ui/scopes", url.Values{"path": {"good/a"}, "csrf": {csrf}}); res.Status != http.StatusSeeOther {
		t.Fatalf("with the token: %d\n%s", res.Status, res.Body)
	}
	if _, err := e.Svc.GetScope(ctx, "good/a"); err != nil {
		t.Fatalf("the form with the token made no scope: %v", err)
	}
	// Sign-out is a form too.
	if res := b.post("/ui/signout", url.Values{}); res.Status != http.StatusForbidden {
		t.Fatalf("sign-out without the token: %d", res.Status)
	}
}

func TestSessionsExpire(t *testing.T) {
	e := newTestEnv(t, false, Options{SessionIdle: 10 * time.Minute, SessionMax: time.Hour})
	b := e.browser(t)
	b.signIn(e.Admin)
	for i := 0; i < 6; i++ { // used every 9 minutes: idle never reached
		e.Clock.Advance(9 * time.Minute)
		if res := b.get("/ui/scopes"); res.Status != http.StatusOK {
			t.Fatalf("after %d minutes of use: %d", 9*(i+1), res.Status)
		}
	}
	e.Clock.Advance(9 * time.Minute) // 63 minutes after sign-in: past the maximum
	res := b.get("/ui/scopes")
	if res.Status != http.StatusSeeOther || !strings.Contains(res.Header.Get("Location"), "why=expired") {
		t.Fatalf("past the maximum: %d %q", res.Status, res.Header.Get("Location"))
	}
	b.signIn(e.Admin)
	e.Clock.Advance(11 * time.Minute)
	res = b.get("/ui/scopes/x")
	if res.Status != http.StatusSeeOther || !strings.Contains(res.Header.Get("Location"), "why=expired") ||
		!strings.Contains(res.Header.Get("Location"), "next=%2Fui%2Fscopes%2Fx") {
		t.Fatalf("idle: %d %q", res.Status, res.Header.Get("Location"))
	}
	if res := b.get(res.Header.Get("Location")); !strings.Contains(res.Body, "Your session expired") {
		t.Fatalf("the sign-in page does not say why:\n%s", res.Body)
	}
}

func TestARevokedTokenEndsItsSessionOnTheNextRequest(t *testing.T) {
	e := newTestEnv(t, false, Options{})
	tok, plain := e.mint(t, "alice", "** read")
	b := e.browser(t)
	b.signIn(plain)
	if err := e.Svc.RevokeToken(e.asToken(t, e.Admin), tok.ID); err != nil {
		t.Fatal(err)
	}
	res := b.get("/ui/scopes")
	if res.Status != http.StatusSeeOther || !strings.Contains(res.Header.Get("Location"), "why=ended") {
		t.Fatalf("after revocation: %d %q", res.Status, res.Header.Get("Location"))
	}
	if res := b.get("/ui/signin"); res.Status != http.StatusOK {
		t.Errorf("the sign-in page after the session ended: %d", res.Status)
	}
	if c := sessionCookieOf(t, res); c.MaxAge >= 0 {
		t.Errorf("the session cookie is not cleared: %+v", c)
	}
	if len(e.Web.sessions.m) != 0 {
		t.Errorf("the session is still kept: %d", len(e.Web.sessions.m))
	}
}

func TestWhatAPageOffersIsWhatTheTokenPermits(t *testing.T) {
	e := newTestEnv(t, false, Options{})
	ctx := e.asToken(t, e.Admin)
	if _, _, err := e.Svc.SetVar(ctx, "acme/web", "API_KEY", envy.VarInput{Value: ptr(envy.NewSensitive("sk-live-abcdefghijklmnop")), Secret: ptr(true)}, envy.SetOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.Svc.SetVar(ctx, "other/x", "A", envy.VarInput{Value: ptr(envy.NewSensitive("1"))}, envy.SetOptions{}); err != nil {
		t.Fatal(err)
	}
	_, plain := e.mint(t, "reader", "acme/** read")
	b := e.browser(t)
	csrf := b.signIn(plain)
	list := b.get("/ui/scopes")
	if !strings.Contains(list.Body, "acme/web") || strings.Contains(list.Body, "other/x") {
		t.Errorf("the scope list shows what the token can't see, or hides what it can:\n%s", list.Body)
	}
	p := b.get("/ui/scopes/acme/web")
	if p.Status != http.StatusOK || strings.Contains(p.Body, "sk-live-abcdefghijklmnop") {
		t.Fatalf("scope page: %d, or the secret is in it", p.Status)
	}
	for _, absent := range []string{"Add a var", ">Reveal<", ">Edit<", "Paste a .env"} {
		if strings.Contains(p.Body, absent) {
			t.Errorf("a read-only token is offered %q", absent)
		}
	}
	// The forms are refused by the service all the same.
	res := b.post("/ui/scopes/acme/web/-/vars", url.Values{"csrf": {csrf}, "mode": {"add"}, "name": {"X"}, "value": {"1"}})
	if res.Status != http.StatusSeeOther {
		t.Fatalf("set var: %d", res.Status)
	}
	if after := b.get("/ui/scopes/acme/web"); !strings.Contains(after.Body, "may not write") {
		t.Errorf("the refusal is not shown:\n%s", after.Body)
	}
	res = b.do("POST", "/ui/scopes/acme/web/-/reveal", url.Values{"csrf": {csrf}, "name": {"API_KEY"}}, map[string]string{"Accept": "application/json"})
	if res.Status != http.StatusForbidden || strings.Contains(res.Body, "sk-live") {
		t.Errorf("reveal without the permission: %d %s", res.Status, res.Body)
	}
	if res := b.get("/ui/scopes/other/x"); res.Status != http.StatusNotFound || strings.Contains(res.Body, "A</code>") {
		t.Errorf("a scope the token can't see: %d", res.Status)
	}
	if res := b.get("/ui/audit"); res.Status != http.StatusForbidden {
		t.Errorf("audit for a non-admin: %d", res.Status)
	}
}

func TestRevealIsAuditedAndImportPreviewsBeforeApplying(t *testing.T) {
	e := newTestEnv(t, false, Options{})
	ctx := e.asToken(t, e.Admin)
	if _, _, err := e.Svc.SetVar(ctx, "acme/web", "API_KEY", envy.VarInput{Value: ptr(envy.NewSensitive("sk-live-abcdefghijklmnop")), Secret: ptr(true)}, envy.SetOptions{}); err != nil {
		t.Fatal(err)
	}
	b := e.browser(t)
	csrf := b.signIn(e.Admin)
	res := b.do("POST", "/ui/scopes/acme/web/-/reveal", url.Values{"csrf": {csrf}, "name": {"API_KEY"}}, map[string]string{"Accept": "application/json"})
	if res.Status != http.StatusOK || !strings.Contains(res.Body, `"value":"sk-live-abcdefghijklmnop"`) || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("reveal: %d %v %s", res.Status, res.Header, res.Body)
	}
	preview := b.post("/ui/scopes/acme/web/-/import", url.Values{"csrf": {csrf}, "dotenv": {"A=1\nB=two\n"}, "secret": {"on"}, "mode": {"replace"}})
	if preview.Status != http.StatusOK || !strings.Contains(preview.Body, "Added (2)") || !strings.Contains(preview.Body, "Removed (1)") {
		t.Fatalf("preview: %d\n%s", preview.Status, preview.Body)
	}
	if strings.Contains(preview.Body, "two") {
		t.Errorf("the preview shows a value")
	}
	if l, _ := e.Svc.ListVars(ctx, "acme/web", false); len(l.Items) != 1 {
		t.Fatalf("the preview changed the scope: %+v", l.Items)
	}
	id := regexp1(t, preview.Body, `name="id" value="([^"]+)"`)
	if res := b.post("/ui/scopes/acme/web/-/import/apply", url.Values{"csrf": {csrf}, "id": {id}}); res.Status != http.StatusSeeOther {
		t.Fatalf("apply: %d", res.Status)
	}
	l, _ := e.Svc.ListVars(ctx, "acme/web", false)
	if len(l.Items) != 2 || l.Items[0].Name != "A" || !l.Items[1].Secret {
		t.Fatalf("after the import: %+v", l.Items)
	}
	if res := b.post("/ui/scopes/acme/web/-/import/apply", url.Values{"csrf": {csrf}, "id": {id}}); res.Status != http.StatusSeeOther {
		t.Fatalf("apply twice: %d", res.Status)
	} else if p := b.get("/ui/scopes/acme/web"); !strings.Contains(p.Body, "no longer pending") {
		t.Errorf("applying twice is not refused:\n%s", p.Body)
	}
	entries, err := e.Svc.Audit(ctx, envy.AuditListQuery{Scope: "acme/web"})
	if err != nil {
		t.Fatal(err)
	}
	var reveals, replaces int
	for _, a := range entries.Items {
		switch a.Action {
		case "reveal":
			reveals++
		case "vars.replace":
			replaces++
		}
	}
	if reveals < 1 || replaces != 1 {
		t.Errorf("audit: %d reveals, %d replaces: %+v", reveals, replaces, entries.Items)
	}
}

func TestEventStreamNeedsASession(t *testing.T) {
	e := newTestEnv(t, false, Options{})
	b := e.browser(t)
	res := b.do("GET", "/ui/scopes/acme/-/events", nil, map[string]string{"Accept": "text/event-stream"})
	if res.Status != http.StatusUnauthorized {
		t.Fatalf("events without a session: %d", res.Status)
	}
}

func TestScopeListShowsCountsAndSyncState(t *testing.T) {
	e := newTestEnv(t, false, Options{})
	ctx := e.asToken(t, e.Admin)
	for _, p := range []string{"acme/web/prod", "acme/web-2", "acme/api"} {
		if _, _, err := e.Svc.SetVar(ctx, p, "A", envyVar("1", false), setOpts()); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := e.Svc.SetVar(ctx, "acme/api", "B", envyVar("2", false), setOpts()); err != nil {
		t.Fatal(err)
	}
	st, _ := e.Svc.Status(ctx, "acme/api")
	if _, err := e.Svc.ReportConsumer(ctx, "acme/api", "w1", consumerInput(st.Revision, "h1")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Svc.ReportConsumer(ctx, "acme/web/prod", "w2", consumerInput(1, "h2")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.Svc.SetVar(ctx, "acme/web/prod", "A", envyVar("3", false), setOpts()); err != nil {
		t.Fatal(err)
	}
	b := e.browser(t)
	b.signIn(e.Admin)
	body := b.get("/ui/scopes").Body
	rows := regexp.MustCompile(`(?s)<tr data-path="([^"]+)"[^>]*>(.*?)</tr>`).FindAllStringSubmatch(body, -1)
	var order []string
	cells := map[string]string{}
	for _, r := range rows {
		order = append(order, r[1])
		cells[r[1]] = r[2]
	}
	// A tree: groups, then each scope's children right after it.
	want := []string{"acme", "acme/api", "acme/web", "acme/web/prod", "acme/web-2"}
	if strings.Join(order, " ") != strings.Join(want, " ") {
		t.Errorf("rows %v, want %v", order, want)
	}
	for path, want := range map[string]string{"acme/api": "synced", "acme/web/prod": "behind", "acme/web-2": "no consumers"} {
		if want != "no consumers" && !strings.Contains(cells[path], "1 consumer<") {
			t.Errorf("%s: row %q lacks its consumer count", path, cells[path])
		}
		if !strings.Contains(cells[path], want) {
			t.Errorf("%s: row %q lacks %q", path, cells[path], want)
		}
	}
	if !strings.Contains(cells["acme/api"], `<td class="num">2</td>`) {
		t.Errorf("acme/api: no var count 2 in %q", cells["acme/api"])
	}
	if res := b.get("/ui/scopes?q=WEB-2"); strings.Contains(res.Body, `data-path="acme/api"`) || !strings.Contains(res.Body, `data-path="acme/web-2"`) {
		t.Errorf("search by path: %s", res.Body)
	}
}

func TestATooLargeFormIsRefusedAsSuch(t *testing.T) {
	e := newTestEnv(t, false, Options{})
	b := e.browser(t)
	csrf := b.signIn(e.Admin)
	big := strings.Repeat("A=1\n", 5<<20) // 20 MB, beyond the default limit
	res := b.post("/ui/scopes/acme/-/import", url.Values{"csrf": {csrf}, "dotenv": {big}})
	if res.Status != http.StatusRequestEntityTooLarge || !strings.Contains(res.Body, "larger than this server accepts") {
		t.Fatalf("too large: %d\n%.300s", res.Status, res.Body)
	}
}

func TestANonAdminSeesNoAdminPagesAndIsNotAuditedForLooking(t *testing.T) {
	e := newTestEnv(t, false, Options{})
	_, plain := e.mint(t, "dev", "acme/** read,write")
	b := e.browser(t)
	b.signIn(plain)
	p := b.get("/ui/tokens")
	if p.Status != http.StatusOK || !strings.Contains(p.Body, "Listing every token needs the admin permission") || !strings.Contains(p.Body, "Create a token") {
		t.Fatalf("tokens page for a non-admin: %d\n%s", p.Status, p.Body)
	}
	if strings.Contains(p.Body, `href="/ui/audit"`) {
		t.Errorf("a non-admin is offered the audit log")
	}
	entries, err := e.Svc.Audit(e.asToken(t, e.Admin), envy.AuditListQuery{Actor: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range entries.Items {
		if a.Action == "token.list" {
			t.Errorf("opening the tokens page recorded a refusal: %+v", a)
		}
	}
}

func TestHistoryPagesOfferRollbackToEveryRevisionButTheNewest(t *testing.T) {
	e := newTestEnv(t, false, Options{})
	ctx := e.asToken(t, e.Admin)
	var revs []int64
	for i := 0; i < shownRevisions+3; i++ {
		_, info, err := e.Svc.SetVar(ctx, "acme/web", "N", envyVar(strconv.Itoa(i), false), setOpts())
		if err != nil {
			t.Fatal(err)
		}
		revs = append(revs, info.Revision)
	}
	b := e.browser(t)
	b.signIn(e.Admin)
	first := b.get("/ui/scopes/acme/web/-/history").Body
	newest := revs[len(revs)-1]
	if strings.Contains(first, "to="+strconv.FormatInt(newest, 10)+`"`) || !strings.Contains(first, "to="+strconv.FormatInt(newest-1, 10)+`"`) {
		t.Errorf("first page: rollback links wrong")
	}
	older := regexp1(t, first, `history\?before=(\d+)`)
	page2 := b.get("/ui/scopes/acme/web/-/history?before=" + older).Body
	top := regexp1(t, page2, `id="rev-(\d+)"`)
	if !strings.Contains(page2, "to="+top+`"`) {
		t.Errorf("an older page offers no rollback to its first revision %s", top)
	}
	if !strings.Contains(page2, `id="rev-`+strconv.FormatInt(revs[0], 10)+`"`) {
		t.Errorf("the oldest revision is not on the second page")
	}
}

func TestTheSyncEventStreamEndsWhenTheTokenIsRevoked(t *testing.T) {
	e := newTestEnv(t, false, Options{})
	ctx := e.asToken(t, e.Admin)
	if _, _, err := e.Svc.SetVar(ctx, "acme/web", "A", envyVar("1", false), setOpts()); err != nil {
		t.Fatal(err)
	}
	tok, plain := e.mint(t, "watcher", "acme/** read")
	b := e.browser(t)
	b.signIn(plain)
	req, _ := http.NewRequest("GET", e.URL+"/ui/scopes/acme/web/-/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	client := &http.Client{Jar: b.client.Jar} // no timeout: the stream is long
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	rd := bufio.NewReader(res.Body)
	line, err := rd.ReadString('\n')
	if err != nil || line != "event: status\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	if err := e.Svc.RevokeToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, rd)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the stream ended with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the stream is still open 30 s after the revocation")
	}
}

func TestTheSignInPageSendsASignedInBrowserOn(t *testing.T) {
	e := newTestEnv(t, false, Options{})
	b := e.browser(t)
	b.signIn(e.Admin)
	if res := b.get("/ui/signin"); res.Status != http.StatusSeeOther || res.Header.Get("Location") != "/ui/scopes" {
		t.Fatalf("signed in, the sign-in page: %d %q", res.Status, res.Header.Get("Location"))
	}
}

// The dashboard's Revoke goes through the Service's refusal to end the
// last global admin, and the page says why.
func TestRevokingTheLastAdminFromTheDashboardIsRefusedWithWhy(t *testing.T) {
	e := newTestEnv(t, false, Options{})
	admin, err := e.Svc.Authenticate(context.Background(), e.Admin)
	if err != nil {
		t.Fatal(err)
	}
	_, plain := e.mint(t, "other", "** read")
	b := e.browser(t)
	csrf := b.signIn(e.Admin)
	res := b.post("/ui/tokens/"+admin.ID+"/revoke", url.Values{"csrf": {csrf}})
	if res.Status != http.StatusSeeOther {
		t.Fatalf("revoke: %d\n%s", res.Status, res.Body)
	}
	page := b.get(res.Header.Get("Location"))
	if !strings.Contains(page.Body, "last live token with admin on **") || !strings.Contains(page.Body, "nothing revoked") {
		t.Fatalf("the tokens page does not show the refusal:\n%s", page.Body)
	}
	if _, err := e.Svc.Authenticate(context.Background(), e.Admin); err != nil {
		t.Fatalf("the admin token was revoked: %v", err)
	}
	if _, err := e.Svc.Authenticate(context.Background(), plain); err != nil {
		t.Fatalf("a token it minted was revoked: %v", err)
	}
}

// TestHistoryOfAVarMarkedSecretReadsMasked: a var set plain, then marked
// secret, then unmarked: to a token without reveal, neither its plain past
// nor its secret version shows in the history's diff, only what came
// after the unmarking.
func TestHistoryOfAVarMarkedSecretReadsMasked(t *testing.T) {
	e := newTestEnv(t, false, Options{})
	ctx := e.asToken(t, e.Admin)
	for _, in := range []envy.VarInput{envyVar("old-plain-1", false), envyVar("was-secret-2", true), envyVar("new-plain-3", false)} {
		if _, _, err := e.Svc.SetVar(ctx, "acme/web", "A", in, setOpts()); err != nil {
			t.Fatal(err)
		}
	}
	_, plain := e.mint(t, "reader", "acme/** read")
	b := e.browser(t)
	b.signIn(plain)
	body := b.get("/ui/scopes/acme/web/-/history").Body
	if !strings.Contains(body, "new-plain-3") {
		t.Fatalf("the history does not show the version set after the unmarking")
	}
	for _, v := range []string{"old-plain-1", "was-secret-2"} {
		if strings.Contains(body, v) {
			t.Errorf("a reader without reveal sees %s in the history", v)
		}
	}
}
