package web

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/envy-dev/envy"
)

// Pasting a .env merges by default, as `envy import` does: the scope's
// vars that the file lacks stay. Replace is a choice, previewed as such.
// A var after "# envy:secret" is made secret.
func TestBrowserPastingADotenvMergesByDefault(t *testing.T) {
	ctx := newBrowser(t)
	e := newTestEnv(t, false, Options{})
	actx := e.asToken(t, e.Admin)
	for name, v := range map[string]string{"A": "1", "B": "keep-me"} {
		if _, _, err := e.Svc.SetVar(actx, "acme/app", name, envyVar(v, false), setOpts()); err != nil {
			t.Fatal(err)
		}
	}
	signInBrowser(t, ctx, e.URL, e.Admin)
	run(t, ctx, "scope", chromedp.Navigate(e.URL+"/ui/scopes/acme/app"), chromedp.WaitVisible(`#dotenv`, chromedp.ByQuery))
	paste := func(text string, replace bool) string {
		t.Helper()
		acts := []chromedp.Action{chromedp.SetValue(`#dotenv`, text, chromedp.ByQuery), chromedp.Click(`#import-form input[name="secret"]`, chromedp.ByQuery)}
		if replace {
			acts = append(acts, chromedp.Click(`#import-form input[value="replace"]`, chromedp.ByQuery))
		}
		run(t, ctx, "paste", append(acts, chromedp.Submit(`#dotenv`, chromedp.ByQuery))...)
		waitText(t, ctx, "#import-preview", "Added")
		checkA11y(t, ctx)
		return textOf(t, ctx, "#main")
	}
	preview := paste("A=2\nNEW=x\n# envy:secret\nTOKEN=tok-0123456789abcdef\n", false)
	for _, want := range []string{"merged", "Added (2)", "Changed (1)", "1 var of the scope that the file lacks stays"} {
		if !strings.Contains(preview, want) {
			t.Errorf("the merge preview lacks %q:\n%s", want, preview)
		}
	}
	if strings.Contains(preview, "Removed") {
		t.Errorf("the merge preview removes vars:\n%s", preview)
	}
	run(t, ctx, "apply", chromedp.Click(`//button[text()="Apply import"]`, chromedp.BySearch))
	waitText(t, ctx, ".flash.ok", "Imported 3 vars (merged)")
	got := vars(t, e, "acme/app")
	if len(got) != 4 || got["B"].Value.Reveal() != "keep-me" || got["A"].Value.Reveal() != "2" || !got["TOKEN"].Secret || got["NEW"].Secret {
		t.Fatalf("after the merge: %v", got)
	}

	preview = paste("A=3\nNEW2=y\n", true)
	for _, want := range []string{"replacing", "Removed (3)", "B", "NEW", "TOKEN"} {
		if !strings.Contains(preview, want) {
			t.Errorf("the replace preview lacks %q:\n%s", want, preview)
		}
	}
	run(t, ctx, "apply", chromedp.Click(`//button[text()="Apply import"]`, chromedp.BySearch))
	waitText(t, ctx, ".flash.ok", "replacing the scope's vars")
	if got := vars(t, e, "acme/app"); len(got) != 2 || got["A"].Value.Reveal() != "3" {
		t.Fatalf("after the replace: %v", got)
	}
}

// The Actions cell is as tall as its row, even when the row's name cell
// holds a description: its bottom border lines up with the row's.
func TestBrowserTheActionsCellAlignsOnRowsWithADescription(t *testing.T) {
	ctx := newBrowser(t)
	e := newTestEnv(t, false, Options{})
	actx := e.asToken(t, e.Admin)
	desc := "a long description that takes more room than the actions do, so that the row is taller"
	in := envyVar("postgres://db.internal/app", false)
	in.Description = &desc
	if _, _, err := e.Svc.SetVar(actx, "acme/app", "DATABASE_URL", in, setOpts()); err != nil {
		t.Fatal(err)
	}
	signInBrowser(t, ctx, e.URL, e.Admin)
	run(t, ctx, "scope", chromedp.Navigate(e.URL+"/ui/scopes/acme/app"), chromedp.WaitVisible(`#own-vars`, chromedp.ByQuery))
	var cells []struct {
		Tag    string  `json:"tag"`
		Top    float64 `json:"top"`
		Bottom float64 `json:"bottom"`
	}
	run(t, ctx, "cells", chromedp.Evaluate(`[...document.querySelectorAll('tr[data-name="DATABASE_URL"] > *')].map(c => { const r = c.getBoundingClientRect(); return {tag: c.tagName + "." + c.className, top: r.top, bottom: r.bottom}; })`, &cells))
	if len(cells) != 4 {
		t.Fatalf("the row has %d cells", len(cells))
	}
	for _, c := range cells[1:] {
		if c.Top != cells[0].Top || c.Bottom != cells[0].Bottom {
			t.Errorf("cell %s spans %.1f–%.1f, the row's name cell %.1f–%.1f", c.Tag, c.Top, c.Bottom, cells[0].Top, cells[0].Bottom)
		}
	}
	screenshot(t, ctx, "dashboard-actions-aligned", false)
}

// Revoking a token that minted others says how many it ends before and
// after: a page to confirm the count, then the count ended.
func TestBrowserRevokeSaysHowManyTokensItEnds(t *testing.T) {
	ctx := newBrowser(t)
	e := newTestEnv(t, false, Options{})
	parent, parentPlain := e.mint(t, "deployer", "acme/**=admin")
	_, childPlain, err := e.Svc.CreateToken(e.asToken(t, parentPlain), envy.TokenInput{Name: "deployer-child", Permissions: []envy.Grant{{Scopes: "acme/**", Actions: []envy.Action{envy.ActRead}}}})
	if err != nil {
		t.Fatal(err)
	}
	signInBrowser(t, ctx, e.URL, e.Admin)
	run(t, ctx, "tokens", chromedp.Navigate(e.URL+"/ui/tokens"), chromedp.WaitVisible(`#token-list`, chromedp.ByQuery))
	run(t, ctx, "revoke",
		chromedp.Click(`tr[data-token="deployer"] summary`, chromedp.ByQuery),
		chromedp.Click(`tr[data-token="deployer"] button.danger`, chromedp.ByQuery),
	)
	waitText(t, ctx, "#revoke-ends", "ends 2 tokens: it and the 1 live token it minted")
	checkA11y(t, ctx)
	for _, p := range []string{parentPlain, childPlain} {
		if _, err := e.Svc.Authenticate(actxOf(t), p); err != nil {
			t.Fatalf("a token was revoked before the count was confirmed: %v", err)
		}
	}
	run(t, ctx, "confirm", chromedp.Click(`//button[text()="Revoke 2 tokens"]`, chromedp.BySearch))
	waitText(t, ctx, ".flash.ok", "Revoked the token and the 1 live token it minted: 2 tokens ended.")
	waitText(t, ctx, `tr[data-token="deployer"]`, "revoked")
	for _, p := range []string{parentPlain, childPlain} {
		if _, err := e.Svc.Authenticate(actxOf(t), p); err == nil {
			t.Fatalf("a token of %s's lineage is still live", parent.Name)
		}
	}
}
