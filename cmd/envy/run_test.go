package main

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/envy-dev/envy/internal/testenv"
)

func TestRunFlagMistakesAreUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no scope", []string{"run", "--", "true"}, "envy: envy run needs --scope SCOPE (or a default scope: ENVY_SCOPE, or `envy setup`)\n"},
		{"no command", []string{"run", "--scope", "s"}, "envy: envy run needs a command: -- COMMAND [ARG...], or --command 'SHELL LINE'\n"},
		{"a command twice", []string{"run", "--scope", "s", "--command", "true", "--", "true"}, "envy: give the command after -- or with --command, not both\n"},
		{"--signal without --watch", []string{"run", "--scope", "s", "--signal", "HUP", "--", "true"},
			"envy: --restart, --signal, --grace and --debounce take effect only with --watch\n"},
		{"--debounce without --watch", []string{"run", "--scope", "s", "--debounce", "2s", "--", "true"},
			"envy: --restart, --signal, --grace and --debounce take effect only with --watch\n"},
		{"a negative --debounce", []string{"run", "--scope", "s", "--watch", "--debounce", "-1s", "--", "true"},
			"envy: --debounce must not be negative (0 acts on every change at once)\n"},
		{"--redact and --no-redact", []string{"run", "--scope", "s", "--redact", "--no-redact", "--", "true"},
			"envy: --redact and --no-redact exclude each other\n"},
		{"a zero --fallback-max-age", []string{"run", "--scope", "s", "--fallback-max-age", "0", "--", "true"},
			"envy: --grace, --timeout and --fallback-max-age must be positive durations\n"},
		{"--signal and --restart", []string{"run", "--scope", "s", "--watch", "--restart", "--signal", "HUP", "--", "true"},
			"envy: --restart and --signal exclude each other: a change either restarts the command or signals it\n"},
		{"an unknown signal", []string{"run", "--scope", "s", "--watch", "--signal", "BOGUS", "--", "true"},
			"envy: --signal: unknown signal \"BOGUS\" (use a name such as HUP, USR1, TERM)\n"},
		{"a bad consumer id", []string{"run", "--scope", "s", "--consumer-id", "a/b", "--", "true"},
			"envy: --consumer-id \"a/b\" must match [A-Za-z0-9][A-Za-z0-9._~-]{0,99}\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runEnvy(t, env{"ENVY_TOKEN": "t"}, "", tc.args...)
			if code != 2 || errOut != tc.want || out != "" {
				t.Errorf("status %d, stdout %q, stderr %q\nwant stderr %q", code, out, errOut, tc.want)
			}
		})
	}
}

func TestRunExitsWithTheCommandsStatusAndPassesItsFlagsOn(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	if r := e.Do(t, "PATCH", "/v1/scopes/acme/web/-/vars", e.Admin, `{"GREETING":"hello from envy"}`); r.Status != 200 {
		t.Fatalf("merge: %d %s", r.Status, r.Body)
	}
	ev := env{"ENVY_ADDR": e.URL, "ENVY_TOKEN": e.Admin}
	// --scope after the command would be the command's: flags stop at
	// the command's name.
	code, out, errOut := runEnvy(t, ev, "", "run", "--scope", "acme/web", "sh", "-c", `echo "$GREETING $1"; exit 3`, "sh", "--scope")
	if code != 3 || out != "hello from envy --scope\n" || errOut != "" {
		t.Errorf("status %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, _, errOut = runEnvy(t, ev, "", "run", "--scope", "acme/web", "--", "envy-no-such-command")
	if code != 127 || !strings.HasPrefix(errOut, "envy: can't start envy-no-such-command: ") {
		t.Errorf("a missing command: status %d, stderr %q", code, errOut)
	}
	code, _, errOut = runEnvy(t, ev, "", "run", "--scope", "acme/nope", "--", "true")
	if code != 1 || !strings.HasPrefix(errOut, "envy: not_found: ") {
		t.Errorf("a missing scope: status %d, stderr %q", code, errOut)
	}
}

func TestStatusShowsEachConsumerAndWhetherItIsBehind(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	r := e.Do(t, "PUT", "/v1/scopes/acme/web/-/vars/A", e.Admin, `{"value":"1"}`)
	rev1 := int64(r.JSON(t)["revision"].(float64))
	for _, c := range []struct {
		id  string
		rev int64
	}{{"web-1", rev1}, {"web-2", rev1}} {
		body, _ := json.Marshal(map[string]any{"revision": c.rev, "hostname": "box", "pid": 42})
		if r := e.Do(t, "PUT", "/v1/scopes/acme/web/-/consumers/"+c.id, e.Admin, string(body)); r.Status != 201 {
			t.Fatalf("report: %d %s", r.Status, r.Body)
		}
	}
	e.Do(t, "PUT", "/v1/scopes/acme/web/-/vars/A", e.Admin, `{"value":"2"}`)
	body, _ := json.Marshal(map[string]any{"revision": rev1 + 1, "hostname": "box", "pid": 43})
	e.Do(t, "PUT", "/v1/scopes/acme/web/-/consumers/web-2", e.Admin, string(body))
	// web-3 runs from its fallback copy.
	body, _ = json.Marshal(map[string]any{"revision": rev1, "hostname": "box", "pid": 44, "fallback_since": "2026-01-02T03:04:05Z"})
	if r := e.Do(t, "PUT", "/v1/scopes/acme/web/-/consumers/web-3", e.Admin, string(body)); r.Status != 201 {
		t.Fatalf("report: %d %s", r.Status, r.Body)
	}

	ev := env{"ENVY_ADDR": e.URL, "ENVY_TOKEN": e.Admin}
	code, out, errOut := runEnvy(t, ev, "", "status", "acme/web")
	if code != 0 || errOut != "" {
		t.Fatalf("status %d, stderr %q", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 6 || lines[0] != "acme/web at revision 2: some workloads not yet on it" {
		t.Fatalf("output:\n%s", out)
	}
	if want := "web-3: on fallback since " + fmtTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) + " (it runs with its saved copy: envy was unreachable when it started)"; lines[5] != want {
		t.Errorf("last line %q, want %q: envy status says which consumer runs from its fallback copy", lines[5], want)
	}
	if strings.Contains(strings.Join(lines[1:5], "\n"), "fallback") {
		t.Errorf("a consumer not on its fallback is said to be:\n%s", out)
	}
	if f := strings.Fields(lines[2]); len(f) < 5 || f[0] != "web-1" || f[3] != "1" || f[4] != "yes" {
		t.Errorf("web-1 row %q, want revision 1, behind yes", lines[2])
	}
	if f := strings.Fields(lines[3]); len(f) < 5 || f[0] != "web-2" || f[3] != "2" || f[4] != "no" {
		t.Errorf("web-2 row %q, want revision 2, behind no", lines[3])
	}

	code, out, _ = runEnvy(t, ev, "", "status", "acme/web", "-o", "json")
	var st struct {
		Revision  int64 `json:"revision"`
		Synced    *bool `json:"synced"`
		Consumers []struct {
			ID       string  `json:"id"`
			Revision int64   `json:"revision"`
			Behind   *bool   `json:"behind"`
			Fallback *string `json:"on_fallback_since"`
		} `json:"consumers"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != 0 {
		t.Fatalf("-o json: %d %v %s", code, err, out)
	}
	if st.Synced == nil || *st.Synced || len(st.Consumers) != 3 || st.Consumers[0].Behind == nil || !*st.Consumers[0].Behind || *st.Consumers[1].Behind {
		t.Errorf("-o json: %s", out)
	}
	if len(st.Consumers) == 3 && (st.Consumers[0].Fallback != nil || st.Consumers[2].Fallback == nil || *st.Consumers[2].Fallback != "2026-01-02T03:04:05Z") {
		t.Errorf("-o json: %s; want on_fallback_since only for web-3", out)
	}
}

// envy run redacts by default: it hides a secret of exactly 4 characters,
// the shortest it redacts, and leaves a 3-character one; --redact (the
// old opt-in) changes nothing, --no-redact and --redact=false let the
// values through.
func TestRunRedactsAFourCharacterSecret(t *testing.T) {
	_, ev := server(t)
	must(t, ev, "wxyz\n", "vars", "set", "acme/web", "FOUR", "--secret", "--create")
	must(t, ev, "abc\n", "vars", "set", "acme/web", "THREE", "--secret")
	for _, flags := range [][]string{nil, {"--redact"}} {
		out := must(t, ev, "", append(append([]string{"run", "--scope", "acme/web"}, flags...), "--", "sh", "-c", `echo "four=$FOUR three=$THREE"`)...)
		if out != "four=[REDACTED:FOUR] three=abc\n" {
			t.Errorf("envy run %v: stdout %q: secrets are redacted by default", flags, out)
		}
	}
	for _, flag := range []string{"--no-redact", "--redact=false"} {
		out := must(t, ev, "", "run", "--scope", "acme/web", flag, "--", "sh", "-c", `echo "four=$FOUR three=$THREE"`)
		if out != "four=wxyz three=abc\n" {
			t.Errorf("envy run %s: stdout %q", flag, out)
		}
	}
}

// A value may hold 65,536 characters, up to 256 KiB of UTF-8, but Linux
// passes at most 128 KiB of NAME=value a var to a program: the start
// fails with E2BIG, whose "argument list too long" blames the arguments.
// envy run names the var that is too long (not its value) and its size.
func TestRunNamesAVarTooLongForTheSystem(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the per-var bound is Linux's")
	}
	e, ev := server(t)
	long := strings.Repeat("é", 65536) // 131072 bytes
	if r := e.Do(t, "PUT", "/v1/scopes/acme/web/-/vars/BIG", e.Admin, `{"value":"`+long+`"}`); r.Status != 201 {
		t.Fatalf("PUT: %d %s", r.Status, r.Body)
	}
	code, out, errOut := runEnvy(t, ev, "", "run", "--scope", "acme/web", "--", "true")
	if code != 126 || out != "" || !strings.Contains(errOut, "argument list too long") ||
		!strings.Contains(errOut, "BIG (131076 bytes)") || strings.Contains(errOut, "éé") {
		t.Errorf("status %d, stdout %q, stderr %q", code, out, errOut)
	}
}
