package web

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/envy-dev/envy"
)

// An edit sends the version its form was loaded with: a change made
// elsewhere meanwhile gives a page with both values, and the person
// chooses. The scope page, live, marks the open form as changed first.
func TestBrowserAnEditOverAChangeMadeElsewhereShowsBoth(t *testing.T) {
	ctx := newBrowser(t)
	e := newTestEnv(t, false, Options{})
	actx := e.asToken(t, e.Admin)
	for name, v := range map[string]envyVarSpec{"B": {"from-start", false}, "S": {"sk_live_original_value_0001", true}, "D": {"to-delete", false}} {
		if _, _, err := e.Svc.SetVar(actx, "acme/app", name, envyVar(v.value, v.secret), setOpts()); err != nil {
			t.Fatal(err)
		}
	}
	// A writer who may not reveal.
	_, writer := e.mint(t, "writer", "acme/** read,write")
	signInBrowser(t, ctx, e.URL, writer)
	run(t, ctx, "scope", chromedp.Navigate(e.URL+"/ui/scopes/acme/app"), chromedp.WaitVisible(`#own-vars`, chromedp.ByQuery))
	waitText(t, ctx, "#scope-live", "Live")

	// The person opens name's edit form and types a value; meanwhile
	// the CLI sets another; the live page keeps the open form as it was,
	// and says so; saving it shows the conflict.
	editOverAChange := func(name, typed string, elsewhere envy.VarInput) {
		t.Helper()
		run(t, ctx, "edit "+name,
			chromedp.Click(`tr[data-name="`+name+`"] summary[aria-label="Edit `+name+`"]`, chromedp.ByQuery),
			chromedp.WaitVisible(`#edit-value-`+name, chromedp.ByQuery),
			chromedp.SetValue(`#edit-value-`+name, typed, chromedp.ByQuery),
		)
		if _, _, err := e.Svc.SetVar(actx, "acme/app", name, elsewhere, setOpts()); err != nil {
			t.Fatal(err)
		}
		waitText(t, ctx, `tr[data-name="`+name+`"] .changed-elsewhere`, name+" changed elsewhere")
		run(t, ctx, "save "+name, chromedp.Click(`tr[data-name="`+name+`"] form.edit-form button`, chromedp.ByQuery))
		waitText(t, ctx, "#conflict-why", "Nothing was saved")
	}
	editOverAChange("B", "from-web", envyVar("from-cli", false))
	waitText(t, ctx, "#yours", "from-web")
	waitText(t, ctx, "#current", "from-cli")
	if got := varValue(t, e, "B"); got != "from-cli" {
		t.Fatalf("B is %q before the person chose, want from-cli", got)
	}
	checkA11y(t, ctx)
	screenshot(t, ctx, "dashboard-conflict", false)
	run(t, ctx, "keep mine", chromedp.Click(`#keep-mine button`, chromedp.ByQuery))
	waitText(t, ctx, ".flash.ok", "Updated B")
	if got := varValue(t, e, "B"); got != "from-web" {
		t.Fatalf("B is %q after keeping mine, want from-web", got)
	}

	// S, a secret this writer may not reveal: the conflict page shows the
	// current value masked, and offers no reveal.
	editOverAChange("S", "sk_live_from_web_0123456789", envyVar("sk_live_from_cli_9876543210", true))
	waitText(t, ctx, "#current", "••••")
	var html string
	run(t, ctx, "html", chromedp.OuterHTML(`html`, &html, chromedp.ByQuery))
	for _, secret := range []string{"sk_live_from_cli_9876543210", "sk_live_original_value_0001"} {
		if strings.Contains(html, secret) {
			t.Fatalf("the conflict page shows a secret the writer may not reveal (%s)", secret)
		}
	}
	if strings.Contains(html, "Reveal S") {
		t.Errorf("the conflict page offers a reveal to a token without reveal")
	}
	checkA11y(t, ctx)
	run(t, ctx, "take current", chromedp.Click(`#take-current`, chromedp.ByQuery))
	waitText(t, ctx, "h1", "acme/app")
	if got := varValue(t, e, "S"); got != "sk_live_from_cli_9876543210" {
		t.Fatalf("S is %q after keeping the current value", got)
	}

	// A delete over a change: both shown, nothing deleted until chosen.
	run(t, ctx, "delete D",
		chromedp.Click(`tr[data-name="D"] summary[aria-label="Delete D"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`tr[data-name="D"] button.danger`, chromedp.ByQuery),
	)
	if _, _, err := e.Svc.SetVar(actx, "acme/app", "D", envyVar("still-needed", false), setOpts()); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, `tr[data-name="D"] .changed-elsewhere`, "D changed elsewhere")
	run(t, ctx, "confirm delete", chromedp.Click(`tr[data-name="D"] button.danger`, chromedp.ByQuery))
	waitText(t, ctx, "#conflict-why", "Nothing was saved")
	waitText(t, ctx, "#current", "still-needed")
	waitText(t, ctx, "#yours", "deleted")
	if got := varValue(t, e, "D"); got != "still-needed" {
		t.Fatalf("D is %q: deleted before the person chose", got)
	}
	checkA11y(t, ctx)
}

// An edit of the description alone sends no value: the value, here with
// line breaks that a textarea would send back as CRLF, stays as it was;
// the history says the value stayed.
func TestBrowserADescriptionOnlyEditKeepsTheValue(t *testing.T) {
	ctx := newBrowser(t)
	e := newTestEnv(t, false, Options{})
	actx := e.asToken(t, e.Admin)
	const multi = "\nline one\nline two"
	if _, _, err := e.Svc.SetVar(actx, "acme/app", "CERT", envyVar(multi, false), setOpts()); err != nil {
		t.Fatal(err)
	}
	signInBrowser(t, ctx, e.URL, e.Admin)
	run(t, ctx, "scope", chromedp.Navigate(e.URL+"/ui/scopes/acme/app"), chromedp.WaitVisible(`#own-vars`, chromedp.ByQuery))
	run(t, ctx, "edit description",
		chromedp.Click(`tr[data-name="CERT"] summary[aria-label="Edit CERT"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#edit-desc-CERT`, chromedp.ByQuery),
		chromedp.SendKeys(`#edit-desc-CERT`, "the TLS chain", chromedp.ByQuery),
		chromedp.Click(`tr[data-name="CERT"] form.edit-form button`, chromedp.ByQuery),
	)
	waitText(t, ctx, ".flash.ok", "Updated CERT, its value kept")
	v, err := e.Svc.GetVar(actx, "acme/app", "CERT", true)
	if err != nil {
		t.Fatal(err)
	}
	if v.Value.Reveal() != multi || v.Description != "the TLS chain" {
		t.Fatalf("after a description-only edit: value %q, description %q; want %q, %q", v.Value.Reveal(), v.Description, multi, "the TLS chain")
	}
	run(t, ctx, "history",
		chromedp.Navigate(e.URL+"/ui/scopes/acme/app/-/history"),
		chromedp.WaitVisible(`.revisions`, chromedp.ByQuery),
	)
	first := textOf(t, ctx, `.revision`)
	for _, want := range []string{"description changed", "the value stays", "the TLS chain"} {
		if !strings.Contains(first, want) {
			t.Errorf("the history's newest revision lacks %q:\n%s", want, first)
		}
	}
	checkA11y(t, ctx)
}

// The scope page follows the scope without reloading: a var added, a
// value changed and a description changed elsewhere all show.
func TestBrowserTheScopePageUpdatesLive(t *testing.T) {
	ctx := newBrowser(t)
	e := newTestEnv(t, false, Options{})
	actx := e.asToken(t, e.Admin)
	if _, _, err := e.Svc.SetVar(actx, "acme/app", "A", envyVar("one", false), setOpts()); err != nil {
		t.Fatal(err)
	}
	signInBrowser(t, ctx, e.URL, e.Admin)
	run(t, ctx, "scope", chromedp.Navigate(e.URL+"/ui/scopes/acme/app"), chromedp.WaitVisible(`#own-vars`, chromedp.ByQuery))
	waitText(t, ctx, "#scope-live", "Live")
	var marker string
	run(t, ctx, "mark", chromedp.Evaluate(`window.__notReloaded = "yes"`, &marker))
	if _, _, err := e.Svc.SetVar(actx, "acme/app", "A", envyVar("two", false), setOpts()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.Svc.SetVar(actx, "acme/app", "C", envyVar("new-var", false), setOpts()); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, `code[data-value-of="A"]`, "two")
	waitText(t, ctx, `#own-vars`, "new-var")
	waitText(t, ctx, `.head .meta`, "2 vars")
	// A description alone wakes no watcher (the env is as it was): the
	// page finds it all the same.
	desc := "set elsewhere"
	if _, _, err := e.Svc.SetVar(actx, "acme/app", "A", envyDesc(desc), setOpts()); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, `tr[data-name="A"]`, desc)
	run(t, ctx, "not reloaded", chromedp.Evaluate(`window.__notReloaded || "reloaded"`, &marker))
	if marker != "yes" {
		t.Fatalf("the page reloaded")
	}
	// Rows the update brought in work: editing A saves over its new version.
	run(t, ctx, "edit A",
		chromedp.Click(`tr[data-name="A"] summary[aria-label="Edit A"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#edit-value-A`, chromedp.ByQuery),
		chromedp.SetValue(`#edit-value-A`, "three", chromedp.ByQuery),
		chromedp.Click(`tr[data-name="A"] form.edit-form button`, chromedp.ByQuery),
	)
	waitText(t, ctx, ".flash.ok", "Updated A")
	if got := varValue(t, e, "A"); got != "three" {
		t.Fatalf("A is %q", got)
	}
	checkA11y(t, ctx)
}

// The form of a scope's description and inherits carries them as it was
// loaded: the live page marks it when they change elsewhere (not when a
// var does), keeps what was typed, and saving it then shows both.
func TestBrowserASettingsEditOverAChangeMadeElsewhereShowsBoth(t *testing.T) {
	ctx := newBrowser(t)
	e := newTestEnv(t, false, Options{})
	actx := e.asToken(t, e.Admin)
	ss := scopeSettings{t, e}
	put, is := ss.put, ss.is
	put("acme/base", "")
	put("acme/other", "")
	put("acme/app", "the app", "acme/base")
	signInBrowser(t, ctx, e.URL, e.Admin)
	run(t, ctx, "scope", chromedp.Navigate(e.URL+"/ui/scopes/acme/app"), chromedp.WaitVisible(`#set-h`, chromedp.ByQuery))
	waitText(t, ctx, "#scope-live", "Live")

	// The person opens the form and types; meanwhile a var is written,
	// then the inherits are changed elsewhere; saving shows the conflict.
	editOverAChange := func(desc, inherits string, elsewhere func()) {
		t.Helper()
		run(t, ctx, "edit settings",
			chromedp.Click(`#settings-edit summary`, chromedp.ByQuery),
			chromedp.WaitVisible(`#set-inherits`, chromedp.ByQuery),
			chromedp.SetValue(`#set-desc`, desc, chromedp.ByQuery),
			chromedp.SetValue(`#set-inherits`, inherits, chromedp.ByQuery),
		)
		_, info, err := e.Svc.SetVar(actx, "acme/app", "A", envyVar(desc, false), setOpts())
		if err != nil {
			t.Fatal(err)
		}
		waitText(t, ctx, "#scope-live", "updated to revision "+itoa(info.Revision))
		var marked bool
		run(t, ctx, "not marked", chromedp.Evaluate(`!!document.querySelector(".settings-form .changed-elsewhere")`, &marked))
		if marked {
			t.Fatalf("a var written elsewhere marks the settings form as changed")
		}
		elsewhere()
		waitText(t, ctx, `.settings-form .changed-elsewhere`, "changed elsewhere")
		var typed string
		run(t, ctx, "typed", chromedp.Value(`#set-inherits`, &typed, chromedp.ByQuery))
		if typed != inherits {
			t.Fatalf("the live update replaced what was typed: %q, want %q", typed, inherits)
		}
		run(t, ctx, "save settings", chromedp.Click(`.settings-form button[type=submit]`, chromedp.ByQuery))
		waitText(t, ctx, "#conflict-why", "Nothing was saved")
	}
	editOverAChange("typed in the browser", "acme/other", func() { put("acme/app", "the app", "acme/base", "acme/other") })
	waitText(t, ctx, "#yours-inherits", "acme/other")
	waitText(t, ctx, "#current-inherits", "acme/base")
	waitText(t, ctx, "#yours-description", "typed in the browser")
	is("the app", "acme/base", "acme/other")
	checkA11y(t, ctx)
	screenshot(t, ctx, "dashboard-settings-conflict", false)
	run(t, ctx, "save mine", chromedp.Click(`#keep-mine button`, chromedp.ByQuery))
	waitText(t, ctx, ".flash.ok", "Saved the scope's description and inherits")
	is("typed in the browser", "acme/other")

	editOverAChange("typed again", "acme/base", func() { put("acme/app", "described elsewhere", "acme/other") })
	waitText(t, ctx, "#current-description", "described elsewhere")
	run(t, ctx, "keep current", chromedp.Click(`#take-current`, chromedp.ByQuery))
	waitText(t, ctx, ".head", "described elsewhere")
	is("described elsewhere", "acme/other")

	// A form typed in and closed again keeps what was typed through a
	// live update too.
	waitText(t, ctx, "#scope-live", "Live")
	run(t, ctx, "type and close",
		chromedp.Click(`#settings-edit summary`, chromedp.ByQuery),
		chromedp.WaitVisible(`#set-desc`, chromedp.ByQuery),
		chromedp.SetValue(`#set-desc`, "typed, then closed", chromedp.ByQuery),
		chromedp.Click(`#settings-edit summary`, chromedp.ByQuery),
	)
	_, info, err := e.Svc.SetVar(actx, "acme/app", "B", envyVar("b", false), setOpts())
	if err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "#scope-live", "updated to revision "+itoa(info.Revision))
	var typed string
	run(t, ctx, "typed", chromedp.Value(`#set-desc`, &typed, chromedp.ByQuery))
	if typed != "typed, then closed" {
		t.Fatalf("the live update replaced a closed form's typed description: %q", typed)
	}

	// A description of several lines, which its one-line field holds
	// without its breaks, is no typing: the form follows live updates
	// and is not marked.
	put("acme/app", "line one\nline two", "acme/other")
	run(t, ctx, "reload", chromedp.Navigate(e.URL+"/ui/scopes/acme/app"), chromedp.WaitVisible(`#set-h`, chromedp.ByQuery))
	waitText(t, ctx, "#scope-live", "Live")
	desc, inherits := "line one\nline two", []string{"acme/base"}
	_, info, err = e.Svc.PutScope(actx, "acme/app", envy.ScopeInput{Description: &desc, Inherits: &inherits}, envy.Cond{})
	if err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "#scope-live", "updated to revision "+itoa(info.Revision))
	var marked bool
	run(t, ctx, "follows", chromedp.Evaluate(`!!document.querySelector(".settings-form .changed-elsewhere")`, &marked), chromedp.Value(`#set-inherits`, &typed, chromedp.ByQuery))
	if marked || typed != "acme/base" {
		t.Fatalf("a multi-line description made the settings form look typed in: marked %v, inherits field %q", marked, typed)
	}
}
