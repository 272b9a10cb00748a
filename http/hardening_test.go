package http_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/http/compat/hooksecrets"
	"github.com/envy-dev/envy/internal/testenv"
	"github.com/envy-dev/envy/service"
)

// slowRequest sends a request's head announcing a body of length bytes
// and then only its first few, as a slow client does, and returns the
// status of the reply; the reply must come without the rest of the body.
// The deadline is generous: a server that waits for the body never
// answers at all.
func slowRequest(t *testing.T, baseURL, method, path, token string, length int) (status int, closed bool) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(baseURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: envy\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", method, path, length)
	if token != "" {
		fmt.Fprintf(conn, "Authorization: Bearer %s\r\n", token)
	}
	fmt.Fprintf(conn, "\r\n{\"value\":\"")
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s: no reply while the body is still coming: %v", method, path, err)
	}
	res.Body.Close()
	return res.StatusCode, res.Close
}

func TestARequestIsRefusedBeforeItsBodyIsRead(t *testing.T) {
	e := testenv.New(t, testenv.Options{Setup: func(api *envyhttp.Server, svc *service.Service) {
		hooksecrets.Register(api, svc)
	}})
	if r := e.Do(t, "PUT", "/v1/scopes/hooks/h1", e.Admin, `{}`); r.Status != 201 {
		t.Fatal(r.Status)
	}
	reader := e.Token(t, "reader", envy.Grant{Scopes: "hooks/**", Actions: []envy.Action{envy.ActRead}})
	elsewhere := e.Token(t, "elsewhere", envy.Grant{Scopes: "other/**", Actions: []envy.Action{envy.ActRead, envy.ActWrite}})
	// Under the 256 KiB that net/http would read to discard an unread
	// body before replying, unless the reply closes the connection.
	const big = 200000
	for _, tc := range []struct {
		name, method, path, token string
		status                    int
	}{
		{"no token", "PUT", "/v1/scopes/hooks/h1/-/vars/A", "", 401},
		{"a token that is not valid", "PUT", "/v1/scopes/hooks/h1/-/vars/A", "envy_nope", 401},
		{"a token that may not see the scope", "PUT", "/v1/scopes/hooks/h1/-/vars/A", elsewhere, 404},
		{"a token that may only read", "PATCH", "/v1/scopes/hooks/h1/-/vars", reader, 403},
		{"a read-only token's rollback", "POST", "/v1/scopes/hooks/h1/-/rollback", reader, 403},
		{"a consumer report to a hidden scope", "PUT", "/v1/scopes/hooks/h1/-/consumers/c1", elsewhere, 404},
		{"a dialect write without a token", "POST", "/api/v2/hooks/h1/secrets", "", 401},
		{"a dialect write by a reader", "POST", "/api/v2/hooks/h1/secrets", reader, 403},
		{"a dialect write to a hidden hook", "PATCH", "/api/v2/hooks/h1/secrets", elsewhere, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, closed := slowRequest(t, e.URL, tc.method, tc.path, tc.token, big)
			if status != tc.status {
				t.Errorf("status %d, want %d", status, tc.status)
			}
			if !closed {
				t.Error("the reply keeps the connection, whose body is still coming")
			}
		})
	}
	// The refusals are audited as the service audits its own.
	r := e.Do(t, "GET", "/v1/audit?scope=hooks/h1", e.Admin, "")
	for _, action := range []string{`"action":"vars.merge"`, `"action":"scope.rollback"`, `"action":"hooksecrets.write"`} {
		if !strings.Contains(string(r.Body), action) {
			t.Errorf("the audit lacks the refusal %s: %s", action, r.Body)
		}
	}
}

func TestPathsAreNeverCleanedOrRedirected(t *testing.T) {
	e := testenv.New(t, testenv.Options{Setup: func(api *envyhttp.Server, svc *service.Service) {
		hooksecrets.Register(api, svc)
	}})
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	send := func(method, rawPath, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, e.URL+"/", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.URL.Opaque = rawPath // sent as it is, never cleaned by the client
		req.Header.Set("Authorization", "Bearer "+e.Admin)
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var b strings.Builder
		bufio.NewReader(res.Body).WriteTo(&b)
		return res.StatusCode, b.String()
	}
	for _, p := range []string{
		"/v1/scopes/acme/../etc/-/vars/A",
		"/v1/scopes/acme/./etc/-/vars/A",
		"/v1/scopes/acme//etc/-/vars/A",
		"/v1/scopes/acme/%2e%2e/etc/-/vars/A",
		"/v1/scopes/acme%2F..%2Fetc/-/vars/A",
		"/v1/scopes/acme%2F%2Fetc/-/vars/A",
	} {
		status, body := send("PUT", p, `{"value":"x"}`)
		if status != 422 || !strings.Contains(body, `"loc":"path"`) || !strings.Contains(body, "/v1/scopes/acme/") {
			t.Errorf("PUT %s: %d %s, want 422 naming the path", p, status, body)
		}
	}
	if r := e.Do(t, "GET", "/v1/scopes/etc", e.Admin, ""); r.Status != 404 {
		t.Errorf("a refused path reached scope etc: %d", r.Status)
	}
	t.Run("an encoded slash in the native API is a slash", func(t *testing.T) {
		if status, body := send("PUT", "/v1/scopes/acme%2Fweb/-/vars/A", `{"value":"x"}`); status != 201 {
			t.Fatalf("%d %s", status, body)
		}
		if r := e.Do(t, "GET", "/v1/scopes/acme/web/-/vars/A", e.Admin, ""); r.Status != 200 {
			t.Errorf("acme%%2Fweb is not acme/web: %d", r.Status)
		}
	})
	t.Run("under a dialect's prefix the refusal is in its envelope", func(t *testing.T) {
		status, body := send("GET", "/api/v2/hooks/../secrets", "")
		if status != 400 || !strings.Contains(body, `"errorCode":"invalid_body"`) {
			t.Errorf("%d %s", status, body)
		}
	})
	t.Run("a dialect's one-segment id refuses an encoded slash", func(t *testing.T) {
		if r := e.Do(t, "PUT", "/v1/scopes/hooks/a/b", e.Admin, `{}`); r.Status != 201 {
			t.Fatal(r.Status)
		}
		for _, p := range []string{"/api/v2/hooks/a%2Fb/secrets", "/api/v2/hooks/a%2fb/secrets"} {
			status, body := send("POST", p, `{"K":"v"}`)
			if status != 400 || !strings.Contains(body, `a/b`) || !strings.Contains(body, "one path segment") {
				t.Errorf("POST %s: %d %s", p, status, body)
			}
		}
		if r := e.Do(t, "GET", "/v1/scopes/hooks/a/b/-/vars", e.Admin, ""); strings.Contains(string(r.Body), `"K"`) {
			t.Error("an encoded slash reached hooks/a/b")
		}
	})
}

// openCappedWatch opens a watch stream and returns its status and a func that
// closes it.
func openCappedWatch(t *testing.T, e *testenv.Env, token string) (int, string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.URL+"/v1/scopes/acme/web/-/watch", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if res.StatusCode != 200 {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		cancel()
		return res.StatusCode, string(b), func() {}
	}
	return 200, "", func() { cancel(); res.Body.Close() }
}

func TestWatchStreamsPerTokenAreCapped(t *testing.T) {
	e := testenv.New(t, testenv.Options{HTTP: envyhttp.Options{MaxWatchesPerToken: 2}})
	if r := e.Do(t, "PUT", "/v1/scopes/acme/web", e.Admin, `{}`); r.Status != 201 {
		t.Fatal(r.Status)
	}
	alice := e.Token(t, "alice", envy.Grant{Scopes: "acme/**", Actions: []envy.Action{envy.ActRead}})
	bob := e.Token(t, "bob", envy.Grant{Scopes: "acme/**", Actions: []envy.Action{envy.ActRead}})
	_, _, close1 := openCappedWatch(t, e, alice)
	_, _, close2 := openCappedWatch(t, e, alice)
	defer close2()
	status, body, _ := openCappedWatch(t, e, alice)
	if status != 429 || !strings.Contains(body, "2 watch streams") || !strings.Contains(body, "--max-watches-per-token") {
		t.Fatalf("a third stream: %d %s, want 429 saying why", status, body)
	}
	if status, body, closeBob := openCappedWatch(t, e, bob); status != 200 {
		t.Errorf("another token is refused: %d %s", status, body)
	} else {
		defer closeBob()
	}
	// Closing a stream makes room again, once the server sees it closed.
	close1()
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, _, closeAgain := openCappedWatch(t, e, alice)
		if status == 200 {
			closeAgain()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no room after closing a stream: %d", status)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAWatchStreamEndsWhenItsTokenExpires(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	if r := e.Do(t, "PUT", "/v1/scopes/acme/web", e.Admin, `{}`); r.Status != 201 {
		t.Fatal(r.Status)
	}
	r := e.Do(t, "POST", "/v1/tokens", e.Admin, `{"name":"brief","expires_in":"2s","permissions":[{"scopes":"acme/**","actions":["read"]}]}`)
	tok, _ := r.JSON(t)["token"].(string)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.URL+"/v1/scopes/acme/web/-/watch", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("%v %v", res, err)
	}
	defer res.Body.Close()
	// The stream ends by itself; the test's own deadline is far beyond.
	if _, err := io.Copy(io.Discard, res.Body); err != nil {
		t.Fatalf("the stream did not end when its token expired: %v", err)
	}
}

func TestASlowBodyOfAnAllowedWriteTimesOut(t *testing.T) {
	e := testenv.New(t, testenv.Options{HTTP: envyhttp.Options{BodyTimeout: 100 * time.Millisecond}})
	status, closed := slowRequest(t, e.URL, "PUT", "/v1/scopes/acme/web/-/vars/A", e.Admin, 200000)
	if status != 400 || !closed {
		t.Errorf("status %d, closed %v; want 400 and the connection closed", status, closed)
	}
}

func TestOpenConnectionsAreCappedAndHealthStillAnswers(t *testing.T) {
	e := testenv.New(t, testenv.Options{HTTP: envyhttp.Options{MaxConns: 2}})
	ts := httptest.NewUnstartedServer(e.API.Handler())
	ts.Listener = e.API.Listener(ts.Listener)
	ts.Config.ConnContext = e.API.ConnContext
	ts.Start()
	defer ts.Close()
	addr := strings.TrimPrefix(ts.URL, "http://")

	// get sends one request on a kept-alive connection.
	get := func(conn net.Conn, path string) *http.Response {
		t.Helper()
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: envy\r\nAuthorization: Bearer %s\r\n\r\n", path, e.Admin)
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res
	}
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	first, second := dial(), dial()
	for _, c := range []net.Conn{first, second} {
		if res := get(c, "/v1/tokens/self"); res.StatusCode != 200 {
			t.Fatalf("under the cap: %d", res.StatusCode)
		}
	}
	if res := get(dial(), "/v1/tokens/self"); res.StatusCode != 503 || !res.Close || res.Header.Get("Retry-After") == "" {
		t.Errorf("over the cap: %d close=%v %v, want 503 closing the connection", res.StatusCode, res.Close, res.Header)
	}
	for _, p := range []string{"/healthz", "/metrics"} {
		c := dial()
		if res := get(c, p); res.StatusCode != 200 {
			t.Errorf("%s over the cap: %d", p, res.StatusCode)
		}
		c.Close()
	}
	if logs := e.Logs.String(); !strings.Contains(logs, "connection cap reached") || !strings.Contains(logs, "--max-conns") {
		t.Errorf("no log line says the cap was hit: %s", logs)
	}
	// Once a connection closes, a new one is served again.
	first.Close()
	deadline := time.Now().Add(30 * time.Second)
	for get(dial(), "/v1/tokens/self").StatusCode != 200 {
		if time.Now().After(deadline) {
			t.Fatal("no connection served after one closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A body that names a member twice is refused 400 naming it, in the
// native API and in a dialect (one reader serves both), and writes nothing.
func TestABodyThatNamesAMemberTwiceIsRefusedNamingIt(t *testing.T) {
	e := testenv.New(t, testenv.Options{Setup: func(api *envyhttp.Server, svc *service.Service) {
		hooksecrets.Register(api, svc)
	}})
	if r := e.Do(t, "PUT", "/v1/scopes/hooks/h1", e.Admin, `{}`); r.Status != 201 {
		t.Fatal(r.Status)
	}
	r := e.Do(t, "PUT", "/v1/scopes/hooks/h1/-/vars/A", e.Admin, `{"value":"first","value":"second"}`, "Content-Type", "application/json")
	if r.Status != 400 || !strings.Contains(string(r.Body), `value`) || !strings.Contains(string(r.Body), "more than once") {
		t.Fatalf("native PUT with value twice: %d %s; want 400 naming the member", r.Status, r.Body)
	}
	r = e.Do(t, "POST", "/api/v2/hooks/h1/secrets", e.Admin, `{"B":"1","B":"2"}`)
	if r.Status != 400 || !strings.Contains(string(r.Body), `B`) {
		t.Fatalf("dialect PATCH with B twice: %d %s; want 400 naming the member", r.Status, r.Body)
	}
	if r := e.Do(t, "GET", "/v1/scopes/hooks/h1/-/vars", e.Admin, ""); strings.Contains(string(r.Body), `"name"`) {
		t.Errorf("a refused body wrote something: %s", r.Body)
	}
}

// The cap on watch streams is a lineage's, as the rate limit is: the
// tokens a token mints (or a sign-in mints for it) do not each bring
// their own.
func TestWatchStreamsAreCappedPerLineage(t *testing.T) {
	e := testenv.New(t, testenv.Options{HTTP: envyhttp.Options{MaxWatchesPerToken: 2}})
	if r := e.Do(t, "PUT", "/v1/scopes/acme/web", e.Admin, `{}`); r.Status != 201 {
		t.Fatal(r.Status)
	}
	team := e.Token(t, "team", envy.Grant{Scopes: "acme/**", Actions: []envy.Action{envy.ActAdmin}})
	r := e.Do(t, "POST", "/v1/tokens", team, `{"name":"team-child","permissions":[{"scopes":"acme/**","actions":["read"]}]}`)
	child, _ := r.JSON(t)["token"].(string)
	if r.Status != 201 || child == "" {
		t.Fatalf("mint a child: %d %s", r.Status, r.Body)
	}
	_, _, close1 := openCappedWatch(t, e, team)
	defer close1()
	_, _, close2 := openCappedWatch(t, e, team)
	defer close2()
	status, body, closeChild := openCappedWatch(t, e, child)
	defer closeChild()
	if status != 429 || !strings.Contains(body, "lineage") {
		t.Fatalf("a third stream of the lineage, through a child token: %d %s, want 429", status, body)
	}
}
