package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/pgtest"
)

// seedMoveData writes data of every kind: vars with several versions, a
// delete, inheritance, a consumer, a second token and reveals (audited).
// It returns the plaintext of the second token.
func seedMoveData(t *testing.T, s *server) string {
	t.Helper()
	for _, w := range []struct {
		method, path string
		body         any
	}{
		{"PATCH", "/v1/scopes/move/base/-/vars", map[string]any{"SHARED": "base", "DB_PASSWORD": map[string]any{"value": "s3cret-päss\nline2", "secret": true}}},
		{"PUT", "/v1/scopes/move/app", map[string]any{"description": "the app", "inherits": []string{"move/base"}}},
		{"PUT", "/v1/scopes/move/app/-/vars/API_KEY", map[string]any{"value": "sk-123456789", "secret": true}},
		{"PUT", "/v1/scopes/move/app/-/vars/API_KEY", map[string]any{"value": "sk-987654321"}},
		{"PUT", "/v1/scopes/move/app/-/vars/GONE", map[string]any{"value": "x"}},
		{"DELETE", "/v1/scopes/move/app/-/vars/GONE", nil},
		{"PUT", "/v1/scopes/move/app/-/consumers/worker-1", map[string]any{"revision": 1, "hostname": "h"}},
	} {
		if status, body := s.do(t, w.method, w.path, w.body); status/100 != 2 {
			t.Fatalf("%s %s: %d %s", w.method, w.path, status, body)
		}
	}
	status, body := s.do(t, "POST", "/v1/tokens", map[string]any{"name": "ci", "permissions": []map[string]any{{"scopes": "move/**", "actions": []string{"read"}}}})
	if status != 201 {
		t.Fatalf("create token: %d %s", status, body)
	}
	var tok struct{ Token string }
	json.Unmarshal(body, &tok)
	return tok.Token
}

// auditOf returns the server's audit log, newest first.
func auditOf(t *testing.T, s *server) []map[string]any {
	t.Helper()
	status, body := s.do(t, "GET", "/v1/audit?limit=1000", nil)
	if status != 200 {
		t.Fatalf("audit: %d %s", status, body)
	}
	var list struct{ Items []map[string]any }
	json.Unmarshal(body, &list)
	return list.Items
}

// grown returns want as got may have it: a reveal's entry that reveals
// in the same second added to after want was read, with its later count,
// last_at and request ids (which begin with want's), else want.
func grown(want, got map[string]any) map[string]any {
	if want["action"] != "reveal" || got == nil {
		return want
	}
	wc, _ := want["count"].(float64)
	gc, _ := got["count"].(float64)
	wids, _ := want["request_ids"].([]any)
	gids, _ := got["request_ids"].([]any)
	if gc < wc || len(gids) < len(wids) || !reflect.DeepEqual(gids[:len(wids)], wids) {
		return want
	}
	w := maps.Clone(want)
	w["count"], w["last_at"], w["request_ids"] = got["count"], got["last_at"], got["request_ids"]
	return w
}

// checkRestored checks that s serves what was backed up: the same
// snapshot, every audit entry, and the second token works.
func checkRestored(t *testing.T, when string, s *server, want map[string]string, audit []map[string]any, ciToken string) {
	t.Helper()
	// The audit log first: the snapshot's reveals, within the second of
	// those backed up, would add to their entries (reveals coalesce).
	got := map[any]map[string]any{}
	for _, e := range auditOf(t, s) {
		got[e["id"]] = e
	}
	sameSnapshot(t, when, snapshot(t, s), want)
	for _, e := range audit {
		if !reflect.DeepEqual(got[e["id"]], grown(e, got[e["id"]])) {
			t.Errorf("%s: audit entry %v is %v, want %v", when, e["id"], got[e["id"]], e)
		}
	}
	ci := &server{addr: s.addr, token: ciToken}
	if status, body := ci.do(t, "GET", "/v1/scopes/move/app/-/vars", nil); status != 200 {
		t.Errorf("%s: the restored token can't read: %d %s", when, status, body)
	}
}

func TestBackupAndRestoreAcrossStores(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	dbURL2 := pgtest.NewDatabase(t)
	token := envy.NewTokenValue()
	dirA := t.TempDir()
	key := filepath.Join(dirA, "master.key")
	a := startServer(t, dirA, token)
	ci := seedMoveData(t, a)
	before := snapshot(t, a)
	audit := auditOf(t, a)
	if len(audit) < 5 {
		t.Fatalf("only %d audit entries to back up", len(audit))
	}

	// A non-admin may not take a backup.
	reader := &server{addr: a.addr, token: ci}
	file := filepath.Join(t.TempDir(), "envy.jsonl")
	if _, errs, code := reader.cli(t, "", "backup", file); code == 0 || !strings.Contains(errs, "admin") {
		t.Fatalf("a non-admin took a backup: exit %d: %s", code, errs)
	}

	// The backup of the running server, while a merger writes: the merge
	// in the backup is whole.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 1; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			body := map[string]any{}
			for k := 0; k < bulkKeys; k++ {
				body[fmt.Sprintf("K%02d", k)] = bulkValue(n, k)
			}
			a.do(t, "PATCH", "/v1/scopes/crash/bulk0/-/vars", body)
		}
	}()
	waitUntil(t, "the merger's first merge", func() bool { return len(listValues(t, a, "crash/bulk0")) == bulkKeys })
	out := a.mustCLI(t, "", "backup", file)
	close(stop)
	wg.Wait()
	if !strings.Contains(out, "history") {
		t.Fatalf("envy backup printed:\n%s", out)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the backup file: %v, mode %v", err, fi.Mode())
	}
	b, _ := os.ReadFile(file)
	if strings.Contains(string(b), "sk-987654321") || strings.Contains(string(b), "s3cret") {
		t.Fatal("the backup holds a plaintext value")
	}

	// Restore into a new SQLite data dir.
	dirB := t.TempDir()
	a.mustCLI(t, "", "restore", file, "--to", "sqlite:"+dirB)
	sb := startServerWith(t, token, "--data-dir", dirB, "--master-key-file", key)
	checkRestored(t, "SQLite backup restored into SQLite", sb, before, audit, ci)
	wholeMerge(t, sb, 0)
	if _, errs, code := a.cli(t, "", "restore", file, "--to", "sqlite:"+dirB); code == 0 || !strings.Contains(errs, "in use") {
		t.Fatalf("restore into a data dir in use: exit %d: %s", code, errs)
	}
	sb.stop(t)
	if _, errs, code := a.cli(t, "", "restore", file, "--to", "sqlite:"+dirB); code == 0 || !strings.Contains(errs, "not empty") {
		t.Fatalf("restore into a store that holds data: exit %d: %s", code, errs)
	}

	// A cut backup is refused, and leaves the store empty.
	cut := filepath.Join(t.TempDir(), "cut.jsonl")
	os.WriteFile(cut, b[:len(b)*2/3], 0o600)
	if _, errs, code := a.cli(t, "", "restore", cut, "--to", dbURL); code == 0 || !strings.Contains(errs, "damaged") && !strings.Contains(errs, "cut short") {
		t.Fatalf("restore of a cut backup: exit %d: %s", code, errs)
	}

	// The same SQLite backup restores into PostgreSQL.
	a.mustCLI(t, "", "restore", file, "--to", dbURL)
	a.stop(t)
	pg := startServerWith(t, token, "--database-url", dbURL, "--master-key-file", key, "--data-dir", t.TempDir())
	checkRestored(t, "SQLite backup restored into PostgreSQL", pg, before, audit, ci)

	// A PostgreSQL server's backup, through it and straight from the
	// database, restores into SQLite.
	pgBefore, pgAudit := snapshot(t, pg), auditOf(t, pg)
	file2 := filepath.Join(t.TempDir(), "pg.jsonl")
	pg.mustCLI(t, "", "backup", file2)
	file3 := filepath.Join(t.TempDir(), "pg-direct.jsonl")
	pg.mustCLI(t, "", "backup", "--from", dbURL, file3)
	pg.stop(t)
	for i, f := range []string{file2, file3} {
		dir := t.TempDir()
		pg.mustCLI(t, "", "restore", f, "--to", "sqlite:"+dir)
		s := startServerWith(t, token, "--data-dir", dir, "--master-key-file", key)
		checkRestored(t, fmt.Sprintf("PostgreSQL backup %d restored into SQLite", i+1), s, pgBefore, pgAudit, ci)
		s.stop(t)
	}
	// And into another PostgreSQL database.
	pg.mustCLI(t, "", "restore", file2, "--to", dbURL2)
	pg2 := startServerWith(t, token, "--database-url", dbURL2, "--master-key-file", key, "--data-dir", t.TempDir())
	checkRestored(t, "PostgreSQL backup restored into PostgreSQL", pg2, pgBefore, pgAudit, ci)
}

func TestBackupOfANewServerRestores(t *testing.T) {
	token := envy.NewTokenValue()
	dir := t.TempDir()
	s := startServer(t, dir, token)
	file := filepath.Join(t.TempDir(), "new.jsonl")
	s.mustCLI(t, "", "backup", file)
	s.stop(t)
	dir2 := t.TempDir()
	s.mustCLI(t, "", "restore", file, "--to", "sqlite:"+dir2)
	s2 := startServerWith(t, token, "--data-dir", dir2, "--master-key-file", filepath.Join(dir, "master.key"))
	if status, body := s2.do(t, "PUT", "/v1/scopes/new/-/vars/A", map[string]any{"value": "1"}); status != 201 {
		t.Fatalf("write after restoring a new server's backup: %d %s", status, body)
	}
}
