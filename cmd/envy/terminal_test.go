//go:build linux

package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// On a terminal, a write to a missing scope asks before it creates it.
func TestOnATerminalAMissingScopeIsAskedAbout(t *testing.T) {
	e, ev := server(t)
	for _, answer := range []string{"n\n", "y\n"} {
		p := newPTY(t)
		p.typeIn(t, answer)
		var out, errOut bytes.Buffer
		code := runIO(t, ev, p.tty, &out, &errOut, "set", "acme/new", "A=1")
		if !strings.Contains(errOut.String(), "Scope acme/new does not exist. Create it? [y/N] ") {
			t.Errorf("answer %q: stderr %q", answer, errOut.String())
		}
		if answer == "n\n" {
			if code != 1 || !strings.Contains(errOut.String(), "nothing written") || scopeExists(t, e, "acme/new") {
				t.Errorf("answer n: exit %d, stderr %q", code, errOut.String())
			}
			continue
		}
		if code != 0 || !strings.HasPrefix(out.String(), "set 1 var in acme/new") {
			t.Errorf("answer y: exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
		}
	}
	if v, _ := varValue(t, e, "acme/new", "A"); v != "1" {
		t.Errorf("A = %q", v)
	}
}

func TestOnATerminalScopesRmAsks(t *testing.T) {
	e, ev := server(t)
	must(t, ev, "", "set", "acme/web", "A=1", "B=2", "--create")
	for _, answer := range []string{"\n", "yes\n"} {
		p := newPTY(t)
		p.typeIn(t, answer)
		var out, errOut bytes.Buffer
		code := runIO(t, ev, p.tty, &out, &errOut, "scopes", "rm", "acme/web")
		if code != 0 || !strings.Contains(errOut.String(), "Delete scope acme/web and its 2 vars? [y/N] ") {
			t.Errorf("answer %q: exit %d, stderr %q", answer, code, errOut.String())
		}
		want, exists := "nothing deleted\n", true
		if answer == "yes\n" {
			want, exists = "deleted scope acme/web and its 2 vars\n", false
		}
		if out.String() != want || scopeExists(t, e, "acme/web") != exists {
			t.Errorf("answer %q: stdout %q, exists %v", answer, out.String(), scopeExists(t, e, "acme/web"))
		}
	}
}

// An empty line typed at the value prompt is not a value.
func TestOnATerminalAnEmptyValueIsRefused(t *testing.T) {
	e, ev := server(t)
	must(t, ev, "", "set", "acme/web", "KEEP=kept", "--create")
	p := newPTY(t)
	p.typeIn(t, "\n")
	var out, errOut bytes.Buffer
	code := runIO(t, ev, p.tty, &out, &errOut, "vars", "set", "acme/web", "KEEP", "--secret=false")
	if code != 2 || !strings.Contains(errOut.String(), "no value typed for KEEP") {
		t.Errorf("exit %d, stderr %q", code, errOut.String())
	}
	if v, _ := varValue(t, e, "acme/web", "KEEP"); v != "kept" {
		t.Errorf("KEEP = %q", v)
	}
	// A value typed is read without echo and stored.
	p = newPTY(t)
	p.typeIn(t, "typed-s3cr3t\n")
	out.Reset()
	errOut.Reset()
	if code := runIO(t, ev, p.tty, &out, &errOut, "vars", "set", "acme/web", "KEEP"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if v, _ := varValue(t, e, "acme/web", "KEEP"); v != "typed-s3cr3t" {
		t.Errorf("KEEP = %q", v)
	}
}

// A value typed at the prompt is kept as typed, spaces at either end
// included, as an argument is; only the line's end is dropped.
func TestOnATerminalATypedValueKeepsItsSpaces(t *testing.T) {
	e, ev := server(t)
	must(t, ev, "", "set", "acme/web", "KEEP=1", "--create")
	for _, typed := range []string{"  pass phrase  \n", "\ttab, then a space \n"} {
		want := strings.TrimSuffix(typed, "\n")
		p := newPTY(t)
		p.typeIn(t, typed)
		var out, errOut bytes.Buffer
		if code := runIO(t, ev, p.tty, &out, &errOut, "vars", "set", "acme/web", "PW", "--secret"); code != 0 {
			t.Fatalf("exit %d: %s", code, errOut.String())
		}
		if v, _ := varValue(t, e, "acme/web", "PW"); v != want {
			t.Errorf("typed %q, stored %q", typed, v)
		}
	}
	// set's bare NAME prompts the same way.
	p := newPTY(t)
	p.typeIn(t, " lead and trail \n")
	var out, errOut bytes.Buffer
	if code := runIO(t, ev, p.tty, &out, &errOut, "set", "acme/web", "PW"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if v, _ := varValue(t, e, "acme/web", "PW"); v != " lead and trail " {
		t.Errorf("set: stored %q", v)
	}
}

// A large import shows progress on a terminal's stderr, and nothing off one.
func TestALargeImportShowsProgressOnATerminal(t *testing.T) {
	_, ev := server(t)
	var b strings.Builder
	for i := 0; i < 250; i++ {
		fmt.Fprintf(&b, "VAR_%d=%d\n", i, i)
	}
	file := filepath.Join(t.TempDir(), "big.env")
	os.WriteFile(file, []byte(b.String()), 0o600)
	p := newPTY(t)
	var out bytes.Buffer
	if code := runIO(t, ev, strings.NewReader(""), &out, p.tty, "import", "acme/big", file, "--create"); code != 0 {
		t.Fatalf("exit %d: %s", code, p.shown())
	}
	p.waitFor(t, "sending 250 vars to acme/big… done (")
	code, _, errOut := runEnvy(t, ev, "", "import", "acme/big", file)
	if code != 0 || errOut != "" {
		t.Errorf("off a terminal: exit %d, stderr %q", code, errOut)
	}
}
