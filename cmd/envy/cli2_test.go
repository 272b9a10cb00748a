package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/envy-dev/envy"
)

func TestADefaultScopeFromEnvyScopeOrSetup(t *testing.T) {
	e, ev := server(t)
	must(t, ev, "", "set", "acme/web/dev", "A=1", "--create")
	must(t, ev, "", "set", "acme/other", "A=other", "--create")

	// ENVY_SCOPE.
	ev["ENVY_SCOPE"] = "acme/other"
	if out := must(t, ev, "", "vars", "get", "A"); out != "other" {
		t.Errorf("vars get A with ENVY_SCOPE: %q", out)
	}
	delete(ev, "ENVY_SCOPE")

	// envy setup writes a file that the directory and those below use.
	dir := t.TempDir()
	t.Chdir(dir)
	out := must(t, ev, "", "setup", "acme/web/dev")
	if out != fmt.Sprintf("commands run in %s and below now use scope acme/web/dev (saved in %s)\n", dir, filepath.Join(dir, ".envy.json")) {
		t.Errorf("setup: %q", out)
	}
	sub := filepath.Join(dir, "src", "app")
	os.MkdirAll(sub, 0o755)
	t.Chdir(sub)
	must(t, ev, "", "set", "B=2", "C=3")
	if v, _ := varValue(t, e, "acme/web/dev", "B"); v != "2" {
		t.Errorf("set B=2 below the project dir wrote %q into acme/web/dev", v)
	}
	if out := must(t, ev, "", "vars", "get", "B"); out != "2" {
		t.Errorf("vars get B: %q", out)
	}
	if out := must(t, ev, "", "export", "--format", "dotenv"); out != "A=1\nB=2\nC=3\n" {
		t.Errorf("export: %q", out)
	}
	must(t, ev, "", "unset", "C")
	if _, ok := varValue(t, e, "acme/web/dev", "C"); ok {
		t.Error("unset C in the default scope left it")
	}
	if out := must(t, ev, "", "run", "--", "sh", "-c", "echo $A$B"); out != "12\n" {
		t.Errorf("run without --scope: %q", out)
	}
	// ENVY_SCOPE beats the file; an explicit SCOPE beats both.
	ev["ENVY_SCOPE"] = "acme/other"
	if out := must(t, ev, "", "vars", "get", "A"); out != "other" {
		t.Errorf("ENVY_SCOPE over the file: %q", out)
	}
	if out := must(t, ev, "", "vars", "get", "acme/web/dev", "A"); out != "1" {
		t.Errorf("an explicit scope: %q", out)
	}
	delete(ev, "ENVY_SCOPE")
	// setup refuses a scope that does not exist, unless --create.
	code, _, errOut := runEnvy(t, ev, "", "setup", "acme/typo")
	if code != 1 || !strings.Contains(errOut, "scope acme/typo does not exist") {
		t.Errorf("setup of a missing scope: %d %q", code, errOut)
	}
}

func TestATypodScopeIsNotCreatedSilently(t *testing.T) {
	e, ev := server(t)
	must(t, ev, "", "set", "acme/web", "A=1", "--create")
	file := filepath.Join(t.TempDir(), "x.env")
	os.WriteFile(file, []byte("A=1\n"), 0o600)
	for _, args := range [][]string{
		{"set", "acme/wbe", "A=1"},
		{"vars", "set", "acme/wbe", "A", "1"},
		{"import", "acme/wbe", file},
	} {
		code, out, errOut := runEnvy(t, ev, "", args...)
		if code != 1 || out != "" || !strings.Contains(errOut, "scope acme/wbe does not exist") || !strings.Contains(errOut, "--create") {
			t.Errorf("%v: %d %q %q", args, code, out, errOut)
		}
	}
	if scopeExists(t, e, "acme/wbe") {
		t.Fatal("acme/wbe was created")
	}
	must(t, ev, "", "import", "acme/new", file, "--create")
	if v, _ := varValue(t, e, "acme/new", "A"); v != "1" {
		t.Errorf("--create: A = %q", v)
	}
}

func TestRunCommandGoesThroughTheShell(t *testing.T) {
	_, ev := server(t)
	must(t, ev, "", "set", "acme/web", "GREETING=hello", "--create")
	out := must(t, ev, "", "run", "--scope", "acme/web", "--command", `echo "$GREETING" && echo second; exit 0`)
	if out != "hello\nsecond\n" {
		t.Errorf("--command: %q", out)
	}
	code, _, _ := runEnvy(t, ev, "", "run", "--scope", "acme/web", "--command", "false && echo no")
	if code != 1 {
		t.Errorf("--command 'false && …': exit %d, want 1", code)
	}
}

func TestExportFormatsAndTemplate(t *testing.T) {
	_, ev := server(t)
	must(t, ev, "", "set", "acme/web", "PORT=8080", `QUOTED=say "hi" $HOME`, "--create")
	if out := must(t, ev, "", "export", "acme/web", "--format", "docker"); out != "PORT=8080\nQUOTED=say \"hi\" $HOME\n" {
		t.Errorf("docker: %q", out)
	}
	if out := must(t, ev, "", "export", "acme/web", "--format", "dotenv-export"); out != "export PORT=8080\nexport QUOTED='say \"hi\" $HOME'\n" {
		t.Errorf("dotenv-export: %q", out)
	}
	tmpl := filepath.Join(t.TempDir(), "conf.tmpl")
	os.WriteFile(tmpl, []byte("listen = {{ .Env.PORT }}\n{{ range .Vars }}{{ .Name }}={{ quote .Value }}\n{{ end }}"), 0o600)
	if out := must(t, ev, "", "export", "acme/web", "--template", tmpl); out != "listen = 8080\nPORT='8080'\nQUOTED='say \"hi\" $HOME'\n" {
		t.Errorf("template: %q", out)
	}
	os.WriteFile(tmpl, []byte("{{ .Env.NOPE }}"), 0o600)
	code, out, errOut := runEnvy(t, ev, "", "export", "acme/web", "--template", tmpl)
	if code != 1 || out != "" || !strings.Contains(errOut, `map has no entry for key "NOPE"`) {
		t.Errorf("a missing key: %d %q %q", code, out, errOut)
	}
	// docker's format can't hold a line break: the error names the var.
	must(t, ev, "", "set", "acme/web", "PEM=line1\nline2")
	code, out, errOut = runEnvy(t, ev, "", "export", "acme/web", "--format", "docker")
	if code != 1 || out != "" || !strings.HasPrefix(errOut, "envy: PEM: value holds a line break") {
		t.Errorf("docker with a newline: %d %q %q", code, out, errOut)
	}
	// Nor can dotenv-export, for a shell that sources it: the error names
	// the var and the format that can.
	code, out, errOut = runEnvy(t, ev, "", "export", "acme/web", "--format", "dotenv-export")
	if code != 1 || out != "" || !strings.HasPrefix(errOut, "envy: PEM: value holds a line break") || !strings.Contains(errOut, "--format shell") || strings.Contains(errOut, "line1") {
		t.Errorf("dotenv-export with a newline: %d %q %q", code, out, errOut)
	}
}

func TestVarsLsResolvedShowsWhereEachVarComesFrom(t *testing.T) {
	_, ev := server(t)
	must(t, ev, "", "set", "acme/base", "LOG=info", "REGION=eu", "--create")
	must(t, ev, "", "set", "acme/web", "LOG=debug", "PORT=80", "--create")
	must(t, ev, "", "scopes", "create", "acme/web", "--inherits", "acme/base")
	out := must(t, ev, "", "vars", "ls", "acme/web", "--resolved")
	rows := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		f := strings.Fields(l)
		rows[f[0]+"@"+f[3]] = f
	}
	check := func(key, shadow string) {
		t.Helper()
		f, ok := rows[key]
		if !ok {
			t.Errorf("no row %s:\n%s", key, out)
			return
		}
		if got := strings.Join(f[5:], " "); got != shadow {
			t.Errorf("%s: shadowed %q, want %q", key, got, shadow)
		}
	}
	check("LOG@acme/base", "shadowed by acme/web")
	check("LOG@acme/web", "-")
	check("REGION@acme/base", "-")
	check("PORT@acme/web", "-")
	if len(rows) != 4 {
		t.Errorf("%d rows:\n%s", len(rows), out)
	}
	var j struct {
		Items []resolvedVar `json:"items"`
	}
	if err := json.Unmarshal([]byte(must(t, ev, "", "vars", "ls", "acme/web", "--resolved", "-o", "json")), &j); err != nil || len(j.Items) != 4 {
		t.Fatalf("-o json: %v %+v", err, j)
	}
	if j.Items[0].Name != "LOG" || j.Items[0].From != "acme/base" || j.Items[0].ShadowedBy != "acme/web" {
		t.Errorf("json first item %+v", j.Items[0])
	}
}

func TestHistoryOfOneVar(t *testing.T) {
	_, ev := server(t)
	must(t, ev, "", "set", "acme/web", "A=1", "B=1", "--create")
	must(t, ev, "", "set", "acme/web", "A=2")
	must(t, ev, "", "unset", "acme/web", "A")
	out := must(t, ev, "", "history", "acme/web", "A")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("history of A:\n%s", out)
	}
	for i, want := range []string{"delete", "set", "set"} {
		if f := strings.Fields(lines[i+1]); f[1] != "A" || f[2] != want {
			t.Errorf("line %d: %q, want A %s", i+1, lines[i+1], want)
		}
	}
	if out := must(t, ev, "", "history", "acme/web", "A", "--limit", "1"); strings.Count(out, "\n") != 2 {
		t.Errorf("--limit 1:\n%s", out)
	}
}

func TestScopesRmAsksAndWarns(t *testing.T) {
	e, ev := server(t)
	must(t, ev, "", "set", "acme/web", "A=1", "--create")
	code, _, errOut := runEnvy(t, ev, "", "scopes", "rm", "acme/web")
	if code != 2 || !strings.Contains(errOut, "needs --yes when stdin is not a terminal") {
		t.Errorf("rm without --yes: %d %q", code, errOut)
	}
	if !scopeExists(t, e, "acme/web") {
		t.Fatal("deleted without --yes")
	}
	rev := scopeRevision(t, e, "acme/web")
	body := fmt.Sprintf(`{"revision":%d,"hostname":"box","pid":7}`, rev)
	if r := e.Do(t, "PUT", "/v1/scopes/acme/web/-/consumers/web-1", e.Admin, body); r.Status != 201 {
		t.Fatalf("report: %d %s", r.Status, r.Body)
	}
	code, out, errOut := runEnvy(t, ev, "", "scopes", "rm", "acme/web", "--yes")
	if code != 0 || out != "deleted scope acme/web and its 1 var\n" || !strings.Contains(errOut, "warning: 1 running workload watches acme/web") {
		t.Errorf("rm --yes: %d %q %q", code, out, errOut)
	}
	if scopeExists(t, e, "acme/web") {
		t.Error("not deleted")
	}
}

func TestTheTokenFromAFileAndNotPassedOn(t *testing.T) {
	e, _ := server(t)
	must(t, env{"ENVY_ADDR": e.URL, "ENVY_TOKEN": e.Admin}, "", "set", "acme/web", "A=1", "--create")
	file := filepath.Join(t.TempDir(), "token")
	os.WriteFile(file, []byte(e.Admin+"\n"), 0o600)
	for _, ev := range []env{
		{"ENVY_ADDR": e.URL, "ENVY_TOKEN_FILE": file},
		{"ENVY_ADDR": e.URL, "ENVY_TOKEN": "envy_wrong"},
	} {
		args := []string{"run", "--scope", "acme/web", "--", "sh", "-c", `echo "$A token=${ENVY_TOKEN:-none} file=${ENVY_TOKEN_FILE:-none}"`}
		if _, ok := ev["ENVY_TOKEN"]; ok {
			args = append([]string{"--token-file", file}, args...)
		}
		if out := must(t, ev, "", args...); out != "1 token=none file=none\n" {
			t.Errorf("%v: %q", ev, out)
		}
	}
	os.WriteFile(file, []byte("\n"), 0o600)
	code, _, errOut := runEnvy(t, env{"ENVY_ADDR": e.URL, "ENVY_TOKEN_FILE": file}, "", "whoami")
	if code != 1 || errOut != "envy: ENVY_TOKEN_FILE: "+file+" holds no token\n" {
		t.Errorf("an empty token file: %d %q", code, errOut)
	}
}

func TestPlainHTTPToAnotherHostIsWarnedAbout(t *testing.T) {
	for addr, warn := range map[string]bool{
		"http://0.0.0.0:1":   true,
		"http://127.0.0.1:1": false,
		"http://localhost:1": false,
		"http://[::1]:1":     false,
		"https://0.0.0.0:1":  false,
	} {
		_, _, errOut := runEnvy(t, env{"ENVY_TOKEN": "envy_x"}, "", "whoami", "--addr", addr)
		if got := strings.Contains(errOut, "envy: warning: sending the token over plain HTTP to "+addr); got != warn {
			t.Errorf("%s: warned %v, want %v: %q", addr, got, warn, errOut)
		}
	}
}

func TestFlagValueErrorsNameTheFlag(t *testing.T) {
	code, _, errOut := runEnvy(t, env{}, "", "server", "--rate-limit", "abc")
	if code != 2 || errOut != "envy: invalid --rate-limit \"abc\": want a number\n" {
		t.Errorf("--rate-limit abc: %d %q", code, errOut)
	}
	code, _, errOut = runEnvy(t, env{}, "", "tokens", "ls", "--limit", "ten")
	if code != 2 || errOut != "envy: invalid --limit \"ten\": want a whole number\n" {
		t.Errorf("--limit ten: %d %q", code, errOut)
	}
	err := envFlags(newServerCmd().Flags(), env{"ENVY_RATE_LIMIT": "abc"}.get)
	if err == nil || err.Error() != `invalid ENVY_RATE_LIMIT "abc": want a number` {
		t.Errorf("ENVY_RATE_LIMIT=abc: %v", err)
	}
}

// A token that may write a scope but not read it can't be told whether
// the scope exists: the write goes to the server, which decides.
func TestATokenThatMayNotReadStillWrites(t *testing.T) {
	e, ev := server(t)
	must(t, ev, "", "set", "acme/web", "A=1", "--create")
	wo := e.Token(t, "writer", envy.Grant{Scopes: "acme/web", Actions: []envy.Action{envy.ActWrite}})
	rv := e.Token(t, "revealer", envy.Grant{Scopes: "acme/web", Actions: []envy.Action{envy.ActReveal}})
	wev := env{"ENVY_ADDR": e.URL, "ENVY_TOKEN": wo}
	if out := must(t, wev, "", "set", "acme/web", "B=2"); !strings.HasPrefix(out, "set 1 var in acme/web: revision ") {
		t.Errorf("a write-only token: %q", out)
	}
	if out := must(t, wev, "", "unset", "acme/web", "B"); !strings.Contains(out, "this token may not read acme/web") {
		t.Errorf("unset with a write-only token: %q", out)
	}
	code, _, errOut := runEnvy(t, env{"ENVY_ADDR": e.URL, "ENVY_TOKEN": rv}, "", "set", "acme/web", "A=2")
	if code != 1 || errOut != "envy: forbidden: token may not write scope acme/web\n" {
		t.Errorf("a reveal-only token: %d %q", code, errOut)
	}
}

// login warns too before it sends a token in the clear to another host.
func TestLoginWarnsAboutPlainHTTP(t *testing.T) {
	_, _, errOut := runEnvy(t, env{}, "", "login", "--addr", "http://0.0.0.0:1", "--token", "envy_x")
	if !strings.HasPrefix(errOut, "envy: warning: sending the token over plain HTTP to http://0.0.0.0:1") {
		t.Errorf("stderr %q", errOut)
	}
}

// The shell completes scope paths and var names from the server.
func TestCompletionOfScopesAndNames(t *testing.T) {
	_, ev := server(t)
	must(t, ev, "", "set", "acme/web", "PORT=1", "PATH_PREFIX=/", "HOST=x", "--create")
	must(t, ev, "", "set", "acme/api", "A=1", "--create")
	must(t, ev, "", "set", "other", "A=1", "--create")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"vars", "ls", "acme/"}, "acme/api\nacme/web\n:6\n"},
		{[]string{"vars", "get", "acme/web", "P"}, "PATH_PREFIX\nPORT\n:4\n"},
		{[]string{"run", "--scope", "ot"}, "other\n:6\n"},
		{[]string{"history", "acme/web", ""}, "HOST\nPATH_PREFIX\nPORT\n:4\n"},
	} {
		out := must(t, ev, "", append([]string{"__complete"}, tc.args...)...)
		if out != tc.want {
			t.Errorf("complete %v: %q, want %q", tc.args, out, tc.want)
		}
	}
}

// Several scopes go to a directory, a file each, with a line as each is
// written.
func TestExportOfSeveralScopes(t *testing.T) {
	_, ev := server(t)
	must(t, ev, "", "set", "acme/web", "A=web", "--create")
	must(t, ev, "", "set", "acme/api", "A=api", "--create")
	dir := t.TempDir()
	code, out, errOut := runEnvy(t, ev, "", "export", "acme/web", "acme/api", "--dir", dir, "--format", "json")
	if code != 0 || out != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	want := "[1/2] wrote 1 var of acme/web (revision 1) to " + filepath.Join(dir, "acme", "web.json") + "\n" +
		"[2/2] wrote 1 var of acme/api (revision 2) to " + filepath.Join(dir, "acme", "api.json") + "\n"
	if errOut != want {
		t.Errorf("stderr %q\nwant   %q", errOut, want)
	}
	for scope, v := range map[string]string{"web": "web", "api": "api"} {
		data, err := os.ReadFile(filepath.Join(dir, "acme", scope+".json"))
		if err != nil || string(data) != "{\n  \"A\": \""+v+"\"\n}\n" {
			t.Errorf("%s: %q, %v", scope, data, err)
		}
	}
	code, _, errOut = runEnvy(t, ev, "", "export", "acme/web", "acme/api")
	if code != 2 || errOut != "envy: several scopes go to files of their own: give --dir DIR\n" {
		t.Errorf("two scopes to stdout: %d %q", code, errOut)
	}
	code, _, errOut = runEnvy(t, ev, "", "export", "acme/web", "acme/nope", "--dir", dir)
	if code != 1 || !strings.Contains(errOut, "\nenvy: acme/nope: not_found") || !strings.HasSuffix(errOut, "(1 of 2 scopes written)\n") {
		t.Errorf("a missing scope: %d %q", code, errOut)
	}
}
