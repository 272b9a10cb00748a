// Package runner is the engine of `envy run`: it fetches a scope's
// resolved env, starts a command with it, forwards signals to it, and
// returns its exit code. It can follow the scope's changes and restart the
// command (or signal it), report the revision it runs so that the server
// knows whether running workloads have a change, keep secrets out of the
// command's output, and keep an encrypted copy of the env to start from
// when the server can't be reached.
//
// It talks to the server only through the client package: it never
// imports the server's packages (the root package, http, sqlite, crypto),
// and it knows nothing of flags or cobra: the CLI fills a Config.
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/client"
	"github.com/envy-dev/envy/internal/opt"
)

// Defaults of Config.
const (
	DefaultGrace          = 10 * time.Second
	DefaultTimeout        = 10 * time.Second
	DefaultReportInterval = 20 * time.Second // the server counts a consumer live for 60 s
	DefaultDebounce       = time.Second
	DefaultFallbackMaxAge = 24 * time.Hour
	DefaultReadyAfter     = 5 * time.Second
	// DebounceBound is how many debounce intervals at most a change
	// waits in all: a stream of changes, each within the interval of the
	// last, still reaches the command after DebounceBound intervals.
	DebounceBound = 10
)

// ForwardedSignals are the signals that Run passes on to the command.
var ForwardedSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}

// Config is one `envy run`.
type Config struct {
	// Client talks to the server; Token is the token it uses, from which
	// the fallback file's key is derived.
	Client *client.Client
	Token  string
	// Scope is the scope whose resolved env the command runs with.
	Scope string
	// Command is the program and its arguments.
	Command []string
	// Env is the environment the command inherits, as os.Environ gives
	// it; nil means os.Environ(). The scope's values override it, or, with
	// PreserveEnv, fill in only the names it lacks.
	Env         []string
	PreserveEnv bool

	// Watch follows the scope's changes. On a change the new env is
	// fetched and, once no newer change has come for Debounce (and at
	// most DebounceBound×Debounce after the first change of a burst),
	// the command is restarted with the newest (SIGTERM, up to Grace for
	// it to exit, then SIGKILL, then start), or, when Signal is set, sent
	// Signal instead. Once the signal is delivered, the run reports the
	// new revision: a program that takes a signal to reload reads its
	// config itself (its environment stays the one it started with).
	Watch    bool
	Signal   syscall.Signal
	Grace    time.Duration // 0 means DefaultGrace
	Debounce time.Duration // 0 means DefaultDebounce; negative means none

	// Under a scope's rollout policy, a watching run restarts (or
	// signals) its command only when the server grants it its turn, and
	// reports the new revision only once the command is up and healthy
	// again, within the grant's health timeout: HealthCmd (run with
	// /bin/sh -c and the new env, healthy when it exits 0, tried again
	// until the timeout), or HealthURL (healthy on a 2xx), or, with
	// neither, once the command has run for ReadyAfter (0 means
	// DefaultReadyAfter) without exiting. Not healthy in time, the run
	// tells the server, which pauses the rollout; the command keeps
	// running.
	HealthCmd  string
	HealthURL  string
	ReadyAfter time.Duration

	// NoRedact lets the command's stdout and stderr through as they are.
	// By default the value of every secret (MinRedactLen characters or
	// longer) in them is replaced with [REDACTED:NAME].
	NoRedact bool

	// Fallback is a file that keeps an encrypted copy of the last env
	// fetched; when the server can't be reached at start, the command
	// starts from it, with a warning. Empty means none: the server must
	// answer.
	Fallback string
	// FallbackMaxAge is the age beyond which the copy is refused (0
	// means DefaultFallbackMaxAge): a command is not started on values
	// older than that.
	FallbackMaxAge time.Duration
	// Timeout bounds the time spent trying to reach the server at start
	// before falling back or giving up; 0 means DefaultTimeout.
	Timeout time.Duration

	// ConsumerID names this run in the scope's status; empty means
	// DefaultConsumerID(). With Watch, the run reports the revision its
	// command runs at once after every start and then every
	// ReportInterval (0 means DefaultReportInterval); without Watch it
	// does not report.
	ConsumerID     string
	ReportInterval time.Duration
	Hostname       string // reported; empty means os.Hostname()

	// The command's standard streams; nil means the process's own. Log
	// receives the runner's own messages (one line each); nil means
	// os.Stderr.
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Log    io.Writer

	// Signals, when set, replaces the process's own signals as the source
	// of signals to forward (for tests and embedding); otherwise Run
	// subscribes to ForwardedSignals while it runs.
	Signals <-chan os.Signal
	// WatchOptions tune the watch stream (backoff, idle timeout).
	WatchOptions []client.WatchOption
}

// DefaultConsumerID is "<hostname>-<pid of this process>", made to fit the
// server's rule for ids ([A-Za-z0-9][A-Za-z0-9._~-]{0,99}): stable for the
// life of one `envy run`, across restarts of its command, and distinct
// between two runs on one host.
func DefaultConsumerID() string {
	host, _ := os.Hostname()
	return consumerID(host, os.Getpid())
}

func consumerID(host string, pid int) string {
	suffix := "-" + strconv.Itoa(pid)
	var b strings.Builder
	for _, r := range host {
		if b.Len() >= 100-len(suffix) {
			break
		}
		if r < 128 && (r == '.' || r == '_' || r == '~' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	h := b.String()
	if h == "" || !isAlnum(h[0]) {
		h = "host" + h
		if len(h) > 100-len(suffix) {
			h = h[:100-len(suffix)]
		}
	}
	return h + suffix
}

// ValidConsumerID reports whether id is acceptable to the server as a
// consumer id.
func ValidConsumerID(id string) bool {
	if id == "" || len(id) > 100 || !isAlnum(id[0]) {
		return false
	}
	for i := 1; i < len(id); i++ {
		c := id[i]
		if !isAlnum(c) && c != '.' && c != '_' && c != '~' && c != '-' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// ParseSignal reads a signal name as `--signal` takes it: HUP, SIGHUP,
// hup, or a number.
func ParseSignal(s string) (syscall.Signal, error) {
	name := strings.ToUpper(strings.TrimSpace(s))
	name = strings.TrimPrefix(name, "SIG")
	if n, err := strconv.Atoi(name); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n), nil
	}
	if sig, ok := signalsByName[name]; ok {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q (use a name such as HUP, USR1, TERM)", s)
}

var signalsByName = map[string]syscall.Signal{
	"HUP": syscall.SIGHUP, "INT": syscall.SIGINT, "QUIT": syscall.SIGQUIT, "TERM": syscall.SIGTERM,
	"USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2, "WINCH": syscall.SIGWINCH, "ALRM": syscall.SIGALRM,
	"KILL": syscall.SIGKILL, "CONT": syscall.SIGCONT, "STOP": syscall.SIGSTOP, "TSTP": syscall.SIGTSTP,
}

// SignalName names sig as HUP, TERM, …
func SignalName(sig syscall.Signal) string {
	for n, s := range signalsByName {
		if s == sig {
			return "SIG" + n
		}
	}
	return "signal " + strconv.Itoa(int(sig))
}

// runner is the state of one Run.
type runner struct {
	cfg      Config
	log      io.Writer
	logMu    sync.Mutex
	hostname string
	// fallbackSince is when the run started from the fallback copy; zero
	// when it runs with what the server gave.
	fallbackSince time.Time
	rep           *reporter
}

// Run fetches the scope's env, runs the command with it until it exits,
// and returns its exit code: its own status, or 128+n when a signal n
// killed it. err is set when the command could not be run at all (the
// server could not be reached and there is no usable fallback, the
// program does not exist, …); the code is then 1, or 126/127 as a shell
// gives for a program that can't be executed or found. When ctx ends, the
// command is stopped as for a restart (SIGTERM, Grace, SIGKILL).
func Run(ctx context.Context, cfg Config) (exitCode int, err error) {
	if cfg.Client == nil || cfg.Scope == "" || len(cfg.Command) == 0 {
		return 1, errors.New("envy run: a client, a scope and a command are required")
	}
	opt.Default(&cfg.Grace, DefaultGrace)
	opt.Default(&cfg.Timeout, DefaultTimeout)
	opt.Default(&cfg.ReportInterval, DefaultReportInterval)
	opt.Default(&cfg.Debounce, DefaultDebounce)
	opt.Default(&cfg.FallbackMaxAge, DefaultFallbackMaxAge)
	opt.Default(&cfg.ReadyAfter, DefaultReadyAfter)
	if cfg.ConsumerID == "" {
		cfg.ConsumerID = DefaultConsumerID()
	}
	if !ValidConsumerID(cfg.ConsumerID) {
		return 1, fmt.Errorf("consumer id %q must match [A-Za-z0-9][A-Za-z0-9._~-]{0,99}", cfg.ConsumerID)
	}
	if cfg.Env == nil {
		cfg.Env = os.Environ()
	}
	if cfg.Stdin == nil {
		cfg.Stdin = os.Stdin
	}
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	r := &runner{cfg: cfg, log: cfg.Log, hostname: cfg.Hostname}
	r.rep = newReporter(r)
	if r.log == nil {
		r.log = os.Stderr
	}
	if r.hostname == "" {
		r.hostname, _ = os.Hostname()
	}

	// Subscribe before anything starts, so that a signal that comes while
	// the env is fetched is not lost (nor kills envy run itself).
	sigs := cfg.Signals
	if sigs == nil {
		ch := make(chan os.Signal, 8)
		signal.Notify(ch, ForwardedSignals...)
		defer signal.Stop(ch)
		sigs = ch
	}

	env, err := r.initialEnv(ctx)
	if err != nil {
		return 1, err
	}
	return r.loop(ctx, env, sigs)
}

func (r *runner) logf(format string, args ...any) {
	r.logMu.Lock()
	defer r.logMu.Unlock()
	fmt.Fprintf(r.log, "envy run: "+format+"\n", args...)
}

// initialEnv fetches the env, retrying what may pass for up to
// cfg.Timeout, then falls back to the saved copy when there is one.
func (r *runner) initialEnv(ctx context.Context) (*client.Env, error) {
	began := time.Now()
	env, err := r.fetch(ctx, r.cfg.Timeout)
	if err == nil {
		r.save(env)
		return env, nil
	}
	if !transient(err) || ctx.Err() != nil {
		return nil, err
	}
	cmd := r.cfg.Command[0]
	tried := time.Since(began).Round(100 * time.Millisecond)
	if r.cfg.Fallback == "" {
		return nil, fmt.Errorf("%v (tried for %s); %s was not started", err, tried, cmd)
	}
	fb, savedAt, ferr := loadFallback(r.cfg.Fallback, r.cfg.Token, r.cfg.Scope)
	if ferr != nil {
		return nil, fmt.Errorf("%v (tried for %s), and the fallback file %s can't be used: %v; %s was not started",
			err, tried, r.cfg.Fallback, ferr, cmd)
	}
	if age := time.Since(savedAt); age > r.cfg.FallbackMaxAge {
		return nil, fmt.Errorf("%v (tried for %s), and the fallback file %s is too old to use: saved %s ago (%s), more than --fallback-max-age %s; %s was not started",
			err, tried, r.cfg.Fallback, age.Round(time.Second), savedAt.UTC().Format(time.RFC3339), r.cfg.FallbackMaxAge, cmd)
	}
	r.logf("warning: %v; running with the copy of %s at revision %d saved %s in %s",
		err, r.cfg.Scope, fb.Revision, savedAt.UTC().Format(time.RFC3339), r.cfg.Fallback)
	r.fallbackSince = time.Now()
	r.rep.setFallback(r.fallbackSince)
	return fb, nil
}

// fetch reads the env, retrying transient failures with backoff within
// timeout. The error returned is the last real one, not the deadline.
func (r *runner) fetch(ctx context.Context, timeout time.Duration) (*client.Env, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	wait := 250 * time.Millisecond
	var last error
	for {
		env, err := r.cfg.Client.Env(ctx, r.cfg.Scope)
		if err == nil {
			if env.Env == nil {
				env.Env = map[string]string{}
			}
			return env, nil
		}
		if ctx.Err() == nil || last == nil {
			last = err
		}
		if !transient(err) {
			return nil, err
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= wait {
			return nil, last // no time for another try: say so now
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, last
		case <-t.C:
		}
		wait = min(wait*2, time.Second)
	}
}

// transient reports whether err means the server could not be reached or
// could not answer now, as opposed to a refusal.
func transient(err error) bool {
	var ne *client.NetError
	if errors.As(err, &ne) {
		return true
	}
	var e *client.Error
	if errors.As(err, &e) {
		return e.Status >= 500 || e.Status == 429 || e.Status == 408
	}
	return errors.Is(err, context.DeadlineExceeded)
}

// save writes the fallback copy, when asked for; a failure is worth a
// warning, not stopping the command.
func (r *runner) save(env *client.Env) {
	if r.cfg.Fallback == "" {
		return
	}
	if err := saveFallback(r.cfg.Fallback, r.cfg.Token, env, time.Now()); err != nil {
		r.logf("warning: can't write the fallback file %s: %v", r.cfg.Fallback, err)
	}
}

// composeEnv returns base with vars applied: vars win, or, with preserve,
// base wins where it has the name.
func composeEnv(base []string, vars map[string]string, preserve bool) []string {
	idx := map[string]int{}
	out := make([]string, 0, len(base)+len(vars))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if k == "ENVY_TOKEN" || k == "ENVY_TOKEN_FILE" {
			// The program gets the values, not the token that reads them
			// (nor where it is kept): a child that dumps its env (a crash
			// report, a debug page) must not hand out access to every
			// scope the token can read.
			continue
		}
		if i, ok := idx[k]; ok {
			out[i] = kv // the last of duplicates wins, as in exec
			continue
		}
		idx[k] = len(out)
		out = append(out, kv)
	}
	names := make([]string, 0, len(vars))
	for n := range vars {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		kv := n + "=" + vars[n]
		if i, ok := idx[n]; ok {
			if !preserve {
				out[i] = kv
			}
			continue
		}
		out = append(out, kv)
	}
	return out
}

// proc is one run of the command.
type proc struct {
	cmd   *exec.Cmd
	rev   int64
	done  chan struct{}
	state *os.ProcessState
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// start starts the command with env.
func (r *runner) start(env *client.Env) (*proc, error) {
	c := exec.Command(r.cfg.Command[0], r.cfg.Command[1:]...)
	c.Env = composeEnv(r.cfg.Env, env.Env, r.cfg.PreserveEnv)
	c.Stdin = r.cfg.Stdin
	var flush []*Redactor
	if !r.cfg.NoRedact {
		secrets := map[string]string{}
		for _, n := range env.Secrets {
			if v, ok := env.Env[n]; ok {
				secrets[n] = v
			}
		}
		out, errw := NewRedactor(r.cfg.Stdout, secrets), NewRedactor(r.cfg.Stderr, secrets)
		c.Stdout, c.Stderr = out, errw
		flush = []*Redactor{out, errw}
	} else {
		c.Stdout, c.Stderr = r.cfg.Stdout, r.cfg.Stderr
	}
	// Output that a leftover grandchild keeps open must not hold up a
	// restart or the exit for ever.
	c.WaitDelay = 2 * time.Second
	if err := c.Start(); err != nil {
		if errors.Is(err, syscall.E2BIG) {
			return nil, envTooBig(err, c.Args, c.Env)
		}
		return nil, err
	}
	p := &proc{cmd: c, rev: env.Revision, done: make(chan struct{})}
	go func() {
		_ = c.Wait()
		for _, f := range flush {
			_ = f.Flush()
		}
		p.state = c.ProcessState
		close(p.done)
	}()
	return p, nil
}

// startError gives the exit code a shell would for a command that could
// not be started.
func startError(cmd string, err error) (int, error) {
	code := 126
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
		code = 127
	}
	return code, fmt.Errorf("can't start %s: %v", cmd, unwrapExec(err))
}

// maxEnvEntry is the most bytes one NAME=value may hold on Linux
// (MAX_ARG_STRLEN, 32 pages, less the NUL: 131,071 bytes with 4 KiB
// pages), while a value may hold 65,536 characters: up to 256 KiB of
// UTF-8. Other systems bound only the total; 0 there.
var maxEnvEntry = func() int {
	if runtime.GOOS != "linux" {
		return 0
	}
	return 32*os.Getpagesize() - 1
}()

// tooBig is E2BIG explained: the system refused the command's arguments
// and env, which the bare "argument list too long" blames on the
// arguments. It names the vars that are too long for Linux (or else the
// largest), never their values.
type tooBig struct {
	err    error
	detail string
}

func (e *tooBig) Error() string { return unwrapExec(e.err).Error() + " (" + e.detail + ")" }
func (e *tooBig) Unwrap() error { return e.err }

func envTooBig(err error, args, env []string) error {
	total, largest, largestLen := 0, "", 0
	var over []string
	for _, a := range args {
		total += len(a) + 1
	}
	for _, kv := range env {
		total += len(kv) + 1
		name, _, _ := strings.Cut(kv, "=")
		if maxEnvEntry > 0 && len(kv) > maxEnvEntry {
			over = append(over, fmt.Sprintf("%s (%d bytes)", name, len(kv)))
		}
		if len(kv) > largestLen {
			largest, largestLen = name, len(kv)
		}
	}
	detail := fmt.Sprintf("the command's arguments and env are %d bytes in all; ", total)
	if len(over) > 0 {
		verb := "exceeds"
		if len(over) > 1 {
			verb = "exceed"
		}
		detail += fmt.Sprintf("Linux passes at most %d bytes of NAME=value a var, which %s %s", maxEnvEntry, strings.Join(over, ", "), verb)
	} else {
		detail += fmt.Sprintf("more than the system passes to a program; the largest var is %s (%d bytes)", largest, largestLen)
	}
	return &tooBig{err: err, detail: detail}
}

func unwrapExec(err error) error {
	var tb *tooBig
	if errors.As(err, &tb) {
		return tb
	}
	var ee *exec.Error
	if errors.As(err, &ee) {
		return ee.Err
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// exitCode is the code of a finished command: its status, or 128+n when
// signal n killed it.
func exitCode(st *os.ProcessState) int {
	if st == nil {
		return 1
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return st.ExitCode()
}

// loop runs the command with env and follows signals, changes and its
// exit.
func (r *runner) loop(ctx context.Context, env *client.Env, sigs <-chan os.Signal) (int, error) {
	cur, err := r.start(env)
	if err != nil {
		return startError(r.cfg.Command[0], err)
	}

	// Only a watching run reports: one that can't take a change has
	// nothing to tell a writer, and a one-off command (a migration, a
	// script) would count as a live consumer for 60 s after it ended.
	rep := r.rep
	if r.cfg.Watch {
		repCtx, stopRep := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		go func() {
			defer close(done)
			rep.run(repCtx)
		}()
		defer func() {
			// The run is over: stop reporting, wait for a report in
			// flight (which would count it live again), and say goodbye
			// so that status drops it at once rather than after 60 s.
			stopRep()
			<-done
			rep.goodbye(context.WithoutCancel(ctx))
		}()
	}
	rep.set(cur.rev, cur.pid())

	var newEnvs <-chan update
	if r.cfg.Watch {
		wctx, stopWatch := context.WithCancel(ctx)
		defer stopWatch()
		ch := make(chan update, 1)
		newEnvs = ch
		go r.follow(wctx, env.Revision, ch)
	}
	// A granted restart's health is checked on its own goroutine, whose
	// verdict comes back on health; stopHealth ends a check in flight.
	health := make(chan healthResult, 1)
	hctx, stopHealth := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHealth()

	var (
		pending    *client.Env   // the env to restart with
		grant      *client.Grant // the rollout's grant of pending
		checking   *proc         // the command whose granted restart's health is being checked
		restarting bool          // cur was sent SIGTERM to restart it
		stopping   bool          // a signal asked the command to stop: don't restart it
		killAt     <-chan time.Time
		stop       = ctx.Done()
		// The debounce: due is the newest env not yet acted on, quiet
		// fires once no newer one has come for the debounce interval (or
		// the burst, begun at burstAt, has waited DebounceBound of them).
		due     *client.Env
		quiet   <-chan time.Time
		burstAt time.Time
	)
	// started reports that cur runs its revision: at once, or, under a
	// grant, once its health check passes.
	started := func(g *client.Grant) {
		if g == nil || g.HealthTimeout <= 0 {
			rep.set(cur.rev, cur.pid())
			return
		}
		p, rev := cur, cur.rev
		checking = p
		go func() {
			res := healthResult{p: p, rev: rev, err: r.healthy(hctx, p, g.HealthTimeout)}
			select {
			case health <- res:
			case <-hctx.Done(): // the run is over
			}
		}()
	}
	// act applies a change: signals the command, or restarts it.
	act := func(env *client.Env, g *client.Grant) {
		if r.cfg.Signal != 0 {
			if err := cur.signal(r.cfg.Signal); err != nil {
				r.logf("revision %d of %s is out: can't send %s to pid %d (%v); it stays on revision %d",
					env.Revision, r.cfg.Scope, SignalName(r.cfg.Signal), cur.pid(), err, cur.rev)
				return
			}
			r.logf("revision %d of %s is out: sent %s to pid %d, which now counts as on revision %d",
				env.Revision, r.cfg.Scope, SignalName(r.cfg.Signal), cur.pid(), env.Revision)
			cur.rev = env.Revision
			started(g)
			return
		}
		pending, grant = env, g
		if !restarting {
			r.logf("revision %d of %s is out: restarting %s (pid %d)", env.Revision, r.cfg.Scope, r.cfg.Command[0], cur.pid())
			restarting = true
			_ = cur.signal(syscall.SIGTERM)
			killAt = time.After(r.cfg.Grace)
		}
	}
	for {
		select {
		case sig := <-sigs:
			_ = cur.signal(sig)
			if sig == syscall.SIGINT || sig == syscall.SIGTERM || sig == syscall.SIGQUIT {
				stopping = true
			}

		case u := <-newEnvs:
			env := u.env
			if u.grant != nil && !stopping {
				// The server's turn for this instance: the server has
				// debounced the change already.
				due, quiet = nil, nil
				if env.Revision <= max(cur.rev, revOf(pending)) {
					rep.set(cur.rev, cur.pid()) // it runs the change already: free the slot
					continue
				}
				act(env, u.grant)
				continue
			}
			if stopping || env.Revision <= max(cur.rev, revOf(pending), revOf(due)) {
				continue
			}
			if r.cfg.Debounce <= 0 {
				act(env, nil)
				continue
			}
			if due == nil {
				burstAt = time.Now()
			}
			due = env
			wait := min(r.cfg.Debounce, time.Until(burstAt.Add(DebounceBound*r.cfg.Debounce)))
			quiet = time.After(max(wait, 0))

		case <-quiet:
			quiet = nil
			if due != nil && !stopping {
				act(due, nil)
			}
			due = nil

		case <-killAt:
			killAt = nil
			r.logf("pid %d did not exit within %s of SIGTERM: killing it", cur.pid(), r.cfg.Grace)
			_ = cur.signal(syscall.SIGKILL)

		case <-cur.done:
			if !restarting || stopping || ctx.Err() != nil {
				if checking == cur && !stopping {
					// It died before it was healthy: the rollout must
					// pause before the goodbye frees its slot.
					rep.failNow(ctx, cur.rev, cur.pid(), fmt.Sprintf("the command exited (status %d) before it was healthy", exitCode(cur.state)))
				}
				return exitCode(cur.state), ctx.Err()
			}
			restarting, killAt = false, nil
			next, err := r.start(pending)
			if err != nil {
				return startError(r.cfg.Command[0], err)
			}
			cur, pending = next, nil
			started(grant)
			grant = nil

		case h := <-health:
			if h.p != cur || h.p.rev != h.rev {
				continue // a check of a command that is gone, or of an older change
			}
			checking = nil
			if h.err != nil {
				r.logf("pid %d is not healthy on revision %d of %s: %v; telling envy, which pauses the rollout (the command keeps running)",
					cur.pid(), cur.rev, r.cfg.Scope, h.err)
				rep.fail(cur.rev, cur.pid(), h.err.Error())
				continue
			}
			r.logf("pid %d is up and healthy on revision %d of %s", cur.pid(), cur.rev, r.cfg.Scope)
			rep.set(cur.rev, cur.pid())

		case <-stop:
			stop = nil
			stopping = true
			_ = cur.signal(syscall.SIGTERM)
			killAt = time.After(r.cfg.Grace)
		}
	}
}

func revOf(env *client.Env) int64 {
	if env == nil {
		return 0
	}
	return env.Revision
}

// follow watches the scope and sends each newer env it fetches on out,
// replacing one not yet taken. It says once when it loses the server and
// when it has it back.
// update is a newer env, with the rollout's grant when it is this
// instance's turn.
type update struct {
	env   *client.Env
	grant *client.Grant
}

func (r *runner) follow(ctx context.Context, have int64, out chan update) {
	var (
		mu   sync.Mutex
		down bool
	)
	opts := append([]client.WatchOption{
		client.WatchOnRetry(func(err error, wait time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			if !down && ctx.Err() == nil {
				down = true
				r.logf("can't watch %s (%v); retrying", r.cfg.Scope, err)
			}
		}),
		client.WatchOnConnect(func() {
			// The server answers: from now on the run has its values
			// (the watch sends any newer revision than the copy's).
			r.rep.clearFallback()
			mu.Lock()
			defer mu.Unlock()
			if down {
				down = false
				r.logf("watching %s again", r.cfg.Scope)
			}
		}),
		client.WatchConsumer(r.cfg.ConsumerID),
	}, r.cfg.WatchOptions...)
	w, err := r.cfg.Client.Watch(ctx, r.cfg.Scope, have, opts...)
	if err != nil {
		if ctx.Err() == nil {
			r.logf("warning: can't watch %s: %v; %s keeps running with revision %d", r.cfg.Scope, err, r.cfg.Command[0], have)
		}
		return
	}
	var waitLogged int64
	for ev := range w.Events() {
		if ev.Wait {
			if ev.Revision > waitLogged {
				waitLogged = ev.Revision
				r.logf("revision %d of %s is out: waiting for this instance's turn in the rollout", ev.Revision, r.cfg.Scope)
			}
			continue
		}
		if ev.Revision <= have && ev.Grant == nil {
			continue
		}
		env, err := r.fetchChange(ctx, ev.Revision, have)
		if err != nil {
			if ctx.Err() == nil {
				r.logf("warning: can't fetch revision %d of %s: %v; keeping revision %d", ev.Revision, r.cfg.Scope, err, have)
			}
			continue
		}
		if env.Revision <= have && ev.Grant == nil {
			continue
		}
		if env.Revision > have {
			have = env.Revision
			r.save(env)
		}
		u := update{env: env, grant: ev.Grant}
		select {
		case old := <-out:
			if u.grant == nil {
				u.grant = old.grant // the turn still stands
			}
		default:
		}
		out <- u
	}
	if err := w.Err(); err != nil {
		r.logf("warning: stopped watching %s: %v; %s keeps running with revision %d", r.cfg.Scope, err, r.cfg.Command[0], have)
	}
}

// The pace of fetchChange's tries: from fetchRetryBase, doubling, then
// every fetchRetryMax. Variables for the tests.
var (
	fetchRetryBase = time.Second
	fetchRetryMax  = 30 * time.Second
)

// fetchChange fetches the env after a change event, which promises a
// newer env than have. The watch has moved past the change: no reconnect
// sends it again, so a failure that passes (the server, or its audit
// stream, down for minutes) is tried again until the fetch succeeds or
// the run ends, and said once; a newer change that came meanwhile is
// fetched by the same try.
func (r *runner) fetchChange(ctx context.Context, rev, have int64) (*client.Env, error) {
	logged := false
	for wait := fetchRetryBase; ; wait = min(wait*2, fetchRetryMax) {
		env, err := r.fetch(ctx, r.cfg.Timeout)
		if err == nil || !transient(err) {
			return env, err
		}
		if wait == fetchRetryMax && !logged {
			logged = true
			r.logf("warning: can't fetch revision %d of %s: %v; keeping revision %d and trying again", rev, r.cfg.Scope, err, have)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// reporter tells the server which revision the command runs: at once when
// it changes, and every ReportInterval so that it stays live.
type reporter struct {
	r      *runner
	update chan struct{}
	mu     sync.Mutex
	rev    int64
	pid    int
	// fallbackSince is when the run started from the fallback copy, zero
	// once the server has answered.
	fallbackSince time.Time
	// unhealthy, until a report carries it, says why the command did
	// not come back healthy on rev after a granted restart.
	unhealthy string
}

func newReporter(r *runner) *reporter {
	return &reporter{r: r, update: make(chan struct{}, 1)}
}

func (rp *reporter) set(rev int64, pid int) {
	rp.mu.Lock()
	rp.rev, rp.pid = rev, pid
	rp.mu.Unlock()
	select {
	case rp.update <- struct{}{}:
	default:
	}
}

// fail reports rev as run by pid, and that it did not come back healthy.
func (rp *reporter) fail(rev int64, pid int, why string) {
	rp.mu.Lock()
	rp.unhealthy = unhealthyReason(why)
	rp.mu.Unlock()
	rp.set(rev, pid)
}

// failNow reports at once, within GoodbyeTimeout, that pid did not come
// back healthy on rev: the run is about to end.
func (rp *reporter) failNow(ctx context.Context, rev int64, pid int, why string) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), GoodbyeTimeout)
	defer cancel()
	report := client.ConsumerReport{Revision: rev, Hostname: rp.r.hostname, PID: pid, Unhealthy: unhealthyReason(why)}
	if err := rp.r.cfg.Client.ReportConsumer(cctx, rp.r.cfg.Scope, rp.r.cfg.ConsumerID, report); err != nil {
		rp.r.logf("warning: can't tell envy that %s is not healthy: %v", rp.r.cfg.ConsumerID, err)
	}
}

func (rp *reporter) setFallback(since time.Time) {
	rp.mu.Lock()
	rp.fallbackSince = since
	rp.mu.Unlock()
}

// clearFallback notes that the server answers again, and reports it at
// once when the run was on the fallback.
func (rp *reporter) clearFallback() {
	rp.mu.Lock()
	was := !rp.fallbackSince.IsZero()
	rp.fallbackSince = time.Time{}
	rp.mu.Unlock()
	if was {
		select {
		case rp.update <- struct{}{}:
		default:
		}
	}
}

// GoodbyeTimeout bounds the goodbye a watching run sends on its way out:
// a server that does not answer in time lets the report expire instead.
const GoodbyeTimeout = 2 * time.Second

// goodbye tells the server that this run stopped, within GoodbyeTimeout.
func (rp *reporter) goodbye(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, GoodbyeTimeout)
	defer cancel()
	if err := rp.r.cfg.Client.DeleteConsumer(cctx, rp.r.cfg.Scope, rp.r.cfg.ConsumerID); err != nil && !transient(err) {
		rp.r.logf("warning: can't tell envy that %s stopped: %v (it counts as live until its last report expires)", rp.r.cfg.ConsumerID, err)
	}
}

func (rp *reporter) run(ctx context.Context) {
	t := time.NewTicker(rp.r.cfg.ReportInterval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-rp.update:
		case <-t.C:
		}
		rp.mu.Lock()
		rev, pid := rp.rev, rp.pid
		report := client.ConsumerReport{Revision: rev, Hostname: rp.r.hostname, PID: pid, Unhealthy: rp.unhealthy}
		if !rp.fallbackSince.IsZero() {
			since := rp.fallbackSince.UTC()
			report.FallbackSince = &since
		}
		rp.mu.Unlock()
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := rp.r.cfg.Client.ReportConsumer(cctx, rp.r.cfg.Scope, rp.r.cfg.ConsumerID, report)
		cancel()
		switch {
		case err != nil && transient(err):
			// The server is away: the watch (or the fallback warning)
			// says so already, and a report will get through once it is
			// back.
		case err != nil && !failing && ctx.Err() == nil:
			failing = true
			rp.r.logf("warning: can't report to envy that %s runs revision %d of %s: %v (will keep trying)",
				rp.r.cfg.ConsumerID, rev, rp.r.cfg.Scope, err)
		case err == nil:
			failing = false
			if report.Unhealthy != "" {
				rp.mu.Lock()
				if rp.unhealthy == report.Unhealthy {
					rp.unhealthy = "" // told once: a later report must not pause a resumed rollout again
				}
				rp.mu.Unlock()
			}
		}
	}
}

// unhealthyReason is why as the server takes it: printable (a control
// character becomes a space) and at most envy.MaxUnhealthyBytes, cut on a
// character's boundary. A health check's error can be longer (a
// certificate's names, a reply quoted): sent whole, it was refused on
// every report, so the rollout never paused and went on past the failure.
func unhealthyReason(why string) string {
	why = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(why, "?"))
	if len(why) <= envy.MaxUnhealthyBytes {
		return why
	}
	const more = "…"
	cut := envy.MaxUnhealthyBytes - len(more)
	for cut > 0 && !utf8.RuneStart(why[cut]) {
		cut--
	}
	return why[:cut] + more
}
