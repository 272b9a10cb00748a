package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// --secret=false does the same in `set` and `vars set`: the var becomes
// plain, and the command says so.
func TestSecretFalseMakesPlainAndSaysSo(t *testing.T) {
	e, ev := server(t)
	must(t, ev, "", "set", "acme/web", "A=1", "B=2", "--secret", "--create")
	out := must(t, ev, "", "set", "acme/web", "A=1", "--secret=false")
	if !strings.Contains(out, "no longer secret (reads now show the value): A\n") || varSecret(t, e, "acme/web", "A") {
		t.Fatalf("set --secret=false: %q; A secret %v", out, varSecret(t, e, "acme/web", "A"))
	}
	out = must(t, ev, "", "vars", "set", "acme/web", "B", "2", "--secret=false")
	if !strings.Contains(out, "no longer secret (reads now show the value): B\n") || varSecret(t, e, "acme/web", "B") {
		t.Fatalf("vars set --secret=false: %q", out)
	}
	// On a var that was plain already, nothing is claimed.
	if out := must(t, ev, "", "set", "acme/web", "A=3", "--secret=false"); strings.Contains(out, "no longer secret") {
		t.Fatalf("claimed a plain var was secret: %q", out)
	}
}

// An empty --from-file is refused unless --allow-empty.
func TestAnEmptyFromFileIsRefused(t *testing.T) {
	e, ev := server(t)
	must(t, ev, "", "set", "acme/web", "KEEP=1", "--create")
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{os.DevNull, empty} {
		code, _, errOut := runEnvy(t, ev, "", "vars", "set", "acme/web", "TLS_KEY", "--from-file", path)
		if code != 2 || !strings.Contains(errOut, path+" is empty; nothing stored") || !strings.Contains(errOut, "--allow-empty") {
			t.Fatalf("--from-file %s: %d %q", path, code, errOut)
		}
		if _, ok := varValue(t, e, "acme/web", "TLS_KEY"); ok {
			t.Fatalf("--from-file %s stored a value", path)
		}
	}
	must(t, ev, "", "vars", "set", "acme/web", "TLS_KEY", "--from-file", empty, "--allow-empty")
	if v, ok := varValue(t, e, "acme/web", "TLS_KEY"); !ok || v != "" {
		t.Fatalf("--allow-empty: %q %v", v, ok)
	}
}

// A rollback to a revision that does not exist is refused.
func TestRollbackToARevisionThatDoesNotExistIsRefused(t *testing.T) {
	e, ev := server(t)
	must(t, ev, "", "set", "acme/web", "A=1", "--create")
	must(t, ev, "", "set", "acme/other", "B=1", "--create")
	rev := scopeRevision(t, e, "acme/other")
	code, _, errOut := runEnvy(t, ev, "", "rollback", "acme/web", "999")
	if code != 1 || !strings.Contains(errOut, "revision 999 does not exist") || !strings.Contains(errOut, "nothing rolled back") {
		t.Fatalf("rollback 999: %d %q", code, errOut)
	}
	// A revision that exists but did not touch the scope: nothing to do.
	if out := must(t, ev, "", "rollback", "acme/web", strconv.FormatInt(rev, 10)); !strings.Contains(out, "nothing to roll back") {
		t.Fatalf("rollback to a later revision of another scope: %q", out)
	}
}

// Unknown shells and typos are refused, with a suggestion where one is
// near.
func TestUnknownShellsAndTyposAreRefused(t *testing.T) {
	ev := env{}
	code, out, errOut := runEnvy(t, ev, "", "completion", "tcsh")
	if code != 2 || out != "" || !strings.Contains(errOut, `unknown shell "tcsh"`) {
		t.Fatalf("completion tcsh: %d %q %q", code, out, errOut)
	}
	if code, out, _ := runEnvy(t, ev, "", "completion", "bash"); code != 0 || !strings.Contains(out, "bash completion") {
		t.Fatalf("completion bash: %d", code)
	}
	for args, want := range map[string]string{"scoeps ls": "did you mean scopes?", "vars sett": "set", "tokns": "did you mean tokens?"} {
		code, _, errOut := runEnvy(t, ev, "", strings.Fields(args)...)
		if code != 2 || !strings.Contains(errOut, "did you mean") || !strings.Contains(errOut, want) {
			t.Errorf("envy %s: %d %q", args, code, errOut)
		}
	}
}

// Validation errors name what they refer to as the command line does.
func TestValidationErrorsSpeakCLI(t *testing.T) {
	_, ev := server(t)
	must(t, ev, "", "set", "acme/web", "A=1", "--create")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"set", "acme/web", "BAD-NAME=1", "X=2"}, `envy: NAME "BAD-NAME": name must match`},
		{[]string{"vars", "set", "acme/web", "9LIVES", "x"}, `envy: NAME "9LIVES": name must match`},
		{[]string{"vars", "set", "acme/web", "ENVY_X", "x"}, `envy: NAME "ENVY_X": name starts with the reserved prefix`},
		{[]string{"set", "acme/web", "Y=" + strings.Repeat("a", 70000)}, `envy: the value of NAME "Y": value is longer than`},
		{[]string{"scopes", "create", "acme/BAD PATH"}, `envy: SCOPE "acme/BAD PATH": segment 2`},
	} {
		code, _, errOut := runEnvy(t, ev, "", tc.args...)
		if code != 1 || !strings.HasPrefix(errOut, tc.want) || strings.Contains(errOut, "body.") || strings.Contains(errOut, "path.") {
			t.Errorf("envy %s: %d %q; want %q", tc.args[:2], code, errOut, tc.want)
		}
	}
}
