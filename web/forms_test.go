package web

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/http/wire"
	"github.com/envy-dev/envy/internal/testenv"
)

// rawPost sends the head of a form post as b's session, with a
// Content-Length of size, and then body (which may be shorter: the rest is
// never sent); it returns the connection, the rest of the body unsent.
func rawPost(t *testing.T, e *testEnv, b *browser, path string, size int, body string) net.Conn {
	t.Helper()
	u, _ := url.Parse(e.URL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var cookies []string
	at, _ := url.Parse(e.URL + path)
	for _, c := range b.client.Jar.Cookies(at) {
		cookies = append(cookies, c.Name+"="+c.Value)
	}
	head := "POST " + path + " HTTP/1.1\r\nHost: " + u.Host + "\r\nContent-Type: application/x-www-form-urlencoded\r\n" +
		"Cookie: " + strings.Join(cookies, "; ") + "\r\nContent-Length: " + strconv.Itoa(size) + "\r\n\r\n"
	if _, err := io.WriteString(conn, head+body); err != nil {
		t.Fatal(err)
	}
	return conn
}

// readReply reads the reply on conn, waiting at most wait.
func readReply(t *testing.T, conn net.Conn, wait time.Duration) (*http.Response, string) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(wait))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no reply within %s: %v", wait, err)
	}
	data, _ := io.ReadAll(res.Body)
	return res, string(data)
}

// A dashboard form larger than its limit is refused 413, naming the
// limit, before its body is read (here, before it is sent): FormBytes for
// the forms of a session, the import's own bound (ImportBytes) for an
// import preview, whose pasted file may be larger than FormBytes.
func TestADashboardFormOverItsLimitIsRefusedUnread(t *testing.T) {
	const importBytes = 2 << 20
	e := newTestEnv(t, false, Options{ImportBytes: importBytes})
	if _, _, err := e.Svc.PutScope(e.asToken(t, e.Admin), "acme", envy.ScopeInput{}, envy.Cond{}); err != nil {
		t.Fatal(err)
	}
	b := e.browser(t)
	csrf := b.signIn(e.Admin)
	for _, c := range []struct {
		path  string
		limit int
		also  string
	}{
		{"/ui/scopes", FormBytes, ""},
		{"/ui/scopes/acme/-/vars", FormBytes, ""},
		{"/ui/scopes/acme/-/import", importBytes, "--max-import-bytes"},
	} {
		conn := rawPost(t, e, b, c.path, c.limit+1, "csrf="+csrf+"&")
		res, body := readReply(t, conn, 5*time.Second)
		want := "(" + strconv.Itoa(c.limit) + " bytes)"
		if res.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, want) || !strings.Contains(body, c.also) {
			t.Errorf("%s: a form of %d bytes: %d, want 413 naming %s %s\n%.2000s", c.path, c.limit+1, res.StatusCode, want, c.also, body)
		}
		if !res.Close {
			t.Errorf("%s: the connection of a form refused unread is kept", c.path)
		}
	}
	// A pasted file over FormBytes, within the import's bound, is
	// previewed.
	var file strings.Builder
	for i := 0; file.Len() <= FormBytes; i++ {
		file.WriteString("V" + strconv.Itoa(i) + "=" + strings.Repeat("x", 65000) + "\n")
	}
	if p := b.post("/ui/scopes/acme/-/import", url.Values{"csrf": {csrf}, "dotenv": {file.String()}}); p.Status != http.StatusOK || !strings.Contains(p.Body, "Apply import") {
		t.Errorf("an import preview of %d bytes (the bound %d): %d\n%.2000s", file.Len(), importBytes, p.Status, p.Body)
	}
}

// FormBytes has room for the largest var form: a value of MaxValueLen
// characters of 4 bytes, the value it was loaded with as long, and a
// description of MaxDescription such characters.
func TestTheLargestVarFormFits(t *testing.T) {
	was := strings.Repeat("😀", envy.MaxValueLen)
	e, _, b, csrf := onScopePage(t, "BIG", was)
	f := formOf(t, b.get("/ui/scopes/acme/app").Body, `class="stack edit-form"`)
	if f.Get("value_was") != was {
		t.Fatalf("the edit form's value_was is not the value (%d bytes)", len(f.Get("value_was")))
	}
	now := strings.Repeat("😃", envy.MaxValueLen)
	f.Set("csrf", csrf)
	f.Set("value", now)
	f.Set("description", strings.Repeat("é", envy.MaxDescription))
	if n := len(f.Encode()); n < 2*envy.MaxValueLen*4*3 {
		t.Fatalf("the form is %d bytes: not the largest var form", n)
	}
	if res := b.post("/ui/scopes/acme/app/-/vars", f); res.Status != http.StatusSeeOther {
		t.Fatalf("the largest var form: %d\n%.2000s", res.Status, res.Body)
	}
	if got := varValue(t, e, "BIG"); got != now {
		t.Errorf("stored %d bytes, want the new value", len(got))
	}
}

// Dashboard forms take room in the bytes of bodies in flight
// (--max-body-in-flight) as API bodies do: a form that finds no room
// waits for it (up to --body-timeout, then 503, as an API body), and is
// read once the body that held the room is gone.
func TestDashboardFormsWaitForRoomInTheBodiesInFlight(t *testing.T) {
	const budget = 128 << 10
	e := newTestEnvWith(t, false, Options{}, testenv.Options{HTTP: envyhttp.Options{
		MaxBody: budget, MaxBodyBytesInFlight: budget, BodyTimeout: 10 * time.Second}})
	b := e.browser(t)
	csrf := b.signIn(e.Admin)
	// A holds 120 KiB of the 128: its body is still coming.
	head := "csrf=" + csrf + "&path=acme/a&description="
	a := rawPost(t, e, b, "/ui/scopes", budget, head+strings.Repeat("a", 120<<10))
	time.Sleep(300 * time.Millisecond) // the server reads what came

	// B's 20 KiB find no room: B waits while A holds it.
	done := make(chan page, 1)
	go func() {
		done <- b.post("/ui/scopes", url.Values{"csrf": {csrf}, "path": {"acme/b"}, "pad": {strings.Repeat("b", 20<<10)}})
	}()
	select {
	case p := <-done:
		t.Fatalf("a form was answered (%d) while the bodies in flight had no room for it", p.Status)
	case <-time.After(500 * time.Millisecond):
	}
	// A goes: its room comes back, and B is read.
	a.Close()
	select {
	case p := <-done:
		if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/ui/scopes/acme/b" {
			t.Fatalf("B once A went: %d %q\n%.2000s", p.Status, p.Header.Get("Location"), p.Body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("B was not answered 5s after A went")
	}
}

// A form that finds no room in the bodies in flight is answered as the
// API answers such a body: 503, retry after a second.
func TestAFormWithNoRoomIsToldToRetry(t *testing.T) {
	w := httptest.NewRecorder()
	status, msg := formFailed(w, httptest.NewRequest("POST", "/ui/scopes", nil), wire.NoRoom())
	if status != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "1" || !strings.Contains(msg, "retry") {
		t.Errorf("no room: %d %q (Retry-After %q), want 503 saying to retry, Retry-After 1", status, msg, w.Header().Get("Retry-After"))
	}
}
