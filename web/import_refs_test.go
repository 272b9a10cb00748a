package web

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/envy-dev/envy"
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
	e := newTestEnv(t, false, Options{})
	actx := e.asToken(t, e.Admin)
	if _, _, err := e.Svc.SetVar(actx, "acme/app", "KEEP", envyVar("1", false), setOpts()); err != nil {
		t.Fatal(err)
	}
	b := e.browser(t)
	csrf := b.signIn(e.Admin)
	if p := b.get("/ui/scopes/acme/app"); !strings.Contains(p.Body, `name="literal"`) {
		t.Fatalf("the import form offers no \"Values are literal\":\n%s", p.Body)
	}
	p := importPreview(t, b, csrf, "PRICE='${AMOUNT} USD'\r\n", url.Values{"literal": {"on"}})
	if !strings.Contains(p.Body, `id="import-literal"`) || strings.Contains(p.Body, `id="import-refs"`) || strings.Contains(p.Body, `id="import-broken"`) {
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

var brokenItemRE = regexp.MustCompile(`<li>([^<]*)</li>`)

// brokenOf returns what the preview says would not resolve.
func brokenOf(body string) []string {
	i := strings.Index(body, `id="import-broken"`)
	if i < 0 {
		return nil
	}
	box := body[i:]
	box = box[:strings.Index(box, "</div>")]
	var out []string
	for _, m := range brokenItemRE.FindAllStringSubmatch(box, -1) {
		out = append(out, html.UnescapeString(m[1]))
	}
	return out
}

// Without "Values are literal", the preview names the vars whose values
// hold references; an import whose references would not resolve (which
// would leave every read of the scope's env failing) is not offered, and
// its preview names the var and what it refers to. One whose references
// resolve is applied.
func TestAnImportWhoseReferencesWouldNotResolveIsRefusedNamingThem(t *testing.T) {
	e := newTestEnv(t, false, Options{})
	actx := e.asToken(t, e.Admin)
	for _, v := range [][3]string{{"acme/app", "KEEP", "1"}, {"acme/shared", "HOST", "db.internal"}} {
		if _, _, err := e.Svc.SetVar(actx, v[0], v[1], envyVar(v[2], false), setOpts()); err != nil {
			t.Fatal(err)
		}
	}
	b := e.browser(t)
	csrf := b.signIn(e.Admin)

	p := importPreview(t, b, csrf, "PRICE='${AMOUNT} USD'\r\nURL=pg://${acme/shared:HOST}/${acme/nowhere:DB}/${acme/shared:PORT}\r\nPLAIN=1\r\n", nil)
	if !strings.Contains(p.Body, `id="import-refs"`) || !strings.Contains(p.Body, "<code>PRICE</code>, <code>URL</code> (") {
		t.Errorf("the preview does not name the vars with references:\n%s", p.Body)
	}
	want := []string{"PRICE refers to AMOUNT, which is not set", "URL refers to acme/nowhere:DB, whose scope does not exist", "URL refers to acme/shared:PORT, which is not set"}
	if got := brokenOf(p.Body); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("the preview names as not resolving %q; want %q\n%s", got, want, p.Body)
	}
	if strings.Contains(p.Body, `name="id"`) || strings.Contains(p.Body, "Apply import") {
		t.Errorf("an import that would leave the env unreadable is offered:\n%s", p.Body)
	}
	if _, err := envOf(t, e, "acme/app"); err != nil {
		t.Fatalf("the env after the preview: %v", err)
	}

	// Resolved by the file itself, or by the scope's env: applied.
	p = importPreview(t, b, csrf, "AMOUNT=5\nPRICE='${AMOUNT} USD'\nURL=pg://${acme/shared:HOST}/${KEEP}\n", nil)
	if got := brokenOf(p.Body); got != nil {
		t.Fatalf("references that resolve are named as not resolving: %q", got)
	}
	importApply(t, b, csrf, p)
	env, err := envOf(t, e, "acme/app")
	if err != nil {
		t.Fatalf("after an import whose references resolve: %v", err)
	}
	if env["PRICE"] != "5 USD" || env["URL"] != "pg://db.internal/1" {
		t.Errorf("the env reads PRICE %q, URL %q", env["PRICE"], env["URL"])
	}
}

// The apply checks again: a var that the preview's references resolved
// to, deleted from another scope before the apply, makes the apply
// refuse, naming it, and import nothing; the message says so.
func TestAnImportApplyRefusesAReferenceThatNoLongerResolves(t *testing.T) {
	e := newTestEnv(t, false, Options{})
	actx := e.asToken(t, e.Admin)
	for _, v := range [][3]string{{"acme/app", "KEEP", "1"}, {"acme/shared", "AMOUNT", "5"}} {
		if _, _, err := e.Svc.SetVar(actx, v[0], v[1], envyVar(v[2], false), setOpts()); err != nil {
			t.Fatal(err)
		}
	}
	b := e.browser(t)
	csrf := b.signIn(e.Admin)
	p := importPreview(t, b, csrf, "PRICE='${acme/shared:AMOUNT} USD'\n", nil)
	if got := brokenOf(p.Body); got != nil {
		t.Fatalf("the preview names as not resolving %q", got)
	}
	if _, err := e.Svc.DeleteVar(actx, "acme/shared", "AMOUNT", envy.Cond{}); err != nil {
		t.Fatal(err)
	}
	s := importApply(t, b, csrf, p)
	if !strings.Contains(s.Body, "Nothing was imported: PRICE refers to acme/shared:AMOUNT, which is not set") || strings.Contains(s.Body, "Imported") {
		t.Errorf("the apply's message:\n%s", s.Body)
	}
	env, err := envOf(t, e, "acme/app")
	if err != nil {
		t.Fatalf("the env after a refused apply: %v", err)
	}
	if _, ok := env["PRICE"]; ok {
		t.Errorf("a refused apply imported PRICE")
	}
}

// A replace that removes a var of the scope which an inherited var
// refers to would leave the env unreadable too: the preview says so.
func TestAReplaceThatRemovesAVarAnInheritedReferenceNeedsIsRefused(t *testing.T) {
	e := newTestEnv(t, false, Options{})
	actx := e.asToken(t, e.Admin)
	s := scopeSettings{t, e}
	s.put("acme/base", "")
	if _, _, err := e.Svc.SetVar(actx, "acme/base", "URL", envyVar("pg://${HOST}/app", false), setOpts()); err != nil {
		t.Fatal(err)
	}
	s.put("acme/app", "", "acme/base")
	if _, _, err := e.Svc.SetVar(actx, "acme/app", "HOST", envyVar("db.internal", false), setOpts()); err != nil {
		t.Fatal(err)
	}
	if _, err := envOf(t, e, "acme/app"); err != nil {
		t.Fatal(err)
	}
	b := e.browser(t)
	csrf := b.signIn(e.Admin)
	p := importPreview(t, b, csrf, "OTHER=1\n", url.Values{"mode": {"replace"}})
	want := []string{"URL (from acme/base) refers to HOST, which the replace removes"}
	if got := brokenOf(p.Body); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("the preview names as not resolving %q; want %q\n%s", got, want, p.Body)
	}
	if strings.Contains(p.Body, `name="id"`) {
		t.Errorf("the replace is offered")
	}
	// Merged, HOST stays: offered.
	if p := importPreview(t, b, csrf, "OTHER=1\n", nil); brokenOf(p.Body) != nil || !strings.Contains(p.Body, `name="id"`) {
		t.Errorf("the merge is not offered:\n%s", p.Body)
	}
}
