package e2e

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/envy-dev/envy"
)

// runServerToExit runs envy server with the given flags, expecting it to
// refuse to start; it returns what it printed and how it exited.
func runServerToExit(t *testing.T, token string, flags ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(envyBin, append([]string{"server", "--listen", "127.0.0.1:0"}, flags...)...)
	cmd.Env = append(os.Environ(), "ENVY_BOOTSTRAP_TOKEN="+token)
	done := make(chan struct{})
	defer close(done)
	go func() { // a server that does start must not hang the test
		select {
		case <-done:
		case <-t.Context().Done():
		}
		if cmd.Process != nil && cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
	}()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// containsLine reports whether one line of out contains want.
func containsLine(out, want string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, want) {
			return true
		}
	}
	return false
}

func TestASecondServerOnTheSameSQLiteDataDirRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	token := envy.NewTokenValue()
	first := startServer(t, dir, token)

	out, err := runServerToExit(t, token, "--data-dir", dir)
	if _, ok := err.(*exec.ExitError); !ok {
		t.Fatalf("the second server did not exit with an error: %v\n%s", err, out)
	}
	if !containsLine(out, "another envy server is already using --data-dir") || strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Fatalf("the second server said %q, want one line saying the data dir is in use", out)
	}
	// The first one still serves.
	if code, body := first.do(t, "GET", "/v1/tokens/self", nil); code != 200 {
		t.Fatalf("first server after the refused start: %d %s", code, body)
	}
}
