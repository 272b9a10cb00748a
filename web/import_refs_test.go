package web

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// importPreview pastes text into the import form of acme/app, with the
// form's other fields, and returns the preview page.
func importPreview(t *testing.T, b *browser, csrf, text string, more url.Values) page {
	t.Helper()
	f := url.Values{"csrf": {csrf}, "dotenv": {text}, "mode": {"merge"}}
	for k, v := range more {
		f[k] = v
	}
	p := b.post("/ui/scopes/acme/app/-/import", f)
	if p.Status != http.StatusOK {
		t.Fatalf("preview: %d\n%s", p.Status, p.Body)
	}
	return p
}

// importApply applies the preview p and returns the scope page it leads
// to, with its message.
func importApply(t *testing.T, b *browser, csrf string, p page) page {
	t.Helper()
	id := regexp1(t, p.Body, `name="id" value="([^"]+)"`)
	if res := b.post("/ui/scopes/acme/app/-/import/apply", url.Values{"csrf": {csrf}, "id": {id}}); res.Status != http.StatusSeeOther {
		t.Fatalf("apply: %d\n%s", res.Status, res.Body)
	}
	return b.get("/ui/scopes/acme/app")
}

// envOf reads the resolved env of scope as the admin.
func envOf(t *testing.T, e *testEnv, scope string) (map[string]string, error) {
	t.Helper()
	env, err := e.Svc.Env(e.asToken(t, e.Admin), scope)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, v := range env.Vars {
		out[v.Name] = v.Value.Reveal()
	}
	return out, nil
}

// `envy export` writes a stored "$${AMOUNT} USD" as "${AMOUNT} USD".
// Pasted into the dashboard with "Values are literal" ticked, it is
// stored as written, as `envy import --literal` does.
func TestAnExportPastedWithValuesAreLiteralKeepsItsDollarBraces(t *testing.T) {
	e, _, b, csrf := onScopePage(t, "KEEP", "1")
	if p := b.get("/ui/scopes/acme/app"); !strings.Contains(p.Body, `name="literal"`) {
		t.Fatalf("the import form offers no \"Values are literal\":\n%s", p.Body)
	}
	p := importPreview(t, b, csrf, "PRICE='${AMOUNT} USD'\r\n", url.Values{"literal": {"on"}})
	if !strings.Contains(p.Body, `id="import-literal"`) || strings.Contains(p.Body, `id="import-refs"`) {
		t.Fatalf("the preview of literal values:\n%s", p.Body)
	}
	importApply(t, b, csrf, p)
	env, err := envOf(t, e, "acme/app")
	if err != nil {
		t.Fatalf("after pasting an exported file, the scope's env can't be read: %v", err)
	}
	if env["PRICE"] != "${AMOUNT} USD" || varValue(t, e, "PRICE") != "$${AMOUNT} USD" {
		t.Errorf("PRICE reads %q, stored %q; want ${AMOUNT} USD, stored $${AMOUNT} USD", env["PRICE"], varValue(t, e, "PRICE"))
	}
	// The preview compared the escaped values: pasted again, nothing changes.
	if p := importPreview(t, b, csrf, "PRICE='${AMOUNT} USD'\n", url.Values{"literal": {"on"}}); !strings.Contains(p.Body, "importing it changes nothing") {
		t.Errorf("the same file, literal, again:\n%s", p.Body)
	}
}

// flashOf returns the message a page shows, unescaped, and whether it is
// an error's.
func flashOf(body string) (string, bool) {
	m := flashRE.FindStringSubmatch(body)
	if m == nil {
		return "", false
	}
	return html.UnescapeString(m[2]), strings.Contains(m[1], "err")
}

var flashRE = regexp.MustCompile(`(?s)<(?:p|div) class="(flash [a-z]+)" role="[a-z]+">(?:<p>)?(.*?)</p>`)

// Without "Values are literal", the preview names the vars whose values
// hold references. The service accepts a reference to a var that is not
// set (yet), as the API does; an import that leaves one is applied, and
// its message says, as the one resolution finds it, that the env can't
// be read now and what to do, never a plain success. One whose
// references resolve says it imported.
func TestAnImportThatLeavesAReferenceUnresolvedSaysSo(t *testing.T) {
	e := newTestEnv(t, false, Options{})
	actx := e.asToken(t, e.Admin)
	for _, v := range [][3]string{{"acme/app", "KEEP", "1"}, {"acme/shared", "HOST", "db.internal"}} {
		if _, _, err := e.Svc.SetVar(actx, v[0], v[1], envyVar(v[2], false), setOpts()); err != nil {
			t.Fatal(err)
		}
	}
	b := e.browser(t)
	csrf := b.signIn(e.Admin)

	p := importPreview(t, b, csrf, "PRICE='${AMOUNT} USD'\r\nURL=pg://${acme/shared:HOST}/${KEEP}\r\nPLAIN=1\r\n", nil)
	if !strings.Contains(p.Body, `id="import-refs"`) || !strings.Contains(p.Body, "<code>PRICE</code>, <code>URL</code> (") {
		t.Errorf("the preview does not name the vars with references:\n%s", p.Body)
	}
	msg, isErr := flashOf(importApply(t, b, csrf, p).Body)
	if !isErr || !strings.Contains(msg, "Imported 3 vars (merged) as revision") || !strings.Contains(msg, "but the scope's env can't be read now: PRICE refers to AMOUNT, which is not set") {
		t.Errorf("the apply's message: %q (error: %v)", msg, isErr)
	}
	if _, err := envOf(t, e, "acme/app"); err == nil {
		t.Fatal("the env reads, though PRICE refers to AMOUNT, which is not set")
	}

	// Set, the reference resolves: a plain success.
	p = importPreview(t, b, csrf, "AMOUNT=5\n", nil)
	if msg, isErr := flashOf(importApply(t, b, csrf, p).Body); isErr || strings.Contains(msg, "can't be read") || !strings.Contains(msg, "Imported 1 var (merged)") {
		t.Errorf("the apply's message: %q (error: %v)", msg, isErr)
	}
	if env, err := envOf(t, e, "acme/app"); err != nil || env["PRICE"] != "5 USD" || env["URL"] != "pg://db.internal/1" {
		t.Errorf("the env: %v, %v", env, err)
	}
}

// What the env reads after an import is the one resolution's answer, in
// the cases a check of its own got wrong: a replace that removes a var an
// inherited var refers to breaks the env (said so), unless another layer
// shadows that inherited var (a plain success); a reference through a
// scope that inherits this one sees the import's own vars.
func TestAnImportsMessageFollowsTheResolution(t *testing.T) {
	e := newTestEnv(t, false, Options{})
	actx := e.asToken(t, e.Admin)
	s := scopeSettings{t, e}
	set := func(scope, name, value string) {
		t.Helper()
		if _, _, err := e.Svc.SetVar(actx, scope, name, envyVar(value, false), setOpts()); err != nil {
			t.Fatal(err)
		}
	}
	s.put("acme/base", "")
	set("acme/base", "URL", "pg://${HOST}/app")
	s.put("acme/app", "", "acme/base")
	set("acme/app", "HOST", "db.internal")
	b := e.browser(t)
	csrf := b.signIn(e.Admin)

	p := importPreview(t, b, csrf, "HOST=db.internal\nOTHER=1\n", url.Values{"mode": {"replace"}})
	if msg, isErr := flashOf(importApply(t, b, csrf, p).Body); isErr {
		t.Errorf("a replace that keeps HOST: %q", msg)
	}
	p = importPreview(t, b, csrf, "OTHER=1\n", url.Values{"mode": {"replace"}})
	if msg, isErr := flashOf(importApply(t, b, csrf, p).Body); !isErr || !strings.Contains(msg, "refers to HOST, which is not set") {
		t.Errorf("a replace that removes the HOST an inherited URL needs: %q (error: %v)", msg, isErr)
	}

	// The inherited URL shadowed by the scope's own: the replace leaves
	// the env readable.
	set("acme/app", "URL", "pg://fixed/app")
	p = importPreview(t, b, csrf, "URL=pg://fixed/app\n", url.Values{"mode": {"replace"}})
	if msg, isErr := flashOf(importApply(t, b, csrf, p).Body); isErr {
		t.Errorf("a replace whose env stays readable: %q", msg)
	}

	// A reference through a scope that inherits this one, to a var the
	// import itself sets.
	s.put("acme/app/child", "", "acme/app")
	p = importPreview(t, b, csrf, "X=5\nA=${acme/app/child:X}\n", nil)
	if msg, isErr := flashOf(importApply(t, b, csrf, p).Body); isErr {
		t.Errorf("a reference through an inheriting scope to the import's own var: %q", msg)
	}
	if env, err := envOf(t, e, "acme/app"); err != nil || env["A"] != "5" {
		t.Errorf("the env: %v, %v", env, err)
	}
}
