package http_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/auditstream"
	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/internal/testenv"
	"github.com/envy-dev/envy/service"
)

// streamEnv starts a server whose audit streams are specs (stdout goes to
// the returned buffer).
func streamEnv(t *testing.T, specs ...string) (*testenv.Env, *auditstream.Set, *testenv.Buffer) {
	t.Helper()
	out := &testenv.Buffer{}
	set, err := auditstream.Open(specs, auditstream.Options{View: envyhttp.AuditView, Stdout: out, Retry: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// Closed after the server (cleanups run last first), once the
	// service has flushed its audit entries.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		set.Close(ctx)
	})
	e := testenv.New(t, testenv.Options{Service: service.Options{AuditStream: set}})
	e.Reg.MustRegister(set)
	return e, set, out
}

// poll retries until ok, failing the test after a generous deadline.
func poll(t *testing.T, what string, ok func() bool) {
	t.Helper()
	end := time.Now().Add(15 * time.Second)
	for !ok() {
		if time.Now().After(end) {
			t.Fatalf("not within 15s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// An audit file that can no longer be written (its directory made a
// file: that fails for root too) makes writes and reveals 503 with
// Retry-After, and /readyz say which stream and why, while reads that
// need no audit go on; once the directory can be made again, the stream
// recovers by itself and writes what waited.
func TestAnUnwritableAuditStreamRefusesWritesAndRevealsUntilItRecovers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	path := filepath.Join(dir, "audit.jsonl")
	e, _, _ := streamEnv(t, "file:"+path)
	s := "/v1/scopes/acme/web"
	if r := e.Do(t, "PUT", s+"/-/vars/KEY", e.Admin, `{"value":"v1","secret":true}`); r.Status != 201 {
		t.Fatalf("write: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "GET", s+"/-/vars/KEY?reveal=true", e.Admin, ""); r.Status != 200 {
		t.Fatalf("reveal: %d %s", r.Status, r.Body)
	}

	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("in the way"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The stream finds out at its next write; from then on both are refused.
	poll(t, "a reveal is refused once the stream fails", func() bool {
		return e.Do(t, "GET", s+"/-/vars/KEY?reveal=true", e.Admin, "").Status == 503
	})
	for _, r := range []testenv.Response{
		e.Do(t, "GET", s+"/-/vars/KEY?reveal=true", e.Admin, ""),
		e.Do(t, "GET", s+"/-/env", e.Admin, ""),
		e.Do(t, "PUT", s+"/-/vars/KEY", e.Admin, `{"value":"v2"}`),
		e.Do(t, "POST", "/v1/tokens", e.Admin, `{"name":"new","permissions":[{"scopes":"**","actions":["read"]}]}`),
	} {
		if r.Status != 503 || r.Header.Get("Retry-After") == "" || !strings.Contains(string(r.Body), "audit stream") {
			t.Fatalf("with no audit stream working: %d (Retry-After %q) %s, want 503 naming the audit stream", r.Status, r.Header.Get("Retry-After"), r.Body)
		}
	}
	// Nothing half-done: the refused write changed nothing.
	if r := e.Do(t, "GET", s+"/-/vars/KEY", e.Admin, ""); r.Status != 200 || r.JSON(t)["version"] != float64(1) {
		t.Fatalf("a plain read (no audit needed) while the stream fails: %d %s, want 200 at version 1", r.Status, r.Body)
	}
	ready := e.Do(t, "GET", "/readyz", "", "")
	if ready.Status != 503 || !strings.Contains(string(ready.Body), "file:"+path) || !strings.Contains(string(ready.Body), "not a directory") {
		t.Fatalf("/readyz: %d %s, want 503 naming the stream and why", ready.Status, ready.Body)
	}
	metrics := string(e.Do(t, "GET", "/metrics", "", "").Body)
	if !strings.Contains(metrics, `envy_audit_stream_up{stream="file:`+path+`"} 0`) || !strings.Contains(metrics, `envy_audit_stream_failures_total{stream="file:`+path+`"}`) {
		t.Fatalf("metrics do not show the stream down:\n%s", grepLines(metrics, "envy_audit_stream"))
	}

	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	poll(t, "/readyz is ready again once the directory can be made", func() bool {
		return e.Do(t, "GET", "/readyz", "", "").Status == 200
	})
	if r := e.Do(t, "PUT", s+"/-/vars/KEY", e.Admin, `{"value":"v3"}`); r.Status != 200 {
		t.Fatalf("write after recovery: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "GET", s+"/-/vars/KEY?reveal=true", e.Admin, ""); r.Status != 200 {
		t.Fatalf("reveal after recovery: %d %s", r.Status, r.Body)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var x struct{ Action string }
		if err := json.Unmarshal([]byte(l), &x); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		actions = append(actions, x.Action)
	}
	// The reveal that failed the stream waited in its queue, and was
	// refused: its withdrawal stood in for it there (or, had a retry
	// taken the entry into a write meanwhile, follows it), and comes
	// first, then the write and reveal made after the recovery.
	if got := strings.Join(actions, ","); got != "reveal.withdrawn,var.set,reveal" && got != "reveal,reveal.withdrawn,var.set,reveal" {
		t.Fatalf("the new audit file holds %s", got)
	}
	metrics = string(e.Do(t, "GET", "/metrics", "", "").Body)
	if !strings.Contains(metrics, `envy_audit_stream_up{stream="file:`+path+`"} 1`) || !strings.Contains(metrics, `envy_audit_stream_queue_depth{stream="file:`+path+`"} 0`) {
		t.Fatalf("metrics after recovery:\n%s", grepLines(metrics, "envy_audit_stream"))
	}
}

func TestTwoAuditStreamsWhereOneFailsKeepServing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	e, _, out := streamEnv(t, "file:"+filepath.Join(dir, "audit.jsonl"), "stdout")
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s := "/v1/scopes/acme/web"
	for i := range 5 {
		if r := e.Do(t, "PUT", s+"/-/vars/KEY", e.Admin, `{"value":"v`+string(rune('0'+i))+`","secret":true}`); r.Status/100 != 2 {
			t.Fatalf("write %d with stdout working: %d %s", i, r.Status, r.Body)
		}
		if r := e.Do(t, "GET", s+"/-/vars/KEY?reveal=true", e.Admin, ""); r.Status != 200 {
			t.Fatalf("reveal %d with stdout working: %d %s", i, r.Status, r.Body)
		}
	}
	if r := e.Do(t, "GET", "/readyz", "", ""); r.Status != 200 {
		t.Fatalf("/readyz with one stream working: %d %s", r.Status, r.Body)
	}
	if n := strings.Count(out.String(), `"action":"reveal"`); n != 5 {
		t.Fatalf("stdout has %d reveals, want 5", n)
	}
}

func grepLines(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// failingStream is an audit stream that takes every reservation and then
// fails to write every entry: what a device that breaks between the
// reservation and the write looks like, every time.
type failingStream struct{}

func (failingStream) Reserve(n int) (func([]envy.AuditEntry) <-chan error, func([]envy.AuditEntry), error) {
	return func([]envy.AuditEntry) <-chan error {
		ch := make(chan error, 1)
		ch <- &envy.Error{Code: envy.EUnavailable, Message: "no audit stream can record the request", RetryAfter: time.Second}
		return ch
	}, func([]envy.AuditEntry) {}, nil
}
func (failingStream) Offer(...envy.AuditEntry) {}
func (failingStream) Ready() error             { return nil }

// A reveal is answered only once a stream has written its entry: one
// that no stream wrote is refused. A write is not: once committed, it is
// answered as done (its entry waits in the streams' queues).
func TestARevealWaitsForTheStreamAndAWriteDoesNot(t *testing.T) {
	e := testenv.New(t, testenv.Options{Service: service.Options{AuditStream: failingStream{}}})
	s := "/v1/scopes/acme/web"
	if r := e.Do(t, "PUT", s+"/-/vars/KEY", e.Admin, `{"value":"v1","secret":true}`); r.Status != 201 {
		t.Fatalf("a committed write whose stream line failed: %d %s, want 201", r.Status, r.Body)
	}
	for _, p := range []string{s + "/-/vars/KEY?reveal=true", s + "/-/env"} {
		if r := e.Do(t, "GET", p, e.Admin, ""); r.Status != 503 || strings.Contains(string(r.Body), "v1") {
			t.Fatalf("GET %s with no stream writing its entry: %d %s, want 503", p, r.Status, r.Body)
		}
	}
}

// switchStream is an audit stream that writes every entry while up, and
// can take none while down (every device failing), when every request
// that must be audited is refused.
type switchStream struct{ down atomic.Bool }

func (s *switchStream) Reserve(int) (func([]envy.AuditEntry) <-chan error, func([]envy.AuditEntry), error) {
	if s.down.Load() {
		return nil, nil, &envy.Error{Code: envy.EUnavailable, Message: "no audit stream can record the request", RetryAfter: time.Second}
	}
	return func([]envy.AuditEntry) <-chan error {
		ch := make(chan error, 1)
		ch <- nil
		return ch
	}, func([]envy.AuditEntry) {}, nil
}
func (s *switchStream) Offer(...envy.AuditEntry) {}
func (s *switchStream) Ready() error {
	if s.down.Load() {
		return errors.New("down")
	}
	return nil
}

// A rollout's resume is a write, audited as one: while no audit stream can
// record it, it is refused like any write.
func TestAResumeIsRefusedWhileNoStreamCanRecordIt(t *testing.T) {
	st := &switchStream{}
	e := testenv.New(t, testenv.Options{Service: service.Options{AuditStream: st}})
	if w := e.Do(t, "PUT", "/v1/scopes/acme/web/-/vars/A", e.Admin, `{"value":"1"}`); w.Status != 201 {
		t.Fatalf("a write while the stream is up: %d %s", w.Status, w.Body)
	}
	st.down.Store(true)
	r := e.Do(t, "POST", "/v1/scopes/acme/web/-/rollout/resume", e.Admin, "")
	if r.Status != 503 || !strings.Contains(string(r.Body), "audit stream") {
		t.Fatalf("a resume while no audit stream can record it: %d %s, want 503", r.Status, r.Body)
	}
	if w := e.Do(t, "PUT", "/v1/scopes/acme/web/-/vars/A", e.Admin, `{"value":"2"}`); w.Status != 503 {
		t.Fatalf("a write while no audit stream can record it: %d %s, want 503 (as the resume)", w.Status, w.Body)
	}
	st.down.Store(false)
	if r := e.Do(t, "POST", "/v1/scopes/acme/web/-/rollout/resume", e.Admin, ""); r.Status != 200 {
		t.Fatalf("a resume once the stream is back: %d %s", r.Status, r.Body)
	}
}
