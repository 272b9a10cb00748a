package http_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/internal/testenv"
	"github.com/envy-dev/envy/service"
	"github.com/envy-dev/envy/web"
)

// cappedServer serves e's API through its Listener (the connection caps)
// on loopback, with the http.Server settings of `envy server`.
func cappedServer(t *testing.T, e *testenv.Env, readTimeout time.Duration) string {
	t.Helper()
	ts := httptest.NewUnstartedServer(e.API.Handler())
	ts.Listener = e.API.Listener(ts.Listener)
	ts.Config.ConnContext = e.API.ConnContext
	ts.Config.ReadHeaderTimeout = 10 * time.Second
	ts.Config.ReadTimeout = readTimeout
	ts.Config.RegisterOnShutdown(e.Svc.CloseWatches)
	ts.Start()
	t.Cleanup(func() {
		e.Svc.CloseWatches()
		ts.Close()
	})
	return strings.TrimPrefix(ts.URL, "http://")
}

// serverCloses reports whether the server closes conn (the client sends
// nothing more) within a deadline far beyond what closing takes.
func serverCloses(conn net.Conn, rd *bufio.Reader) error {
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.Copy(io.Discard, rd)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	return nil
}

// A reply that leaves its request's body unread does not keep the
// connection to discard the body: a client that announces a body and
// sends a byte now and then holds no connection after its reply, so a
// few of them can't fill a small server.
func TestARepliedRequestsUnreadBodyDoesNotHoldTheConnection(t *testing.T) {
	e := testenv.New(t, testenv.Options{HTTP: envyhttp.Options{MaxConns: 2}, Setup: func(api *envyhttp.Server, svc *service.Service) {
		web.Mount(api, svc, web.Options{})
	}})
	addr := cappedServer(t, e, 0)
	for _, tc := range []struct {
		name, method, path, token string
		status                    int
	}{
		{"/healthz with a body", "GET", "/healthz", "", 200},
		{"no token", "PUT", "/v1/scopes/acme/-/vars/A", "", 401},
		{"no such route", "POST", "/v1/nothing", e.Admin, 404},
		{"a method the route does not serve", "POST", "/v1/tokens/self", e.Admin, 405},
		{"a dashboard page without a session", "POST", "/ui/scopes", "", 303},
	} {
		func() {
			// Two at once, as many as the server serves.
			for range 2 {
				conn, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: envy\r\nContent-Type: application/json\r\nContent-Length: 200000\r\n", tc.method, tc.path)
				if tc.token != "" {
					fmt.Fprintf(conn, "Authorization: Bearer %s\r\n", tc.token)
				}
				fmt.Fprintf(conn, "\r\n{\"a\":\"")
				conn.SetReadDeadline(time.Now().Add(10 * time.Second))
				rd := bufio.NewReader(conn)
				res, err := http.ReadResponse(rd, nil)
				if err != nil {
					t.Fatalf("%s: no reply while the body is still coming: %v", tc.name, err)
				}
				if res.StatusCode != tc.status {
					t.Errorf("%s: status %d, want %d", tc.name, res.StatusCode, tc.status)
				}
				if !res.Close {
					t.Errorf("%s: the reply keeps the connection, whose body is still coming", tc.name)
				}
				if err := serverCloses(conn, rd); err != nil {
					t.Fatalf("%s: the server still holds the connection 5 s after its reply, waiting for an unread body: %v", tc.name, err)
				}
			}
			// And the server serves others.
			req, _ := http.NewRequest("GET", "http://"+addr+"/v1/tokens/self", nil)
			req.Header.Set("Authorization", "Bearer "+e.Admin)
			req.Close = true // keeps no connection for the next case
			res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
			if err != nil {
				t.Fatalf("%s: an authenticated call after the slow clients' replies: %v", tc.name, err)
			}
			res.Body.Close()
			if res.StatusCode != 200 {
				t.Fatalf("%s: an authenticated call after the slow clients' replies: %d, want 200", tc.name, res.StatusCode)
			}
		}()
	}
}

// A dashboard form has --body-timeout to arrive, as an API body has.
func TestADashboardFormHasTheBodyTimeout(t *testing.T) {
	e := testenv.New(t, testenv.Options{HTTP: envyhttp.Options{BodyTimeout: 200 * time.Millisecond}, Setup: func(api *envyhttp.Server, svc *service.Service) {
		web.Mount(api, svc, web.Options{})
	}})
	addr := strings.TrimPrefix(e.URL, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /ui/signin HTTP/1.1\r\nHost: envy\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 60000\r\n\r\ntoken=envy_")
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	rd := bufio.NewReader(conn)
	res, err := http.ReadResponse(rd, nil)
	if err != nil {
		t.Fatalf("no reply to a sign-in form that does not arrive: its body has no timeout: %v", err)
	}
	if res.StatusCode != 400 || !res.Close {
		t.Errorf("a form that did not arrive in time: %d, close %v; want 400 closing the connection", res.StatusCode, res.Close)
	}
	if err := serverCloses(conn, rd); err != nil {
		t.Fatalf("the server holds the connection after refusing the form: %v", err)
	}
}

// One client address holds at most MaxConnsPerClient connections: one
// beyond is closed at once, and logged; once one of its own closes, it is
// served again.
func TestConnectionsPerClientAreCapped(t *testing.T) {
	e := testenv.New(t, testenv.Options{HTTP: envyhttp.Options{MaxConnsPerClient: 2}})
	addr := cappedServer(t, e, 0)
	get := func(conn net.Conn) (int, error) {
		fmt.Fprintf(conn, "GET /v1/tokens/self HTTP/1.1\r\nHost: envy\r\nAuthorization: Bearer %s\r\n\r\n", e.Admin)
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode, nil
	}
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	first, second := dial(), dial()
	for _, c := range []net.Conn{first, second} {
		if st, err := get(c); st != 200 {
			t.Fatalf("under the per-client cap: %d %v", st, err)
		}
	}
	third := dial()
	if st, err := get(third); err == nil {
		t.Fatalf("a 3rd connection of a client capped at 2 was served (%d): one client can fill the server", st)
	} else if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a 3rd connection of a client capped at 2 is held, not closed: %v", err)
	}
	// The listener logs the refusal from its own goroutine: wait for it.
	for logDeadline := time.Now().Add(10 * time.Second); !strings.Contains(e.Logs.String(), "--max-conns-per-client"); {
		if time.Now().After(logDeadline) {
			t.Fatalf("no log line names the per-client cap within 10 s: %s", e.Logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	first.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st, _ := get(dial()); st == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no new connection of the client served 10 s after one of its own closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The server's ReadTimeout bounds a request's head and body, never a
// watch stream: a stream open longer than it still hears a change.
func TestAWatchOutlivesTheReadTimeout(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	addr := cappedServer(t, e, 300*time.Millisecond)
	if r := e.Do(t, "PUT", "/v1/scopes/acme/web", e.Admin, `{}`); r.Status != 201 {
		t.Fatal(r.Status)
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/v1/scopes/acme/web/-/watch", nil)
	req.Header.Set("Authorization", "Bearer "+e.Admin)
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("watch: %v %v", res, err)
	}
	defer res.Body.Close()
	time.Sleep(1 * time.Second) // over three ReadTimeouts
	if r := e.Do(t, "PUT", "/v1/scopes/acme/web/-/vars/A", e.Admin, `{"value":"1"}`); r.Status != 201 {
		t.Fatalf("write: %d %s", r.Status, r.Body)
	}
	got := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "event: change") {
				got <- sc.Text()
				return
			}
		}
		got <- "the stream ended: " + fmt.Sprint(sc.Err())
	}()
	select {
	case line := <-got:
		if line != "event: change" {
			t.Fatalf("a watch open longer than the server's ReadTimeout: %s", line)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no change event 20 s after the write, on a watch open longer than the ReadTimeout")
	}
}
