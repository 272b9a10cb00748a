package e2e

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/pgtest"
)

// newKeyFile writes a new random master key file and returns its path.
func newKeyFile(t *testing.T, dir, name string) string {
	t.Helper()
	k := make([]byte, 32)
	rand.Read(k)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, k, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// copyFile copies src over dst (mode 0600), as an operator replacing a
// server's key file would.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst+".tmp", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dst+".tmp", dst); err != nil {
		t.Fatal(err)
	}
}

// readLoad reads the vars of a scope from each server continuously and
// counts the reads and the failed ones (any status but 200, or a value
// that is not what was written).
type readLoad struct {
	reads, failed atomic.Int64
	firstErr      atomic.Value
	stop          chan struct{}
	wg            sync.WaitGroup
}

func startReads(t *testing.T, scope string, want map[string]string, servers ...*server) *readLoad {
	l := &readLoad{stop: make(chan struct{})}
	for i := 0; i < 4; i++ {
		s := servers[i%len(servers)]
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", s.addr+"/v1/scopes/"+scope+"/-/env", nil)
				req.Header.Set("Authorization", "Bearer "+s.token)
				res, err := http.DefaultClient.Do(req)
				l.reads.Add(1)
				if err != nil {
					l.fail(err.Error())
					continue
				}
				var body struct {
					Env map[string]string `json:"env"`
				}
				err = json.NewDecoder(res.Body).Decode(&body)
				res.Body.Close()
				if res.StatusCode != 200 || err != nil {
					l.fail(fmt.Sprintf("status %d, %v", res.StatusCode, err))
					continue
				}
				for k, v := range want {
					if body.Env[k] != v {
						l.fail("wrong value of " + k)
					}
				}
			}
		}()
	}
	return l
}

func (l *readLoad) fail(msg string) {
	l.failed.Add(1)
	l.firstErr.CompareAndSwap(nil, msg)
}

// finish stops the reads once at least n more have been made.
func (l *readLoad) finish(t *testing.T, n int64) {
	t.Helper()
	target := l.reads.Load() + n
	waitUntil(t, "reads after the rotation", func() bool { return l.reads.Load() >= target })
	close(l.stop)
	l.wg.Wait()
	if f := l.failed.Load(); f > 0 {
		t.Fatalf("%d of %d reads failed during the rotation; first: %v", f, l.reads.Load(), l.firstErr.Load())
	}
	t.Logf("%d reads during the rotation, none failed", l.reads.Load())
}

func seedScope(t *testing.T, s *server, scope string, n int) map[string]string {
	t.Helper()
	want := map[string]string{}
	body := map[string]any{}
	for i := 0; i < n; i++ {
		k, v := fmt.Sprintf("K%02d", i), fmt.Sprintf("value-%d-%s", i, rand.Text())
		want[k] = v
		body[k] = map[string]any{"value": v, "secret": i%2 == 0}
	}
	if st, b := s.do(t, "PATCH", "/v1/scopes/"+scope+"/-/vars", body); st != 200 {
		t.Fatalf("seed %s: %d %s", scope, st, b)
	}
	return want
}

// sealedKeyID returns the id of the data key that sealed a value (the
// four bytes after the format byte).
func sealedKeyID(sealed []byte) uint32 {
	if len(sealed) < 5 {
		return 0
	}
	return uint32(sealed[1])<<24 | uint32(sealed[2])<<16 | uint32(sealed[3])<<8 | uint32(sealed[4])
}

func (s *server) stop(t *testing.T) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	if code := s.exited(t); code != 0 {
		t.Fatalf("exit %d; log:\n%s", code, s.log())
	}
}

func TestKeyRotationWhileServingSQLite(t *testing.T) {
	dir := t.TempDir()
	token := envy.NewTokenValue()
	s := startServerWith(t, token, "--data-dir", dir)
	want := seedScope(t, s, "ops/rotate", 20)
	newKey := newKeyFile(t, t.TempDir(), "new.key")

	load := startReads(t, "ops/rotate", want, s)
	out := s.mustCLI(t, "", "keys", "rotate", "--new-master-key-file", newKey, "--new-data-key")
	if !strings.Contains(out, "rewrapped data keys") || !strings.Contains(out, "new data key") {
		t.Fatalf("keys rotate printed:\n%s", out)
	}
	// A write after the rotation is sealed under the new data key.
	if st, b := s.do(t, "PUT", "/v1/scopes/ops/rotate/-/vars/AFTER", map[string]any{"value": "written after the rotation"}); st != 201 {
		t.Fatalf("write after rotation: %d %s", st, b)
	}
	load.finish(t, 200)
	want["AFTER"] = "written after the rotation"

	// A second rotation with no new data key only rewraps.
	newer := newKeyFile(t, t.TempDir(), "newer.key")
	var res struct {
		Rewrapped    []uint32 `json:"rewrapped"`
		AddedDataKey uint32   `json:"added_data_key"`
	}
	if err := json.Unmarshal([]byte(s.mustCLI(t, "", "-o", "json", "keys", "rotate", "--new-master-key-url", "base64key://"+urlB64(t, newer))), &res); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(res.Rewrapped) != "[1 2]" || res.AddedDataKey != 0 {
		t.Fatalf("second rotation: %+v", res)
	}
	// A non-admin can't rotate, and the refusal is audited.
	st, b := s.do(t, "POST", "/v1/tokens", map[string]any{"name": "reader", "permissions": []map[string]any{{"scopes": "**", "actions": []string{"read", "write", "reveal"}}}})
	if st != 201 {
		t.Fatalf("create token: %d %s", st, b)
	}
	var tok struct{ Token string }
	json.Unmarshal(b, &tok)
	reader := &server{addr: s.addr, token: tok.Token}
	if _, errs, code := reader.cli(t, "", "keys", "rotate", "--new-master-key-file", newKey); code == 0 || !strings.Contains(errs, "admin") {
		t.Fatalf("a non-admin rotated the keys: %d %s", code, errs)
	}
	s.stop(t)

	// The value written after the first rotation is sealed by data key 2.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "envy.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	var sealed []byte
	if err := db.QueryRow(`SELECT sealed FROM vars WHERE scope = 'ops/rotate' AND name = 'AFTER'`).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if id := sealedKeyID(sealed); id != 2 {
		t.Fatalf("the write after the rotation is sealed by data key %d, want 2", id)
	}

	// The old master key opens nothing now; the newest alone serves it all.
	if err := os.Remove(filepath.Join(dir, "master.key")); err != nil {
		t.Fatal(err)
	}
	bad := exec.Command(envyBin, "server", "--listen", "127.0.0.1:0", "--data-dir", dir, "--master-key-file", newKey)
	if outb, err := bad.CombinedOutput(); err == nil || !strings.Contains(string(outb), "master key can't open") {
		t.Fatalf("a server with the previous master key started, or said something else: %v %s", err, outb)
	}
	s2 := startServerWith(t, token, "--data-dir", dir, "--master-key-url", "base64key://"+urlB64(t, newer))
	checkEnv(t, s2, "ops/rotate", want)
}

func checkEnv(t *testing.T, s *server, scope string, want map[string]string) {
	t.Helper()
	st, b := s.do(t, "GET", "/v1/scopes/"+scope+"/-/env", nil)
	if st != 200 {
		t.Fatalf("env of %s: %d %s", scope, st, b)
	}
	var body struct {
		Env map[string]string `json:"env"`
	}
	json.Unmarshal(b, &body)
	for k, v := range want {
		if body.Env[k] != v {
			t.Fatalf("%s: %s is %q, want %q", scope, k, body.Env[k], v)
		}
	}
}

func TestKeyRotationAcrossPostgresServers(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	token := envy.NewTokenValue()
	dir := t.TempDir()
	first := newKeyFile(t, dir, "first.key")
	keyA, keyB, keyC := filepath.Join(dir, "a.key"), filepath.Join(dir, "b.key"), filepath.Join(dir, "c.key")
	copyFile(t, first, keyA)
	copyFile(t, first, keyB)
	copyFile(t, first, keyC)
	a := startServerWith(t, token, "--database-url", dbURL, "--master-key-file", keyA, "--data-dir", t.TempDir())
	b := startServerWith(t, token, "--database-url", dbURL, "--master-key-file", keyB, "--data-dir", t.TempDir())
	// C's operator forgets to give it the new key.
	c := startServerWith(t, token, "--database-url", dbURL, "--master-key-file", keyC, "--data-dir", t.TempDir())
	want := seedScope(t, a, "ops/rotate", 20)

	load := startReads(t, "ops/rotate", want, a, b)
	// The operator gives every server the new key where its flags point
	// (a running server reads it only when it needs it), then rotates
	// through one of them.
	newKey := newKeyFile(t, dir, "new.key")
	copyFile(t, newKey, keyA)
	copyFile(t, newKey, keyB)
	a.mustCLI(t, "", "keys", "rotate", "--new-master-key-file", newKey, "--new-data-key")

	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	// B picks the new data key up without a restart: its writes are soon
	// sealed by it, and A reads them (and B reads A's).
	i := 0
	waitUntil(t, "server B to seal with the new data key", func() bool {
		i++
		v := fmt.Sprintf("from B %d", i)
		if st, body := b.do(t, "PUT", "/v1/scopes/ops/rotate-b/-/vars/V", map[string]any{"value": v}); st != 200 && st != 201 {
			t.Fatalf("write through B: %d %s", st, body)
		}
		var sealed []byte
		if err := conn.QueryRow(context.Background(), `SELECT sealed FROM vars WHERE scope = 'ops/rotate-b' AND name = 'V'`).Scan(&sealed); err != nil {
			t.Fatal(err)
		}
		return sealedKeyID(sealed) == 2
	})
	checkEnv(t, a, "ops/rotate-b", map[string]string{"V": fmt.Sprintf("from B %d", i)})
	if st, body := a.do(t, "PUT", "/v1/scopes/ops/rotate-a/-/vars/V", map[string]any{"value": "from A"}); st != 201 {
		t.Fatalf("write through A: %d %s", st, body)
	}
	checkEnv(t, b, "ops/rotate-a", map[string]string{"V": "from A"})
	load.finish(t, 200)

	// C can't open the new data key: it says it is not ready, until it
	// gets the new key, and then serves what the others wrote.
	readyz := func() int {
		res, err := http.Get(c.addr + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	waitUntil(t, "C's /readyz to fail", func() bool { return readyz() == 503 })
	copyFile(t, newKey, keyC)
	waitUntil(t, "C's /readyz to pass with the new key", func() bool { return readyz() == 200 })
	checkEnv(t, c, "ops/rotate-a", map[string]string{"V": "from A"})
	c.stop(t)

	// Both restart with the new key alone.
	a.stop(t)
	b.stop(t)
	os.Remove(first)
	a2 := startServerWith(t, token, "--database-url", dbURL, "--master-key-file", newKey, "--data-dir", t.TempDir())
	checkEnv(t, a2, "ops/rotate", want)
	checkEnv(t, a2, "ops/rotate-a", map[string]string{"V": "from A"})
}

// urlB64 returns a key file's bytes as base64key:// URLs hold them.
func urlB64(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return base64.URLEncoding.EncodeToString(b)
}

// TestKeyRotationWithReseal rotates with a new data key and --reseal while
// readers read: afterwards every value and history entry is sealed under
// the new data key, the older one is gone from the store, and a server
// with the new master key alone serves the values and rolls back to an
// old revision.
func TestKeyRotationWithReseal(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		resealOn(t, nil, "--data-dir", dir)
	})
	t.Run("postgres", func(t *testing.T) {
		dbURL := pgtest.NewDatabase(t)
		conn, err := pgx.Connect(context.Background(), dbURL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		resealOn(t, conn, "--database-url", dbURL, "--master-key-file", filepath.Join(t.TempDir(), "master.key"), "--data-dir", t.TempDir())
	})
}

// resealOn runs the reseal test on the store the flags name; conn is the
// PostgreSQL database, nil for SQLite (whose file is then read after the
// server stopped).
func resealOn(t *testing.T, conn *pgx.Conn, flags ...string) {
	token := envy.NewTokenValue()
	s := startServerWith(t, token, flags...)
	old := seedScope(t, s, "ops/reseal", 20)
	var rev struct{ Revision int64 }
	_, b := s.do(t, "GET", "/v1/scopes/ops/reseal", nil)
	json.Unmarshal(b, &rev)
	want := seedScope(t, s, "ops/reseal", 20) // every var a second version
	if st, b := s.do(t, "DELETE", "/v1/scopes/ops/reseal/-/vars/K19", nil); st != 204 {
		t.Fatalf("delete: %d %s", st, b)
	}
	delete(want, "K19")
	// A webhook (of scopes nothing is written to): the reseal seals its
	// signing secret again too, or the older key could not be retired.
	if st, b := s.do(t, "POST", "/v1/webhooks", map[string]any{"url": "https://192.0.2.1/envy", "scopes": "nothing/**", "events": []string{"vars.changed"}}); st != 201 {
		t.Fatalf("create a webhook: %d %s", st, b)
	}

	newKey := newKeyFile(t, t.TempDir(), "new.key")
	load := startReads(t, "ops/reseal", want, s)
	out := s.mustCLI(t, "", "keys", "rotate", "--new-master-key-file", newKey, "--new-data-key", "--reseal")
	if !strings.Contains(out, "in the background") {
		t.Fatalf("keys rotate --reseal printed:\n%s", out)
	}
	waitUntil(t, "the reseal to end", func() bool {
		return strings.Contains(s.log(), "resealed every value") || strings.Contains(s.log(), "reseal failed")
	})
	load.finish(t, 200)
	if strings.Contains(s.log(), "reseal failed") {
		t.Fatalf("the reseal failed:\n%s", s.log())
	}
	s.stop(t)

	// Every stored value names data key 2, and key 1 is gone.
	query := func(q string) [][]byte {
		var rows interface {
			Next() bool
			Scan(...any) error
		}
		if conn != nil {
			r, err := conn.Query(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			rows = r
		} else {
			db, err := sql.Open("sqlite", "file:"+filepath.Join(flags[1], "envy.db")+"?mode=ro")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			r, err := db.Query(q)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			rows = r
		}
		var out [][]byte
		for rows.Next() {
			var b []byte
			if err := rows.Scan(&b); err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
		}
		return out
	}
	sealed := append(query(`SELECT sealed FROM vars`), query(`SELECT sealed FROM history WHERE sealed IS NOT NULL`)...)
	if len(sealed) < 59 {
		t.Fatalf("only %d stored values", len(sealed))
	}
	for _, v := range sealed {
		if id := sealedKeyID(v); id != 2 {
			t.Fatalf("a value is still sealed under data key %d", id)
		}
	}
	secrets := query(`SELECT secret FROM webhooks`)
	if len(secrets) != 1 {
		t.Fatalf("%d webhooks stored, want 1", len(secrets))
	}
	if id := sealedKeyID(secrets[0]); id != 2 {
		t.Fatalf("the webhook's secret is still sealed under data key %d", id)
	}
	if ids := query(`SELECT CAST(id AS TEXT) FROM data_keys`); len(ids) != 1 || string(ids[0]) != "2" {
		t.Fatalf("data keys left: %q", ids)
	}

	// The new master key alone serves it all, old revisions included.
	var restart []string
	for i := 0; i < len(flags); i += 2 {
		if flags[i] != "--master-key-file" {
			restart = append(restart, flags[i], flags[i+1])
		}
	}
	s2 := startServerWith(t, token, append(restart, "--master-key-file", newKey)...)
	checkEnv(t, s2, "ops/reseal", want)
	if st, b := s2.do(t, "POST", "/v1/scopes/ops/reseal/-/rollback", map[string]any{"revision": rev.Revision}); st != 200 {
		t.Fatalf("rollback to %d: %d %s", rev.Revision, st, b)
	}
	checkEnv(t, s2, "ops/reseal", old)
}
