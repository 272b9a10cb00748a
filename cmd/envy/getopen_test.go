package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// vars get takes several names: a table, or with --plain the values
// alone, one a line, in the order given; nothing is printed when one is
// missing or a value can't be one line.
func TestVarsGetSeveralNames(t *testing.T) {
	_, ev := server(t)
	must(t, ev, "", "set", "acme/web", "HOST=db", "PORT=5432", "MULTI=a\nb", "--create")
	must(t, ev, "", "set", "acme/web", "PASSWORD=hunter2-long", "--secret")
	if out := must(t, ev, "", "vars", "get", "acme/web", "PORT", "HOST", "--plain"); out != "5432\ndb\n" {
		t.Fatalf("--plain: %q", out)
	}
	if out := must(t, ev, "", "vars", "get", "acme/web", "HOST", "PASSWORD", "--plain", "--reveal"); out != "db\nhunter2-long\n" {
		t.Fatalf("--plain --reveal: %q", out)
	}
	code, out, errOut := runEnvy(t, ev, "", "vars", "get", "acme/web", "HOST", "PASSWORD", "--plain")
	if code != 0 || strings.Contains(out, "hunter2") || !strings.HasPrefix(out, "db\n") || !strings.Contains(errOut, "PASSWORD is secret") {
		t.Fatalf("a secret without --reveal: %d %q %q", code, out, errOut)
	}
	out = must(t, ev, "", "vars", "get", "acme/web", "HOST", "PORT")
	if !strings.Contains(out, "NAME  VALUE\nHOST  db\nPORT  5432\n") {
		t.Fatalf("the table:\n%s", out)
	}
	for _, args := range [][]string{{"HOST", "NOPE"}, {"HOST", "MULTI"}} {
		code, out, errOut := runEnvy(t, ev, "", append([]string{"vars", "get", "acme/web", "--plain"}, args...)...)
		if code != 1 || out != "" || errOut == "" {
			t.Errorf("vars get %v --plain: %d %q %q; want an error and nothing printed", args, code, out, errOut)
		}
	}
	var doc struct {
		Items []struct{ Name, Value string }
	}
	if err := json.Unmarshal([]byte(must(t, ev, "", "vars", "get", "acme/web", "HOST", "PORT", "-o", "json")), &doc); err != nil ||
		len(doc.Items) != 2 || doc.Items[1].Name != "PORT" || doc.Items[1].Value != "5432" {
		t.Fatalf("-o json: %+v %v", doc, err)
	}
	// With the default scope, -s gives it.
	if out := must(t, env{"ENVY_ADDR": ev["ENVY_ADDR"], "ENVY_TOKEN": ev["ENVY_TOKEN"], "ENVY_SCOPE": "acme/other"},
		"", "vars", "get", "-s", "acme/web", "HOST", "PORT", "--plain"); out != "db\n5432\n" {
		t.Fatalf("-s with several names: %q", out)
	}
}

// vars ls --only-names prints the names alone.
func TestVarsLsOnlyNames(t *testing.T) {
	_, ev := server(t)
	must(t, ev, "", "set", "acme/web", "B=2", "A=1", "--create")
	if out := must(t, ev, "", "vars", "ls", "acme/web", "--only-names"); out != "A\nB\n" {
		t.Fatalf("--only-names: %q", out)
	}
	if out := must(t, ev, "", "vars", "ls", "acme/web", "--only-names", "-o", "json"); strings.Join(strings.Fields(out), "") != `["A","B"]` {
		t.Fatalf("--only-names -o json: %q", out)
	}
}

// export --output-file writes mode 0600, also over a file that existed
// with a wider mode.
func TestExportOutputFileIsPrivate(t *testing.T) {
	_, ev := server(t)
	must(t, ev, "", "set", "acme/web", "KEY=s3cret", "--create", "--secret")
	path := filepath.Join(t.TempDir(), "prod.env")
	if err := os.WriteFile(path, []byte("OLD=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	for _, flag := range []string{"--output-file", "--file"} {
		must(t, ev, "", "export", "acme/web", flag, path)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(path)
		if fi.Mode().Perm() != 0o600 || !strings.Contains(string(data), "KEY=s3cret") || strings.Contains(string(data), "OLD") {
			t.Fatalf("export %s: mode %04o, %q", flag, fi.Mode().Perm(), data)
		}
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A failure leaves no file behind.
	code, _, errOut := runEnvy(t, ev, "", "export", "acme/web", "--output-file", filepath.Dir(path))
	if code != 1 || !strings.Contains(errOut, "nothing written") {
		t.Fatalf("export to a directory: %d %q", code, errOut)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Fatalf("files left behind: %v", entries)
	}
}

// envy open prints the dashboard page of a scope that exists.
func TestOpenPrintsTheScopesDashboardPage(t *testing.T) {
	e, ev := server(t)
	must(t, ev, "", "set", "acme/web", "A=1", "--create")
	if out := must(t, ev, "", "open", "acme/web"); out != e.URL+"/ui/scopes/acme/web\n" {
		t.Fatalf("envy open: %q", out)
	}
	ev["ENVY_SCOPE"] = "acme/web"
	if out := must(t, ev, "", "open"); out != e.URL+"/ui/scopes/acme/web\n" {
		t.Fatalf("envy open with the default scope: %q", out)
	}
	code, out, errOut := runEnvy(t, ev, "", "open", "acme/nope")
	if code != 1 || out != "" || !strings.Contains(errOut, "acme/nope") {
		t.Fatalf("envy open of a missing scope: %d %q %q", code, out, errOut)
	}
}
