package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/client"
)

// env is a fake environment for run.
type env map[string]string

func (e env) get(k string) string { return e[k] }

// runEnvy runs the CLI with args, stdin and environment, and returns its
// exit status, stdout and stderr.
func runEnvy(t *testing.T, e env, stdin string, args ...string) (int, string, string) {
	t.Helper()
	if _, ok := e["ENVY_CONFIG"]; !ok {
		e["ENVY_CONFIG"] = filepath.Join(t.TempDir(), "config.json")
	}
	var out, errOut bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errOut, e.get)
	return code, out.String(), errOut.String()
}

// closedAddr returns an address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + l.Addr().String()
	l.Close()
	return addr
}

func TestErrorsAreOneLineWithTheRightExitStatus(t *testing.T) {
	down := closedAddr(t)
	tests := []struct {
		name     string
		env      env
		args     []string
		wantCode int
		wantErr  string // the whole of stderr
	}{
		{"an unknown command is a usage error", env{}, []string{"bogus"}, 2,
			"envy: unknown command \"bogus\" for \"envy\"\n"},
		{"an unknown flag is a usage error", env{}, []string{"scopes", "ls", "--bogus"}, 2,
			"envy: unknown flag: --bogus\n"},
		{"a missing argument is a usage error", env{}, []string{"vars", "get"}, 2,
			"envy: envy vars get takes [SCOPE] NAME... (got 0 arguments)\n"},
		{"a missing scope is a usage error", env{}, []string{"vars", "get", "acme"}, 2,
			"envy: envy vars get: no SCOPE given and no default scope (set ENVY_SCOPE, or run `envy setup SCOPE` in the project directory)\n"},
		{"a bad --output is a usage error", env{}, []string{"-o", "toml", "scopes", "ls"}, 2,
			"envy: --output must be table, json or yaml, not \"toml\"\n"},
		{"a bad ENVY_OUTPUT is a usage error", env{"ENVY_OUTPUT": "xml"}, []string{"scopes", "ls"}, 2,
			"envy: --output must be table, json or yaml, not \"xml\"\n"},
		{"a bad revision is a usage error", env{"ENVY_TOKEN": "t"}, []string{"rollback", "acme", "latest"}, 2,
			"envy: REVISION must be a positive number, not \"latest\"\n"},
		{"no token is an error that says what to do", env{}, []string{"scopes", "ls"}, 1,
			"envy: no token: run `envy login`, or set ENVY_TOKEN, ENVY_TOKEN_FILE or --token\n"},
		{"an unreachable server is named", env{"ENVY_TOKEN": "t"}, []string{"scopes", "ls", "--addr", down}, 1,
			"envy: cannot reach envy at " + down + ": dial tcp " + strings.TrimPrefix(down, "http://") + ": connect: connection refused\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runEnvy(t, tc.env, "", tc.args...)
			if code != tc.wantCode {
				t.Errorf("exit status %d, want %d", code, tc.wantCode)
			}
			if errOut != tc.wantErr {
				t.Errorf("stderr %q\nwant   %q", errOut, tc.wantErr)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing (no usage spam)", out)
			}
		})
	}
}

func TestHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{nil, {"--help"}, {"vars"}, {"tokens", "create", "--help"}} {
		code, out, errOut := runEnvy(t, env{}, "", args...)
		if code != 0 || !strings.Contains(out, "Usage:") || errOut != "" {
			t.Errorf("envy %v: status %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
}

// The address is taken from the flag, else ENVY_ADDR, else the config
// file, else the default; the connection error names the one chosen.
func TestAddressPrecedence(t *testing.T) {
	flagAddr, envAddr, fileAddr := closedAddr(t), closedAddr(t), closedAddr(t)
	cfg := filepath.Join(t.TempDir(), "config.json")
	if err := saveConfig(cfg, config{Addr: fileAddr, Token: "from-file"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  env
		args []string
		want string
	}{
		{"the flag wins", env{"ENVY_ADDR": envAddr}, []string{"--addr", flagAddr}, flagAddr},
		{"ENVY_ADDR beats the file", env{"ENVY_ADDR": envAddr}, nil, envAddr},
		{"the file beats the default", env{}, nil, fileAddr},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.env["ENVY_CONFIG"] = cfg
			_, _, errOut := runEnvy(t, tc.env, "", append([]string{"scopes", "ls"}, tc.args...)...)
			if !strings.HasPrefix(errOut, "envy: cannot reach envy at "+tc.want+":") {
				t.Errorf("stderr %q, want it to name %s", errOut, tc.want)
			}
		})
	}
}

func TestTokenPrecedence(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config.json")
	if err := saveConfig(cfg, config{Addr: "http://file:1", Token: "from-file"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		env       env
		flags     []string
		wantToken string
		wantAddr  string
	}{
		{"--token wins", env{"ENVY_TOKEN": "from-env"}, []string{"--token", "from-flag"}, "from-flag", "http://file:1"},
		{"ENVY_TOKEN beats the file", env{"ENVY_TOKEN": "from-env"}, nil, "from-env", "http://file:1"},
		{"the file is the fallback", env{}, nil, "from-file", "http://file:1"},
		{"no file: the default address, no token", env{"ENVY_CONFIG": filepath.Join(t.TempDir(), "none.json")}, nil, "", client.DefaultAddr},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := tc.env["ENVY_CONFIG"]; !ok {
				tc.env["ENVY_CONFIG"] = cfg
			}
			a := &app{stdin: strings.NewReader(""), stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, getenv: tc.env.get}
			root := a.newRootCmd()
			if err := root.PersistentFlags().Parse(tc.flags); err != nil {
				t.Fatal(err)
			}
			addr, token, err := a.settings()
			if err != nil {
				t.Fatal(err)
			}
			if token != tc.wantToken || addr != tc.wantAddr {
				t.Errorf("settings() = %q, %q; want %q, %q", addr, token, tc.wantAddr, tc.wantToken)
			}
		})
	}
}

func TestConfigFileIsPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "envy")
	path := filepath.Join(dir, "config.json")
	// An old file that someone made readable by all is replaced by a
	// private one.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(`{"token":"old"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	want := config{Addr: "http://127.0.0.1:8750", Token: "envy_secret"}
	if err := saveConfig(path, want); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("config mode %o, want 600", st.Mode().Perm())
	}
	got, err := loadConfig(path)
	if err != nil || got != want {
		t.Errorf("loadConfig = %+v, %v; want %+v", got, err, want)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("the config directory holds %d files, want only config.json (no temp file left)", len(entries))
	}

	fresh := filepath.Join(t.TempDir(), "new", "envy", "config.json")
	if err := saveConfig(fresh, want); err != nil {
		t.Fatal(err)
	}
	dst, _ := os.Stat(filepath.Dir(fresh))
	if dst.Mode().Perm() != 0o700 {
		t.Errorf("new config directory mode %o, want 700", dst.Mode().Perm())
	}
}

func TestABrokenConfigFileIsNotQuoted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(`{"token": "envy_s3cr3t`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := loadConfig(path)
	if err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("loadConfig error %v: want an error that does not quote the file", err)
	}
}

func TestLoginNeedsAToken(t *testing.T) {
	code, _, errOut := runEnvy(t, env{}, "", "login", "--addr", closedAddr(t))
	if code != 2 || !strings.Contains(errOut, "no token given") {
		t.Errorf("status %d, stderr %q", code, errOut)
	}
}

func TestParseAssignments(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []assignment
		err  string
	}{
		{"name=value pairs", []string{"A=1", "B=two words"}, []assignment{{"A", "1", false}, {"B", "two words", false}}, ""},
		{"the value holds everything after the first =", []string{"URL=a=b=c"}, []assignment{{"URL", "a=b=c", false}}, ""},
		{"an empty value", []string{"A="}, []assignment{{"A", "", false}}, ""},
		{"a bare name reads stdin", []string{"A=1", "KEY"}, []assignment{{"A", "1", false}, {"KEY", "", true}}, ""},
		{"NAME=- reads stdin", []string{"KEY=-"}, []assignment{{"KEY", "", true}}, ""},
		{"stdin can be read once", []string{"A", "B=-"}, nil, "only one value can come from stdin (A and B both ask for it)"},
		{"no name", []string{"=s3cr3t"}, nil, "argument 1 is not NAME=VALUE"},
		{"a name with a space is not shown", []string{"A=1", "my s3cr3t=1"}, nil, "argument 2 is not NAME=VALUE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseAssignments(tc.args)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err || !isUsage(err) {
					t.Fatalf("error %v, want usage error %q", err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestSetRefusesTwoStdinValues(t *testing.T) {
	code, _, errOut := runEnvy(t, env{"ENVY_TOKEN": "t"}, "x\n", "set", "acme", "A", "B=-")
	if code != 2 || !strings.Contains(errOut, "only one value can come from stdin") {
		t.Errorf("status %d, stderr %q", code, errOut)
	}
}

func TestReadStdinValue(t *testing.T) {
	for in, want := range map[string]string{
		"s3cr3t\n":        "s3cr3t",
		"s3cr3t\r\n":      "s3cr3t",
		"s3cr3t":          "s3cr3t",
		"two\nlines\n\n":  "two\nlines\n",
		"  spaces  \n":    "  spaces  ",
		"-----BEGIN-----": "-----BEGIN-----",
	} {
		a := &app{stdin: strings.NewReader(in)}
		got, err := a.readStdinValue(context.Background(), "A")
		if err != nil || got != want {
			t.Errorf("readStdinValue(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	// --from-file - keeps stdin exactly.
	a := &app{stdin: strings.NewReader("pem\n")}
	if got, err := a.readFileValue(context.Background(), "A", "-"); err != nil || got != "pem\n" {
		t.Errorf("readFileValue(-) = %q, %v; want %q", got, err, "pem\n")
	}
	// Nothing at all is not a value.
	for _, read := range []func(*app) (string, error){
		func(a *app) (string, error) { return a.readStdinValue(context.Background(), "API_KEY") },
		func(a *app) (string, error) { return a.readFileValue(context.Background(), "API_KEY", "-") },
	} {
		if _, err := read(&app{stdin: strings.NewReader("")}); err == nil || !strings.Contains(err.Error(), "no value for API_KEY") {
			t.Errorf("an empty stdin: error %v, want one naming API_KEY", err)
		}
	}
	for _, in := range []string{"\n", "\r\n"} {
		if _, err := (&app{stdin: strings.NewReader(in)}).readStdinValue(context.Background(), "API_KEY"); err == nil || !strings.Contains(err.Error(), "no value for API_KEY") {
			t.Errorf("stdin %q: error %v, want one naming API_KEY", in, err)
		}
	}
}

func TestParseGrant(t *testing.T) {
	tests := []struct {
		in   string
		want client.Permission
		err  bool
	}{
		{"acme/**=read,write", client.Permission{Scopes: "acme/**", Actions: []string{"read", "write"}}, false},
		{"acme/web/prod=read, Reveal", client.Permission{Scopes: "acme/web/prod", Actions: []string{"read", "reveal"}}, false},
		{"**=admin", client.Permission{Scopes: "**", Actions: []string{"admin"}}, false},
		{"acme/**", client.Permission{}, true},
		{"=read", client.Permission{}, true},
		{"acme=", client.Permission{}, true},
		{"acme=read,fly", client.Permission{}, true},
		{"acme=read,write,READ", client.Permission{}, true},
	}
	for _, tc := range tests {
		got, err := parseGrant(tc.in)
		if tc.err {
			if err == nil || !isUsage(err) {
				t.Errorf("parseGrant(%q): error %v, want a usage error", tc.in, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseGrant(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2030, 5, 6, 12, 0, 0, 0, time.UTC)
	tests := map[string]time.Time{
		"24h":                  now.Add(-24 * time.Hour),
		"90m":                  now.Add(-90 * time.Minute),
		"2030-01-02T03:04:05Z": time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
		"2030-01-02":           time.Date(2030, 1, 2, 0, 0, 0, 0, time.Local),
	}
	for in, want := range tests {
		if got, err := parseSince(in, now); err != nil || !got.Equal(want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := parseSince("yesterday", now); err == nil || !isUsage(err) {
		t.Errorf("parseSince(yesterday): error %v, want a usage error", err)
	}
}

func TestVarsTableShowsSecretsMaskedAndKeepsColumns(t *testing.T) {
	masked := "sk-p••••89"
	plain := "line1\nline2\tend"
	secretRevealed := "sk-proj-abcdefghijklmnop789"
	long := strings.Repeat("x", 100)
	vars := []client.Var{
		{Name: "API_KEY", MaskedValue: &masked, Secret: true, Version: 3, UpdatedBy: "admin", Description: "openai"},
		{Name: "MULTI", Value: &plain, Version: 1},
		{Name: "LONG", Value: &long, Version: 12},
	}
	var out bytes.Buffer
	a := &app{stdout: &out}
	if err := a.varsTable(vars); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("got %d lines, want a header and 3 rows:\n%s", len(lines), out.String())
	}
	// Columns line up: in every row, the SECRET column starts at the same
	// character as in the header (tabwriter counts characters, not bytes).
	col := strings.Index(lines[0], "SECRET") // the header is ASCII
	for _, l := range lines[1:] {
		r := []rune(l)
		if len(r) < col {
			t.Fatalf("row %q is too short", l)
		}
		if at := string(r[col:]); !strings.HasPrefix(at, "yes ") && !strings.HasPrefix(at, "no ") {
			t.Errorf("row %q: the SECRET column is not at character %d", l, col)
		}
	}
	if !strings.Contains(lines[1], masked) || strings.Contains(out.String(), secretRevealed) {
		t.Errorf("secret row %q: want its masked value", lines[1])
	}
	if !strings.Contains(lines[2], `line1\nline2\tend`) {
		t.Errorf("row %q: want the newline and tab escaped", lines[2])
	}
	if !strings.Contains(lines[3], strings.Repeat("x", 59)+"…") || strings.Contains(lines[3], strings.Repeat("x", 61)) {
		t.Errorf("row %q: want a long value cut at 60 characters", lines[3])
	}
}

func TestCell(t *testing.T) {
	tests := map[string]string{
		"plain":                 "plain",
		"a\nb":                  `a\nb`,
		"a\r\n\tb":              `a\r\n\tb`,
		"\x1b[31mred":           `\x1b[31mred`,
		"héllo ☃":               "héllo ☃",
		strings.Repeat("é", 70): strings.Repeat("é", 60) + "…",
	}
	for in, want := range tests {
		if got := cell(in, 60); got != want {
			t.Errorf("cell(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPrintValueIsExactOffATerminal(t *testing.T) {
	var out bytes.Buffer
	a := &app{stdout: &out}
	if err := a.printValue("no newline"); err != nil {
		t.Fatal(err)
	}
	if out.String() != "no newline" {
		t.Errorf("printValue wrote %q", out.String())
	}
}

func TestPrintJSONPassesTheServersReplyThrough(t *testing.T) {
	var out bytes.Buffer
	a := &app{stdout: &out}
	if err := a.printJSON([]byte(`{"items":[],"next_cursor":null,"new_field":1}`), nil); err != nil {
		t.Fatal(err)
	}
	want := "{\n  \"items\": [],\n  \"next_cursor\": null,\n  \"new_field\": 1\n}\n"
	if out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
	out.Reset()
	if err := a.printJSON(nil, map[string]any{"scope": "acme", "revision": 7}); err != nil {
		t.Fatal(err)
	}
	if out.String() != "{\n  \"revision\": 7,\n  \"scope\": \"acme\"\n}\n" {
		t.Errorf("fallback: got %q", out.String())
	}
}

func TestExportFileIsPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "prod.env")
	if err := writePrivateFile(path, []byte("A=1\n")); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %o, want 600", st.Mode().Perm())
	}
}

func TestImportReadsTheFormatFromTheExtension(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"a.env":  "A=1\nexport B='two'\n",
		"a.json": `{"A": "1", "B": "two"}`,
		"a.yaml": "A: 1\nB: two\n",
		"a.sh":   "export A='1'\nexport B='two'\n",
	}
	want := "[{A 1} {B two}]"
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		a := &app{}
		kvs, err := a.readVarsFile(path, "")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := fmt.Sprint(kvs); got != want {
			t.Errorf("%s: got %s, want %s", name, got, want)
		}
	}
	// A parse error names the file and the line, not the value.
	bad := filepath.Join(dir, "bad.env")
	if err := os.WriteFile(bad, []byte("A=1\nB=\"s3cr3t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := (&app{}).readVarsFile(bad, "")
	if err == nil || err.Error() != bad+": line 2: B: unterminated double-quoted value" {
		t.Errorf("error %v", err)
	}
	if _, err := (&app{}).readVarsFile(bad, "toml"); err == nil || !isUsage(err) {
		t.Errorf("--format toml: error %v, want a usage error", err)
	}
}

// TestTokensCreateTakesAtMostMaxGrants: `envy tokens create` refuses more
// than envy.MaxGrants --grant flags before it asks the server.
func TestTokensCreateTakesAtMostMaxGrants(t *testing.T) {
	args := []string{"tokens", "create", "many"}
	for i := range envy.MaxGrants + 1 {
		args = append(args, "--grant", fmt.Sprintf("acme/s%d/**=read", i))
	}
	code, out, errOut := runEnvy(t, env{"ENVY_ADDR": closedAddr(t), "ENVY_TOKEN": "envy_" + strings.Repeat("a", 43)}, "", args...)
	if code != 2 || out != "" || !strings.Contains(errOut, fmt.Sprintf("at most %d --grant", envy.MaxGrants)) {
		t.Fatalf("%d --grant flags: exit %d, stdout %q, stderr %q", envy.MaxGrants+1, code, out, errOut)
	}
}
