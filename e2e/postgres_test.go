package e2e

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/client"
	"github.com/envy-dev/envy/internal/pgtest"
	"github.com/envy-dev/envy/internal/testenv"
)

// cluster is servers sharing one PostgreSQL database and one master key.
type cluster struct {
	dbURL     string
	masterKey string
	token     string
}

func newCluster(t *testing.T, dbURL string) *cluster {
	t.Helper()
	return &cluster{dbURL: dbURL, masterKey: filepath.Join(t.TempDir(), "master.key"), token: envy.NewTokenValue()}
}

// start starts one more server of the cluster on its own port.
func (c *cluster) start(t *testing.T) *server {
	t.Helper()
	return startServerWith(t, c.token, "--database-url", c.dbURL, "--master-key-file", c.masterKey, "--data-dir", t.TempDir())
}

// setVar writes one var and returns the status and the revision taken.
func (s *server) setVar(t *testing.T, scope, name, value string) (int, int64) {
	t.Helper()
	status, body := s.do(t, "PUT", "/v1/scopes/"+scope+"/-/vars/"+name, map[string]any{"value": value})
	var r struct {
		Revision int64 `json:"revision"`
	}
	json.Unmarshal(body, &r)
	return status, r.Revision
}

// createdToken is a token as its creation answers it.
type createdToken struct {
	ID    string `json:"id"`
	Token string `json:"token"`
}

// newToken creates a token named name with actions on the scopes glob.
func (s *server) newToken(t *testing.T, name, scopes string, actions ...string) createdToken {
	t.Helper()
	status, body := s.do(t, "POST", "/v1/tokens", map[string]any{"name": name, "permissions": []map[string]any{{"scopes": scopes, "actions": actions}}})
	if status != 201 {
		t.Fatalf("create token %s: %d %s", name, status, body)
	}
	var tok createdToken
	if err := json.Unmarshal(body, &tok); err != nil {
		t.Fatal(err)
	}
	return tok
}

// value reads one var's value ("" and the status when it can't).
func (s *server) value(t *testing.T, scope, name string) (int, string) {
	t.Helper()
	status, body := s.do(t, "GET", "/v1/scopes/"+scope+"/-/vars/"+name+"?reveal=true", nil)
	var v struct {
		Value string `json:"value"`
	}
	json.Unmarshal(body, &v)
	return status, v.Value
}

// watcher follows a scope's watch stream on one server and keeps the
// revisions it reports.
type watcher struct {
	mu   sync.Mutex
	revs []int64
	err  error
}

func watch(t *testing.T, s *server, scope string) *watcher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cl := client.New(s.addr, s.token)
	wt, err := cl.Watch(ctx, scope, 0, client.WatchBackoff(50*time.Millisecond, 500*time.Millisecond))
	if err != nil {
		t.Fatalf("watch %s on %s: %v", scope, s.addr, err)
	}
	w := &watcher{}
	go func() {
		for ev := range wt.Events() {
			w.mu.Lock()
			if n := len(w.revs); n > 0 && ev.Revision <= w.revs[n-1] {
				w.err = fmt.Errorf("revision %d came after %d", ev.Revision, w.revs[n-1])
			}
			w.revs = append(w.revs, ev.Revision)
			w.mu.Unlock()
		}
	}()
	return w
}

// reached reports whether the watcher has seen rev or a later revision.
func (w *watcher) reached(rev int64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.revs) > 0 && w.revs[len(w.revs)-1] >= rev
}

func (w *watcher) check(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		t.Fatal(w.err)
	}
}

func TestTwoServersShareOnePostgresDatabase(t *testing.T) {
	c := newCluster(t, pgtest.NewDatabase(t))
	a := c.start(t)
	b := c.start(t)
	if a.addr == b.addr {
		t.Fatal("the two servers share a port")
	}

	t.Run("a write through one is read through the other at once", func(t *testing.T) {
		for i := range 20 {
			want := fmt.Sprintf("value %d", i)
			if status, _ := a.setVar(t, "shared/app", "A", want); status/100 != 2 {
				t.Fatalf("write %d: %d", i, status)
			}
			if status, got := b.value(t, "shared/app", "A"); status != 200 || got != want {
				t.Fatalf("read after write %d on the other server: %d %q", i, status, got)
			}
		}
	})

	t.Run("a write through one reaches watchers on both", func(t *testing.T) {
		a.setVar(t, "shared/watched", "X", "0") // a watch needs its scope to exist
		wa, wb := watch(t, a, "shared/watched"), watch(t, b, "shared/watched")
		for i := range 5 {
			writer := []*server{a, b}[i%2]
			status, rev := writer.setVar(t, "shared/watched", "X", fmt.Sprint(i+1))
			if status/100 != 2 {
				t.Fatalf("write %d: %d", i, status)
			}
			waitUntil(t, fmt.Sprintf("both watchers to see revision %d", rev), func() bool { return wa.reached(rev) && wb.reached(rev) })
		}
		wa.check(t)
		wb.check(t)
	})

	t.Run("a token revoked through one is refused by the other at once", func(t *testing.T) {
		tok := a.newToken(t, "ci", "**", "read")
		ci := &server{addr: b.addr, token: tok.Token}
		for range 3 { // warm whatever b keeps
			if status, body := ci.do(t, "GET", "/v1/tokens/self", nil); status != 200 {
				t.Fatalf("new token on the other server: %d %s", status, body)
			}
		}
		if status, body := a.do(t, "DELETE", "/v1/tokens/"+tok.ID, nil); status != 200 {
			t.Fatalf("revoke: %d %s", status, body)
		}
		if status, _ := ci.do(t, "GET", "/v1/tokens/self", nil); status != 401 {
			t.Fatalf("revoked token on the other server: %d, want 401; log:\n%s", status, b.log())
		}
	})

	t.Run("a token revoked through one can't write through the other", func(t *testing.T) {
		// A var write leaves the check of its cached token to its own
		// transaction; every way the write can end must still refuse a
		// token revoked through the other server, and write nothing.
		tok := a.newToken(t, "writer", "wr/**", "read", "write")
		w := &server{addr: b.addr, token: tok.Token}
		for i := range 3 { // the token and the scope cached on b
			if status, _ := w.setVar(t, "wr/app", "A", fmt.Sprint("before ", i)); status/100 != 2 {
				t.Fatalf("write with the new token on the other server: %d", status)
			}
		}
		if status, body := a.do(t, "DELETE", "/v1/tokens/"+tok.ID, nil); status != 200 {
			t.Fatalf("revoke: %d %s", status, body)
		}
		for _, c := range []struct {
			name, method, path string
			body               any
		}{
			{"a write", "PUT", "/v1/scopes/wr/app/-/vars/A", map[string]any{"value": "after"}},
			{"a write that changes nothing", "PUT", "/v1/scopes/wr/app/-/vars/A", map[string]any{"value": "before 2"}},
			{"a new var", "PUT", "/v1/scopes/wr/app/-/vars/B", map[string]any{"value": "after"}},
			{"an update of a var that does not exist", "PATCH", "/v1/scopes/wr/app/-/vars/MISSING", map[string]any{"value": "after"}},
			{"a body that is not valid", "PUT", "/v1/scopes/wr/app/-/vars/A", map[string]any{"value": 7}},
			{"a scope it may not write", "PUT", "/v1/scopes/other/-/vars/A", map[string]any{"value": "after"}},
		} {
			if status, body := w.do(t, c.method, c.path, c.body); status != 401 {
				t.Errorf("%s with the revoked token on the other server: %d %s, want 401", c.name, status, body)
			}
		}
		if status, got := a.value(t, "wr/app", "A"); status != 200 || got != "before 2" {
			t.Errorf("A after the revoked token's writes: %d %q, want \"before 2\"", status, got)
		}
		if status, _ := a.value(t, "wr/app", "B"); status != 404 {
			t.Errorf("B after the revoked token's writes: %d, want 404", status)
		}
	})

	t.Run("consumers reported to one count in the other's status and synced", func(t *testing.T) {
		_, rev := a.setVar(t, "shared/consumed", "A", "1")
		if status, body := a.do(t, "PUT", "/v1/scopes/shared/consumed/-/consumers/worker-1", map[string]any{"revision": rev, "hostname": "h1"}); status/100 != 2 {
			t.Fatalf("report: %d %s", status, body)
		}
		status, body := b.do(t, "GET", "/v1/scopes/shared/consumed/-/status", nil)
		var st struct {
			Synced    bool `json:"synced"`
			Consumers []struct {
				ID string `json:"id"`
			} `json:"consumers"`
		}
		json.Unmarshal(body, &st)
		if status != 200 || !st.Synced || len(st.Consumers) != 1 || st.Consumers[0].ID != "worker-1" {
			t.Fatalf("status on the other server: %d %s", status, body)
		}
		// A write through b leaves worker-1 behind: b must know of it.
		status, body = b.do(t, "PUT", "/v1/scopes/shared/consumed/-/vars/A", map[string]any{"value": "2"})
		var w struct {
			Synced *bool `json:"synced"`
		}
		json.Unmarshal(body, &w)
		if status != 200 || w.Synced == nil || *w.Synced {
			t.Fatalf("write on the other server: %d %s, want synced false", status, body)
		}
	})
}

func TestAServerWithAnotherMasterKeyRefusesToStart(t *testing.T) {
	c := newCluster(t, pgtest.NewDatabase(t))
	c.start(t)
	other := *c
	other.masterKey = filepath.Join(t.TempDir(), "other.key")
	// A key that exists but is another one: a missing key file is refused
	// earlier, for another reason (no new key beside wrapped data keys).
	key := make([]byte, 32)
	rand.Read(key)
	if err := os.WriteFile(other.masterKey, key, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runServerToExit(t, other.token, "--database-url", other.dbURL, "--master-key-file", other.masterKey, "--data-dir", t.TempDir())
	if err == nil {
		t.Fatalf("a server with another master key started:\n%s", out)
	}
	if want := "every server sharing a database needs the same master key"; !containsLine(out, want) {
		t.Fatalf("it said %q, want a line with %q", out, want)
	}
}

// TestPostgresOutage cuts server a off the database (through a TCP proxy)
// while server b keeps it: a answers 503 and fails /readyz but stays
// healthy, b keeps writing, and once the database is back a serves again
// by itself, and a's watcher hears of b's writes that it missed.
func TestPostgresOutage(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.NewProxy(t, "http://"+u.Host)
	pu, _ := url.Parse(proxy.URL)
	viaProxy := *u
	viaProxy.Host = pu.Host
	c := newCluster(t, viaProxy.String())
	a := c.start(t)
	c.dbURL = dbURL
	b := c.start(t)
	if status, _ := a.setVar(t, "outage/app", "FIRST", "1"); status != 201 {
		t.Fatalf("create the scope: %d", status)
	}
	wa, wb := watch(t, a, "outage/app"), watch(t, b, "outage/app")

	type ack struct {
		name, value string
		rev         int64
	}
	var acked []ack
	write := func(s *server, i int) int {
		name, value := fmt.Sprintf("V%d", i), fmt.Sprintf("value %d", i)
		status, rev := s.setVar(t, "outage/app", name, value)
		if status/100 == 2 {
			acked = append(acked, ack{name, value, rev})
		}
		return status
	}
	i := 0
	for ; i < 10; i++ {
		if status := write([]*server{a, b}[i%2], i); status/100 != 2 {
			t.Fatalf("write %d before the outage: %d", i, status)
		}
	}

	proxy.Block()
	waitUntil(t, "a read through a to fail with 503 while its database is down", func() bool {
		status, _ := a.value(t, "outage/app", "V0")
		return status == 503
	})
	req, _ := http.NewRequest("GET", a.addr+"/v1/scopes/outage/app/-/vars/V0", nil)
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("during the outage: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if status, _ := a.do(t, "GET", "/readyz", nil); status != 503 {
		t.Fatalf("/readyz during the outage: %d, want 503", status)
	}
	if status, _ := a.do(t, "GET", "/healthz", nil); status != 200 {
		t.Fatalf("/healthz during the outage: %d, want 200", status)
	}
	if status := write(a, i); status != 503 {
		t.Fatalf("a write through a during the outage: %d, want 503", status)
	}
	i++
	// Meanwhile b writes: a's notification connection is down, so a
	// hears nothing of these until it is back.
	for end := i + 5; i < end; i++ {
		if status := write(b, i); status/100 != 2 {
			t.Fatalf("write %d through b during a's outage: %d", i, status)
		}
	}
	missed := acked[len(acked)-1].rev

	proxy.Unblock()
	waitUntil(t, "a to serve again once the database is back", func() bool {
		status, _ := a.value(t, "outage/app", "V0")
		return status == 200
	})
	waitUntil(t, "/readyz to pass again", func() bool {
		status, _ := a.do(t, "GET", "/readyz", nil)
		return status == 200
	})
	waitUntil(t, "a's watcher to hear of the writes it missed", func() bool { return wa.reached(missed) })
	for end := i + 10; i < end; i++ {
		if status := write([]*server{a, b}[i%2], i); status/100 != 2 {
			t.Fatalf("write %d after the outage: %d", i, status)
		}
	}
	last := acked[len(acked)-1].rev
	waitUntil(t, "watchers on both servers to reach the last revision", func() bool { return wa.reached(last) && wb.reached(last) })
	wa.check(t)
	wb.check(t)
	for _, s := range []*server{a, b} {
		for _, w := range acked {
			if status, got := s.value(t, "outage/app", w.name); status != 200 || got != w.value {
				t.Fatalf("acknowledged %s on %s after the outage: %d %q, want %q", w.name, s.addr, status, got, w.value)
			}
		}
	}
}

func TestAcknowledgedWritesSurviveKill9OnPostgres(t *testing.T) {
	c := newCluster(t, pgtest.NewDatabase(t))
	victim := c.start(t)
	survivor := c.start(t)
	testKill9(t, victim, c.token, func() *server { return survivor })
}
