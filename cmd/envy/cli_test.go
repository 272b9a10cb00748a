package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/envy-dev/envy/internal/testenv"
)

// server starts a test server and returns it with the environment that
// points the CLI at it as admin.
func server(t *testing.T) (*testenv.Env, env) {
	t.Helper()
	e := testenv.New(t, testenv.Options{})
	return e, env{"ENVY_ADDR": e.URL, "ENVY_TOKEN": e.Admin}
}

// runIO runs the CLI with the given streams.
func runIO(t *testing.T, e env, stdin io.Reader, stdout, stderr io.Writer, args ...string) int {
	t.Helper()
	if _, ok := e["ENVY_CONFIG"]; !ok {
		e["ENVY_CONFIG"] = filepath.Join(t.TempDir(), "config.json")
	}
	return run(args, stdin, stdout, stderr, e.get)
}

// must runs the CLI and fails the test unless it exits 0.
func must(t *testing.T, e env, stdin string, args ...string) string {
	t.Helper()
	code, out, errOut := runEnvy(t, e, stdin, args...)
	if code != 0 {
		t.Fatalf("envy %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// varValue reads a var over the API: its value (revealed) and whether it
// exists.
func varValue(t *testing.T, e *testenv.Env, scope, name string) (string, bool) {
	t.Helper()
	r := e.Do(t, "GET", "/v1/scopes/"+scope+"/-/vars/"+name+"?reveal=true", e.Admin, "")
	if r.Status == 404 {
		return "", false
	}
	if r.Status != 200 {
		t.Fatalf("GET %s/%s: %d %s", scope, name, r.Status, r.Body)
	}
	m := r.JSON(t)
	v, _ := m["value"].(string)
	return v, true
}

func scopeRevision(t *testing.T, e *testenv.Env, scope string) int64 {
	t.Helper()
	r := e.Do(t, "GET", "/v1/scopes/"+scope, e.Admin, "")
	if r.Status != 200 {
		t.Fatalf("GET %s: %d %s", scope, r.Status, r.Body)
	}
	return int64(r.JSON(t)["revision"].(float64))
}

func scopeExists(t *testing.T, e *testenv.Env, scope string) bool {
	t.Helper()
	return e.Do(t, "GET", "/v1/scopes/"+scope, e.Admin, "").Status == 200
}

// A value is never taken from nothing: /dev/null (a character device, not
// a terminal), an empty pipe, cron's or systemd's stdin.
func TestNoValueFromAnEmptyStdinIsStored(t *testing.T) {
	e, ev := server(t)
	must(t, ev, "", "set", "acme/web", "KEEP=kept", "--create")
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	for _, args := range [][]string{
		{"vars", "set", "acme/web", "API_KEY"},
		{"vars", "set", "acme/web", "API_KEY", "-"},
		{"vars", "set", "acme/web", "API_KEY", "--from-file", "-"},
		{"set", "acme/web", "API_KEY"},
		{"set", "acme/web", "API_KEY=-"},
		{"vars", "set", "acme/web", "KEEP", "--secret=false"},
	} {
		null.Seek(0, 0)
		var out, errOut bytes.Buffer
		code := runIO(t, ev, null, &out, &errOut, args...)
		name := args[2]
		if args[0] == "vars" {
			name = args[3]
		}
		name, _, _ = strings.Cut(name, "=")
		if code != 2 || !strings.Contains(errOut.String(), "no value for "+name) || out.Len() != 0 {
			t.Errorf("envy %s </dev/null: exit %d, stdout %q, stderr %q", strings.Join(args, " "), code, out.String(), errOut.String())
		}
	}
	if _, ok := varValue(t, e, "acme/web", "API_KEY"); ok {
		t.Error("API_KEY was stored")
	}
	if v, _ := varValue(t, e, "acme/web", "KEEP"); v != "kept" {
		t.Errorf("KEEP is %q, want it kept", v)
	}
	// An empty value given as an argument is one.
	must(t, ev, "", "vars", "set", "acme/web", "EMPTY", "")
	if v, ok := varValue(t, e, "acme/web", "EMPTY"); !ok || v != "" {
		t.Errorf("EMPTY = %q, %v", v, ok)
	}
}

func TestVarsEditKeepsTheValue(t *testing.T) {
	e, ev := server(t)
	must(t, ev, "s3cr3t-value-123\n", "vars", "set", "acme/web", "API_KEY", "--secret", "--create")
	out := must(t, ev, "", "vars", "edit", "acme/web", "API_KEY", "--secret=false", "--description", "the API key")
	if !strings.HasPrefix(out, "updated API_KEY in acme/web: version 2") {
		t.Errorf("stdout %q", out)
	}
	r := e.Do(t, "GET", "/v1/scopes/acme/web/-/vars/API_KEY", e.Admin, "").JSON(t)
	if r["value"] != "s3cr3t-value-123" || r["secret"] != false || r["description"] != "the API key" {
		t.Errorf("after edit: %v", r)
	}
	code, _, errOut := runEnvy(t, ev, "", "vars", "edit", "acme/web", "API_KEY")
	if code != 2 || !strings.Contains(errOut, "nothing to edit") {
		t.Errorf("edit without a change: %d %q", code, errOut)
	}
	code, _, errOut = runEnvy(t, ev, "", "vars", "edit", "acme/web", "NOPE", "--secret")
	if code != 1 || !strings.Contains(errOut, "not_found") {
		t.Errorf("edit of a missing var: %d %q", code, errOut)
	}
}

// Paths go to the server as typed; a server that redirects to a cleaned
// path is not followed, and nothing lands in another scope.
func TestScopePathsAreSentAsTyped(t *testing.T) {
	e, ev := server(t)
	must(t, ev, "", "set", "acme/web", "A=0", "--create")
	must(t, ev, "", "scopes", "create", "etc")
	for _, path := range []string{"acme/../etc", "acme//web", "/acme/web", "acme/./web"} {
		code, out, errOut := runEnvy(t, ev, "", "set", path, "A=1", "--create")
		if code == 0 || out != "" || errOut == "" || strings.Count(errOut, "\n") != 1 {
			t.Errorf("set %s: exit %d, stdout %q, stderr %q", path, code, out, errOut)
		}
	}
	if _, ok := varValue(t, e, "etc", "A"); ok {
		t.Error("acme/../etc wrote into etc")
	}
	if v, _ := varValue(t, e, "acme/web", "A"); v != "0" {
		t.Errorf("acme/web A = %q: a path that is not acme/web wrote into it", v)
	}
}

func TestWritesSayWhatHappened(t *testing.T) {
	e, ev := server(t)
	out := must(t, ev, "", "scopes", "rm", "no/such", "--yes")
	if out != "scope no/such does not exist: nothing deleted\n" {
		t.Errorf("scopes rm of nothing: %q", out)
	}
	must(t, ev, "", "set", "acme/web", "A=1", "B=2", "--create")
	rev := scopeRevision(t, e, "acme/web")
	out = must(t, ev, "", "unset", "acme/web", "NOPE")
	if out != fmt.Sprintf("nothing deleted: NOPE is not in acme/web (still revision %d)\n", rev) {
		t.Errorf("unset NOPE: %q", out)
	}
	out = must(t, ev, "", "vars", "unset", "acme/web", "A", "NOPE")
	if !strings.HasPrefix(out, "deleted A from acme/web (revision ") || !strings.HasSuffix(out, "\nnot there, nothing to delete: NOPE\n") {
		t.Errorf("unset A NOPE: %q", out)
	}
	out = must(t, ev, "", "unset", "no/such", "A")
	if out != "scope no/such does not exist: nothing deleted\n" {
		t.Errorf("unset in a missing scope: %q", out)
	}
	// scopes create of an existing scope with nothing new writes nothing.
	must(t, ev, "", "scopes", "create", "acme/base", "--description", "base")
	rev = scopeRevision(t, e, "acme/base")
	for _, args := range [][]string{{"scopes", "create", "acme/base"}, {"scopes", "create", "acme/base", "--description", "base"}} {
		out = must(t, ev, "", args...)
		if !strings.Contains(out, "nothing changed") {
			t.Errorf("%v: %q", args, out)
		}
	}
	if got := scopeRevision(t, e, "acme/base"); got != rev {
		t.Errorf("revision %d after a create that changed nothing, want %d", got, rev)
	}
	out = must(t, ev, "", "scopes", "create", "acme/base", "--description", "the base")
	if !strings.HasPrefix(out, "updated scope acme/base") {
		t.Errorf("a new description: %q", out)
	}
}

// A write that changes nothing takes no revision (so restarts nothing),
// and says so; a write that changes some vars leaves the others' versions.
func TestASetThatChangesNothingSaysSo(t *testing.T) {
	e, ev := server(t)
	must(t, ev, "", "set", "acme/web", "A=x", "B=y", "--create")
	must(t, ev, "s3cr3t-value\n", "vars", "set", "acme/web", "S", "--secret")
	rev := scopeRevision(t, e, "acme/web")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"set", "acme/web", "A=x", "B=y"}, fmt.Sprintf("nothing changed in acme/web: all 2 vars already had those values (still revision %d; nothing written, no workload restarted)\n", rev)},
		{[]string{"set", "acme/web", "A=x"}, fmt.Sprintf("nothing changed in acme/web: the var already had that value (still revision %d; nothing written, no workload restarted)\n", rev)},
		{[]string{"vars", "set", "acme/web", "A", "x"}, fmt.Sprintf("unchanged: A in acme/web already was so (still revision %d; nothing written, no workload restarted)\n", rev)},
		{[]string{"vars", "set", "acme/web", "A", "x", "--secret=false"}, fmt.Sprintf("unchanged: A in acme/web already was so (still revision %d; nothing written, no workload restarted)\n", rev)},
	} {
		if out := must(t, ev, "", tc.args...); out != tc.want {
			t.Errorf("%v: %q\nwant %q", tc.args, out, tc.want)
		}
	}
	if got := scopeRevision(t, e, "acme/web"); got != rev {
		t.Fatalf("revision %d after writes that changed nothing, want %d", got, rev)
	}
	// A flag that changes is a change.
	if out := must(t, ev, "", "set", "acme/web", "A=x", "--secret"); !strings.HasPrefix(out, "set 1 var in acme/web: revision ") {
		t.Errorf("--secret on a plain var: %q", out)
	}
	// Only the vars that change are written.
	out := must(t, ev, "", "set", "acme/web", "B=y", "C=z")
	if !strings.HasPrefix(out, "set 1 var in acme/web: revision ") || !strings.HasSuffix(out, "; 1 already had its value)\n") {
		t.Errorf("one of two changed: %q", out)
	}
	r := e.Do(t, "GET", "/v1/scopes/acme/web/-/vars/B", e.Admin, "").JSON(t)
	if r["version"].(float64) != 1 {
		t.Errorf("B took a new version: %v", r["version"])
	}
	// The CLI doesn't compare a secret's value: the server does, for a
	// caller who may reveal it, and the CLI reports what it answered.
	if out := must(t, ev, "s3cr3t-value\n", "vars", "set", "acme/web", "S"); !strings.HasPrefix(out, "unchanged") {
		t.Errorf("a secret: %q", out)
	}
}

func TestRollbackSaysWhatItChanges(t *testing.T) {
	e, ev := server(t)
	must(t, ev, "", "set", "other", "X=1", "--create") // revision 1 belongs to another scope
	must(t, ev, "", "set", "acme/web", "A=1", "B=1", "--create")
	to := scopeRevision(t, e, "acme/web")
	must(t, ev, "", "set", "acme/web", "A=2", "C=1")
	must(t, ev, "", "unset", "acme/web", "B")
	before := scopeRevision(t, e, "acme/web")

	out := must(t, ev, "", "rollback", "acme/web", fmt.Sprint(to), "--dry-run")
	want := fmt.Sprintf("rolling acme/web back to revision %d would:\n  added:   B\n  removed: C\n  changed: A\n(dry run: nothing changed)\n", to)
	if out != want {
		t.Errorf("dry run:\n%s\nwant:\n%s", out, want)
	}
	if scopeRevision(t, e, "acme/web") != before {
		t.Error("the dry run changed the scope")
	}
	out = must(t, ev, "", "rollback", "acme/web", fmt.Sprint(to))
	if !strings.HasPrefix(out, fmt.Sprintf("rolled acme/web back to revision %d: now revision ", to)) ||
		!strings.HasSuffix(out, "\n  added:   B\n  removed: C\n  changed: A\n") {
		t.Errorf("rollback:\n%s", out)
	}
	if v, _ := varValue(t, e, "acme/web", "A"); v != "1" {
		t.Errorf("A = %q after the rollback", v)
	}
	// A revision before the scope's first change is refused.
	rev := scopeRevision(t, e, "acme/web")
	code, _, errOut := runEnvy(t, ev, "", "rollback", "acme/web", "1")
	if code != 1 || !strings.Contains(errOut, "scope acme/web did not exist at revision 1") {
		t.Errorf("rollback to before the scope: %d %q", code, errOut)
	}
	if scopeRevision(t, e, "acme/web") != rev {
		t.Error("the refused rollback changed the scope")
	}
}

func TestLoginReadsOneLinePerPrompt(t *testing.T) {
	e, _ := server(t)
	cfg := filepath.Join(t.TempDir(), "config.json")
	ev := env{"ENVY_CONFIG": cfg}
	out := must(t, ev, "  "+e.URL+"  \n "+e.Admin+" \r\n", "login")
	if !strings.HasPrefix(out, "Logged in to "+e.URL+" as admin") {
		t.Errorf("login: %q", out)
	}
	got, err := loadConfig(cfg)
	if err != nil || got.Addr != e.URL || got.Token != e.Admin {
		t.Errorf("config %+v, %v", got, err)
	}
	out = must(t, ev, "", "whoami")
	if !regexp.MustCompile(`(?m)^name:\s+admin$`).MatchString(out) || !regexp.MustCompile(`(?m)^expires:\s+never$`).MatchString(out) {
		t.Errorf("whoami:\n%s", out)
	}
	out = must(t, ev, "", "logout")
	if out != "logged out: removed "+cfg+" (the token stays valid on the server until revoked)\n" {
		t.Errorf("logout: %q", out)
	}
	if _, err := os.Stat(cfg); !os.IsNotExist(err) {
		t.Errorf("the config is still there: %v", err)
	}
	out = must(t, ev, "", "logout")
	if !strings.HasPrefix(out, "not logged in") {
		t.Errorf("logout twice: %q", out)
	}
}

func TestOutputFormats(t *testing.T) {
	_, ev := server(t)
	must(t, ev, "", "set", "acme/web", "A=no", "B=8080", "--create")
	out := must(t, ev, "", "vars", "ls", "acme/web", "-o", "json")
	if !strings.HasSuffix(out, "}\n") || strings.HasSuffix(out, "\n\n") {
		t.Errorf("-o json does not end in one newline: %q", out[len(out)-5:])
	}
	var list struct {
		Items []struct{ Name, Value string }
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Items) != 2 {
		t.Fatalf("-o json: %v %s", err, out)
	}
	if upper := must(t, ev, "", "vars", "ls", "acme/web", "-o", "JSON"); upper != out {
		t.Errorf("-o JSON differs from -o json")
	}
	y := must(t, ev, "", "vars", "ls", "acme/web", "-o", "yaml")
	for _, want := range []string{"scope: acme/web\n", "items:\n  - id: ", "    name: A\n    value: \"no\"\n", "    value: \"8080\"\n", "    masked_value: null\n    secret: false\n"} {
		if !strings.Contains(y, want) {
			t.Errorf("-o yaml lacks %q:\n%s", want, y)
		}
	}
}

func TestTokensAreListedByNameThenCreation(t *testing.T) {
	e, ev := server(t)
	for i, name := range []string{"zeta", "alpha", "mid", "alpha"} {
		must(t, ev, "", "tokens", "create", name, "--grant", "acme/**=read", "--owner", fmt.Sprint("owner-", i))
	}
	names := func(out string) string {
		var names []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
			names = append(names, strings.Fields(l)[1])
		}
		return strings.Join(names, " ")
	}
	out := must(t, ev, "", "tokens", "ls", "-o", "table")
	if names(out) != "admin alpha alpha mid zeta" {
		t.Errorf("order:\n%s", out)
	}
	// With --limit, one page is sorted and the next one named.
	code, out, errOut := runEnvy(t, ev, "", "tokens", "ls", "--limit", "2")
	if code != 0 || strings.Count(out, "\n") != 3 || !strings.HasPrefix(errOut, "(more: add --cursor ") {
		t.Errorf("--limit 2: %d %q %q", code, out, errOut)
	}
	// Beyond the server's page of 100, every page is read before sorting.
	for i := 0; i < 100; i++ {
		body := fmt.Sprintf(`{"name":"t%03d","owner":"bulk","permissions":[{"scopes":"x","actions":["read"]}]}`, 99-i)
		if r := e.Do(t, "POST", "/v1/tokens", e.Admin, body); r.Status != 201 {
			t.Fatalf("create: %d %s", r.Status, r.Body)
		}
	}
	code, out, errOut = runEnvy(t, ev, "", "tokens", "ls")
	if all := names(out); code != 0 || errOut != "" || !strings.HasPrefix(all, "admin alpha alpha mid t000 t001 ") || !strings.HasSuffix(all, " t098 t099 zeta") {
		t.Errorf("105 tokens: %d %q\n%s", code, errOut, all)
	}
	for _, limit := range []string{"0", "1001", "-1"} {
		for _, args := range [][]string{{"audit"}, {"tokens", "ls"}, {"scopes", "ls"}, {"history", "acme"}} {
			code, _, errOut := runEnvy(t, ev, "", append(args, "--limit", limit)...)
			if code != 2 || errOut != "envy: --limit must be 1-1000, not "+limit+"\n" {
				t.Errorf("%v --limit %s: %d %q", args, limit, code, errOut)
			}
		}
	}
}

func TestHelpTexts(t *testing.T) {
	_, out, _ := runEnvy(t, env{}, "", "run", "--help")
	if !regexp.MustCompile(`--consumer-id string\s+the name of this run in envy status`).MatchString(out) {
		t.Errorf("run --help, --consumer-id:\n%s", out)
	}
	_, out, _ = runEnvy(t, env{}, "", "server", "--help")
	if !regexp.MustCompile(`--database-url string\s+postgres:// URL of a PostgreSQL database to use instead of SQLite`).MatchString(out) || strings.Contains(out, "not in this build") {
		t.Errorf("server --help, --database-url:\n%s", out)
	}
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		code, out, errOut := runEnvy(t, env{}, "", "completion", shell)
		if code != 0 || !strings.Contains(out, "envy") || errOut != "" {
			t.Errorf("completion %s: %d, stderr %q", shell, code, errOut)
		}
	}
	code, out, _ := runEnvy(t, env{}, "", "version")
	if code != 0 || !regexp.MustCompile(`^envy \S+ \(commit \S+, go1\.\S+, \w+/\w+\)\n$`).MatchString(out) {
		t.Errorf("version: %d %q", code, out)
	}
	if _, v, errOut := runEnvy(t, env{}, "", "--version"); v != out || errOut != "" {
		t.Errorf("--version %q (stderr %q), version %q", v, errOut, out)
	}
}
