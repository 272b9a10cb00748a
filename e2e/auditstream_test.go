package e2e

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/envy-dev/envy"
)

// A server whose audit stream is its stdout keeps running when the reader
// of that pipe goes away (a log shipper restarting): the stream fails, so
// writes and reveals are refused with 503 as for any stream that can't
// write, rather than the process dying of SIGPIPE with its queued entries.
func TestAServerOutlivesTheReaderOfItsStdoutStream(t *testing.T) {
	t.Parallel()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	s := startServerSetUp(t, envy.NewTokenValue(), func(cmd *exec.Cmd) { cmd.Stdout = w },
		"--data-dir", t.TempDir(), "--audit-stream", "stdout")
	w.Close() // the server holds its own end
	if st, body := s.do(t, "PUT", "/v1/scopes/app/-/vars/A", map[string]any{"value": "1"}); st != 200 && st != 201 {
		t.Fatalf("a write while the stream's reader is there: %d %s", st, body)
	}
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil || !strings.Contains(line, `"action"`) {
		t.Fatalf("the stream's first line: %q, %v", line, err)
	}
	r.Close() // the reader goes away
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = s.cmd.Wait()
		close(exited)
	}()
	// This Wait is the only one: the server is ended here, before the
	// cleanup of startServerSetUp (which runs later) looks at it.
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("the server exited (%v) once the reader of its stdout stream went away; log:\n%s", waitErr, s.log())
		default:
		}
		st, body := s.do(t, "PUT", "/v1/scopes/app/-/vars/A", map[string]any{"value": "2"})
		if st == 503 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("writes still answered %d %s 10 s after the stream's reader went away; want 503", st, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st, body := s.do(t, "GET", "/readyz", nil); st != 503 || !strings.Contains(string(body), "stdout") {
		t.Fatalf("/readyz with the stream down: %d %s; want 503 naming the stream", st, body)
	}
}
