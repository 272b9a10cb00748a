// Package e2e drives the real envy binary: it builds it, starts `envy
// server` on a free port with a temp data dir, and uses the CLI and plain
// HTTP against it, as a user would.
package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/envy-dev/envy"
)

var envyBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "envy-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	envyBin = filepath.Join(dir, "envy")
	build := exec.Command("go", "build", "-o", envyBin, "../cmd/envy")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building envy:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a running `envy server` process.
type server struct {
	cmd    *exec.Cmd
	addr   string
	token  string
	stderr *bytes.Buffer
	mu     *sync.Mutex
}

var readyLine = regexp.MustCompile(`msg="envy is ready" url=(\S+)`)

// startServer starts envy server on a free port over dataDir with the
// given admin token and waits until it is ready.
func startServer(t *testing.T, dataDir, token string) *server {
	t.Helper()
	return startServerWith(t, token, "--data-dir", dataDir)
}

// startServerWith starts envy server on a free port with the given flags
// and admin token, and waits until it is ready.
func startServerWith(t *testing.T, token string, flags ...string) *server {
	t.Helper()
	return startServerSetUp(t, token, nil, flags...)
}

// startServerSetUp is startServerWith whose command setUp, when set,
// changes before it starts (its stdout, say).
func startServerSetUp(t *testing.T, token string, setUp func(*exec.Cmd), flags ...string) *server {
	t.Helper()
	cmd := exec.Command(envyBin, append([]string{"server", "--listen", "127.0.0.1:0"}, flags...)...)
	cmd.Env = append(os.Environ(), "ENVY_BOOTSTRAP_TOKEN="+token)
	if setUp != nil {
		setUp(cmd)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, token: token, stderr: &bytes.Buffer{}, mu: &sync.Mutex{}}
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			s.cmd.Process.Kill()
			s.cmd.Wait()
		}
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			s.mu.Lock()
			s.stderr.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
			if m := readyLine.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case s.addr = <-found:
	case <-time.After(20 * time.Second):
		t.Fatalf("server did not get ready; stderr:\n%s", s.log())
	}
	return s
}

func (s *server) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stderr.String()
}

func (s *server) kill9(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	s.cmd.Wait()
}

// do sends one request and returns the status and body.
func (s *server) do(t *testing.T, method, path string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.addr+path, r)
	req.Header.Set("Authorization", "Bearer "+s.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// cli runs the envy CLI against s and returns stdout, stderr and the exit code.
func (s *server) cli(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(envyBin, args...)
	cmd.Env = append(os.Environ(), "ENVY_ADDR="+s.addr, "ENVY_TOKEN="+s.token, "ENVY_CONFIG="+filepath.Join(t.TempDir(), "config.json"))
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("envy %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

func (s *server) mustCLI(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, errs, code := s.cli(t, stdin, args...)
	if code != 0 {
		t.Fatalf("envy %s: exit %d: %s", strings.Join(args, " "), code, errs)
	}
	return out
}

// storm runs n clients, the gth calling send(its client, g, i) for i = 0,
// 1, … until send returns false or stop is closed.
func storm(n int, send func(client *http.Client, g, i int) bool) (stop chan struct{}, wg *sync.WaitGroup) {
	stop, wg = make(chan struct{}), &sync.WaitGroup{}
	for g := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 10 * time.Second}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if !send(client, g, i) {
					return
				}
			}
		}()
	}
	return stop, wg
}

// killAfter kills s with SIGKILL once answered() reaches want (or after
// 30 s), while its clients are still sending, then stops them and waits
// for them.
func killAfter(t *testing.T, s *server, want int, answered func() int, stop chan struct{}, wg *sync.WaitGroup) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for answered() < want && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	s.kill9(t)
	close(stop)
	wg.Wait()
}

func TestAcknowledgedWritesSurviveKill9(t *testing.T) {
	dir := t.TempDir()
	token := envy.NewTokenValue()
	s := startServer(t, dir, token)
	testKill9(t, s, token, func() *server { return startServer(t, dir, token) })
}

// testKill9 kills s with SIGKILL while 8 writers write through it, then
// reads every acknowledged write back through the server that after
// returns (s restarted, or another server on the same database).
func testKill9(t *testing.T, s *server, token string, after func() *server) {
	t.Helper()
	type ack struct{ scope, name, value string }
	var (
		mu    sync.Mutex
		acked []ack
	)
	stop, wg := storm(8, func(client *http.Client, g, i int) bool {
		a := ack{fmt.Sprintf("e2e/kill/w%d", g), fmt.Sprintf("VAR_%d", i), fmt.Sprintf("value %d of writer %d", i, g)}
		b, _ := json.Marshal(map[string]any{"value": a.value, "secret": i%2 == 0})
		req, _ := http.NewRequest("PUT", s.addr+"/v1/scopes/"+a.scope+"/-/vars/"+a.name, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return false // the server is gone
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 201 {
			mu.Lock()
			acked = append(acked, a)
			mu.Unlock()
		}
		return true
	})
	// Kill while writes are in flight, right after a batch was acknowledged.
	killAfter(t, s, 400, func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}, stop, wg)
	if len(acked) < 100 {
		t.Fatalf("only %d writes were acknowledged before the kill", len(acked))
	}

	s2 := after()
	got := map[string]string{}
	for g := 0; g < 8; g++ {
		scope := fmt.Sprintf("e2e/kill/w%d", g)
		for name, v := range listValues(t, s2, scope) {
			got[scope+"/"+name] = v
		}
	}
	for _, a := range acked {
		if v, ok := got[a.scope+"/"+a.name]; !ok || v != a.value {
			t.Fatalf("acknowledged write %s/%s was lost after kill -9 (found %v)", a.scope, a.name, ok)
		}
	}
	t.Logf("%d acknowledged writes, all found after kill -9 and restart", len(acked))
}

func TestNewUserWalkthrough(t *testing.T) {
	s := startServer(t, t.TempDir(), envy.NewTokenValue())
	secret := "sk-proj-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c"
	s.mustCLI(t, secret+"\n", "vars", "set", "acme/web/prod", "STRIPE_KEY", "--secret", "--create")
	s.mustCLI(t, "", "set", "acme/web/prod", "PORT=8080", `GREETING=héllo "world" # not a comment $HOME \n`, "MULTI=line one\nline two", "EMPTY=")

	out := s.mustCLI(t, "", "vars", "ls", "acme/web/prod")
	if strings.Contains(out, secret) {
		t.Fatalf("vars ls shows the secret:\n%s", out)
	}
	if !strings.Contains(out, "sk-••••") {
		t.Fatalf("vars ls does not show the mask:\n%s", out)
	}
	out = s.mustCLI(t, "", "vars", "get", "acme/web/prod", "STRIPE_KEY", "--reveal", "-o", "json")
	if !strings.Contains(out, secret) {
		t.Fatalf("vars get --reveal does not show the secret:\n%s", out)
	}

	file := filepath.Join(t.TempDir(), "prod.env")
	dotenv := s.mustCLI(t, "", "export", "acme/web/prod")
	if err := os.WriteFile(file, []byte(dotenv), 0o600); err != nil {
		t.Fatal(err)
	}
	s.mustCLI(t, "", "import", "acme/web/staging", file, "--create")
	a := s.mustCLI(t, "", "export", "acme/web/prod", "--format", "json")
	b := s.mustCLI(t, "", "export", "acme/web/staging", "--format", "json")
	var ea, eb map[string]string
	if err := json.Unmarshal([]byte(a), &ea); err != nil {
		t.Fatalf("export json: %v\n%s", err, a)
	}
	if err := json.Unmarshal([]byte(b), &eb); err != nil {
		t.Fatal(err)
	}
	if len(ea) != 5 || fmt.Sprint(ea) != fmt.Sprint(eb) {
		t.Fatalf("import of the export differs:\n%v\n%v", ea, eb)
	}
	if ea["MULTI"] != "line one\nline two" || ea["STRIPE_KEY"] != secret || ea["EMPTY"] != "" {
		t.Fatalf("values changed on the way: %q", ea)
	}

	// History and rollback.
	s.mustCLI(t, "", "set", "acme/web/prod", "PORT=9090")
	hist := s.mustCLI(t, "", "history", "acme/web/prod", "-o", "json")
	if !strings.Contains(hist, `"PORT"`) || strings.Contains(hist, secret) {
		t.Fatalf("history is wrong or shows the secret:\n%s", hist)
	}
	s.mustCLI(t, "", "rollback", "acme/web/prod", "2")
	out = s.mustCLI(t, "", "vars", "get", "acme/web/prod", "PORT", "-o", "json")
	if !strings.Contains(out, `"value": "8080"`) && !strings.Contains(out, `"value":"8080"`) {
		t.Fatalf("rollback did not restore PORT:\n%s", out)
	}

	// Errors are one line on stderr with a non-zero exit.
	_, errs, code := s.cli(t, "", "vars", "set", "acme/web/prod", "1BAD", "x")
	if code == 0 || strings.Count(strings.TrimSpace(errs), "\n") != 0 || !strings.Contains(errs, "name") {
		t.Fatalf("bad name: exit %d, stderr %q", code, errs)
	}
	if strings.Contains(s.log(), secret) {
		t.Fatal("the server log holds the secret")
	}
}
