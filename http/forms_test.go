package http

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// formEnv is a server with a route that reads a form through ParseForm
// (as the dashboard's forms are read), at most limit bytes; a form with
// hold=1 keeps its handler, and the form it read, until release is
// closed, having said so on held.
type formEnv struct {
	*testEnv
	held    chan struct{}
	release chan struct{}
	once    sync.Once
}

func newFormEnv(t *testing.T, opts Options, limit int64) *formEnv {
	t.Helper()
	e := &formEnv{testEnv: newTestEnv(t, opts), held: make(chan struct{}, 8), release: make(chan struct{})}
	// Before the server closes, which waits for its handlers: a test that
	// failed holding one lets it go.
	t.Cleanup(e.letGo)
	e.Srv.Handle("POST /form", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := e.Srv.ParseForm(w, r, limit); err != nil {
			e.Srv.WriteError(w, r, err)
			return
		}
		if r.PostFormValue("hold") == "1" {
			e.held <- struct{}{}
			<-e.release
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	return e
}

// letGo releases the handlers held (once).
func (e *formEnv) letGo() { e.once.Do(func() { close(e.release) }) }

// postForm posts a form of about size bytes (its field f is that long).
func (e *formEnv) postForm(t *testing.T, size int, hold bool) (*http.Response, error) {
	t.Helper()
	v := url.Values{"f": {strings.Repeat("a", size)}}
	if hold {
		v.Set("hold", "1")
	}
	res, err := http.Post(e.URL+"/form", "application/x-www-form-urlencoded", strings.NewReader(v.Encode()))
	if err == nil {
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	return res, err
}

// A dashboard form's body is read as an API body is: it takes room in the
// bytes of bodies in flight (--max-body-in-flight) until its request ends,
// and a form that finds no room waits for it, up to the body timeout, then
// is refused 503 with a Retry-After, as an API body is.
func TestFormsTakeRoomInTheBodiesInFlight(t *testing.T) {
	const budget = 64 << 10
	e := newFormEnv(t, Options{MaxBody: budget, MaxBodyBytesInFlight: budget, BodyTimeout: time.Second}, budget)
	// A holds 60 KiB of the 64 until it is released.
	doneA := make(chan *http.Response, 1)
	go func() {
		res, err := e.postForm(t, 60<<10, true)
		if err != nil {
			t.Errorf("A: %v", err)
		}
		doneA <- res
	}()
	<-e.held

	// B's 10 KiB find no room: it waits the body timeout, then is refused.
	start := time.Now()
	res, err := e.postForm(t, 10<<10, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Fatalf("a form with no room in the bodies in flight: %d (Retry-After %q) after %s, want 503 with a Retry-After",
			res.StatusCode, res.Header.Get("Retry-After"), time.Since(start).Round(time.Millisecond))
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("the form was refused after %s: it did not wait the body timeout (1s) for room", d)
	}

	// C, sent while A holds, waits; A ends, and C gets its room.
	doneC := make(chan *http.Response, 1)
	go func() {
		res, err := e.postForm(t, 10<<10, false)
		if err != nil {
			t.Errorf("C: %v", err)
		}
		doneC <- res
	}()
	select {
	case res := <-doneC:
		t.Fatalf("a form answered %v while the bodies in flight had no room for it", res.StatusCode)
	case <-time.After(200 * time.Millisecond):
	}
	e.letGo()
	if res := <-doneA; res == nil || res.StatusCode != http.StatusNoContent {
		t.Fatalf("A: %v", res)
	}
	if res := <-doneC; res == nil || res.StatusCode != http.StatusNoContent {
		t.Fatalf("C, once A ended: %v, want 204", res)
	}
}

// A form that says it is larger than its limit is refused 413, naming the
// limit, before any of its body is read (or sent); one that does not say
// is refused once past the limit. The limit is never more than MaxBody.
func TestAFormOverItsLimitIsRefusedWithoutReadingIt(t *testing.T) {
	e := newFormEnv(t, Options{MaxBody: 1 << 20}, 1000)
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The head alone: the body is never sent.
	io.WriteString(conn, "POST /form HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no reply to a form over its limit, whose body was not sent: %v", err)
	}
	msg, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(msg), "(1000 bytes)") {
		t.Fatalf("%d %s, want 413 naming the limit (1000 bytes)", res.StatusCode, msg)
	}
	if !res.Close {
		t.Errorf("the connection of a form refused unread is kept")
	}

	// Chunked, it is refused once past the limit.
	req, _ := http.NewRequest("POST", e.URL+"/form", io.MultiReader(strings.NewReader("f="), strings.NewReader(strings.Repeat("a", 5000))))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a chunked form over its limit: %d, want 413", r2.StatusCode)
	}

	// A limit above MaxBody is MaxBody.
	big := newFormEnv(t, Options{MaxBody: 4096}, 1<<20)
	if res, err := big.postForm(t, 5000, false); err != nil || res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a form over MaxBody, under its own limit: %v %v, want 413", res, err)
	}
	if res, err := big.postForm(t, 4000, false); err != nil || res.StatusCode != http.StatusNoContent {
		t.Errorf("a form under MaxBody: %v %v, want 204", res, err)
	}
}
