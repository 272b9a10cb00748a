package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/envy-dev/envy/client"
)

// The test binary plays two more roles, chosen by RUNNER_TEST_ROLE, so
// that the tests run real processes without a build step:
//
//   - "helper" is the command that envy run starts: it runs the steps in
//     its arguments (see helperMain);
//   - "runner" is envy run itself in a process of its own, for the tests
//     that send it signals: it runs Run with the Config in
//     RUNNER_TEST_CONFIG and the helper steps in its arguments.
func TestMain(m *testing.M) {
	switch os.Getenv("RUNNER_TEST_ROLE") {
	case "helper":
		os.Exit(helperMain(os.Args[1:]))
	case "runner":
		os.Exit(runnerMain(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// helperMain runs steps:
//
//	env=A,B        print A=<value> (or "A unset") for each name
//	errenv=A       print A=<value> on stderr
//	pid            print pid=<pid>
//	marker=PATH    create the file PATH
//	append=PATH    append a line (its pid) to the file PATH
//	echo=TEXT      print TEXT
//	split=NAME:MS  write the value of NAME in two writes MS ms apart, then a newline
//	trap           print "got SIGX" for each forwarded signal; exit 42 on SIGINT, SIGTERM
//	trap-stay      as trap, but stay on SIGTERM too (to be killed)
//	wait           block until a trap ends the process
//	sleep=MS       sleep
//	exit=N         exit with N
//	kill=N         kill itself with signal N
func helperMain(steps []string) int {
	out := os.Stdout
	for _, s := range steps {
		name, arg, _ := strings.Cut(s, "=")
		switch name {
		case "env":
			for _, n := range strings.Split(arg, ",") {
				if v, ok := os.LookupEnv(n); ok {
					fmt.Fprintf(out, "%s=%s\n", n, v)
				} else {
					fmt.Fprintf(out, "%s unset\n", n)
				}
			}
		case "errenv":
			fmt.Fprintf(os.Stderr, "%s=%s\n", arg, os.Getenv(arg))
		case "pid":
			fmt.Fprintf(out, "pid=%d\n", os.Getpid())
		case "marker":
			os.WriteFile(arg, []byte("started"), 0o600)
		case "append":
			f, err := os.OpenFile(arg, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
			if err == nil {
				fmt.Fprintf(f, "%d\n", os.Getpid())
				f.Close()
			}
		case "echo":
			fmt.Fprintln(out, arg)
		case "split":
			n, ms, _ := strings.Cut(arg, ":")
			d, _ := strconv.Atoi(ms)
			v := os.Getenv(n)
			out.WriteString("[" + v[:len(v)/2])
			time.Sleep(time.Duration(d) * time.Millisecond)
			out.WriteString(v[len(v)/2:] + "]\n")
		case "trap", "trap-stay":
			stay := name == "trap-stay"
			ch := make(chan os.Signal, 8)
			signal.Notify(ch, ForwardedSignals...)
			go func() {
				for sig := range ch {
					fmt.Fprintf(out, "got %s\n", SignalName(sig.(syscall.Signal)))
					if !stay && (sig == syscall.SIGTERM || sig == syscall.SIGINT) {
						os.Exit(42)
					}
				}
			}()
			fmt.Fprintln(out, "trapping")
		case "wait":
			select {}
		case "sleep":
			d, _ := strconv.Atoi(arg)
			time.Sleep(time.Duration(d) * time.Millisecond)
		case "exit":
			n, _ := strconv.Atoi(arg)
			return n
		case "kill":
			n, _ := strconv.Atoi(arg)
			syscall.Kill(os.Getpid(), syscall.Signal(n))
			time.Sleep(5 * time.Second)
			return 99
		default:
			fmt.Fprintf(os.Stderr, "helper: unknown step %q\n", s)
			return 98
		}
	}
	return 0
}

// subConfig is the part of a Config that a runner process gets from its
// test.
type subConfig struct {
	Addr, Token, Scope string
	Watch              bool
	Signal             int
}

func runnerMain(helperSteps []string) int {
	var sc subConfig
	if err := json.Unmarshal([]byte(os.Getenv("RUNNER_TEST_CONFIG")), &sc); err != nil {
		fmt.Fprintln(os.Stderr, "runner: bad RUNNER_TEST_CONFIG:", err)
		return 97
	}
	code, err := Run(context.Background(), Config{
		Client: client.New(sc.Addr, sc.Token), Token: sc.Token, Scope: sc.Scope,
		Command: append([]string{os.Args[0]}, helperSteps...),
		Env:     helperEnv(), Watch: sc.Watch, Signal: syscall.Signal(sc.Signal),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "envy:", err)
	}
	return code
}

// helperEnv is this process's environment, set up to make a child the
// helper.
func helperEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RUNNER_TEST_") && !strings.HasPrefix(kv, "GORACE=") {
			env = append(env, kv)
		}
	}
	// A binary built with -race sleeps a second before it exits 0,
	// unless told not to.
	return append(append(env, "RUNNER_TEST_ROLE=helper", "GORACE=atexit_sleep_ms=0"), extra...)
}

// helperCmd is the command line that runs the helper with steps.
func helperCmd(steps ...string) []string {
	return append([]string{os.Args[0]}, steps...)
}

// syncBuffer is a bytes.Buffer for a child's output, safe to read while
// it is written.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// waitFor waits until b holds want, failing after within.
// waitForPids waits until the output shows n pid lines: the helper prints
// its pid after its env, so seeing a value does not mean its pid is out yet.
func waitForPids(t *testing.T, b *syncBuffer, n int, within time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if ps := pids(b.String()); len(ps) >= n {
			return ps
		}
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d pids within %s; output so far:\n%s", n, within, b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitFor(t *testing.T, b *syncBuffer, want string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(b.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q within %s; output so far:\n%s", want, within, b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
