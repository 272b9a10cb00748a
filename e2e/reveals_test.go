package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/pgtest"
)

// Every answered reveal is in the audit log after a kill -9 during a read
// storm: the reveals of one token, client, scope and second add up in one
// row, and a reveal is answered only once its row (or what it adds to
// one) is durable. So for each scope the counts of its reveal rows add up
// to at least the reveals answered (more when some were recorded but the
// kill came before their reply).
func TestAnsweredRevealsSurviveKill9(t *testing.T) {
	dir := t.TempDir()
	token := envy.NewTokenValue()
	s := startServer(t, dir, token)
	testRevealsKill9(t, s, token, func() *server { return startServer(t, dir, token) })
}

func TestAnsweredRevealsSurviveKill9OnPostgres(t *testing.T) {
	c := newCluster(t, pgtest.NewDatabase(t))
	victim := c.start(t)
	survivor := c.start(t)
	testRevealsKill9(t, victim, c.token, func() *server { return survivor })
}

func testRevealsKill9(t *testing.T, s *server, token string, after func() *server) {
	t.Helper()
	const scopes = 4
	for i := range scopes {
		if st, body := s.do(t, "PUT", fmt.Sprintf("/v1/scopes/e2e/reveals/s%d/-/vars/KEY", i), map[string]any{"value": "k3y-value", "secret": true}); st/100 != 2 {
			t.Fatalf("seed scope %d: %d %s", i, st, body)
		}
	}
	var (
		mu       sync.Mutex
		answered [scopes]int64
		total    int64
	)
	stop, wg := storm(16, func(client *http.Client, g, i int) bool {
		sc := (g + i) % scopes
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/v1/scopes/e2e/reveals/s%d/-/env", s.addr, sc), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("X-Request-Id", fmt.Sprintf("r-%d-%d", g, i))
		resp, err := client.Do(req)
		if err != nil {
			return false // the server is gone
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		// A reply cut by the kill is not an answer; a whole 200 is.
		if err == nil && resp.StatusCode == 200 && json.Valid(body) {
			mu.Lock()
			answered[sc]++
			total++
			mu.Unlock()
		}
		return true
	})
	killAfter(t, s, 2000, func() int {
		mu.Lock()
		defer mu.Unlock()
		return int(total)
	}, stop, wg)
	if total < 200 {
		t.Fatalf("only %d reveals were answered before the kill", total)
	}

	s2 := after()
	var rows int
	for i := range scopes {
		var recorded int64
		cursor := ""
		for {
			q := url.Values{"scope": {fmt.Sprintf("e2e/reveals/s%d", i)}, "limit": {"500"}}
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			st, body := s2.do(t, "GET", "/v1/audit?"+q.Encode(), nil)
			if st != 200 {
				t.Fatalf("audit: %d %s", st, body)
			}
			var page struct {
				Items []struct {
					Action     string    `json:"action"`
					Status     int       `json:"status"`
					Count      int64     `json:"count"`
					At         time.Time `json:"at"`
					LastAt     time.Time `json:"last_at"`
					RequestIDs []string  `json:"request_ids"`
				} `json:"items"`
				NextCursor *string `json:"next_cursor"`
			}
			if err := json.Unmarshal(body, &page); err != nil {
				t.Fatal(err)
			}
			for _, e := range page.Items {
				if e.Action != "reveal" || e.Status != 200 {
					continue
				}
				rows++
				if int64(len(e.RequestIDs)) > e.Count || len(e.RequestIDs) == 0 || e.LastAt.Before(e.At) {
					t.Fatalf("a reveal row of count %d lists %d request ids, from %v to %v", e.Count, len(e.RequestIDs), e.At, e.LastAt)
				}
				recorded += e.Count
			}
			if page.NextCursor == nil {
				break
			}
			cursor = *page.NextCursor
		}
		if recorded < answered[i] {
			t.Fatalf("scope s%d: %d reveals answered, %d in the audit log after kill -9", i, answered[i], recorded)
		}
	}
	t.Logf("%d reveals answered, all counted in %d audit rows after kill -9", total, rows)
}
