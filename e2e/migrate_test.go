package e2e

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/pgtest"
)

// migrate runs envy migrate and returns its output and exit code.
func migrate(t *testing.T, from, to string) (string, int) {
	t.Helper()
	out, err := exec.Command(envyBin, "migrate", "--from", from, "--to", to).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

// snapshot is what a user sees of a server's data: vars with their ids,
// versions and values, history lengths, the token list and the audit log's
// length.
func snapshot(t *testing.T, s *server) map[string]string {
	t.Helper()
	out := map[string]string{}
	get := func(path string) []byte {
		t.Helper()
		status, body := s.do(t, "GET", path, nil)
		if status != 200 {
			t.Fatalf("GET %s: %d %s", path, status, body)
		}
		return body
	}
	for _, scope := range []string{"move/base", "move/app"} {
		var list struct {
			Revision int64 `json:"revision"`
			Items    []struct {
				ID, Name string
				Value    *string
				Version  int64
				Secret   bool
			} `json:"items"`
		}
		json.Unmarshal(get("/v1/scopes/"+scope+"/-/vars?reveal=true"), &list)
		for _, v := range list.Items {
			out[scope+"/"+v.Name] = strings.Join([]string{v.ID, *v.Value, string(rune('0' + v.Version)), map[bool]string{true: "secret"}[v.Secret]}, "|")
		}
		out[scope+" revision"] = string(get("/v1/scopes/" + scope))
		var hist struct{ Items []any }
		json.Unmarshal(get("/v1/scopes/"+scope+"/-/history?limit=1000"), &hist)
		out[scope+" history"] = strings.Repeat("x", len(hist.Items))
	}
	out["env"] = string(get("/v1/scopes/move/app/-/env"))
	out["tokens"] = string(get("/v1/tokens"))
	out["consumers"] = string(get("/v1/scopes/move/app/-/status"))
	return out
}

func TestMigrateFromSQLiteToPostgresAndBack(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	token := envy.NewTokenValue()
	dirA := t.TempDir()
	key := filepath.Join(dirA, "master.key")

	a := startServer(t, dirA, token)
	seedMoveData(t, a)
	before := snapshot(t, a)
	if !strings.Contains(before["move/app/API_KEY"], "sk-987654321|2") ||
		!strings.Contains(before["move/base/DB_PASSWORD"], "s3cret-päss\nline2|1|secret") || before["move/app history"] != "xxxx" {
		t.Fatalf("the data to move is not what was written: %q", before)
	}

	if out, code := migrate(t, "sqlite:"+dirA, dbURL); code == 0 {
		t.Fatalf("migrate from a data dir in use succeeded:\n%s", out)
	} else if !strings.Contains(out, "in use by a running envy server") {
		t.Fatalf("migrate from a data dir in use said:\n%s", out)
	}
	a.stop(t)

	out, code := migrate(t, "sqlite:"+dirA, dbURL)
	if code != 0 || !strings.Contains(out, "both sides match") {
		t.Fatalf("migrate to PostgreSQL: exit %d:\n%s", code, out)
	}
	t.Logf("envy migrate said:\n%s", out)
	if out, code := migrate(t, "sqlite:"+dirA, dbURL); code == 0 || !strings.Contains(out, "not empty") {
		t.Fatalf("a second migrate into the same database: exit %d:\n%s", code, out)
	}

	pg := startServerWith(t, token, "--database-url", dbURL, "--master-key-file", key, "--data-dir", t.TempDir())
	if got := snapshot(t, pg); !sameSnapshot(t, "after the move to PostgreSQL", got, before) {
		return
	}
	if status, body := pg.do(t, "PUT", "/v1/scopes/move/app/-/vars/AFTER", map[string]any{"value": "1"}); status != 201 {
		t.Fatalf("write after the move: %d %s", status, body)
	}
	moved := snapshot(t, pg)
	pg.stop(t)

	dirB := t.TempDir()
	out, code = migrate(t, dbURL, "sqlite:"+dirB)
	if code != 0 || !strings.Contains(out, "both sides match") {
		t.Fatalf("migrate back to SQLite: exit %d:\n%s", code, out)
	}
	b := startServerWith(t, token, "--data-dir", dirB, "--master-key-file", key)
	sameSnapshot(t, "after the move back to SQLite", snapshot(t, b), moved)
}

func sameSnapshot(t *testing.T, when string, got, want map[string]string) bool {
	t.Helper()
	ok := true
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %s = %q, want %q", when, k, got[k], w)
			ok = false
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d entries, want %d", when, len(got), len(want))
		ok = false
	}
	return ok
}
