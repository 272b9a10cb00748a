package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --scope/-s stands for the SCOPE argument of every command that takes
// one, whatever else the command takes after it.
func TestScopeFlagStandsForTheScopeArgument(t *testing.T) {
	e, ev := server(t)
	must(t, ev, "", "set", "acme/web", "PORT=1", "--create")
	for _, tc := range []struct {
		args []string
		want string // in stdout
	}{
		{[]string{"set", "-s", "acme/web", "PORT=2"}, "set 1 var in acme/web"},
		{[]string{"vars", "get", "-s", "acme/web", "PORT"}, "2"},
		{[]string{"vars", "ls", "--scope", "acme/web"}, "PORT"},
		{[]string{"vars", "set", "-s", "acme/web", "HOST", "h"}, "created HOST in acme/web"},
		{[]string{"vars", "edit", "-s", "acme/web", "HOST", "--description", "the host"}, "updated HOST in acme/web"},
		{[]string{"history", "-s", "acme/web", "PORT"}, "PORT  set"},
		{[]string{"export", "-s", "acme/web"}, "PORT=2"},
		{[]string{"status", "-s", "acme/web"}, "acme/web at revision"},
		{[]string{"scopes", "get", "-s", "acme/web"}, "path:"},
		{[]string{"scopes", "create", "-s", "acme/api"}, "created scope acme/api"},
		{[]string{"rollback", "-s", "acme/web", "1", "--dry-run"}, "dry run"},
		{[]string{"unset", "-s", "acme/web", "HOST"}, "deleted HOST from acme/web"},
		{[]string{"run", "-s", "acme/web", "--", "sh", "-c", "echo port=$PORT"}, "port=2"},
		{[]string{"audit", "-s", "acme/api", "--limit", "1"}, "acme/api"},
	} {
		// ENVY_SCOPE names another scope: the flag must win over it.
		ev["ENVY_SCOPE"] = "acme/other"
		code, out, errOut := runEnvy(t, ev, "", tc.args...)
		if code != 0 || !strings.Contains(out, tc.want) {
			t.Errorf("envy %s: %d %q %q; want %q", strings.Join(tc.args, " "), code, out, errOut, tc.want)
		}
	}
	delete(ev, "ENVY_SCOPE")
	if !scopeExists(t, e, "acme/api") {
		t.Fatal("scopes create -s acme/api made no scope")
	}
	// The scope given twice is a usage error that says why.
	code, _, errOut := runEnvy(t, ev, "", "rollback", "-s", "acme/web", "acme/web", "1")
	if code != 2 || !strings.Contains(errOut, "--scope acme/web is the SCOPE argument, so leave SCOPE out") {
		t.Fatalf("the scope twice: %d %q", code, errOut)
	}
	code, _, errOut = runEnvy(t, ev, "", "vars", "get", "-s", "acme/web", "acme/web", "PORT")
	if code != 2 || !strings.Contains(errOut, `NAME "acme/web" holds a /`) {
		t.Fatalf("the scope twice in vars get: %d %q", code, errOut)
	}
}

// envy history takes the default scope like the other commands, and
// envy whoami says which it is and where it comes from.
func TestHistoryAndWhoamiUseTheDefaultScope(t *testing.T) {
	_, ev := server(t)
	must(t, ev, "", "set", "acme/web", "PORT=1", "--create")
	dir := t.TempDir()
	t.Chdir(dir)
	out := must(t, ev, "", "whoami")
	if !strings.Contains(out, "default scope:  none (no ENVY_SCOPE, no .envy.json") {
		t.Fatalf("whoami without a default scope:\n%s", out)
	}
	must(t, ev, "", "setup", "acme/web")
	sub := filepath.Join(dir, "src")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(sub)
	if out := must(t, ev, "", "history"); !strings.Contains(out, "PORT  set") {
		t.Fatalf("history in the project:\n%s", out)
	}
	project := filepath.Join(dir, ".envy.json")
	if out := must(t, ev, "", "whoami"); !strings.Contains(out, "default scope:  acme/web (from "+project+")") {
		t.Fatalf("whoami in the project:\n%s", out)
	}
	ev["ENVY_SCOPE"] = "acme/api"
	if out := must(t, ev, "", "whoami"); !strings.Contains(out, "default scope:  acme/api (from ENVY_SCOPE)") {
		t.Fatalf("whoami with ENVY_SCOPE:\n%s", out)
	}
	var doc struct {
		Name         string            `json:"name"`
		DefaultScope map[string]string `json:"default_scope"`
	}
	if err := json.Unmarshal([]byte(must(t, ev, "", "whoami", "-o", "json")), &doc); err != nil || doc.Name == "" ||
		doc.DefaultScope["scope"] != "acme/api" || doc.DefaultScope["from"] != "ENVY_SCOPE" {
		t.Fatalf("whoami -o json: %+v %v", doc, err)
	}
}
