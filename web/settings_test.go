package web

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/envy-dev/envy"
)

var formFieldRE = regexp.MustCompile(`name="([^"]+)" value="([^"]*)"`)

// formOf returns the fields with a value of the first form in body whose
// opening tag contains marker.
func formOf(t testing.TB, body, marker string) url.Values {
	t.Helper()
	i := strings.Index(body, marker)
	if i < 0 {
		t.Fatalf("no form %s in page:\n%s", marker, body)
	}
	f := body[i:]
	f = f[:strings.Index(f, "</form>")]
	out := url.Values{}
	for _, m := range formFieldRE.FindAllStringSubmatch(f, -1) {
		out.Set(m[1], html.UnescapeString(m[2]))
	}
	return out
}

// scopeSettings sets up the description and inherits of scopes of a test
// as the admin (as the CLI or the API would, elsewhere), and checks those
// of acme/app.
type scopeSettings struct {
	t testing.TB
	e *testEnv
}

func (s scopeSettings) put(path, desc string, inherits ...string) {
	s.t.Helper()
	if inherits == nil {
		inherits = []string{}
	}
	if _, _, err := s.e.Svc.PutScope(s.e.asToken(s.t, s.e.Admin), path, envy.ScopeInput{Description: &desc, Inherits: &inherits}, envy.Cond{}); err != nil {
		s.t.Fatalf("PutScope %s: %v", path, err)
	}
}

func (s scopeSettings) scope() envy.Scope {
	s.t.Helper()
	sc, err := s.e.Svc.GetScope(s.e.asToken(s.t, s.e.Admin), "acme/app")
	if err != nil {
		s.t.Fatal(err)
	}
	return sc
}

func (s scopeSettings) is(desc string, inherits ...string) {
	s.t.Helper()
	if sc := s.scope(); sc.Description != desc || !slices.Equal(sc.Inherits, inherits) {
		s.t.Fatalf("acme/app has description %q, inherits %q; want %q, %q", sc.Description, sc.Inherits, desc, inherits)
	}
}

const settingsForm = `class="stack settings-form"`

// The scope settings form carries the description and inherits it was
// loaded with: saved over a change of them made elsewhere (the CLI, the
// API, another tab), it saves nothing and shows both; a var written
// meanwhile is no such change.
func TestAStaleSettingsFormDoesNotOverwriteAChangeMadeElsewhere(t *testing.T) {
	e := newTestEnv(t, false, Options{})
	actx := e.asToken(t, e.Admin)
	ss := scopeSettings{t, e}
	put, scope, is := ss.put, ss.scope, ss.is
	put("acme/base", "")
	put("acme/other", "")
	put("acme/app", "the app", "acme/base")
	b := e.browser(t)
	csrf := b.signIn(e.Admin)
	load := func() url.Values {
		t.Helper()
		p := b.get("/ui/scopes/acme/app")
		if p.Status != http.StatusOK {
			t.Fatalf("scope page: %d", p.Status)
		}
		f := formOf(t, p.Body, settingsForm)
		f.Set("csrf", csrf)
		return f
	}
	save := func(f url.Values, desc, inherits string) page {
		t.Helper()
		f.Set("description", desc)
		f.Set("inherits", inherits)
		return b.post("/ui/scopes/acme/app/-/settings", f)
	}
	saved := func(res page) {
		t.Helper()
		if res.Status != http.StatusSeeOther || res.Header.Get("Location") != "/ui/scopes/acme/app" {
			t.Fatalf("save: status %d, Location %q\n%s", res.Status, res.Header.Get("Location"), res.Body)
		}
		if next := b.get("/ui/scopes/acme/app"); !strings.Contains(next.Body, "Saved the scope&#39;s description and inherits") {
			t.Fatalf("no confirmation after saving:\n%s", next.Body)
		}
	}

	// A description of several lines (the API allows them) is kept when
	// only the inherits are edited: the one-line field drops its breaks.
	{
		put("acme/app", "line one\nline two", "acme/base")
		f := load()
		f.Set("description", "line oneline two")         // what a browser sends back
		f.Set("description_was", "line one\r\nline two") // a form's line breaks are CRLF
		saved(save(f, f.Get("description"), "acme/base\nacme/other"))
		is("line one\nline two", "acme/base", "acme/other")
		put("acme/app", "the app", "acme/base")
	}

	// Inherits changed elsewhere.
	{
		stale := load()
		put("acme/app", "the app", "acme/base", "acme/other") // envy scopes set …, meanwhile
		res := save(stale, "the app, edited", "acme/base")
		if res.Status != http.StatusConflict || !strings.Contains(res.Body, "Nothing was saved") {
			t.Fatalf("a stale settings form saved over a change of the inherits: status %d\n%s", res.Status, res.Body)
		}
		is("the app", "acme/base", "acme/other")
		for _, want := range []string{`id="yours-inherits"><ol class="inherits"><li><code>acme/base</code></li></ol>`,
			`id="current-inherits"><ol class="inherits"><li><code>acme/base</code></li><li><code>acme/other</code></li></ol>`,
			`id="yours-description">the app, edited<`, `href="/ui/scopes/acme/app">Keep what is there now`} {
			if !strings.Contains(res.Body, want) {
				t.Errorf("the conflict page lacks %s:\n%s", want, res.Body)
			}
		}
		// Save your edit over it: written over what the page showed.
		mine := formOf(t, res.Body, `id="keep-mine"`)
		saved(b.post("/ui/scopes/acme/app/-/settings", mine))
		is("the app, edited", "acme/base")
	}

	// Save over it after yet another change.
	{
		stale := load()
		put("acme/app", "described elsewhere", "acme/base")
		res := save(stale, "mine", "acme/other")
		if res.Status != http.StatusConflict {
			t.Fatalf("a change of the description alone: status %d", res.Status)
		}
		mine := formOf(t, res.Body, `id="keep-mine"`)
		put("acme/app", "described again", "acme/base") // after the conflict page was shown
		if res := b.post("/ui/scopes/acme/app/-/settings", mine); res.Status != http.StatusConflict || !strings.Contains(res.Body, "described again") {
			t.Fatalf("saving over a conflict page that is stale in turn: status %d\n%s", res.Status, res.Body)
		}
		is("described again", "acme/base")
	}

	// A var written meanwhile is no conflict.
	{
		f := load()
		before := scope().Revision
		if _, _, err := e.Svc.SetVar(actx, "acme/app", "A", envyVar("1", false), setOpts()); err != nil {
			t.Fatal(err)
		}
		if scope().Revision == before {
			t.Fatal("the var write did not move the scope's revision: the test tests nothing")
		}
		saved(save(f, "with a var", "acme/base\r\nacme/other"))
		is("with a var", "acme/base", "acme/other")
	}

	// The same change made elsewhere is no conflict.
	{
		f := load()
		put("acme/app", "same", "acme/other")
		saved(save(f, "same", "acme/other"))
		is("same", "acme/other")
	}

	// A form without what it was loaded with.
	{
		res := b.post("/ui/scopes/acme/app/-/settings", url.Values{"csrf": {csrf}, "description": {"blind"}, "inherits": {""}})
		if res.Status != http.StatusSeeOther {
			t.Fatalf("status %d", res.Status)
		}
		if next := b.get("/ui/scopes/acme/app"); !strings.Contains(next.Body, "does not say which of them you saw") {
			t.Errorf("no refusal shown:\n%s", next.Body)
		}
		is("same", "acme/other")
	}

	// Now inheriting a scope the token can't read.
	{
		put("secret/base", "")
		_, writer := e.mint(t, "writer", "acme/** read,write")
		wb := e.browser(t)
		wcsrf := wb.signIn(writer)
		p := wb.get("/ui/scopes/acme/app")
		f := formOf(t, p.Body, settingsForm)
		f.Set("csrf", wcsrf)
		put("acme/app", "same", "acme/other", "secret/base")
		f.Set("description", "mine")
		f.Set("inherits", "acme/other")
		res := wb.post("/ui/scopes/acme/app/-/settings", f)
		if res.Status != http.StatusConflict || strings.Contains(res.Body, `id="keep-mine"`) || !strings.Contains(res.Body, "may not read") {
			t.Fatalf("a conflict over a hidden scope offers to save over it, or does not say why: status %d\n%s", res.Status, res.Body)
		}
		if strings.Contains(res.Body, "secret/base") {
			t.Errorf("the conflict page names a scope the token can't read")
		}
		is("same", "acme/other", "secret/base")
	}
}

// A var's description of several lines (the API allows them) is kept
// when its value is edited on the scope page: the description's field is
// one line, and a browser sends it back without its breaks.
func TestEditingAVarKeepsItsMultiLineDescription(t *testing.T) {
	e := newTestEnv(t, false, Options{})
	actx := e.asToken(t, e.Admin)
	in := envyVar("1", false)
	desc := "line one\nline two"
	in.Description = &desc
	if _, _, err := e.Svc.SetVar(actx, "acme/app", "A", in, setOpts()); err != nil {
		t.Fatal(err)
	}
	b := e.browser(t)
	csrf := b.signIn(e.Admin)
	f := formOf(t, b.get("/ui/scopes/acme/app").Body, `class="stack edit-form"`)
	f.Set("csrf", csrf)
	f.Set("value", "2")
	f.Set("description", "line oneline two")         // what a browser sends back
	f.Set("description_was", "line one\r\nline two") // a form's line breaks are CRLF
	if res := b.post("/ui/scopes/acme/app/-/vars", f); res.Status != http.StatusSeeOther {
		t.Fatalf("edit: %d\n%s", res.Status, res.Body)
	}
	v, err := e.Svc.GetVar(actx, "acme/app", "A", false)
	if err != nil {
		t.Fatal(err)
	}
	if v.Value == nil || v.Value.Reveal() != "2" || v.Description != desc {
		t.Fatalf("after the edit: description %q (value 2: %v); want %q", v.Description, v.Value != nil && v.Value.Reveal() == "2", desc)
	}
}
