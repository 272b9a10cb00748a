package runner

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envy-dev/envy/client"
	"github.com/envy-dev/envy/internal/testenv"
)

// starts counts the lines the command appended to path: one per start.
func starts(path string) int {
	b, _ := os.ReadFile(path)
	return strings.Count(string(b), "\n")
}

// TestABurstOfChangesGivesOneRestartPerInstance: three writes in quick
// succession restart each watching instance once, with the last revision.
func TestABurstOfChangesGivesOneRestartPerInstance(t *testing.T) {
	s := newServer(t)
	s.merge(t, "acme/web", map[string]any{"A": "0"})
	dir := t.TempDir()
	var runs []*running
	var files []string
	for i := range 2 {
		f := filepath.Join(dir, "starts-"+itoa(int64(i)))
		cfg := s.config("acme/web", "append="+f, "env=A", "wait")
		cfg.Watch = true
		cfg.Debounce = 500 * time.Millisecond
		r := start(t, cfg)
		waitFor(t, r.out, "A=0", 10*time.Second)
		runs, files = append(runs, r), append(files, f)
	}
	// Both watches are connected once each has reported (the report goes
	// out after the start; the watch starts with it).
	time.Sleep(200 * time.Millisecond)
	var last int64
	for _, v := range []string{"1", "2", "3"} {
		last, _ = s.merge(t, "acme/web", map[string]any{"A": v})
	}
	for i, r := range runs {
		waitFor(t, r.out, "A=3", 10*time.Second)
		// Anything that would follow (a second restart) follows within
		// the debounce bound of the last change.
		time.Sleep(DebounceBound * 500 * time.Millisecond / 2)
		if n := starts(files[i]); n != 2 {
			t.Errorf("instance %d started %d times for three writes in quick succession, want 2 (the first start and one restart): restarts are debounced; output:\n%s\nlog:\n%s", i, n, r.out, r.log)
		}
		if out := r.out.String(); strings.Contains(out, "A=1") || strings.Contains(out, "A=2") {
			t.Errorf("instance %d ran an intermediate revision:\n%s", i, out)
		}
		if !strings.Contains(r.log.String(), "revision "+itoa(last)+" of acme/web is out: restarting") {
			t.Errorf("instance %d log %q, want a restart for revision %d", i, r.log, last)
		}
	}
}

// TestAStreamOfChangesCantPostponeTheRestartForever: changes that keep
// coming, each within the debounce interval of the last, still restart the
// command within DebounceBound intervals of the first.
func TestAStreamOfChangesCantPostponeTheRestartForever(t *testing.T) {
	s := newServer(t)
	s.merge(t, "acme/web", map[string]any{"A": "0"})
	f := filepath.Join(t.TempDir(), "starts")
	cfg := s.config("acme/web", "append="+f, "env=A", "wait")
	cfg.Watch = true
	cfg.Debounce = 300 * time.Millisecond
	r := start(t, cfg)
	waitFor(t, r.out, "A=0", 10*time.Second)
	time.Sleep(200 * time.Millisecond)
	// Write every 100 ms (a third of the interval) until the command has
	// restarted, for at most 3 bounds: the restart must come while the
	// changes still come.
	deadline := time.Now().Add(3 * DebounceBound * cfg.Debounce)
	for i := 1; starts(f) < 2; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("no restart after %d writes 100 ms apart over %s, with a debounce of %s: a stream of changes must not postpone the restart beyond %d intervals; log:\n%s",
				i, 3*DebounceBound*cfg.Debounce, cfg.Debounce, DebounceBound, r.log)
		}
		s.merge(t, "acme/web", map[string]any{"A": itoa(int64(i))})
		time.Sleep(100 * time.Millisecond)
	}
}

// TestAFallbackOlderThanTheMaxAgeIsRefused: a copy older than
// FallbackMaxAge (--fallback-max-age) is not used; the error names its age
// and the flag, and the command is not started.
func TestAFallbackOlderThanTheMaxAgeIsRefused(t *testing.T) {
	s := newServer(t)
	s.merge(t, "acme/web", map[string]any{"A": "1"})
	env, err := client.New(s.URL, s.token).Env(t.Context(), "acme/web")
	if err != nil {
		t.Fatal(err)
	}
	fb := filepath.Join(t.TempDir(), "fb")
	if err := saveFallback(fb, s.token, env, time.Now().Add(-25*time.Hour)); err != nil {
		t.Fatal(err)
	}
	p := testenv.NewProxy(t, s.URL)
	p.Close()
	marker := filepath.Join(t.TempDir(), "started")
	cfg := Config{Client: client.New(p.URL, s.token), Token: s.token, Scope: "acme/web",
		Command: helperCmd("marker=" + marker), Fallback: fb, Timeout: 500 * time.Millisecond}
	r := runOnce(t, cfg)
	if r.code != 1 || r.err == nil {
		t.Fatalf("Run = %d, %v: a fallback older than the max age (24h by default) must be refused", r.code, r.err)
	}
	msg := r.err.Error()
	for _, want := range []string{"too old", "saved 25h0m", "--fallback-max-age 24h0m0s", "was not started"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the command was started from a copy older than the max age")
	}

	cfg.FallbackMaxAge = 48 * time.Hour
	if r := runOnce(t, cfg); r.code != 0 || r.err != nil {
		t.Errorf("with a max age of 48h: Run = %d, %v", r.code, r.err)
	}
}

// TestARunFromTheFallbackSaysSoInItsReports: a watching run that started
// from its fallback copy reports since when, so that the scope's status
// shows it, until the server answers its watch again.
func TestARunFromTheFallbackSaysSoInItsReports(t *testing.T) {
	s := newServer(t)
	s.merge(t, "acme/web", map[string]any{"A": "1"})
	fb := filepath.Join(t.TempDir(), "fb")
	first := s.config("acme/web", "exit=0")
	first.Fallback = fb
	runOnce(t, first)

	// A proxy that fails the env and the watch (the server can't give
	// values) but lets consumer reports through.
	target, _ := url.Parse(s.URL)
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target) }}
	rp.FlushInterval = -1
	var down atomic.Bool
	down.Store(true)
	p := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() && (strings.HasSuffix(r.URL.Path, "/-/env") || strings.HasSuffix(r.URL.Path, "/-/watch")) {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)

	began := time.Now()
	cfg := Config{Client: client.New(p.URL, s.token), Token: s.token, Scope: "acme/web", ConsumerID: "web-1",
		Command: helperCmd("env=A", "wait"), Fallback: fb, Timeout: 300 * time.Millisecond, Watch: true,
		WatchOptions: []client.WatchOption{client.WatchBackoff(50*time.Millisecond, 200*time.Millisecond)}}
	r := start(t, cfg)
	waitFor(t, r.out, "A=1", 10*time.Second)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st := s.status(t, "acme/web")
		if len(st.Consumers) == 1 && st.Consumers[0].OnFallbackSince != nil {
			if since := *st.Consumers[0].OnFallbackSince; since.Before(began.Add(-time.Second)) || since.After(time.Now()) {
				t.Errorf("on_fallback_since %s, want the time the run started from the copy (after %s)", since, began)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status %+v within 5 s of a run from the fallback copy: a run on its fallback reports fallback_since; log:\n%s", st, r.log)
		}
	}

	down.Store(false) // the server answers again: the watch connects
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st := s.status(t, "acme/web")
		if len(st.Consumers) == 1 && st.Consumers[0].OnFallbackSince == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status %+v within 5 s of the server answering the watch again: a run off its fallback reports no fallback_since; log:\n%s", st, r.log)
		}
	}
}
