package runner

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/client"
	"github.com/envy-dev/envy/internal/testenv"
)

// server is a test server with a token that may read and reveal acme/**,
// as a workload's token would.
type server struct {
	*testenv.Env
	token string
}

func newServer(t *testing.T) *server {
	t.Helper()
	e := testenv.New(t, testenv.Options{})
	tok := e.Token(t, "app", envy.Grant{Scopes: "acme/**", Actions: []envy.Action{envy.ActRead, envy.ActReveal}})
	return &server{Env: e, token: tok}
}

// merge writes vars into scope (PATCH, one revision) and returns the
// reply: revision and synced.
func (s *server) merge(t *testing.T, scope string, vars map[string]any) (rev int64, synced bool) {
	t.Helper()
	body, _ := json.Marshal(vars)
	r := s.Do(t, "PATCH", "/v1/scopes/"+scope+"/-/vars", s.Admin, string(body))
	if r.Status != 200 {
		t.Fatalf("merge: %d %s", r.Status, r.Body)
	}
	m := r.JSON(t)
	return int64(m["revision"].(float64)), m["synced"].(bool)
}

func (s *server) status(t *testing.T, scope string) client.Status {
	t.Helper()
	r := s.Do(t, "GET", "/v1/scopes/"+scope+"/-/status", s.Admin, "")
	if r.Status != 200 {
		t.Fatalf("status: %d %s", r.Status, r.Body)
	}
	var st client.Status
	if err := json.Unmarshal(r.Body, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// running is a Run in progress.
type running struct {
	out, errOut, log *syncBuffer
	cancel           context.CancelFunc
	done             chan struct{}
	code             int
	err              error
}

// start runs cfg in the background; the test's end stops it.
func start(t *testing.T, cfg Config) *running {
	t.Helper()
	r := &running{out: &syncBuffer{}, errOut: &syncBuffer{}, log: &syncBuffer{}, done: make(chan struct{})}
	cfg.Stdout, cfg.Stderr, cfg.Log = r.out, r.errOut, r.log
	if cfg.Env == nil {
		cfg.Env = helperEnv()
	}
	if cfg.Stdin == nil {
		cfg.Stdin = strings.NewReader("")
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		defer close(r.done)
		r.code, r.err = Run(ctx, cfg)
	}()
	t.Cleanup(func() {
		cancel()
		r.stopped(t, 30*time.Second)
	})
	return r
}

// stopped waits until Run has returned, after its context ended. When
// it has not within d, the test fails, naming the guarantee broken (a
// command is stopped with SIGTERM, then SIGKILL after the grace), and
// every command the run printed the pid of is killed, so that the test
// ends instead of hanging the package.
func (r *running) stopped(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-r.done:
		return
	case <-time.After(d):
	}
	t.Errorf("Run did not return within %s of its context's end: the command must be sent SIGTERM, then SIGKILL once the grace is over; output:\n%s\nlog:\n%s", d, r.out, r.log)
	for _, p := range pids(r.out.String()) {
		if pid, err := strconv.Atoi(p); err == nil {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	select {
	case <-r.done:
	case <-time.After(d):
		t.Errorf("Run did not return within %s of its commands' SIGKILL", d)
	}
}

func (r *running) wait(t *testing.T, within time.Duration) (int, error) {
	t.Helper()
	select {
	case <-r.done:
		return r.code, r.err
	case <-time.After(within):
		t.Fatalf("Run did not return within %s; output:\n%s\nlog:\n%s", within, r.out, r.log)
	}
	return 0, nil
}

// runOnce runs cfg to its end.
func runOnce(t *testing.T, cfg Config) *running {
	t.Helper()
	r := start(t, cfg)
	r.wait(t, 30*time.Second)
	return r
}

func (s *server) config(scope string, steps ...string) Config {
	return Config{Client: client.New(s.URL, s.token), Token: s.token, Scope: scope, Command: helperCmd(steps...)}
}

var pidLine = regexp.MustCompile(`pid=(\d+)`)

func pids(out string) []string {
	var ps []string
	for _, m := range pidLine.FindAllStringSubmatch(out, -1) {
		ps = append(ps, m[1])
	}
	return ps
}

func TestScopeValuesOverrideTheInheritedEnvAndPreserveEnvReverses(t *testing.T) {
	s := newServer(t)
	s.merge(t, "acme/web", map[string]any{"A": "from-scope", "B": "only-in-scope"})
	tests := []struct {
		name     string
		preserve bool
		want     string
	}{
		{"scope values override the inherited env", false, "A=from-scope\nB=only-in-scope\nC=inherited\n"},
		{"with --preserve-env the inherited env wins", true, "A=inherited\nB=only-in-scope\nC=inherited\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := s.config("acme/web", "env=A,B,C")
			cfg.Env = helperEnv("A=inherited", "C=inherited")
			cfg.PreserveEnv = tc.preserve
			r := runOnce(t, cfg)
			if r.code != 0 || r.err != nil {
				t.Fatalf("Run = %d, %v; log %s", r.code, r.err, r.log)
			}
			if r.out.String() != tc.want {
				t.Errorf("the command saw\n%s\nwant\n%s", r.out, tc.want)
			}
		})
	}
}

func TestTheCommandsExitCodeIsReturned(t *testing.T) {
	s := newServer(t)
	s.merge(t, "acme/web", map[string]any{"A": "1"})
	tests := []struct {
		name string
		step string
		want int
	}{
		{"success is 0", "exit=0", 0},
		{"a failure is its code", "exit=3", 3},
		{"death by SIGKILL is 128+9", "kill=9", 137},
		{"death by SIGTERM is 128+15", "kill=15", 143},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runOnce(t, s.config("acme/web", tc.step))
			if r.code != tc.want || r.err != nil {
				t.Errorf("Run = %d, %v; want %d", r.code, r.err, tc.want)
			}
		})
	}
	t.Run("a command that does not exist is 127", func(t *testing.T) {
		cfg := s.config("acme/web")
		cfg.Command = []string{"envy-test-no-such-command"}
		r := runOnce(t, cfg)
		if r.code != 127 || r.err == nil || !strings.Contains(r.err.Error(), "can't start envy-test-no-such-command") {
			t.Errorf("Run = %d, %v", r.code, r.err)
		}
	})
}

// The runner runs in a process of its own here, so that the signals are
// real ones sent to it from outside.
func TestSignalsSentToTheRunnerReachTheCommand(t *testing.T) {
	s := newServer(t)
	s.merge(t, "acme/web", map[string]any{"A": "1"})
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(SignalName(sig), func(t *testing.T) {
			cfg, _ := json.Marshal(subConfig{Addr: s.URL, Token: s.token, Scope: "acme/web"})
			cmd := exec.Command(os.Args[0], "trap", "wait")
			cmd.Env = append(helperEnv(), "RUNNER_TEST_ROLE=runner", "RUNNER_TEST_CONFIG="+string(cfg))
			out := &syncBuffer{}
			cmd.Stdout, cmd.Stderr = out, out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			waitFor(t, out, "trapping", 10*time.Second)

			cmd.Process.Signal(syscall.SIGUSR1)
			waitFor(t, out, "got SIGUSR1", 5*time.Second)
			cmd.Process.Signal(sig)
			waitFor(t, out, "got "+SignalName(sig), 5*time.Second)
			err := cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 42 {
				t.Errorf("envy run ended with %v, want the command's exit code 42; output:\n%s", err, out)
			}
		})
	}
}

func TestWatchRestartsTheCommandWithTheNewEnv(t *testing.T) {
	s := newServer(t)
	s.merge(t, "acme/web", map[string]any{"A": "1"})
	cfg := s.config("acme/web", "env=A", "pid", "wait")
	cfg.Watch = true
	r := start(t, cfg)
	waitFor(t, r.out, "A=1", 10*time.Second)

	began := time.Now()
	rev, _ := s.merge(t, "acme/web", map[string]any{"A": "2"})
	waitFor(t, r.out, "A=2", 5*time.Second)
	t.Logf("restarted %s after the write", time.Since(began))
	if ps := waitForPids(t, r.out, 2, 5*time.Second); len(ps) != 2 || ps[0] == ps[1] {
		t.Errorf("pids %v, want two processes", ps)
	}
	if !strings.Contains(r.log.String(), "revision "+itoa(rev)+" of acme/web is out: restarting") {
		t.Errorf("log %q", r.log)
	}

	r.cancel()
	if code, err := r.wait(t, 15*time.Second); code != 128+15 || !errors.Is(err, context.Canceled) {
		t.Errorf("after cancel: %d, %v; want 143 (SIGTERM), context.Canceled", code, err)
	}
}

func TestARestartKillsACommandThatIgnoresSIGTERMAfterTheGrace(t *testing.T) {
	s := newServer(t)
	s.merge(t, "acme/web", map[string]any{"A": "1"})
	cfg := s.config("acme/web", "env=A", "pid", "trap-stay", "wait")
	cfg.Watch = true
	cfg.Grace = 300 * time.Millisecond
	r := start(t, cfg)
	waitFor(t, r.out, "trapping", 10*time.Second)
	s.merge(t, "acme/web", map[string]any{"A": "2"})
	waitFor(t, r.out, "got SIGTERM", 5*time.Second)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(r.out.String(), "A=2"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the command that ignores SIGTERM was not replaced within 10 s of a grace of 300ms: it must be sent SIGKILL once the grace is over; output:\n%s\nlog:\n%s", r.out, r.log)
		}
	}
	if !strings.Contains(r.log.String(), "did not exit within 300ms of SIGTERM: killing it") {
		t.Errorf("log %q", r.log)
	}
}

// TestStoppingKillsACommandThatIgnoresSIGTERMAfterTheGrace: when the
// run's context ends, a command that ignores SIGTERM is killed once the
// grace is over, and Run returns.
func TestStoppingKillsACommandThatIgnoresSIGTERMAfterTheGrace(t *testing.T) {
	s := newServer(t)
	s.merge(t, "acme/web", map[string]any{"A": "1"})
	cfg := s.config("acme/web", "pid", "trap-stay", "wait")
	cfg.Grace = 300 * time.Millisecond
	r := start(t, cfg)
	waitFor(t, r.out, "trapping", 10*time.Second)
	r.cancel()
	r.stopped(t, 10*time.Second)
	if code, err := r.code, r.err; code != 128+9 || !errors.Is(err, context.Canceled) {
		t.Errorf("after cancel: %d, %v; want 137 (SIGKILL), context.Canceled", code, err)
	}
}

func TestWatchWithSignalSendsItWithoutRestarting(t *testing.T) {
	s := newServer(t)
	s.merge(t, "acme/web", map[string]any{"A": "1"})
	cfg := s.config("acme/web", "env=A", "pid", "trap", "wait")
	cfg.Watch = true
	cfg.Signal = syscall.SIGHUP
	cfg.ConsumerID = "web-1"
	r := start(t, cfg)
	waitFor(t, r.out, "trapping", 10*time.Second)

	rev2, _ := s.merge(t, "acme/web", map[string]any{"A": "2"})
	waitFor(t, r.out, "got SIGHUP", 5*time.Second)
	time.Sleep(200 * time.Millisecond)
	if out := r.out.String(); strings.Contains(out, "A=2") || len(pids(out)) != 1 {
		t.Errorf("the command was restarted:\n%s", out)
	}
	// Once the signal is delivered, the command counts as on the new
	// revision (a program told to reload reads its config itself), so the
	// scope's status turns synced.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st := s.status(t, "acme/web")
		if len(st.Consumers) == 1 && st.Consumers[0].Revision == rev2 && !st.Consumers[0].Behind && st.Synced {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status %+v within 5 s of the SIGHUP, want web-1 at revision %d and synced: a --signal run reports the revision it signalled for; log:\n%s", st, rev2, r.log)
		}
	}
	if !strings.Contains(r.log.String(), "sent SIGHUP to pid") {
		t.Errorf("log %q", r.log)
	}
}

func TestRedactKeepsSecretValuesOutOfTheOutput(t *testing.T) {
	s := newServer(t)
	s.merge(t, "acme/base", map[string]any{"INHERITED": map[string]any{"value": "inherited-secret-1", "secret": true}})
	s.Do(t, "PUT", "/v1/scopes/acme/web", s.Admin, `{"inherits":["acme/base"]}`)
	s.merge(t, "acme/web", map[string]any{
		"API_KEY": map[string]any{"value": "sk-live-abcdef123456", "secret": true},
		"PIN":     map[string]any{"value": "123", "secret": true},
		"PLAIN":   "plain-value-visible",
	})
	cfg := s.config("acme/web", "split=API_KEY:300", "env=PIN,PLAIN", "errenv=INHERITED", "echo=done")
	r := runOnce(t, cfg)
	if r.code != 0 || r.err != nil {
		t.Fatalf("Run = %d, %v", r.code, r.err)
	}
	want := "[[REDACTED:API_KEY]]\nPIN=123\nPLAIN=plain-value-visible\ndone\n"
	if r.out.String() != want {
		t.Errorf("stdout\n%q\nwant\n%q", r.out, want)
	}
	if r.errOut.String() != "INHERITED=[REDACTED:INHERITED]\n" {
		t.Errorf("stderr %q", r.errOut)
	}

	t.Run("with NoRedact (--no-redact) the values pass", func(t *testing.T) {
		cfg := s.config("acme/web", "split=API_KEY:10")
		cfg.NoRedact = true
		r := runOnce(t, cfg)
		if r.out.String() != "[sk-live-abcdef123456]\n" {
			t.Errorf("stdout %q", r.out)
		}
	})
}

func TestTheFallbackIsUsedWithAWarningWhenTheServerCantBeReached(t *testing.T) {
	s := newServer(t)
	rev, _ := s.merge(t, "acme/web", map[string]any{"A": "1", "KEY": map[string]any{"value": "sk-secret-1", "secret": true}})
	p := testenv.NewProxy(t, s.URL)
	fb := filepath.Join(t.TempDir(), "web.fallback")
	cfg := Config{Client: client.New(p.URL, s.token), Token: s.token, Scope: "acme/web",
		Command: helperCmd("env=A,KEY"), Fallback: fb, Timeout: time.Second, NoRedact: true}

	r := runOnce(t, cfg)
	if r.code != 0 || r.err != nil || r.log.String() != "" {
		t.Fatalf("first run: %d, %v, log %q", r.code, r.err, r.log)
	}
	if fi, err := os.Stat(fb); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("fallback file: %v, %v", fi, err)
	}

	p.Close() // the server is gone
	r = runOnce(t, cfg)
	if r.code != 0 || r.err != nil {
		t.Fatalf("run from the fallback: %d, %v", r.code, r.err)
	}
	if r.out.String() != "A=1\nKEY=sk-secret-1\n" {
		t.Errorf("the command saw %q", r.out)
	}
	log := r.log.String()
	if strings.Count(log, "\n") != 1 || !strings.HasPrefix(log, "envy run: warning: cannot reach envy at "+p.URL) ||
		!strings.Contains(log, "running with the copy of acme/web at revision "+itoa(rev)) {
		t.Errorf("warning %q", log)
	}

	t.Run("another token can't use it, and the command is not started", func(t *testing.T) {
		marker := filepath.Join(t.TempDir(), "started")
		other := s.Token(t, "other", envy.Grant{Scopes: "acme/**", Actions: []envy.Action{envy.ActRead, envy.ActReveal}})
		cfg := cfg
		cfg.Client, cfg.Token, cfg.Command = client.New(p.URL, other), other, helperCmd("marker="+marker)
		r := runOnce(t, cfg)
		if r.code == 0 || r.err == nil || !strings.Contains(r.err.Error(), "does not open with this token") {
			t.Errorf("Run = %d, %v", r.code, r.err)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Error("the command was started")
		}
	})
}

// A run that started from the fallback catches up once the server is
// back: the watch resumes from the copy's revision.
func TestARunFromTheFallbackCatchesUpWhenTheServerIsBack(t *testing.T) {
	s := newServer(t)
	s.merge(t, "acme/web", map[string]any{"A": "1"})
	p := testenv.NewProxy(t, s.URL)
	fb := filepath.Join(t.TempDir(), "fb")
	cfg := Config{Client: client.New(p.URL, s.token), Token: s.token, Scope: "acme/web",
		Command: helperCmd("env=A", "wait"), Fallback: fb, Timeout: time.Second, Watch: true,
		WatchOptions: []client.WatchOption{client.WatchBackoff(50*time.Millisecond, 200*time.Millisecond)}}
	first := cfg
	first.Command, first.Watch = helperCmd("exit=0"), false
	runOnce(t, first)

	p.Block()
	r := start(t, cfg)
	waitFor(t, r.out, "A=1", 10*time.Second)
	s.merge(t, "acme/web", map[string]any{"A": "2"}) // written while this run can't see the server
	p.Unblock()
	waitFor(t, r.out, "A=2", 5*time.Second)
	log := r.log.String()
	for _, want := range []string{"warning: cannot reach envy", "can't watch acme/web", "watching acme/web again", "restarting"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

// Without a fallback, an unreachable server is an error and the command is
// not started. How long it tries is Config.Timeout (DefaultTimeout, at
// most the 10 s the design allows, when not set); the test sets a short one
// and asserts no duration, so that a slow machine can't turn it red.
func TestWithoutAFallbackAnUnreachableServerIsAnError(t *testing.T) {
	t.Parallel()
	if DefaultTimeout > 10*time.Second {
		t.Errorf("DefaultTimeout is %s: an unreachable server must be an error within 10 s", DefaultTimeout)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + l.Addr().String()
	l.Close()
	marker := filepath.Join(t.TempDir(), "started")
	r := runOnce(t, Config{Client: client.New(addr, "envy_x"), Token: "envy_x", Scope: "acme/web", Command: helperCmd("marker=" + marker), Timeout: time.Second})
	if r.code != 1 || r.err == nil {
		t.Fatalf("Run = %d, %v", r.code, r.err)
	}
	msg := r.err.Error()
	if strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "cannot reach envy at "+addr+": ") || !strings.Contains(msg, "was not started") ||
		strings.Contains(msg, "deadline exceeded") {
		t.Errorf("error %q: want the last real error, not the deadline", msg)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the command was started")
	}
}

func TestARefusalIsNotAReasonToFallBack(t *testing.T) {
	s := newServer(t)
	s.merge(t, "acme/web", map[string]any{"A": "1"})
	fb := filepath.Join(t.TempDir(), "fb")
	cfg := s.config("acme/web", "exit=0")
	cfg.Fallback = fb
	runOnce(t, cfg)
	// A token that may read but not reveal gets 403: a decision, not an
	// outage, so the copy is not used.
	reader := s.Token(t, "reader", envy.Grant{Scopes: "acme/**", Actions: []envy.Action{envy.ActRead}})
	cfg.Client, cfg.Token = client.New(s.URL, reader), reader
	r := runOnce(t, cfg)
	if r.code != 1 || !client.IsType(r.err, client.TypeForbidden) || r.log.String() != "" {
		t.Errorf("Run = %d, %v, log %q", r.code, r.err, r.log)
	}
}

func TestConsumerReportsTellWhetherTheRunningCommandHasTheChange(t *testing.T) {
	s := newServer(t)
	rev1, _ := s.merge(t, "acme/web", map[string]any{"A": "1"})
	cfg := s.config("acme/web", "env=A", "pid", "wait")
	cfg.Watch = true
	cfg.ConsumerID = "web-1"
	cfg.Hostname = "box"
	r := start(t, cfg)
	waitFor(t, r.out, "pid=", 10*time.Second)

	waitStatus := func(rev int64, pid string) client.Status {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			st := s.status(t, "acme/web")
			if len(st.Consumers) == 1 && st.Consumers[0].Revision == rev && itoa(int64(st.Consumers[0].PID)) == pid {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("status %+v, want web-1 at revision %d with pid %s", st, rev, pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	st := waitStatus(rev1, waitForPids(t, r.out, 1, 5*time.Second)[0])
	if !st.Synced || st.Consumers[0].ID != "web-1" || st.Consumers[0].Hostname != "box" || st.Consumers[0].Behind {
		t.Errorf("status %+v", st)
	}

	rev2, synced := s.merge(t, "acme/web", map[string]any{"A": "2"})
	if synced {
		t.Error("the write reply says synced while the command runs the old revision")
	}
	waitFor(t, r.out, "A=2", 5*time.Second)
	ps := waitForPids(t, r.out, 2, 5*time.Second)
	if len(ps) != 2 {
		t.Fatalf("pids %v", ps)
	}
	st = waitStatus(rev2, ps[1])
	if !st.Synced || st.Consumers[0].Behind {
		t.Errorf("after the restart: %+v, want synced", st)
	}
}

// TestAStoppedRunSaysGoodbye: a watching run that stops takes its
// consumer off the scope's status before Run returns, rather than
// counting as live (and behind) until its report expires.
func TestAStoppedRunSaysGoodbye(t *testing.T) {
	s := newServer(t)
	rev, _ := s.merge(t, "acme/web", map[string]any{"A": "1"})
	cfg := s.config("acme/web", "pid", "wait")
	cfg.Watch = true
	cfg.ConsumerID = "web-1"
	r := start(t, cfg)
	waitForPids(t, r.out, 1, 10*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for st := s.status(t, "acme/web"); len(st.Consumers) != 1 || st.Consumers[0].Revision != rev; st = s.status(t, "acme/web") {
		if time.Now().After(deadline) {
			t.Fatalf("status %+v, want web-1 at revision %d", st, rev)
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.cancel()
	r.stopped(t, 30*time.Second)
	if st := s.status(t, "acme/web"); len(st.Consumers) != 0 || !st.Synced {
		t.Errorf("status once the run returned: %+v, want no consumers", st)
	}
	rev2, synced := s.merge(t, "acme/web", map[string]any{"A": "2"})
	if !synced {
		t.Errorf("the write of revision %d after the run stopped says unsynced", rev2)
	}
}

func TestARevokedTokenEndsTheWatchButNotTheCommand(t *testing.T) {
	s := newServer(t)
	s.merge(t, "acme/web", map[string]any{"A": "1"})
	r0 := s.Do(t, "POST", "/v1/tokens", s.Admin, `{"name":"doomed","permissions":[{"scopes":"acme/**","actions":["read","reveal"]}]}`)
	if r0.Status != 201 {
		t.Fatalf("create token: %d %s", r0.Status, r0.Body)
	}
	id, tok := r0.JSON(t)["id"].(string), r0.JSON(t)["token"].(string)
	cfg := Config{Client: client.New(s.URL, tok), Token: tok, Scope: "acme/web", Command: helperCmd("env=A", "wait"), Watch: true,
		WatchOptions: []client.WatchOption{client.WatchBackoff(20*time.Millisecond, 100*time.Millisecond)}}
	r := start(t, cfg)
	waitFor(t, r.out, "A=1", 10*time.Second)
	if rr := s.Do(t, "DELETE", "/v1/tokens/"+id, s.Admin, ""); rr.Status != 200 {
		t.Fatalf("revoke: %d", rr.Status)
	}
	waitFor(t, r.log, "warning: stopped watching acme/web: unauthenticated", 5*time.Second)
	select {
	case <-r.done:
		t.Fatalf("Run ended: %d, %v", r.code, r.err)
	case <-time.After(200 * time.Millisecond):
	}
}

func TestARunWithoutWatchDoesNotCountAsAConsumer(t *testing.T) {
	s := newServer(t)
	s.merge(t, "acme/web", map[string]any{"A": "1"})
	cfg := s.config("acme/web", "pid", "sleep=300")
	cfg.ConsumerID = "once"
	runOnce(t, cfg)
	if st := s.status(t, "acme/web"); len(st.Consumers) != 0 || !st.Synced {
		t.Errorf("status %+v, want no consumers", st)
	}
}

func TestConsumerIDs(t *testing.T) {
	tests := []struct {
		host string
		pid  int
		want string
	}{
		{"web-1.example.com", 42, "web-1.example.com-42"},
		{"-odd host!", 7, "host-odd-host--7"},
		{"", 7, "host-7"},
		{strings.Repeat("h", 200), 12345, strings.Repeat("h", 94) + "-12345"},
	}
	for _, tc := range tests {
		got := consumerID(tc.host, tc.pid)
		if got != tc.want || !ValidConsumerID(got) {
			t.Errorf("consumerID(%q, %d) = %q (valid %t), want %q", tc.host, tc.pid, got, ValidConsumerID(got), tc.want)
		}
	}
	if !ValidConsumerID(DefaultConsumerID()) {
		t.Errorf("DefaultConsumerID() = %q is not valid", DefaultConsumerID())
	}
	for _, bad := range []string{"", "-x", "a/b", strings.Repeat("a", 101)} {
		if ValidConsumerID(bad) {
			t.Errorf("%q passes", bad)
		}
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]syscall.Signal{"HUP": syscall.SIGHUP, "sighup": syscall.SIGHUP, "USR1": syscall.SIGUSR1, "15": syscall.SIGTERM} {
		if got, err := ParseSignal(in); got != want || err != nil {
			t.Errorf("ParseSignal(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseSignal("BOGUS"); err == nil {
		t.Error("BOGUS parsed")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
