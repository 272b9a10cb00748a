package runner

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// startProc starts a real process as the runner's command would be.
func startProc(t *testing.T, args ...string) *proc {
	t.Helper()
	c := exec.Command(args[0], args[1:]...)
	c.Env = []string{"CHECK=ok"}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: c, done: make(chan struct{})}
	go func() { _ = c.Wait(); p.state = c.ProcessState; close(p.done) }()
	t.Cleanup(func() { _ = c.Process.Kill(); <-p.done })
	return p
}

func TestHealthChecks(t *testing.T) {
	var calls atomic.Int32
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer flaky.Close()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }))
	defer down.Close()

	for _, c := range []struct {
		name    string
		cfg     Config
		cmd     []string
		timeout time.Duration
		want    string // "" for healthy
	}{
		{"a URL healthy after two 503s", Config{HealthURL: flaky.URL}, []string{"sleep", "30"}, 10 * time.Second, ""},
		{"a URL that never answers 2xx", Config{HealthURL: down.URL}, []string{"sleep", "30"}, 3 * time.Second, "not healthy within 3s (last check: --health-url answered 500)"},
		{"a command run with the command's env", Config{HealthCmd: `test "$CHECK" = ok`}, []string{"sleep", "30"}, 10 * time.Second, ""},
		{"a command that keeps failing", Config{HealthCmd: "exit 3"}, []string{"sleep", "30"}, 3 * time.Second, "--health-cmd exited with status 3"},
		{"up after ready-after", Config{ReadyAfter: 100 * time.Millisecond}, []string{"sleep", "30"}, 10 * time.Second, ""},
		{"a command that exits before it is up", Config{ReadyAfter: 10 * time.Second}, []string{"sh", "-c", "exit 4"}, 10 * time.Second, "the command exited (status 4) before it was healthy"},
		{"a command that exits while the checks fail", Config{HealthCmd: "false"}, []string{"sh", "-c", "sleep 0.3; exit 5"}, 10 * time.Second, "the command exited (status 5)"},
	} {
		// The failing cases give their first check 3 s: on a loaded
		// machine (the race detector, two cores) starting a shell for
		// the check may take longer than 1 s, and the error would then
		// name no check.
		t.Run(c.name, func(t *testing.T) {
			r := &runner{cfg: c.cfg}
			p := startProc(t, c.cmd...)
			done := make(chan error, 1)
			go func() { done <- r.healthy(context.Background(), p, c.timeout) }()
			var err error
			select {
			case err = <-done:
			case <-time.After(c.timeout + 10*time.Second):
				t.Fatal("the health check did not end within its timeout")
			}
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("healthy = %v; want healthy", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("healthy = %v; want an error with %q", err, c.want)
			}
		})
	}
}
