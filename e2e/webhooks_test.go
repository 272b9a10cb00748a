package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/pgtest"
)

// hookReceiver is a real receiver on loopback that verifies every message
// with the Standard Webhooks library and counts each message id.
type hookReceiver struct {
	t      *testing.T
	mu     sync.Mutex
	secret string
	times  map[string]int // message id → times received
	order  []int64        // revisions, in the order first received
	busy   chan struct{}  // a request is being handled
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	select {
	case h.busy <- struct{}{}:
	default:
	}
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	secret := h.secret
	h.mu.Unlock()
	v, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		h.t.Errorf("secret: %v", err)
		return
	}
	if err := v.Verify(body, r.Header); err != nil {
		h.t.Errorf("a message does not verify: %v", err)
		w.WriteHeader(400)
		return
	}
	var m struct {
		Data struct {
			Revision int64 `json:"revision"`
		} `json:"data"`
	}
	json.Unmarshal(body, &m)
	time.Sleep(30 * time.Millisecond) // slow enough that a kill finds deliveries in flight
	h.mu.Lock()
	id := r.Header.Get("webhook-id")
	if h.times[id] == 0 {
		h.order = append(h.order, m.Data.Revision)
	}
	h.times[id]++
	h.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// Two servers share a PostgreSQL database; one is killed with SIGKILL
// while it delivers. Every acknowledged change reaches the receiver, in
// order, each once, but for the one message the killed server may have
// sent without living to record it, which the other sends again.
func TestTwoServersOnPostgresDeliverEachEventOnceThroughAKill9(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	token := envy.NewTokenValue()
	dir := t.TempDir()
	key := newKeyFile(t, dir, "master.key")
	keyB := filepath.Join(dir, "b.key")
	copyFile(t, key, keyB)
	flags := []string{"--database-url", dbURL, "--webhook-allow-private", "--webhook-lease", "2s", "--webhook-timeout", "1s", "--webhook-retry-base", "50ms"}
	a := startServerWith(t, token, append(flags, "--master-key-file", key, "--data-dir", t.TempDir())...)
	b := startServerWith(t, token, append(flags, "--master-key-file", keyB, "--data-dir", t.TempDir())...)

	rc := &hookReceiver{t: t, times: map[string]int{}, busy: make(chan struct{}, 1)}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	st, body := a.do(t, "POST", "/v1/webhooks", map[string]any{"url": srv.URL, "scopes": "load/**", "events": []string{"vars.changed"}})
	if st != 201 {
		t.Fatalf("create a webhook: %d %s", st, body)
	}
	var created struct{ Secret string }
	json.Unmarshal(body, &created)
	rc.mu.Lock()
	rc.secret = created.Secret
	rc.mu.Unlock()

	var acked []int64
	write := func(s *server, i int) {
		st, body := s.do(t, "PUT", fmt.Sprintf("/v1/scopes/load/s%d/-/vars/V", i%3), map[string]any{"value": fmt.Sprint(i)})
		if st != 200 && st != 201 {
			t.Fatalf("write %d: %d %s", i, st, body)
		}
		var res struct{ Revision int64 }
		json.Unmarshal(body, &res)
		acked = append(acked, res.Revision)
	}
	for i := range 30 {
		write([]*server{a, b}[i%2], i)
	}
	// Kill A while a delivery is in flight (A or B's: both deliver).
	<-rc.busy
	<-rc.busy
	a.kill9(t)
	for i := 30; i < 45; i++ {
		write(b, i)
	}
	waitUntil(t, "every acknowledged change to reach the receiver", func() bool {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		for _, r := range acked {
			if !slices.Contains(rc.order, r) {
				return false
			}
		}
		return true
	})
	time.Sleep(500 * time.Millisecond) // a duplicate would show by now; what follows is no timing
	rc.mu.Lock()
	defer rc.mu.Unlock()
	dups := 0
	for id, n := range rc.times {
		if n > 2 {
			t.Fatalf("message %s was received %d times", id, n)
		}
		if n == 2 {
			dups++
		}
	}
	if dups > 1 {
		t.Fatalf("%d messages were received twice; only the one in flight at the kill may be", dups)
	}
	if len(rc.order) != len(acked) || !slices.IsSorted(rc.order) {
		t.Fatalf("received revisions %v, want the %d acknowledged %v, in order", rc.order, len(acked), acked)
	}
}
