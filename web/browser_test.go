package web

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/envy-dev/envy/internal/skips"
)

// The browser tests drive a real headless Chromium against a real server
// over loopback. Without Chromium they skip, except under CI=true, where
// they fail (.ci/run installs it).
//
// Screenshots go to each test's artifact directory (go test -artifacts
// keeps them; see docs/testing.md). With ENVY_UPDATE_SCREENSHOTS=1 the
// README's screenshots are written to docs/img/ as well.

const chromiumPath = "/usr/bin/chromium"

func chromium(t *testing.T) string {
	t.Helper()
	path := chromiumPath
	if p := os.Getenv("ENVY_CHROMIUM"); p != "" {
		path = p
	}
	if _, err := exec.LookPath(path); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Chromium is not installed at %s: CI runs the browser tests (apt-get install chromium)", path)
		}
		// Recorded, so that the run ends saying so (package skips).
		skips.Skip(t, "no Chromium at "+path+": browser tests skipped (apt-get install chromium, or set ENVY_CHROMIUM)")
	}
	return path
}

// newBrowser starts a fresh headless Chromium with its own profile and
// returns a tab's context.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := chromium(t)
	// The profile goes when the test ends; Chromium's helpers may still
	// write to it for a moment after the browser exits, so not t.TempDir.
	profile, err := os.MkdirTemp("", "envy-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() {
		cancelT()
		cancelC()
		cancelA()
		for i := 0; i < 50 && os.RemoveAll(profile) != nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
	})
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action) {
	t.Helper()
	if err := chromedp.Run(ctx, actions...); err != nil {
		var loc, body string
		_ = chromedp.Run(ctx, chromedp.Location(&loc), chromedp.Evaluate(`document.body ? document.body.innerText : ""`, &body))
		t.Fatalf("%s: %v\nat %s:\n%s", what, err, loc, body)
	}
}

// screenshot saves the page as <name>.png in the test's artifact
// directory, and under docs/img/ when ENVY_UPDATE_SCREENSHOTS=1 and
// readme is set.
func screenshot(t *testing.T, ctx context.Context, name string, readme bool) {
	t.Helper()
	var buf []byte
	// Right after a navigation the page may not be laid out yet: a few
	// tries.
	var err error
	for i := 0; i < 20; i++ {
		if err = chromedp.Run(ctx, chromedp.WaitReady("body", chromedp.ByQuery),
			chromedp.Evaluate(`document.activeElement && document.activeElement.blur(); true`, nil),
			chromedp.FullScreenshot(&buf, 100)); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := t.ArtifactDir()
	if err := os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644); err != nil {
		t.Fatal(err)
	}
	if readme && os.Getenv("ENVY_UPDATE_SCREENSHOTS") == "1" {
		if err := os.WriteFile(filepath.Join("..", "docs", "img", name+".png"), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

//go:embed testdata/a11y.js
var a11yJS string

// checkA11y runs the accessibility checker on the current page, in the
// light and the dark color scheme, and tabs through the first focusable
// elements checking that each shows where the focus is.
func checkA11y(t *testing.T, ctx context.Context) {
	t.Helper()
	var loc string
	run(t, ctx, "page loaded", chromedp.Poll(`document.readyState === "complete"`, nil, chromedp.WithPollingTimeout(30*time.Second)), chromedp.Location(&loc))
	for _, scheme := range []string{"light", "dark"} {
		var problems []string
		run(t, ctx, "a11y "+scheme,
			emulation.SetEmulatedMedia().WithFeatures([]*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}),
			chromedp.Evaluate(a11yJS, &problems),
		)
		for _, p := range problems {
			t.Errorf("a11y (%s scheme) at %s: %s", scheme, loc, p)
		}
	}
	run(t, ctx, "reset scheme", emulation.SetEmulatedMedia().WithFeatures([]*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "light"}}))
	// Keyboard focus: Tab from the top of the page.
	run(t, ctx, "focus reset", chromedp.Evaluate(`document.activeElement && document.activeElement.blur(); window.scrollTo(0,0); true`, nil))
	for i := 0; i < 8; i++ {
		var res focusState
		run(t, ctx, "tab", chromedp.KeyEvent(kb.Tab), chromedp.Evaluate(focusJS, &res))
		if res.Body {
			break
		}
		if !res.Visible {
			t.Errorf("a11y at %s: the keyboard focus on %q is not visible", loc, res.Desc)
		}
	}
}

// focusJS tells which element has the focus and whether it shows it (an
// outline or a box shadow).
const focusJS = `(() => {
	const el = document.activeElement;
	if (!el || el === document.body) return {desc: "body", visible: false, body: true};
	const s = getComputedStyle(el);
	const outline = s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0;
	const shadow = s.boxShadow && s.boxShadow !== "none";
	return {desc: el.tagName.toLowerCase() + " " + (el.getAttribute("aria-label") || el.textContent || el.name || "").trim().slice(0, 40), visible: !!(outline || shadow), body: false};
})()`

type focusState struct {
	Desc    string `json:"desc"`
	Visible bool   `json:"visible"`
	Body    bool   `json:"body"`
}

func signInBrowser(t *testing.T, ctx context.Context, base, token string) {
	t.Helper()
	run(t, ctx, "sign in",
		chromedp.Navigate(base+"/ui/"),
		chromedp.WaitVisible(`#token`, chromedp.ByQuery),
	)
	checkA11y(t, ctx)
	run(t, ctx, "sign in",
		chromedp.SendKeys(`#token`, token, chromedp.ByQuery),
		chromedp.Submit(`#token`, chromedp.ByQuery),
		chromedp.WaitVisible(`#q`, chromedp.ByQuery),
	)
}

func textOf(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	var s string
	run(t, ctx, "text of "+sel, chromedp.Text(sel, &s, chromedp.ByQuery))
	return s
}

// waitText polls until the element's text contains want, through
// navigations.
func waitText(t *testing.T, ctx context.Context, sel, want string) {
	t.Helper()
	js := fmt.Sprintf(`(() => { const el = document.querySelector(%q); return document.readyState === "complete" && !!el && el.textContent.includes(%q); })()`, sel, want)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var ok bool
		err := chromedp.Run(ctx, chromedp.Evaluate(js, &ok))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			var loc, body string
			_ = chromedp.Run(ctx, chromedp.Location(&loc), chromedp.Evaluate(`document.body ? document.body.innerText : ""`, &body))
			t.Fatalf("no %q in %s (last error %v)\nat %s:\n%s", want, sel, err, loc, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitLocation waits until the tab has navigated to url.
func waitLocation(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var loc string
		if err := chromedp.Run(ctx, chromedp.Location(&loc)); err == nil && loc == url {
			if err := chromedp.Run(ctx, chromedp.WaitReady("body", chromedp.ByQuery)); err == nil {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tab did not navigate to %s (at %s)", url, loc)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestBrowserScopeVarsRevealImportHistoryRollback(t *testing.T) {
	ctx := newBrowser(t)
	e := newTestEnv(t, false, Options{RevealFor: 5 * time.Second}) // long enough to see, short enough to wait for
	// A base scope to inherit, with a var the new scope will shadow.
	actx := e.asToken(t, e.Admin)
	if _, _, err := e.Svc.SetVar(actx, "acme/base", "LOG_LEVEL", envyVar("info", false), setOpts()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.Svc.SetVar(actx, "acme/base", "REGION", envyVar("eu-west-1", false), setOpts()); err != nil {
		t.Fatal(err)
	}
	signInBrowser(t, ctx, e.URL, e.Admin)
	checkA11y(t, ctx)

	// Create a scope that inherits acme/base.
	run(t, ctx, "create scope",
		chromedp.SendKeys(`#new-path`, "acme/web/prod", chromedp.ByQuery),
		chromedp.SendKeys(`#new-desc`, "The production web app", chromedp.ByQuery),
		chromedp.SendKeys(`#new-inherits`, "acme/base", chromedp.ByQuery),
		chromedp.Submit(`#new-path`, chromedp.ByQuery),
		chromedp.WaitVisible(`#add-name`, chromedp.ByQuery),
	)
	waitText(t, ctx, ".flash.ok", "Created scope acme/web/prod")

	// Add a plain var and a secret.
	addVar := func(name, value string, secret bool) {
		acts := []chromedp.Action{
			chromedp.SendKeys(`#add-name`, name, chromedp.ByQuery),
			chromedp.SendKeys(`#add-value`, value, chromedp.ByQuery),
		}
		if secret {
			acts = append(acts, chromedp.Click(`#add-secret`, chromedp.ByQuery))
		}
		acts = append(acts, chromedp.Submit(`#add-name`, chromedp.ByQuery), chromedp.WaitVisible(`.flash.ok`, chromedp.ByQuery))
		run(t, ctx, "add "+name, acts...)
		waitText(t, ctx, ".flash.ok", "Added "+name)
	}
	addVar("LOG_LEVEL", "debug", false)
	addVar("STRIPE_KEY", "sk_live_0123456789abcdefghij", true)

	// The secret is masked everywhere on the page; the plain var shows.
	var html string
	run(t, ctx, "page html", chromedp.OuterHTML(`html`, &html, chromedp.ByQuery))
	if strings.Contains(html, "sk_live_0123456789abcdefghij") {
		t.Fatalf("the secret's value is in the page")
	}
	masked := textOf(t, ctx, `code[data-value-of="STRIPE_KEY"]`)
	if !strings.Contains(masked, "••••") {
		t.Fatalf("the secret is not masked: %q", masked)
	}
	if v := textOf(t, ctx, `code[data-value-of="LOG_LEVEL"]`); v != "debug" {
		t.Fatalf("LOG_LEVEL shows %q", v)
	}
	// Inherited vars: LOG_LEVEL of acme/base is shadowed, REGION is in effect.
	waitText(t, ctx, "#inherited-vars", "shadowed by acme/web/prod")
	waitText(t, ctx, "#inherited-vars", "eu-west-1")
	checkA11y(t, ctx)

	// Reveal the secret: shown, then hidden again after a while.
	run(t, ctx, "reveal", chromedp.Click(`form.reveal-form button`, chromedp.ByQuery))
	waitText(t, ctx, `code[data-value-of="STRIPE_KEY"]`, "sk_live_0123456789abcdefghij")
	screenshot(t, ctx, "dashboard-scope-revealed", false)
	waitText(t, ctx, `code[data-value-of="STRIPE_KEY"]`, "••••")
	audit, err := e.Svc.Audit(actx, auditQuery("acme/web/prod"))
	if err != nil {
		t.Fatal(err)
	}
	revealed := false
	for _, a := range audit.Items {
		revealed = revealed || a.Action == "reveal" && len(a.Names) == 1 && a.Names[0] == "STRIPE_KEY"
	}
	if !revealed {
		t.Errorf("the reveal is not audited: %+v", audit.Items)
	}
	screenshot(t, ctx, "dashboard-scope", true)
	run(t, ctx, "dark", emulation.SetEmulatedMedia().WithFeatures([]*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}))
	screenshot(t, ctx, "dashboard-scope-dark", false)
	run(t, ctx, "light", emulation.SetEmulatedMedia().WithFeatures([]*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "light"}}))

	// Paste a .env file: preview, then apply as one change.
	run(t, ctx, "paste .env",
		chromedp.SendKeys(`#dotenv`, "LOG_LEVEL=warn\nSTRIPE_KEY=sk_live_0123456789abcdefghij\nFEATURE_FLAGS=search,checkout\n", chromedp.ByQuery),
		chromedp.Submit(`#dotenv`, chromedp.ByQuery),
		chromedp.WaitVisible(`#import-preview`, chromedp.ByQuery),
	)
	preview := textOf(t, ctx, `#import-preview`)
	for _, want := range []string{"Added (1)", "FEATURE_FLAGS", "Changed (1)", "LOG_LEVEL", "1 var stays"} {
		if !strings.Contains(preview, want) {
			t.Errorf("the import preview lacks %q:\n%s", want, preview)
		}
	}
	checkA11y(t, ctx)
	screenshot(t, ctx, "dashboard-import-preview", false)
	run(t, ctx, "apply import",
		chromedp.Click(`//button[text()="Apply import"]`, chromedp.BySearch),
		chromedp.WaitVisible(`.flash.ok`, chromedp.ByQuery),
	)
	waitText(t, ctx, ".flash.ok", "Imported 3 vars (merged) as revision")
	waitText(t, ctx, `code[data-value-of="LOG_LEVEL"]`, "warn")

	// History: newest first, each revision's diff; roll back to the
	// revision before the import.
	run(t, ctx, "history",
		chromedp.Click(`//nav[@aria-label="Scope pages"]//a[text()="History"]`, chromedp.BySearch),
		chromedp.WaitVisible(`.revisions`, chromedp.ByQuery),
	)
	var revs []string
	run(t, ctx, "revisions", chromedp.Evaluate(`[...document.querySelectorAll(".revision h2")].map(h => h.textContent)`, &revs))
	if len(revs) != 3 {
		t.Fatalf("history shows %v, want 3 revisions", revs)
	}
	first := textOf(t, ctx, `.revision`)
	for _, want := range []string{"LOG_LEVEL", "changed", "v1", "debug", "v2", "warn", "FEATURE_FLAGS", "added"} {
		if !strings.Contains(first, want) {
			t.Errorf("the newest revision's diff lacks %q:\n%s", want, first)
		}
	}
	run(t, ctx, "page html", chromedp.OuterHTML(`html`, &html, chromedp.ByQuery))
	if strings.Contains(html, "sk_live_0123456789abcdefghij") {
		t.Errorf("the history shows the secret's value")
	}
	checkA11y(t, ctx)
	screenshot(t, ctx, "dashboard-history", true)
	run(t, ctx, "rollback confirm",
		chromedp.Click(`.revision:nth-child(2) a.button`, chromedp.ByQuery),
		chromedp.WaitVisible(`#rollback-plan`, chromedp.ByQuery),
	)
	plan := textOf(t, ctx, `#rollback-plan`)
	if !strings.Contains(plan, "FEATURE_FLAGS") || !strings.Contains(plan, "LOG_LEVEL") || strings.Contains(plan, "STRIPE_KEY") {
		t.Errorf("the rollback plan:\n%s", plan)
	}
	checkA11y(t, ctx)
	run(t, ctx, "rollback",
		chromedp.Click(`#main form button.danger`, chromedp.ByQuery),
		chromedp.WaitVisible(`.flash.ok`, chromedp.ByQuery),
	)
	waitText(t, ctx, ".flash.ok", "Rolled back to revision")
	l, err := e.Svc.ListVars(actx, "acme/web/prod", true)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, v := range l.Items {
		got[v.Name] = v.Value.Reveal()
	}
	if len(got) != 2 || got["LOG_LEVEL"] != "debug" || got["STRIPE_KEY"] != "sk_live_0123456789abcdefghij" {
		t.Errorf("after the rollback: %v", got)
	}
}

func TestBrowserAdminPagesAndRevokedSession(t *testing.T) {
	ctx := newBrowser(t)
	e := newTestEnv(t, false, Options{})
	signInBrowser(t, ctx, e.URL, e.Admin)

	// Create a token: shown once, with a copy button.
	run(t, ctx, "tokens page",
		chromedp.Navigate(e.URL+"/ui/tokens"),
		chromedp.WaitVisible(`#tok-name`, chromedp.ByQuery),
	)
	checkA11y(t, ctx)
	run(t, ctx, "create token",
		chromedp.SendKeys(`#tok-name`, "ci-deploy", chromedp.ByQuery),
		chromedp.SetValue(`#tok-grants`, "acme/**=read,write", chromedp.ByQuery), // as the CLI's --grant
		chromedp.Submit(`#tok-name`, chromedp.ByQuery),
	)
	waitText(t, ctx, "#new-h", "Token created: ci-deploy")
	waitText(t, ctx, `tr[data-token="ci-deploy"]`, "acme/**=read,write")
	var plain string
	run(t, ctx, "new token", chromedp.Value(`#new-token`, &plain, chromedp.ByQuery))
	if !strings.HasPrefix(plain, "envy_") {
		t.Fatalf("new token %q", plain)
	}
	checkA11y(t, ctx)
	screenshot(t, ctx, "dashboard-token-created", false)
	run(t, ctx, "reload tokens", chromedp.Navigate(e.URL+"/ui/tokens"), chromedp.WaitVisible(`#token-list`, chromedp.ByQuery))
	var html string
	run(t, ctx, "html", chromedp.OuterHTML(`html`, &html, chromedp.ByQuery))
	if strings.Contains(html, plain) {
		t.Fatalf("the new token is shown a second time")
	}

	// The audit log with filters.
	run(t, ctx, "audit",
		chromedp.Navigate(e.URL+"/ui/audit"),
		chromedp.WaitVisible(`#audit`, chromedp.ByQuery),
	)
	waitText(t, ctx, "#audit", "token.create")
	checkA11y(t, ctx)
	run(t, ctx, "audit filter",
		chromedp.SendKeys(`#f-actor`, "nobody-at-all", chromedp.ByQuery),
		chromedp.Submit(`#f-actor`, chromedp.ByQuery),
		chromedp.WaitVisible(`.empty`, chromedp.ByQuery),
	)
	checkA11y(t, ctx)

	// A second browser signs in with the new token; revoking it ends that
	// session on its next request.
	ctx2 := newBrowser(t)
	signInBrowser(t, ctx2, e.URL, plain)
	waitText(t, ctx2, ".who", "ci-deploy")
	checkA11y(t, ctx2)
	run(t, ctx, "revoke",
		chromedp.Navigate(e.URL+"/ui/tokens"),
		chromedp.WaitVisible(`#token-list`, chromedp.ByQuery),
		chromedp.Click(`tr[data-token="ci-deploy"] summary`, chromedp.ByQuery),
		chromedp.Click(`tr[data-token="ci-deploy"] button.danger`, chromedp.ByQuery),
		chromedp.WaitVisible(`.flash.ok`, chromedp.ByQuery),
	)
	waitText(t, ctx, `tr[data-token="ci-deploy"]`, "revoked")
	run(t, ctx2, "after revocation",
		chromedp.Reload(),
		chromedp.WaitVisible(`#token`, chromedp.ByQuery),
	)
	waitText(t, ctx2, ".note", "Your session ended")
	checkA11y(t, ctx2)
	screenshot(t, ctx2, "dashboard-session-ended", false)
}

func TestBrowserCrossSiteFormIsRefused(t *testing.T) {
	ctx := newBrowser(t)
	e := newTestEnv(t, false, Options{})
	signInBrowser(t, ctx, e.URL, e.Admin)
	// A page on another origin posts a form to the dashboard, as a
	// cross-site request forgery would: the browser sends the session
	// cookie (same site: both are on loopback), the server refuses.
	evil := newEvilSite(t, e.URL+"/ui/scopes")
	run(t, ctx, "evil page",
		chromedp.Navigate(evil),
		chromedp.WaitVisible(`#go`, chromedp.ByQuery),
		chromedp.Click(`#go`, chromedp.ByQuery),
	)
	waitLocation(t, ctx, e.URL+"/ui/scopes")
	waitText(t, ctx, "body", "refused")
	checkA11y(t, ctx)
	screenshot(t, ctx, "dashboard-csrf-refused", false)
	if _, err := e.Svc.GetScope(e.asToken(t, e.Admin), "evil/scope"); err == nil {
		t.Fatalf("the forged form created a scope")
	}
}

func TestBrowserSyncPageUpdatesLive(t *testing.T) {
	ctx := newBrowser(t)
	e := newTestEnv(t, false, Options{})
	actx := e.asToken(t, e.Admin)
	if _, _, err := e.Svc.SetVar(actx, "acme/api", "A", envyVar("1", false), setOpts()); err != nil {
		t.Fatal(err)
	}
	signInBrowser(t, ctx, e.URL, e.Admin)
	run(t, ctx, "sync page",
		chromedp.Navigate(e.URL+"/ui/scopes/acme/api/-/sync"),
		chromedp.WaitVisible(`#sync-summary`, chromedp.ByQuery),
	)
	waitText(t, ctx, "#sync-summary", "No consumer has reported")
	checkA11y(t, ctx)
	// A consumer reports, then a change leaves it behind: the page shows
	// both without reloading.
	var marker string
	run(t, ctx, "mark", chromedp.Evaluate(`window.__notReloaded = "yes"`, &marker))
	if _, err := e.Svc.ReportConsumer(actx, "acme/api", "web-1", consumerInput(1, "web-1.internal")); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "#consumers", "web-1.internal")
	waitText(t, ctx, "#sync-summary", "The one consumer runs revision 1")
	if _, _, err := e.Svc.SetVar(actx, "acme/api", "A", envyVar("2", false), setOpts()); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "#sync-summary", "The one consumer is behind revision 2")
	waitText(t, ctx, "#consumers", "behind")
	if _, err := e.Svc.ReportConsumer(actx, "acme/api", "web-2", consumerInput(2, "web-2.internal")); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "#sync-summary", "1 of 2 consumers is behind revision 2")
	waitText(t, ctx, "#consumers", "web-2.internal")
	run(t, ctx, "not reloaded", chromedp.Evaluate(`window.__notReloaded || "reloaded"`, &marker))
	if marker != "yes" {
		t.Fatalf("the page reloaded")
	}
	checkA11y(t, ctx)
	screenshot(t, ctx, "dashboard-sync", false)
}

// The checker finds what it is meant to find: a page with an unlabelled
// field, a nameless button, an image without alt, low contrast text and
// no visible focus.
func TestBrowserAccessibilityCheckerFindsProblems(t *testing.T) {
	ctx := newBrowser(t)
	bad := servePage(t, `<!doctype html><html lang="en"><title>bad</title><style>p{color:#aaa;background:#fff} *:focus{outline:none}</style>
<body><p>faint text</p><input name="q"><button></button><img src="/x.png"><a href="/">ok link</a></body></html>`)
	var problems []string
	run(t, ctx, "bad page", chromedp.Navigate(bad), chromedp.Evaluate(a11yJS, &problems))
	joined := strings.Join(problems, "\n")
	for _, want := range []string{"form field without a label: input[name=q]", "control without an accessible name: button", "image without alt", "contrast"} {
		if !strings.Contains(joined, want) {
			t.Errorf("the checker misses %q; it found:\n%s", want, joined)
		}
	}
	var focus focusState
	run(t, ctx, "focus", chromedp.KeyEvent(kb.Tab), chromedp.Evaluate(focusJS, &focus))
	if focus.Body || focus.Visible {
		t.Errorf("the focus check sees an outline that the page removed")
	}
	screenshot(t, ctx, "a11y-bad-page", false)
}

func TestBrowserPhoneWidth(t *testing.T) {
	ctx := newBrowser(t)
	e := newTestEnv(t, false, Options{})
	actx := e.asToken(t, e.Admin)
	if _, _, err := e.Svc.SetVar(actx, "acme/web/prod", "DATABASE_URL", envyVar("postgres://db.internal/app", false), setOpts()); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, "phone", emulation.SetDeviceMetricsOverride(390, 844, 2, true))
	signInBrowser(t, ctx, e.URL, e.Admin)
	run(t, ctx, "scope", chromedp.Navigate(e.URL+"/ui/scopes/acme/web/prod"), chromedp.WaitVisible(`#own-vars`, chromedp.ByQuery))
	var overflow bool
	run(t, ctx, "overflow", chromedp.Evaluate(`document.documentElement.scrollWidth > window.innerWidth + 1`, &overflow))
	if overflow {
		t.Errorf("the scope page scrolls sideways at phone width")
	}
	checkA11y(t, ctx)
	screenshot(t, ctx, "dashboard-phone", false)
}

func TestBrowserEditAndDeleteVars(t *testing.T) {
	ctx := newBrowser(t)
	e := newTestEnv(t, false, Options{})
	actx := e.asToken(t, e.Admin)
	for name, v := range map[string]envyVarSpec{"DATABASE_URL": {"postgres://db.internal/app", false}, "API_TOKEN": {"tok-0123456789abcdef", true}, "OLD_FLAG": {"1", false}} {
		if _, _, err := e.Svc.SetVar(actx, "acme/web", name, envyVar(v.value, v.secret), setOpts()); err != nil {
			t.Fatal(err)
		}
	}
	signInBrowser(t, ctx, e.URL, e.Admin)
	run(t, ctx, "scope", chromedp.Navigate(e.URL+"/ui/scopes/acme/web"), chromedp.WaitVisible(`#own-vars`, chromedp.ByQuery))
	// Edit a plain var's value, with the keyboard: the form opens from
	// its summary and is sent with Enter.
	run(t, ctx, "edit",
		chromedp.Focus(`tr[data-name="DATABASE_URL"] summary[aria-label="Edit DATABASE_URL"]`, chromedp.ByQuery),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(`#edit-value-DATABASE_URL`, chromedp.ByQuery),
	)
	checkA11y(t, ctx)
	run(t, ctx, "edit value",
		chromedp.SetValue(`#edit-value-DATABASE_URL`, "postgres://db2.internal/app", chromedp.ByQuery),
		chromedp.Focus(`#edit-desc-DATABASE_URL`, chromedp.ByQuery),
		chromedp.KeyEvent(kb.Enter),
	)
	waitText(t, ctx, ".flash.ok", "Updated DATABASE_URL")
	// Edit a secret's description only: its value, never sent to the
	// page, stays.
	run(t, ctx, "edit secret",
		chromedp.Click(`tr[data-name="API_TOKEN"] summary[aria-label="Edit API_TOKEN"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#edit-desc-API_TOKEN`, chromedp.ByQuery),
		chromedp.SendKeys(`#edit-desc-API_TOKEN`, "the partner API", chromedp.ByQuery),
		chromedp.Submit(`#edit-desc-API_TOKEN`, chromedp.ByQuery),
	)
	waitText(t, ctx, ".flash.ok", "Updated API_TOKEN")
	// Delete, confirmed in the opened form.
	run(t, ctx, "delete",
		chromedp.Click(`tr[data-name="OLD_FLAG"] summary[aria-label="Delete OLD_FLAG"]`, chromedp.ByQuery),
		chromedp.Click(`tr[data-name="OLD_FLAG"] button.danger`, chromedp.ByQuery),
	)
	waitText(t, ctx, ".flash.ok", "Deleted OLD_FLAG")
	checkA11y(t, ctx)
	screenshot(t, ctx, "dashboard-after-edits", false)
	l, err := e.Svc.ListVars(actx, "acme/web", true)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, v := range l.Items {
		got[v.Name] = v.Value.Reveal() + "|" + v.Description + "|" + strconv.FormatBool(v.Secret)
	}
	want := map[string]string{"DATABASE_URL": "postgres://db2.internal/app||false", "API_TOKEN": "tok-0123456789abcdef|the partner API|true"}
	if len(got) != len(want) || got["DATABASE_URL"] != want["DATABASE_URL"] || got["API_TOKEN"] != want["API_TOKEN"] {
		t.Errorf("after the edits: %v, want %v", got, want)
	}
}

type envyVarSpec struct {
	value  string
	secret bool
}
