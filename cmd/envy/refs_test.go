package main

import (
	"strings"
	"testing"
)

// vars get expands references unless --raw, export too, and vars ls
// --resolved shows each var's references.
func TestReferencesInTheCLI(t *testing.T) {
	_, ev := server(t)
	must(t, ev, "", "set", "acme/shared", "HOST=db.internal", "--create")
	must(t, ev, "", "set", "acme/web", "URL=postgres://${acme/shared:HOST}:${PORT}/app", "PORT=5432", "LIT=$${HOME}", "--create")
	if out := must(t, ev, "", "vars", "get", "acme/web", "URL"); out != "postgres://db.internal:5432/app" {
		t.Errorf("vars get: %q", out)
	}
	if out := must(t, ev, "", "vars", "get", "acme/web", "URL", "--raw"); out != "postgres://${acme/shared:HOST}:${PORT}/app" {
		t.Errorf("vars get --raw: %q", out)
	}
	if out := must(t, ev, "", "vars", "get", "acme/web", "LIT"); out != "${HOME}" {
		t.Errorf("vars get of an escaped value: %q", out)
	}
	if out := must(t, ev, "", "export", "acme/web"); !strings.Contains(out, "URL=postgres://db.internal:5432/app") {
		t.Errorf("export:\n%s", out)
	}
	if out := must(t, ev, "", "export", "acme/web", "--raw"); !strings.Contains(out, "acme/shared:HOST") {
		t.Errorf("export --raw:\n%s", out)
	}
	out := must(t, ev, "", "vars", "ls", "acme/web", "--resolved")
	if !strings.Contains(out, "REFERENCES") || !strings.Contains(out, "acme/shared:HOST, PORT") {
		t.Errorf("vars ls --resolved:\n%s", out)
	}
	must(t, ev, "", "set", "acme/web", "BROKEN=${acme/nowhere:X}")
	out = must(t, ev, "", "vars", "ls", "acme/web", "--resolved")
	if !strings.Contains(out, "error: BROKEN refers to acme/nowhere:X") {
		t.Errorf("vars ls --resolved with a broken reference:\n%s", out)
	}
	code, _, errOut := runEnvy(t, ev, "", "vars", "get", "acme/web", "BROKEN")
	if code == 0 || !strings.Contains(errOut, "BROKEN refers to acme/nowhere:X") {
		t.Errorf("vars get of a broken reference: %d %q", code, errOut)
	}
	code, _, errOut = runEnvy(t, ev, "", "set", "acme/web", "BAD=${")
	if code == 0 || !strings.Contains(errOut, "offset 0") {
		t.Errorf("set of a bad reference: %d %q", code, errOut)
	}
}
