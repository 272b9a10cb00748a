package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A value that is not valid UTF-8 can't travel in JSON as it is: Go's
// encoder would send U+FFFD in place of each bad byte, and the server
// would store a value nobody typed. Every write path refuses it instead,
// naming the var and not the value, and stores nothing.
func TestAValueThatIsNotUTF8IsRefusedNotAltered(t *testing.T) {
	e, ev := server(t)
	must(t, ev, "", "set", "acme/web", "KEEP=1", "--create")
	const bad = "s3cret\xff\xfeZQ"
	file := filepath.Join(t.TempDir(), "bad.env")
	os.WriteFile(file, []byte("BAD="+bad+"\n"), 0o600)
	valueFile := filepath.Join(t.TempDir(), "value.bin")
	os.WriteFile(valueFile, []byte(bad), 0o600)
	for _, tc := range []struct {
		stdin string
		args  []string
		want  string // what stderr names
	}{
		{"", []string{"set", "acme/web", "BAD=" + bad}, `envy: the value of NAME "BAD": value is not valid UTF-8`},
		{"", []string{"vars", "set", "acme/web", "BAD", bad}, `envy: the value of NAME "BAD": value is not valid UTF-8`},
		{bad, []string{"vars", "set", "acme/web", "BAD"}, `envy: the value of NAME "BAD": value is not valid UTF-8`},
		{"", []string{"vars", "set", "acme/web", "BAD", "--from-file", valueFile}, `envy: the value of NAME "BAD": value is not valid UTF-8`},
		// The dotenv reader refuses such a file itself, naming the line.
		{"", []string{"import", "acme/web", file}, "bad.env: line 1: not valid UTF-8"},
		{"", []string{"set", "acme/web", "--from-file", file}, "bad.env: line 1: not valid UTF-8"},
	} {
		code, out, errOut := runEnvy(t, ev, tc.stdin, tc.args...)
		if code != 1 || out != "" || !strings.Contains(errOut, tc.want) || strings.Contains(errOut, "s3cret") {
			t.Errorf("envy %s: status %d, stdout %q, stderr %q", strings.Join(tc.args[:2], " "), code, out, errOut)
		}
		if v, ok := varValue(t, e, "acme/web", "BAD"); ok {
			t.Fatalf("envy %s stored %q", strings.Join(tc.args[:2], " "), v)
		}
	}
	// A description is text too, and is refused the same way.
	code, _, errOut := runEnvy(t, ev, "", "vars", "edit", "acme/web", "KEEP", "--description", "x\xff")
	if code != 1 || !strings.Contains(errOut, "--description") || !strings.Contains(errOut, "not valid UTF-8") {
		t.Errorf("vars edit --description: status %d, stderr %q", code, errOut)
	}
	if r := e.Do(t, "GET", "/v1/scopes/acme/web/-/vars/KEEP", e.Admin, ""); strings.Contains(string(r.Body), `\ufffd`) || strings.Contains(string(r.Body), "\uFFFD") {
		t.Errorf("the description was stored altered: %s", r.Body)
	}
}
