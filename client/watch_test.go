package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/internal/testenv"
)

// put writes NAME=value into scope with the admin token and returns the
// write's revision.
func put(t *testing.T, e *testenv.Env, scope, name, value string) int64 {
	t.Helper()
	r := e.Do(t, "PUT", "/v1/scopes/"+scope+"/-/vars/"+name, e.Admin, fmt.Sprintf(`{"value":%q}`, value))
	if r.Status != 200 && r.Status != 201 {
		t.Fatalf("put %s/%s: %d %s", scope, name, r.Status, r.Body)
	}
	return int64(r.JSON(t)["revision"].(float64))
}

// nextEvent waits for the next event, failing when none comes in time or
// the watch ends.
func nextEvent(t *testing.T, w *Watcher, within time.Duration) Event {
	t.Helper()
	select {
	case ev, ok := <-w.Events():
		if !ok {
			t.Fatalf("the watch ended: %v", w.Err())
		}
		return ev
	case <-time.After(within):
		t.Fatalf("no event within %s", within)
	}
	return Event{}
}

func noEvent(t *testing.T, w *Watcher, during time.Duration) {
	t.Helper()
	select {
	case ev, ok := <-w.Events():
		if ok {
			t.Fatalf("unexpected event %+v", ev)
		}
		t.Fatalf("the watch ended: %v", w.Err())
	case <-time.After(during):
	}
}

var fastRetry = WatchBackoff(20*time.Millisecond, 200*time.Millisecond)

func TestWatchReportsChangesToTheResolvedEnvIncludingInheritedScopes(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	put(t, e, "acme/base", "SHARED", "1")
	if r := e.Do(t, "PUT", "/v1/scopes/acme/app", e.Admin, `{"inherits":["acme/base"]}`); r.Status != 201 {
		t.Fatalf("put scope: %d %s", r.Status, r.Body)
	}
	c := New(e.URL, e.Admin)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env, err := c.Env(ctx, "acme/app")
	if err != nil {
		t.Fatal(err)
	}
	w, err := c.Watch(ctx, "acme/app", env.Revision)
	if err != nil {
		t.Fatal(err)
	}
	noEvent(t, w, 100*time.Millisecond) // the caller is up to date

	rev := put(t, e, "acme/base", "SHARED", "2")
	if ev := nextEvent(t, w, 5*time.Second); ev != (Event{Scope: "acme/app", Revision: rev}) {
		t.Errorf("after a write to the inherited scope: %+v, want revision %d", ev, rev)
	}
	rev = put(t, e, "acme/app", "OWN", "x")
	if ev := nextEvent(t, w, 5*time.Second); ev.Revision != rev {
		t.Errorf("after a write to the scope: %+v, want revision %d", ev, rev)
	}
	put(t, e, "acme/other", "X", "1")
	noEvent(t, w, 200*time.Millisecond)

	cancel()
	select {
	case _, ok := <-w.Events():
		if ok {
			t.Fatal("an event after cancel")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Events did not close when ctx ended")
	}
	if w.Err() != nil {
		t.Errorf("Err after cancel = %v, want nil", w.Err())
	}
}

func TestWatchGivesTheCurrentRevisionAtOnceWhenTheCallerIsBehind(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	old := put(t, e, "acme/web", "A", "1")
	put(t, e, "acme/web", "A", "2")
	cur := put(t, e, "acme/web", "A", "3")
	w, err := New(e.URL, e.Admin).Watch(t.Context(), "acme/web", old)
	if err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, w, 5*time.Second); ev.Revision != cur {
		t.Errorf("first event %+v, want the current revision %d", ev, cur)
	}
	noEvent(t, w, 200*time.Millisecond)
}

func TestWatchResumesWithLastEventIDAfterADroppedConnection(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	rev0 := put(t, e, "acme/web", "A", "0")
	p := testenv.NewProxy(t, e.URL)
	var connects, retries atomic.Int32
	w, err := New(p.URL, e.Admin).Watch(t.Context(), "acme/web", rev0, fastRetry,
		WatchOnConnect(func() { connects.Add(1) }),
		WatchOnRetry(func(error, time.Duration) { retries.Add(1) }))
	if err != nil {
		t.Fatal(err)
	}
	rev1 := put(t, e, "acme/web", "A", "1")
	if ev := nextEvent(t, w, 5*time.Second); ev.Revision != rev1 {
		t.Fatalf("event %+v, want %d", ev, rev1)
	}

	// The connection drops and the server stays out of reach while two
	// writes happen.
	p.Block()
	put(t, e, "acme/web", "A", "2")
	rev3 := put(t, e, "acme/web", "A", "3")
	deadline := time.Now().Add(5 * time.Second)
	for retries.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	p.Unblock()

	if ev := nextEvent(t, w, 5*time.Second); ev.Revision != rev3 {
		t.Errorf("after reconnecting: %+v, want one event with the current revision %d", ev, rev3)
	}
	noEvent(t, w, 300*time.Millisecond)
	if connects.Load() < 2 {
		t.Errorf("%d connections, want a reconnect", connects.Load())
	}
}

func TestWatchRefusalsAreReturned(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	put(t, e, "acme/web", "A", "1")
	put(t, e, "other/web", "A", "1")
	reader := e.Token(t, "reader", envy.Grant{Scopes: "acme/**", Actions: []envy.Action{envy.ActRead}})
	tests := []struct {
		name, token, scope, typ string
	}{
		{"an unknown token is 401", "envy_" + strings.Repeat("0", 43), "acme/web", TypeUnauthenticated},
		{"a scope that does not exist is 404", e.Admin, "acme/nope", TypeNotFound},
		{"a scope the token may not read is 404", reader, "other/web", TypeNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, err := New(e.URL, tc.token).Watch(t.Context(), tc.scope, 0, fastRetry)
			if w != nil || !IsType(err, tc.typ) {
				t.Fatalf("Watch = %v, %v; want a %s error", w, err, tc.typ)
			}
		})
	}
}

// createToken makes a token that may read acme/** and returns its id and
// plaintext.
func createToken(t *testing.T, e *testenv.Env) (id, token string) {
	t.Helper()
	r := e.Do(t, "POST", "/v1/tokens", e.Admin, `{"name":"watcher","permissions":[{"scopes":"acme/**","actions":["read"]}]}`)
	if r.Status != 201 {
		t.Fatalf("create token: %d %s", r.Status, r.Body)
	}
	m := r.JSON(t)
	return m["id"].(string), m["token"].(string)
}

func TestWatchEndsWithTheRefusalWhenTheTokenIsRevoked(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	put(t, e, "acme/web", "A", "1")
	id, tok := createToken(t, e)
	w, err := New(e.URL, tok).Watch(t.Context(), "acme/web", 0, fastRetry)
	if err != nil {
		t.Fatal(err)
	}
	if r := e.Do(t, "DELETE", "/v1/tokens/"+id, e.Admin, ""); r.Status != 200 {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	select {
	case _, ok := <-w.Events():
		if ok {
			t.Fatal("an event, want the end")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the watch did not end after the token was revoked")
	}
	if !IsType(w.Err(), TypeUnauthenticated) {
		t.Errorf("Err = %v, want unauthenticated", w.Err())
	}
}

// openStream opens a raw watch stream.
func openStream(t *testing.T, e *testenv.Env, token, scope string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", e.URL+"/v1/scopes/"+scope+"/-/watch", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 {
		t.Fatalf("watch: %d", res.StatusCode)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

// endsCleanly fails unless the stream ends, soon, with a clean EOF (the
// chunked terminator), not a broken connection.
func endsCleanly(t *testing.T, res *http.Response) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := io.ReadAll(res.Body)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("the stream broke: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not end")
	}
}

func TestTheSSEStreamEndsCleanly(t *testing.T) {
	t.Run("when the token is revoked", func(t *testing.T) {
		e := testenv.New(t, testenv.Options{})
		put(t, e, "acme/web", "A", "1")
		id, tok := createToken(t, e)
		res := openStream(t, e, tok, "acme/web")
		if r := e.Do(t, "DELETE", "/v1/tokens/"+id, e.Admin, ""); r.Status != 200 {
			t.Fatalf("revoke: %d", r.Status)
		}
		endsCleanly(t, res)
	})
	t.Run("when the server shuts down", func(t *testing.T) {
		e := testenv.New(t, testenv.Options{})
		put(t, e, "acme/web", "A", "1")
		res := openStream(t, e, e.Admin, "acme/web")
		var mu sync.Mutex
		var retryErr error
		w, err := New(e.URL, e.Admin).Watch(t.Context(), "acme/web", 0, WatchBackoff(time.Second, time.Second),
			WatchOnRetry(func(err error, _ time.Duration) {
				mu.Lock()
				defer mu.Unlock()
				if retryErr == nil {
					retryErr = err
				}
			}))
		if err != nil {
			t.Fatal(err)
		}
		e.Svc.CloseWatches() // what the server does first when it shuts down
		endsCleanly(t, res)
		// The SDK takes the end as a drop to recover from, not as the end
		// of the watch: the server is most likely restarting.
		deadline := time.Now().Add(5 * time.Second)
		for {
			mu.Lock()
			got := retryErr
			mu.Unlock()
			if got != nil {
				if !errors.Is(got, errStreamEnded) {
					t.Errorf("retry after %v, want errStreamEnded", got)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the watcher did not notice the end of the stream")
			}
			time.Sleep(10 * time.Millisecond)
		}
		select {
		case _, ok := <-w.Events():
			t.Fatalf("Events gave ok=%v; want it open and quiet while the server is away", ok)
		default:
		}
	})
}

func TestAThousandConcurrentWatchersOnOneScopeEachReceiveOneWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 connections")
	}
	const n = 1000
	// One token holds every stream here: lift the per-token cap above n.
	e := testenv.New(t, testenv.Options{HTTP: envyhttp.Options{MaxWatchesPerToken: n + 10}})
	rev0 := put(t, e, "acme/web", "A", "0")
	c := New(e.URL, e.Admin)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	watchers := make([]*Watcher, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 50) // don't open 1,000 connections in the same instant
	for i := range watchers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			w, err := c.Watch(ctx, "acme/web", rev0, WatchOnRetry(func(err error, _ time.Duration) {
				errs <- fmt.Errorf("watcher %d had to reconnect: %v", i, err)
			}))
			if err != nil {
				errs <- err
				return
			}
			watchers[i] = w
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}

	rev := put(t, e, "acme/web", "A", "1")
	var got, wrong atomic.Int32
	for _, w := range watchers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case ev := <-w.Events():
				if ev.Revision == rev {
					got.Add(1)
				} else {
					wrong.Add(1)
				}
			case <-time.After(60 * time.Second):
			}
		}()
	}
	wg.Wait()
	if got.Load() != n || wrong.Load() != 0 {
		t.Errorf("%d of %d watchers got revision %d (%d got another)", got.Load(), n, rev, wrong.Load())
	}
}

// A Client's request timeout is for requests, not for a stream meant to
// stay open.
func TestWatchOutlivesTheClientsRequestTimeout(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	rev0 := put(t, e, "acme/web", "A", "0")
	var retries atomic.Int32
	c := New(e.URL, e.Admin, WithHTTPClient(&http.Client{Timeout: 200 * time.Millisecond}))
	w, err := c.Watch(t.Context(), "acme/web", rev0, WatchOnRetry(func(error, time.Duration) { retries.Add(1) }))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	rev := put(t, e, "acme/web", "A", "1")
	if ev := nextEvent(t, w, 5*time.Second); ev.Revision != rev {
		t.Errorf("event %+v, want %d", ev, rev)
	}
	if retries.Load() != 0 {
		t.Errorf("the stream was cut %d times", retries.Load())
	}
}

// fakeStream serves scripted watch replies, one per connection, and
// records the Last-Event-ID of each.
type fakeStream struct {
	mu      sync.Mutex
	replies []func(w http.ResponseWriter)
	lastIDs []string
}

func (f *fakeStream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.lastIDs = append(f.lastIDs, r.Header.Get("Last-Event-ID"))
	i := len(f.lastIDs) - 1
	f.mu.Unlock()
	if i >= len(f.replies) {
		<-r.Context().Done()
		return
	}
	f.replies[i](w)
}

func (f *fakeStream) ids() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.lastIDs...)
}

func sse(body string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, body)
	}
}

func TestWatchReadsTheEventStreamFormat(t *testing.T) {
	f := &fakeStream{replies: []func(http.ResponseWriter){
		sse(": keepalive\n\n" +
			"event: other\ndata: {\"revision\":99}\n\n" + // not a change: ignored
			"id: 5\r\nevent: change\r\ndata: {\"scope\":\"acme/web\",\"revision\":5}\r\n\r\n" +
			"id: 4\nevent: change\ndata: {\"scope\":\"acme/web\",\"revision\":4}\n\n" + // older: ignored
			"id: 7\nevent: change\ndata:{}\n\n" + // the revision from the id
			"retry: 10\n\n"),
		func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/problem+json")
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(503)
			io.WriteString(w, `{"type":"unavailable","title":"Unavailable","status":503}`)
		},
		sse("id: 8\nevent: change\ndata: {\"scope\":\"acme/web\",\"revision\":8}\n\n"),
		func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(401)
			io.WriteString(w, `{"type":"unauthenticated","title":"Unauthenticated","status":401}`)
		},
	}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	w, err := New(srv.URL, "envy_t").Watch(t.Context(), "acme/web", 2, WatchBackoff(10*time.Millisecond, 50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for ev := range w.Events() {
		got = append(got, ev.Revision)
	}
	// Events coalesce, so a slow reader may miss 5; 7 and 8 always come.
	if len(got) < 2 || got[len(got)-2] != 7 || got[len(got)-1] != 8 {
		t.Errorf("revisions %v, want …7, 8", got)
	}
	if !IsType(w.Err(), TypeUnauthenticated) {
		t.Errorf("Err = %v, want the 401", w.Err())
	}
	if ids := f.ids(); strings.Join(ids, ",") != "2,7,7,8" {
		t.Errorf("Last-Event-ID per connection %q, want 2,7,7,8", ids)
	}
}

func TestWatchReplacesAStreamThatGoesSilent(t *testing.T) {
	f := &fakeStream{replies: []func(http.ResponseWriter){
		func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			time.Sleep(2 * time.Second) // then silence, but the connection stays up
		},
		sse("id: 3\nevent: change\ndata: {\"scope\":\"s\",\"revision\":3}\n\n"),
	}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	errs := make(chan error, 10)
	w, err := New(srv.URL, "envy_t").Watch(t.Context(), "s", 0, WatchIdleTimeout(200*time.Millisecond), fastRetry,
		WatchOnRetry(func(err error, _ time.Duration) { errs <- err }))
	if err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, w, 5*time.Second); ev.Revision != 3 {
		t.Errorf("event %+v", ev)
	}
	if err := <-errs; !errors.Is(err, errIdle) {
		t.Errorf("retry after %v, want errIdle", err)
	}
}

func TestEnvTellsWhichVarsAreSecret(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	body, _ := json.Marshal(map[string]any{"PLAIN": "p", "KEY": map[string]any{"value": "sk-1", "secret": true}})
	if r := e.Do(t, "PATCH", "/v1/scopes/acme/web/-/vars", e.Admin, string(body)); r.Status != 200 {
		t.Fatalf("merge: %d %s", r.Status, r.Body)
	}
	env, err := New(e.URL, e.Admin).Env(t.Context(), "acme/web")
	if err != nil {
		t.Fatal(err)
	}
	if !env.IsSecret("KEY") || env.IsSecret("PLAIN") || len(env.Secrets) != 1 {
		t.Errorf("Secrets = %v, want [KEY]", env.Secrets)
	}
}
