package web

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/identity/oidctest"
)

// The people of the test provider: alice is in the platform group, carol
// in the ops team (a nested claim), bob in neither.
var oidcUsers = []oidctest.User{
	{Subject: "u-alice", Username: "alice", Email: "alice@acme.example", Claims: map[string]any{"groups": []string{"staff", "platform"}}},
	{Subject: "u-bob", Username: "bob", Email: "bob@acme.example", Claims: map[string]any{"groups": []string{"sales"}}},
	{Subject: "u-carol", Username: "carol", Claims: map[string]any{"org": map[string]any{"team": "ops"}}},
}

// oidcEnv is a dashboard and a real OpenID provider (zitadel's op) on
// loopback, with provider "corp" defined: the platform group may read and
// write acme/**, the ops team read acme/web/**.
func oidcEnv(t *testing.T) (*testEnv, *oidctest.Provider) {
	t.Helper()
	e := newTestEnv(t, false, Options{})
	p := oidctest.New(t, []string{e.URL + "/ui/oidc/corp/callback"}, oidcUsers...)
	_, _, err := e.Svc.PutOIDC(e.asToken(t, e.Admin), "corp", envy.OIDCInput{Issuer: p.Issuer, ClientID: p.ClientID,
		ClientSecret: envy.NewSensitive(p.ClientSecret), RedirectURIs: []string{e.URL + "/ui/oidc/corp/callback"},
		Scopes: []string{"openid", "email"},
		Roles: []envy.OIDCRole{
			{Name: "platform", Claim: "groups", Value: "platform", Permissions: []envy.Grant{{Scopes: "acme/**", Actions: []envy.Action{envy.ActRead, envy.ActWrite}}}},
			{Name: "ops", Claim: "org.team", Value: "ops", Permissions: []envy.Grant{{Scopes: "acme/web/**", Actions: []envy.Action{envy.ActRead}}}},
		}})
	if err != nil {
		t.Fatalf("PutOIDC: %v", err)
	}
	return e, p
}

// oidcSignIn signs in through the provider with an HTTP client: the
// dashboard's start, the provider's login page, and the callback, which
// it returns.
func oidcSignIn(t *testing.T, b *browser, p *oidctest.Provider, username string) (callback string, pg page) {
	t.Helper()
	start := b.get("/ui/oidc/corp/start")
	if start.Status != http.StatusSeeOther || !strings.HasPrefix(start.Header.Get("Location"), p.Issuer) {
		t.Fatalf("start: %d %v %s", start.Status, start.Header, start.Body)
	}
	back, err := p.SignIn(t.Context(), start.Header.Get("Location"), username)
	if err != nil {
		t.Fatalf("sign in at the provider: %v", err)
	}
	if !strings.HasPrefix(back.String(), b.base+"/ui/oidc/corp/callback?") {
		t.Fatalf("the provider sent the browser to %s", back)
	}
	callback = strings.TrimPrefix(back.String(), b.base)
	return callback, b.get(callback)
}

func TestOIDCSignInChecksStateBrowserAndNonce(t *testing.T) {
	e, p := oidcEnv(t)
	admin := e.asToken(t, e.Admin)

	b := e.browser(t)
	callback, pg := oidcSignIn(t, b, p, "alice")
	if pg.Status != http.StatusOK || !strings.Contains(pg.Body, `url=/ui/scopes`) {
		t.Fatalf("callback: %d %s", pg.Status, pg.Body)
	}
	if pg := b.get("/ui/scopes"); pg.Status != http.StatusOK || !strings.Contains(pg.Body, "oidc:corp:u-alice &lt;alice@acme.example&gt;") {
		t.Fatalf("scopes after the sign-in: %d %s", pg.Status, pg.Body)
	}
	// The code is spent, and the state is this browser's only: the same
	// callback in another browser (no cookie, or another's) is refused.
	other := e.browser(t)
	other.get("/ui/oidc/corp/start") // a cookie of its own
	if pg := other.get(callback); pg.Status != http.StatusUnauthorized || !strings.Contains(pg.Body, "started elsewhere") {
		t.Fatalf("the callback in another browser: %d %s", pg.Status, pg.Body)
	}
	// A state not sealed by envy is refused.
	u, _ := url.Parse(callback)
	q := u.Query()
	q.Set("state", "x"+q.Get("state")[1:])
	b2 := e.browser(t)
	b2.get("/ui/oidc/corp/start")
	if pg := b2.get(u.Path + "?" + q.Encode()); pg.Status != http.StatusUnauthorized {
		t.Fatalf("a forged state: %d %s", pg.Status, pg.Body)
	}

	// carol's nested claim matches the ops role; a token of hers reads
	// acme/web, not acme/db.
	cb := e.browser(t)
	if _, pg := oidcSignIn(t, cb, p, "carol"); pg.Status != http.StatusOK {
		t.Fatalf("carol: %d %s", pg.Status, pg.Body)
	}
	toks, err := e.Svc.ListTokens(admin, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var carol envy.Token
	for _, tk := range toks.Items {
		if tk.Name == "oidc:corp:u-carol" {
			carol = tk
		}
	}
	if carol.Trust != "oidc:corp" || carol.Subject != "u-carol" || len(carol.Permissions) != 1 || carol.Permissions[0].Scopes != "acme/web/**" {
		t.Fatalf("carol's token: %+v", carol)
	}

	// A provider that puts another nonce in its ID token (one replayed
	// from another sign-in) is refused, and the audit log says why.
	p.TamperNonce(true)
	nb := e.browser(t)
	if _, pg := oidcSignIn(t, nb, p, "alice"); pg.Status != http.StatusUnauthorized || !strings.Contains(pg.Body, "could not be verified") {
		t.Fatalf("a wrong nonce: %d %s", pg.Status, pg.Body)
	}
	p.TamperNonce(false)
	waitAudit(t, e, "refused: ID token: nonce did not match")
	waitAudit(t, e, "refused: state started by another browser or client")
}

// waitAudit waits for an oidc.login audit entry whose names hold want.
func waitAudit(t *testing.T, e *testEnv, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		page, err := e.Svc.Audit(e.asToken(t, e.Admin), envy.AuditListQuery{})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range page.Items {
			if a.Action == envy.AuditOIDCLogin && slices.Contains(a.Names, want) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no oidc.login audit entry with %q", want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestBrowserOIDCSignInRoleAndRefusal(t *testing.T) {
	e, _ := oidcEnv(t)
	ctx := newBrowser(t)

	signIn := func(username string) {
		t.Helper()
		run(t, ctx, "sign in with corp",
			chromedp.Navigate(e.URL+"/ui/signin"),
			chromedp.WaitVisible(`a[href="/ui/oidc/corp/start"]`, chromedp.ByQuery),
		)
		if s := textOf(t, ctx, `a[href="/ui/oidc/corp/start"]`); s != "Sign in with corp" {
			t.Fatalf("the link reads %q", s)
		}
		checkA11y(t, ctx)
		run(t, ctx, "the provider's login page",
			chromedp.Click(`a[href="/ui/oidc/corp/start"]`, chromedp.ByQuery),
			chromedp.WaitVisible(`#username`, chromedp.ByQuery),
			chromedp.SendKeys(`#username`, username, chromedp.ByQuery),
			chromedp.Click(`#submit`, chromedp.ByQuery),
		)
	}

	// alice is in the platform group: signed in, named by her identity.
	signIn("alice")
	waitText(t, ctx, "body", "Signed in as oidc:corp:u-alice <alice@acme.example>")
	run(t, ctx, "the scopes page", chromedp.WaitVisible(`#q`, chromedp.ByQuery))
	var loc string
	run(t, ctx, "location", chromedp.Location(&loc))
	if loc != e.URL+"/ui/scopes" {
		t.Fatalf("after the sign-in the tab is at %s", loc)
	}
	screenshot(t, ctx, "oidc-signed-in", false)

	// Deleting the provider revokes her token, which ends the session.
	if _, err := e.Svc.DeleteOIDC(e.asToken(t, e.Admin), "corp"); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, "reload", chromedp.Navigate(e.URL+"/ui/scopes"), chromedp.WaitVisible(`#token`, chromedp.ByQuery))
	waitText(t, ctx, "body", "Your session ended")

	// bob matches no role: refused, with a page that says so.
	e2, _ := oidcEnv(t)
	e = e2
	signIn("bob")
	waitText(t, ctx, "body", "no role of OIDC provider corp matches you")
	waitText(t, ctx, "body", "u-bob <bob@acme.example>")
	screenshot(t, ctx, "oidc-refused", false)
	run(t, ctx, "the refusal", chromedp.Navigate(e.URL+"/ui/scopes"), chromedp.WaitVisible(`#token`, chromedp.ByQuery))
}

// TestAProvidersRefusalIsShownWithoutItsText: the provider's error code is
// named, the description (anyone's text, in a link) is not.
func TestAProvidersRefusalIsShownWithoutItsText(t *testing.T) {
	e, _ := oidcEnv(t)
	b := e.browser(t)
	pg := b.get("/ui/oidc/corp/callback?error=access_denied&error_description=" + url.QueryEscape("Call 555-0100 to restore your account"))
	if pg.Status != http.StatusUnauthorized || !strings.Contains(pg.Body, "(access_denied)") || strings.Contains(pg.Body, "555-0100") {
		t.Fatalf("%d %s", pg.Status, pg.Body)
	}
}
