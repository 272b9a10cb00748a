package web

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	envyhttp "github.com/envy-dev/envy/http"
)

// openStream opens a GET that streams (no client timeout; the test's
// context ends it) and returns the response with its first line read
// when it is 200.
func openStream(t *testing.T, ctx context.Context, client *http.Client, url, token string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("Accept", "text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

// The dashboard's event streams count against --max-watches-per-token,
// in the same count as the API's watch streams.
func TestTheDashboardsEventStreamsCountAgainstTheWatchCap(t *testing.T) {
	e := newTestEnvHTTP(t, false, Options{}, envyhttp.Options{MaxWatchesPerToken: 2})
	ctx := e.asToken(t, e.Admin)
	if _, _, err := e.Svc.SetVar(ctx, "acme/web", "A", envyVar("1", false), setOpts()); err != nil {
		t.Fatal(err)
	}
	_, plain := e.mint(t, "watcher", "acme/** read")
	b := e.browser(t)
	b.signIn(plain)
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := &http.Client{Jar: b.client.Jar}
	events := e.URL + "/ui/scopes/acme/web/-/events"
	for i := range 2 {
		res := openStream(t, sctx, client, events, "")
		if res.StatusCode != http.StatusOK {
			t.Fatalf("event stream %d of 2: %d", i+1, res.StatusCode)
		}
		if line, err := bufio.NewReader(res.Body).ReadString('\n'); err != nil || line != "event: status\n" {
			t.Fatalf("event stream %d: first line %q, %v", i+1, line, err)
		}
	}
	res := openStream(t, sctx, client, events, "")
	if res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a 3rd event stream of a token capped at 2: %d, want 429: the dashboard's streams escape --max-watches-per-token", res.StatusCode)
	}
	var body strings.Builder
	bufio.NewReader(res.Body).WriteTo(&body)
	if !strings.Contains(body.String(), "--max-watches-per-token") {
		t.Errorf("the refusal does not name the flag: %q", body.String())
	}
	// The same count: the token's native watch is refused too.
	w := openStream(t, sctx, http.DefaultClient, e.URL+"/v1/scopes/acme/web/-/watch", plain)
	if w.StatusCode != http.StatusTooManyRequests {
		t.Errorf("a native watch of a token holding 2 event streams: %d, want 429 (one count for both)", w.StatusCode)
	}
}
