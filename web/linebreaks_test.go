package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// asSent is a field's value as a browser sends it after loading it from
// a page: the HTML parser makes each CRLF and lone CR a LF, and a form
// sends each line break as CRLF.
func asSent(s string) string {
	s = strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(s)
	return strings.ReplaceAll(s, "\n", "\r\n")
}

// onScopePage sets the var name of acme/app to value as the admin and
// signs a browser in as the admin: where the tests of the scope page's
// forms start.
func onScopePage(t *testing.T, name, value string) (*testEnv, context.Context, *browser, string) {
	t.Helper()
	e := newTestEnv(t, false, Options{})
	actx := e.asToken(t, e.Admin)
	if _, _, err := e.Svc.SetVar(actx, "acme/app", name, envyVar(value, false), setOpts()); err != nil {
		t.Fatal(err)
	}
	b := e.browser(t)
	return e, actx, b, b.signIn(e.Admin)
}

// A browser sends a textarea's line breaks as CRLF: an edit of one line
// of a multi-line value (a PEM) stores LF breaks, as the value had, not
// CRLF ones throughout.
func TestEditingOneLineOfAMultiLineValueKeepsItsLineBreaks(t *testing.T) {
	const stored = "line one\nline two"
	e, _, b, csrf := onScopePage(t, "CERT", stored)
	f := formOf(t, b.get("/ui/scopes/acme/app").Body, `class="stack edit-form"`)
	f.Set("csrf", csrf)
	f.Set("value_was", asSent(f.Get("value_was")))
	f.Set("value", "line one\r\nline two\r\nline three")
	if res := b.post("/ui/scopes/acme/app/-/vars", f); res.Status != http.StatusSeeOther {
		t.Fatalf("edit: %d\n%s", res.Status, res.Body)
	}
	if got := varValue(t, e, "CERT"); got != "line one\nline two\nline three" {
		t.Errorf("stored %q; want LF line breaks", got)
	}
}

// A value pasted into the add form is stored with LF line breaks, not
// with the CRLF ones the browser sends.
func TestAMultiLineValueAddedOnTheScopePageIsStoredWithLFLineBreaks(t *testing.T) {
	e, _, b, csrf := onScopePage(t, "KEEP", "1")
	res := b.post("/ui/scopes/acme/app/-/vars", url.Values{"csrf": {csrf}, "name": {"PEM"},
		"value": {"-----BEGIN KEY-----\r\nabc\r\n-----END KEY-----\r\n"}, "description": {""}})
	if res.Status != http.StatusSeeOther {
		t.Fatalf("add: %d\n%s", res.Status, res.Body)
	}
	if got := varValue(t, e, "PEM"); got != "-----BEGIN KEY-----\nabc\n-----END KEY-----\n" {
		t.Errorf("stored %q; want LF line breaks", got)
	}
}

// "Save your edit over it" on the conflict page sends the edit's value in
// a hidden field, whose line breaks a browser sends as CRLF too: the value
// saved has LF breaks.
func TestSavingAMultiLineEditOverAConflictKeepsItsLineBreaks(t *testing.T) {
	e, actx, b, csrf := onScopePage(t, "CERT", "one\ntwo")
	f := formOf(t, b.get("/ui/scopes/acme/app").Body, `class="stack edit-form"`)
	if _, _, err := e.Svc.SetVar(actx, "acme/app", "CERT", envyVar("changed elsewhere", false), setOpts()); err != nil {
		t.Fatal(err)
	}
	f.Set("csrf", csrf)
	f.Set("value_was", asSent(f.Get("value_was")))
	f.Set("value", "one\r\ntwo\r\nthree")
	c := b.post("/ui/scopes/acme/app/-/vars", f)
	if c.Status != http.StatusConflict {
		t.Fatalf("a stale edit: %d, not the conflict page\n%s", c.Status, c.Body)
	}
	mine := formOf(t, c.Body, `id="keep-mine"`)
	mine.Set("value", asSent(mine.Get("value")))
	if res := b.post("/ui/scopes/acme/app/-/vars", mine); res.Status != http.StatusSeeOther {
		t.Fatalf("keep mine: %d\n%s", res.Status, res.Body)
	}
	if got := varValue(t, e, "CERT"); got != "one\ntwo\nthree" {
		t.Errorf("stored %q; want LF line breaks", got)
	}
}

// A value stored with CR characters (through the API or the CLI) can't
// come back from a browser as it is; an edit of its description alone
// sends no value, so the value stays exactly as stored.
func TestEditingTheDescriptionOfAValueWithCRsKeepsTheValue(t *testing.T) {
	const stored = "a\r\nb\rc\nd"
	e, _, b, csrf := onScopePage(t, "V", stored)
	f := formOf(t, b.get("/ui/scopes/acme/app").Body, `class="stack edit-form"`)
	f.Set("csrf", csrf)
	f.Set("value_was", asSent(f.Get("value_was")))
	f.Set("value", f.Get("value_was")) // the textarea, left as loaded
	f.Set("description", "now described")
	res := b.post("/ui/scopes/acme/app/-/vars", f)
	if res.Status != http.StatusSeeOther {
		t.Fatalf("edit: %d\n%s", res.Status, res.Body)
	}
	if got := varValue(t, e, "V"); got != stored {
		t.Errorf("stored %q; want %q, as it was", got, stored)
	}
	if p := b.get("/ui/scopes/acme/app"); !strings.Contains(p.Body, "its value kept") {
		t.Errorf("the message does not say the value was kept:\n%s", p.Body)
	}
}
