package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/envy-dev/envy"
)

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func waitOutput(t *testing.T, b *lockedBuffer, want string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(b.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q within %s; output:\n%s", want, within, b.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startRun starts `envy run` against s in the background.
func (s *server) startRun(t *testing.T, args ...string) (*exec.Cmd, *lockedBuffer, *lockedBuffer) {
	t.Helper()
	cmd := exec.Command(envyBin, append([]string{"run"}, args...)...)
	cmd.Env = append(os.Environ(), "ENVY_ADDR="+s.addr, "ENVY_TOKEN="+s.token, "ENVY_CONFIG="+filepath.Join(t.TempDir(), "config.json"))
	out, errOut := &lockedBuffer{}, &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, out, errOut
}

// The whole of `envy run` through the real binary: env, redaction,
// restart on change, sync status, signal forwarding and exit status, and
// the fallback once the server is gone.
func TestEnvyRun(t *testing.T) {
	s := startServer(t, t.TempDir(), envy.NewTokenValue())
	secret := "sk-live-0123456789abcdef"
	s.mustCLI(t, secret+"\n", "vars", "set", "acme/web", "API_KEY", "--secret", "--create")
	s.mustCLI(t, "", "set", "acme/web", "GREETING=hello")
	fallback := filepath.Join(t.TempDir(), "web.env.enc")

	script := `trap 'echo "got TERM"; exit 7' TERM
echo "GREETING=$GREETING key=$API_KEY"
while :; do sleep 0.05; done`
	cmd, out, errOut := s.startRun(t, "--scope", "acme/web", "--watch", "--redact", "--fallback", fallback,
		"--consumer-id", "web-1", "--", "sh", "-c", script)
	waitOutput(t, out, "GREETING=hello key=[REDACTED:API_KEY]\n", 10*time.Second)
	if strings.Contains(out.String(), secret) {
		t.Fatalf("the secret reached the output:\n%s", out)
	}

	// A change restarts the command with the new env, and status tells
	// when it runs it.
	s.mustCLI(t, "", "set", "acme/web", "GREETING=bonjour")
	waitOutput(t, out, "GREETING=bonjour key=[REDACTED:API_KEY]\n", 5*time.Second)
	var st struct {
		Synced    bool `json:"synced"`
		Consumers []struct {
			ID     string `json:"id"`
			Behind bool   `json:"behind"`
		} `json:"consumers"`
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := json.Unmarshal([]byte(s.mustCLI(t, "", "status", "acme/web", "-o", "json")), &st); err != nil {
			t.Fatal(err)
		}
		if st.Synced && len(st.Consumers) == 1 && st.Consumers[0].ID == "web-1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status %+v, want web-1 in sync", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	table := s.mustCLI(t, "", "status", "acme/web")
	if !strings.Contains(table, "web-1") || !strings.Contains(table, "workloads in sync") {
		t.Errorf("status table:\n%s", table)
	}

	// SIGTERM to envy run reaches the command, whose status envy run
	// exits with.
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 || !strings.Contains(out.String(), "got TERM") {
		t.Errorf("envy run ended with %v, want 7; stdout:\n%s\nstderr:\n%s", err, out, errOut)
	}

	// The server goes away: the fallback copy still starts the command.
	s.kill9(t)
	stdout, stderr, code := s.cli(t, "", "run", "--scope", "acme/web", "--fallback", fallback, "--timeout", "1s",
		"--", "sh", "-c", `echo "GREETING=$GREETING"`)
	if code != 0 || stdout != "GREETING=bonjour\n" {
		t.Errorf("from the fallback: %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "envy run: warning: cannot reach envy at") {
		t.Errorf("warning %q", stderr)
	}

	// Without the fallback, the command is not started.
	stdout, stderr, code = s.cli(t, "", "run", "--scope", "acme/web", "--timeout", "1s", "--", "sh", "-c", "echo started")
	if code != 1 || stdout != "" || !strings.HasPrefix(stderr, "envy: cannot reach envy at") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("without a fallback: %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}
