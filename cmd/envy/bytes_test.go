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
	// A scope's description too.
	code, _, errOut = runEnvy(t, ev, "", "scopes", "create", "acme/other", "--description", "d\xffZQ")
	if code != 1 || !strings.Contains(errOut, "not valid UTF-8") {
		t.Errorf("scopes create --description: status %d, stderr %q", code, errOut)
	}
	if r := e.Do(t, "GET", "/v1/scopes/acme/other", e.Admin, ""); r.Status != 404 {
		t.Errorf("a scope with a description that is not UTF-8 was made: %d %s", r.Status, r.Body)
	}
}

// `envy export` writes expanded values: a literal "${" stored as "$${"
// comes out as "${", which `envy import` would store as a reference, and
// the importing scope's env would then refer to a var nobody meant
// (here AMOUNT, not set: every read of the env fails). --literal stores
// the file's values as written; without it, import names the vars it
// stores with references. `export --raw` round-trips the values as stored.
func TestExportThenImportKeepsLiteralDollarBraces(t *testing.T) {
	e, ev := server(t)
	must(t, ev, "", "set", "src", "PRICE=$${AMOUNT} USD", "HOST=db", "URL=${HOST}:5432", "MONEY=$5 $", "--create")
	exported := filepath.Join(t.TempDir(), "src.env")
	must(t, ev, "", "export", "src", "--output-file", exported)

	code, out, errOut := runEnvy(t, ev, "", "import", "dst", exported, "--literal", "--plain", "--create")
	if code != 0 || errOut != "" {
		t.Fatalf("import --literal: status %d, stdout %q, stderr %q", code, out, errOut)
	}
	want := map[string]string{"PRICE": "${AMOUNT} USD", "HOST": "db", "URL": "db:5432", "MONEY": "$5 $"}
	for name, v := range want {
		if got := must(t, ev, "", "vars", "get", "dst", name, "--reveal"); got != v {
			t.Errorf("dst %s after export | import --literal: %q, want %q", name, got, v)
		}
	}
	if out := must(t, ev, "", "run", "--scope", "dst", "--", "sh", "-c", `printf %s "$PRICE"`); out != "${AMOUNT} USD" {
		t.Errorf("envy run sees PRICE as %q", out)
	}

	// Without --literal the file's "${AMOUNT}" is a reference, and import
	// says which vars it stored so, never their values.
	code, _, errOut = runEnvy(t, ev, "", "import", "dst2", exported, "--plain", "--create")
	if code != 0 || !strings.Contains(errOut, "PRICE") || !strings.Contains(errOut, "--literal") || strings.Contains(errOut, "USD") {
		t.Errorf("import without --literal: status %d, stderr %q", code, errOut)
	}

	// --raw: the values as stored, references and "$${" kept.
	raw := filepath.Join(t.TempDir(), "raw.env")
	must(t, ev, "", "export", "src", "--raw", "--output-file", raw)
	must(t, ev, "", "import", "dst3", raw, "--plain", "--create")
	for name, v := range map[string]string{"PRICE": "$${AMOUNT} USD", "URL": "${HOST}:5432", "MONEY": "$5 $"} {
		if got, _ := varValue(t, e, "dst3", name); got != v {
			t.Errorf("dst3 %s after export --raw | import: %q, want %q", name, got, v)
		}
	}
}

// A VALUE argument that starts with "-" is read as flags: `-s3cret` as
// --scope 3cret (sent to the server as a scope path, which its audit log
// keeps, and named in the error), `-x` or `--s3cret` as an unknown flag
// that the error quoted. `envy vars set` refuses both without naming the
// argument or sending anything, and says that such a value goes after --.
func TestAValueThatLooksLikeAFlagIsNeitherEchoedNorSent(t *testing.T) {
	e, ev := server(t)
	must(t, ev, "", "set", "acme/web", "INIT=1", "--create")
	for _, v := range []string{"-s3cretZQ", "-hs3cretZQ", "-o3cretZQ", "-x3cretZQ", "--s3cretZQ", "-Ss3cretZQ",
		"-----BEGIN PRIVATE KEY-----\nMII3cretZQ\n-----END PRIVATE KEY-----", "--=3cretZQ", "--secret=3cretZQ"} {
		code, out, errOut := runEnvy(t, ev, "", "vars", "set", "acme/web", "PW", v)
		if code != 2 || out != "" || strings.Contains(errOut, "3cretZQ") || !strings.Contains(errOut, "-- VALUE") {
			t.Errorf("vars set SCOPE PW %s: status %d, stdout %q, stderr %q", v[:2]+"…", code, out, errOut)
		}
		if r := e.Do(t, "GET", "/v1/audit?limit=100", e.Admin, ""); strings.Contains(string(r.Body), "3cretZQ") {
			t.Fatalf("vars set SCOPE PW %s: the audit log holds the value: %s", v[:2]+"…", r.Body)
		}
		// After -- it is the value.
		must(t, ev, "", "vars", "set", "acme/web", "PW", "--", v)
		if got, _ := varValue(t, e, "acme/web", "PW"); got != v {
			t.Errorf("vars set SCOPE PW -- %s: stored %q", v[:2]+"…", got)
		}
	}
	// A flag's value taken from the next argument is skipped as pflag
	// skips it: here -- is the description's value, and -s3cretZQ would
	// be --scope 3cretZQ.
	code, out, errOut := runEnvy(t, ev, "", "vars", "set", "acme/web", "PW", "--description", "--", "-s3cretZQ")
	if code != 2 || out != "" || strings.Contains(errOut, "3cretZQ") {
		t.Errorf("vars set SCOPE PW --description -- -s…: status %d, stdout %q, stderr %q", code, out, errOut)
	}
	// Flags given apart, with =, or -o with a format, are flags as ever;
	// so is a description that starts with "-" after its flag.
	must(t, ev, "", "vars", "set", "PW", "x", "-s", "acme/web")
	must(t, ev, "", "vars", "set", "PW", "x", "-s=acme/web")
	must(t, ev, "", "vars", "set", "acme/web", "PW", "x", "--description", "-sized cache")
	if out := must(t, ev, "", "vars", "set", "acme/web", "PW", "y", "-ojson"); !strings.HasPrefix(out, "{") {
		t.Errorf("-ojson: %q", out)
	}
	code, _, errOut = runEnvy(t, ev, "", "vars", "set", "acme/web", "PW", "z", "--secert")
	if code != 2 || !strings.Contains(errOut, "-- VALUE") {
		t.Errorf("a mistyped flag: status %d, stderr %q", code, errOut)
	}
}
