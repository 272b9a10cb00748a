package e2e

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/envy-dev/envy"
)

func TestASecondServerOnTheSameSQLiteDataDirRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	token := envy.NewTokenValue()
	first := startServer(t, dir, token)

	cmd := exec.Command(envyBin, "server", "--listen", "127.0.0.1:0", "--data-dir", dir)
	cmd.Env = append(os.Environ(), "ENVY_BOOTSTRAP_TOKEN="+token)
	out, err := cmd.CombinedOutput()
	if _, ok := err.(*exec.ExitError); !ok {
		t.Fatalf("the second server did not exit with an error: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "another envy server is already using --data-dir") || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 {
		t.Fatalf("the second server said %q, want one line saying the data dir is in use", out)
	}
	// The first one still serves.
	if code, body := first.do(t, "GET", "/v1/tokens/self", nil); code != 200 {
		t.Fatalf("first server after the refused start: %d %s", code, body)
	}
}
