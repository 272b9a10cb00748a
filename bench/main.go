// Command bench is envy's load benchmark (docs/benchmarks.md). In one run
// it builds and starts `envy server` on SQLite in a temp dir (or on an
// empty PostgreSQL database with -database-url), seeds it,
// and measures it against a baseline net/http handler that serves a fixed
// JSON body of the same size, started the same way:
//
//	go run ./bench [-duration 5s] [-conns 32] [-json bench/results.json] [-scopes 10000] [-database-url postgres://…]
//	go run ./bench -smoke [-database-url postgres://…]
//	go run ./bench -soak 5m [-rate 200] [-database-url postgres://…]
//
// On PostgreSQL it starts a second server on the same database and
// measures the delay of a watch event from a write on one server to
// watchers on the other. -smoke runs every case for a moment, at a small
// size, and checks that each returns correct data (no timing is judged):
// .ci/run runs it.
//
// It prints a table and writes the same figures as JSON. Absolute times
// vary between machines; the ratio to the baseline in the same run is the
// figure that matters.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type result struct {
	Case      string  `json:"case"`
	RPS       float64 `json:"rps,omitempty"`
	P50ms     float64 `json:"p50_ms,omitempty"`
	P99ms     float64 `json:"p99_ms,omitempty"`
	Ratio     float64 `json:"ratio_to_baseline,omitempty"`
	Value     float64 `json:"value,omitempty"`
	Unit      string  `json:"unit,omitempty"`
	Target    string  `json:"target"`
	Requests  int     `json:"requests,omitempty"`
	Errors    int64   `json:"errors,omitempty"`
	BodyBytes int     `json:"body_bytes,omitempty"`
	// CPUus is the CPU time, in µs, that the envy servers and PostgreSQL
	// spent per request, from /proc: unlike a rate, it holds when other
	// work shares the machine.
	CPUus   float64 `json:"cpu_us_per_request,omitempty"`
	PGCPUus float64 `json:"postgresql_cpu_us_per_request,omitempty"` // of CPUus
}

func main() {
	if len(os.Args) > 2 && os.Args[1] == "-baseline" {
		serveBaseline(os.Args[2], os.Args[3])
		return
	}
	var o options
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "how long each load case runs")
	flag.IntVar(&o.conns, "conns", 32, "concurrent connections")
	flag.StringVar(&o.out, "json", "bench/results.json", "where to write the figures as JSON")
	flag.IntVar(&o.scopes, "scopes", 10000, "scopes of 50 vars for the memory case (0 skips it)")
	flag.IntVar(&o.watchers, "watchers", 1000, "watchers for the watch delay case")
	flag.StringVar(&o.databaseURL, "database-url", "", "run on PostgreSQL at this URL (an empty database) instead of SQLite")
	flag.BoolVar(&o.smoke, "smoke", false, "run every case briefly at a small size and check its data; no figures are written")
	only := flag.String("only", "", "run only these groups of cases, comma-separated: reads, writes, watch, servers, graph, dashboard, memory")
	servers := flag.String("servers", "1,2,3", "the servers case's rounds: how many servers in each, comma-separated (1 to 3)")
	soak := flag.Duration("soak", 0, "instead of the benchmark, a soak run of this length (bench/soak.go)")
	rate := flag.Int("rate", 200, "soak run: requests per second")
	flag.Parse()
	databaseURL = o.databaseURL
	if *soak > 0 {
		if err := runSoak(*soak, *rate, o.databaseURL, "bench/soak.json"); err != nil {
			fmt.Fprintln(os.Stderr, "bench -soak:", err)
			os.Exit(1)
		}
		return
	}
	o.dashboardScopes = 1000
	if *only != "" {
		o.only = map[string]bool{}
		for _, g := range strings.Split(*only, ",") {
			if !slices.Contains(caseGroups, g) {
				fmt.Fprintf(os.Stderr, "bench -only: no group %q (groups: %s)\n", g, strings.Join(caseGroups, ", "))
				os.Exit(2)
			}
			o.only[g] = true
		}
	}
	for _, f := range strings.Split(*servers, ",") {
		n, err := strconv.Atoi(f)
		switch {
		case err != nil || n < 1 || n > 3:
			fmt.Fprintf(os.Stderr, "bench -servers: %q is not a count of servers from 1 to 3\n", f)
			os.Exit(2)
		case slices.Contains(o.servers, n):
			fmt.Fprintf(os.Stderr, "bench -servers: %d is given twice\n", n)
			os.Exit(2)
		}
		o.servers = append(o.servers, n)
	}
	if o.smoke {
		o.duration, o.scopes, o.watchers, o.dashboardScopes, o.out = 300*time.Millisecond, 20, 20, 40, ""
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if o.smoke {
		fmt.Println("smoke: every case ran and returned correct data")
	}
}

// options are a run's settings.
type options struct {
	duration        time.Duration
	conns           int
	out             string
	scopes          int // for the memory case
	watchers        int
	dashboardScopes int
	databaseURL     string
	smoke           bool            // check every case's data, judge no figure
	only            map[string]bool // the groups of cases to run; nil: all
	servers         []int           // the rounds of the servers case: how many servers in each
}

// databaseURL is -database-url, for cpuTicks.
var databaseURL string

// caseGroups are the groups of cases that -only picks from.
var caseGroups = []string{"reads", "writes", "watch", "servers", "graph", "dashboard", "memory"}

// runs reports whether the run includes the group of cases g.
func (o options) runs(g string) bool { return o.only == nil || o.only[g] }

func run(o options) error {
	dir, bin, err := buildEnvy()
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	token := "envy_" + strings.Repeat("0", 13) + "benchmarkTokenForEnvyLoadTest1"
	var extra []string
	store := "SQLite"
	if o.databaseURL != "" {
		extra, store = []string{"--database-url", o.databaseURL}, "PostgreSQL"
	}
	srv, startup, err := startEnvy(bin, filepath.Join(dir, "data"), token, extra...)
	if err != nil {
		return err
	}
	defer srv.stop()
	fmt.Println("store:", store)
	idleRSS := rssMB(srv.cmd.Process.Pid)
	var results []result
	results = append(results, result{Case: "start to ready", Value: ms(startup), Unit: "ms", Target: "≤ 100 ms"})

	c := newClient(srv.addr, token, o.conns)
	envyPID, pg := []int{srv.cmd.Process.Pid}, o.databaseURL != ""
	// Seed: a base scope with 10 vars, inherited by app with 40 more (10
	// secrets among them): 50 resolved vars.
	base, app := map[string]any{}, map[string]any{}
	want := map[string]string{} // the resolved env
	var secrets []string
	for i := 0; i < 10; i++ {
		k, v := fmt.Sprintf("BASE_VAR_%02d", i), fmt.Sprintf("base-value-%02d-%s", i, strings.Repeat("x", 40))
		base[k], want[k] = v, v
	}
	for i := 0; i < 40; i++ {
		k, v := fmt.Sprintf("APP_VAR_%02d", i), fmt.Sprintf("app-value-%02d-%s", i, strings.Repeat("y", 40))
		app[k] = v
		if i < 10 {
			v = fmt.Sprintf("sk-secret-%02d-%s", i, strings.Repeat("z", 40))
			app[k] = map[string]any{"value": v, "secret": true}
			secrets = append(secrets, k)
		}
		want[k] = v
	}
	if err := c.must("PATCH", "/v1/scopes/bench/base/-/vars", base); err != nil {
		return err
	}
	if err := c.must("PUT", "/v1/scopes/bench/app", map[string]any{"inherits": []string{"bench/base"}}); err != nil {
		return err
	}
	if err := c.must("PATCH", "/v1/scopes/bench/app/-/vars", app); err != nil {
		return err
	}
	envBody, err := c.get("/v1/scopes/bench/app/-/env")
	if err != nil {
		return err
	}
	listBody, err := c.get("/v1/scopes/bench/app/-/vars")
	if err != nil {
		return err
	}
	healthzBody, err := c.get("/healthz")
	if err != nil {
		return err
	}
	// Every run checks what it measures, so that a figure is never that
	// of a wrong answer.
	if err := checkEnv(envBody, want, secrets); err != nil {
		return err
	}
	if err := checkList(listBody, want, secrets); err != nil {
		return err
	}
	if string(healthzBody) != `{"status":"ok"}`+"\n" {
		return fmt.Errorf("/healthz answered %q", healthzBody)
	}

	// Baseline: a bare net/http handler serving a fixed body of the same size.
	baseline := func(body []byte) (result, error) {
		f := filepath.Join(dir, "baseline.json")
		os.WriteFile(f, body, 0o600)
		b, err := startBaseline(f)
		if err != nil {
			return result{}, err
		}
		defer b.stop()
		return load(newClient(b.addr, "", o.conns), "GET", "/", nil, o.duration, o.conns), nil
	}
	if o.runs("reads") {
		for _, tc := range []struct {
			name, path, target string
			body               []byte
		}{
			{"read a 50-var resolved env", "/v1/scopes/bench/app/-/env", "≥ 0.50 of baseline; p99 ≤ 5 ms", envBody},
			{"list the vars of that scope (masked)", "/v1/scopes/bench/app/-/vars", "≥ 0.60 of baseline", listBody},
			{"/healthz (the middleware alone)", "/healthz", "≥ 0.90 of baseline", healthzBody},
		} {
			bl, err := baseline(tc.body)
			if err != nil {
				return err
			}
			bl.Case = "baseline for: " + tc.name
			bl.BodyBytes = len(tc.body)
			r := withCPU(envyPID, pg, func() result { return load(c, "GET", tc.path, nil, o.duration, o.conns) })
			r.Case, r.Target, r.BodyBytes = tc.name, tc.target, len(tc.body)
			r.Ratio = r.RPS / bl.RPS
			if store == "PostgreSQL" && strings.HasPrefix(tc.name, "read") {
				r.Target = "≥ 0.40 of baseline"
			}
			results = append(results, bl, r)
		}
	}

	if o.runs("writes") {
		var n atomic.Int64
		w := withCPU(envyPID, pg, func() result {
			return load(c, "PUT", "", func() (string, []byte) {
				i := n.Add(1)
				// 64 scopes of 50 vars, a realistic size; each write is one var.
				return fmt.Sprintf("/v1/scopes/bench/writes/s%02d/-/vars/V_%02d", (i/50)%64, i%50), []byte(`{"value":"v` + strconv.FormatInt(i, 10) + `"}`)
			}, o.duration, o.conns)
		})
		w.Case, w.Target = fmt.Sprintf("single-var write, durable, %d connections", o.conns), "≥ 10,000 writes/s; p99 ≤ 20 ms"
		if store == "PostgreSQL" {
			w.Target = "≥ 2,000 writes/s"
		}
		results = append(results, w)

		var h atomic.Int64
		hot := load(c, "PUT", "", func() (string, []byte) {
			i := h.Add(1)
			// One scope of 50 vars that every connection writes to.
			return fmt.Sprintf("/v1/scopes/bench/hot/-/vars/V_%02d", i%50), []byte(`{"value":"v` + strconv.FormatInt(i, 10) + `"}`)
		}, o.duration, o.conns)
		hot.Case, hot.Target = fmt.Sprintf("writes to one hot scope, %d connections", o.conns), "≥ 5,000 writes/s"
		results = append(results, hot)
		if err := checkWrites(c, "bench/hot", int(min(h.Load(), 50))); err != nil { // every write taken was sent
			return err
		}

		// Each merge sets every key to a new value: one that changed nothing
		// would be answered without a write.
		var round int
		b := load(c, "PATCH", "", func() (string, []byte) {
			round++
			bulk := make(map[string]string, 200)
			for i := 0; i < 200; i++ {
				bulk[fmt.Sprintf("BULK_%03d", i)] = fmt.Sprintf("bulk-value-%03d-%d-%s", i, round, strings.Repeat("b", 30))
			}
			body, _ := json.Marshal(bulk)
			return "/v1/scopes/bench/bulk/-/vars", body
		}, o.duration, 1)
		b.Case, b.Target = "200-key bulk merge (one client)", "p50 ≤ 20 ms"
		results = append(results, b)
		if err := checkWrites(c, "bench/bulk", 200); err != nil {
			return err
		}
	}
	afterLoadRSS := rssMB(srv.cmd.Process.Pid)

	if o.runs("watch") {
		wr, err := watchDelay(srv.addr, srv.addr, token, o.watchers)
		if err != nil {
			return err
		}
		wr.Case = fmt.Sprintf("write → /-/watch event, %d watchers", o.watchers)
		results = append(results, wr)
	}
	if o.databaseURL != "" && o.runs("watch") {
		// A second server on the same database: the write on one, the
		// watchers on the other, the event carried by LISTEN/NOTIFY.
		srv2, _, err := startEnvy(bin, filepath.Join(dir, "data2"), token,
			append(extra, "--master-key-file", filepath.Join(dir, "data", "master.key"))...)
		if err != nil {
			return err
		}
		defer srv2.stop()
		xr, err := watchDelay(srv.addr, srv2.addr, token, o.watchers)
		if err != nil {
			return err
		}
		xr.Case, xr.Target = fmt.Sprintf("write on one server → /-/watch event on another, %d watchers", o.watchers), "p99 ≤ 200 ms"
		results = append(results, xr)
	}
	if o.databaseURL != "" && o.runs("servers") {
		mr, err := severalServers(bin, dir, token, srv, extra, o)
		if err != nil {
			return err
		}
		results = append(results, mr...)
	}

	if o.runs("graph") {
		lr, err := layeredInherits(c, 8, 16, o.duration, o.conns)
		if err != nil {
			return err
		}
		results = append(results, lr...)
	}
	if o.runs("dashboard") {
		ui, err := dashboardScopeList(c, srv.addr, token, o.dashboardScopes, o.duration, o.conns)
		if err != nil {
			return err
		}
		results = append(results, ui)
	}

	results = append(results, result{Case: "resident memory, idle", Value: idleRSS, Unit: "MB", Target: "≤ 30 MB"})
	results = append(results, result{Case: "resident memory after the load cases", Value: afterLoadRSS, Unit: "MB", Target: "≤ 60 MB"})
	if o.scopes > 0 && o.runs("memory") {
		if err := seedScopes(c, o.scopes, o.conns); err != nil {
			return err
		}
		results = append(results, result{Case: fmt.Sprintf("resident memory at %d scopes × 50 vars", o.scopes), Value: rssMB(srv.cmd.Process.Pid), Unit: "MB", Target: "≤ 150 MB"})
		caches, err := cacheBytes(c)
		if err != nil {
			return err
		}
		for _, name := range []string{"env", "plaintext", "scopes", "tokens", "no_consumers"} {
			if v, ok := caches[name]; ok {
				results = append(results, result{Case: "of which the " + name + " cache holds", Value: v / (1 << 10), Unit: "KB", Target: "bounded"})
			}
		}
	}

	printTable(results)
	if o.smoke {
		for _, r := range results {
			if r.Errors > 0 || r.Requests == 0 && r.Unit == "" {
				return fmt.Errorf("smoke: %s: %d requests, %d errors", r.Case, r.Requests, r.Errors)
			}
		}
	}
	if o.out != "" {
		b, _ := json.MarshalIndent(map[string]any{"at": time.Now().UTC(), "store": store, "duration": o.duration.String(), "connections": o.conns,
			"machine": machine(), "results": results}, "", "  ")
		if err := os.WriteFile(o.out, append(b, '\n'), 0o644); err != nil {
			return err
		}
		fmt.Println("figures written to", o.out)
	}
	return nil
}

// checkEnv checks a resolved env's reply: every var with its value, and
// the secrets named.
func checkEnv(body []byte, want map[string]string, secrets []string) error {
	var env struct {
		Env     map[string]string `json:"env"`
		Secrets []string          `json:"secrets"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("env reply: %v", err)
	}
	if len(env.Env) != len(want) {
		return fmt.Errorf("env reply has %d vars, want %d", len(env.Env), len(want))
	}
	for k, v := range want {
		if env.Env[k] != v {
			return fmt.Errorf("env reply: %s is not the value written", k)
		}
	}
	sort.Strings(env.Secrets)
	if strings.Join(env.Secrets, ",") != strings.Join(secrets, ",") {
		return fmt.Errorf("env reply names secrets %v, want %v", env.Secrets, secrets)
	}
	return nil
}

// checkList checks a masked var list: plain values shown, secrets masked
// and never shown.
func checkList(body []byte, want map[string]string, secrets []string) error {
	var list struct {
		Items []struct {
			Name   string  `json:"name"`
			Value  *string `json:"value"`
			Masked *string `json:"masked_value"`
			Secret bool    `json:"secret"`
		} `json:"items"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return fmt.Errorf("list reply: %v", err)
	}
	if len(list.Items) != 40 {
		return fmt.Errorf("list reply has %d vars, want 40", len(list.Items))
	}
	for _, it := range list.Items {
		switch {
		case it.Secret && (it.Value != nil || it.Masked == nil || !slices.Contains(secrets, it.Name)):
			return fmt.Errorf("list reply: secret %s is not masked", it.Name)
		case !it.Secret && (it.Value == nil || *it.Value != want[it.Name]):
			return fmt.Errorf("list reply: %s is not the value written", it.Name)
		}
	}
	for _, k := range secrets {
		if bytes.Contains(body, []byte(want[k])) {
			return fmt.Errorf("list reply shows the value of secret %s", k)
		}
	}
	return nil
}

// checkWrites checks that a scope written by a load case holds its n vars,
// each with a value that one of the writes sent.
func checkWrites(c *client, scope string, n int) error {
	body, err := c.get("/v1/scopes/" + scope + "/-/vars")
	if err != nil {
		return err
	}
	var list struct {
		Items []struct {
			Value string `json:"value"`
		} `json:"items"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return fmt.Errorf("%s: %v", scope, err)
	}
	if len(list.Items) != n {
		return fmt.Errorf("%s holds %d vars after its writes, want %d", scope, len(list.Items), n)
	}
	for _, it := range list.Items {
		if !strings.HasPrefix(it.Value, "v") && !strings.HasPrefix(it.Value, "bulk-value-") {
			return fmt.Errorf("%s holds a value that no write sent", scope)
		}
	}
	return nil
}

// cacheBytes reads the bytes each cache holds from /metrics.
func cacheBytes(c *client) (map[string]float64, error) {
	body, err := c.get("/metrics")
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if m := cacheBytesRe.FindStringSubmatch(line); m != nil {
			v, _ := strconv.ParseFloat(m[2], 64)
			out[m[1]] = v
		}
	}
	return out, nil
}

var cacheBytesRe = regexp.MustCompile(`^envy_cache_bytes\{cache="([a-z_]+)"\} (\S+)$`)

// machine describes where the run ran: CPUs, Go, and the load average as
// the figures are written (other jobs on the machine skew every figure).
func machine() map[string]any {
	m := map[string]any{"cpus": runtime.NumCPU(), "go": runtime.Version(), "os": runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m["loadavg"] = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m["cpu"] = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// --- processes -------------------------------------------------------------

// buildEnvy builds the envy binary into a new temp dir, which the caller
// removes.
func buildEnvy() (dir, bin string, err error) {
	dir, err = os.MkdirTemp("", "envy-bench-")
	if err != nil {
		return "", "", err
	}
	bin = filepath.Join(dir, "envy")
	fmt.Fprintln(os.Stderr, "building envy…")
	if b, err := exec.Command("go", "build", "-tags", os.Getenv("ENVY_BENCH_TAGS"), "-o", bin, "./cmd/envy").CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", "", fmt.Errorf("go build: %v\n%s", err, b)
	}
	return dir, bin, nil
}

type proc struct {
	cmd  *exec.Cmd
	addr string
}

func (p *proc) stop() {
	p.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
	}
}

var readyRe = regexp.MustCompile(`url=(http://\S+)`)

func startEnvy(bin, dataDir, token string, flags ...string) (*proc, time.Duration, error) {
	// No rate limit, and room for the watch case's thousand streams of one
	// token beside the load's connections.
	cmd := exec.Command(bin, append([]string{"server", "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--rate-limit", "0",
		"--max-conns", "4096", "--max-conns-per-client", "4096", "--max-watches-per-token", "4096"}, flags...)...)
	cmd.Env = append(os.Environ(), "ENVY_BOOTSTRAP_TOKEN="+token)
	stderr, _ := cmd.StderrPipe()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, 0, err
	}
	addr := make(chan string, 1)
	var logMu sync.Mutex
	var firstLines []string // for the error when it does not start
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logMu.Lock()
			if len(firstLines) < 20 {
				firstLines = append(firstLines, sc.Text())
			}
			logMu.Unlock()
			if m := readyRe.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case a := <-addr:
		// Ready means /readyz answers 200.
		for {
			res, err := http.Get(a + "/readyz")
			if err == nil {
				res.Body.Close()
				if res.StatusCode == 200 {
					return &proc{cmd: cmd, addr: a}, time.Since(start), nil
				}
			}
			time.Sleep(time.Millisecond)
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		logMu.Lock()
		defer logMu.Unlock()
		return nil, 0, fmt.Errorf("envy server did not start:\n%s", strings.Join(firstLines, "\n"))
	}
}

func startBaseline(file string) (*proc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-baseline", file, "127.0.0.1:0")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("baseline did not start: %v", err)
	}
	return &proc{cmd: cmd, addr: strings.TrimSpace(line)}, nil
}

// serveBaseline serves the file's bytes as JSON on every request.
func serveBaseline(file, listen string) {
	body, err := os.ReadFile(file)
	if err != nil {
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		os.Exit(1)
	}
	fmt.Println("http://" + ln.Addr().String())
	http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
}

func rssMB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// cpuTicks is the CPU time (user and system, in clock ticks) that the
// processes pids have spent, and with pg that of the PostgreSQL backends
// serving the run's database, from /proc.
func cpuTicks(pids []int, pg bool) (own, pgTicks int64) {
	pgDatabase := "" // the database of the run, from -database-url
	if u, err := url.Parse(databaseURL); err == nil {
		pgDatabase = strings.TrimPrefix(u.Path, "/")
	}
	ticks := func(stat []byte) int64 {
		// The fields after the command's closing parenthesis; utime and
		// stime are the 14th and 15th of the whole line.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			return 0
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 13 {
			return 0
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		return u + st
	}
	for _, pid := range pids {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			own += ticks(b)
		}
	}
	if !pg {
		return own, 0
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		// A backend's command line names its database ("postgres: user
		// db host(port) state"): only those of the benchmark's count, not
		// other work's on the same server.
		if cmd, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && bytes.HasPrefix(cmd, []byte("postgres: ")) && bytes.Contains(cmd, []byte(" "+pgDatabase+" ")) {
			if b, err := os.ReadFile("/proc/" + e.Name() + "/stat"); err == nil {
				pgTicks += ticks(b)
			}
		}
	}
	return own, pgTicks
}

// withCPU runs f and sets its result's CPU per request: that of the
// processes pids and, with pg, of PostgreSQL (100 clock ticks a second,
// Linux's).
func withCPU(pids []int, pg bool, f func() result) result {
	o0, p0 := cpuTicks(pids, pg)
	r := f()
	o1, p1 := cpuTicks(pids, pg)
	if r.Requests > 0 && runtime.GOOS == "linux" {
		r.CPUus = float64(o1-o0+p1-p0) * 1e4 / float64(r.Requests)
		r.PGCPUus = float64(p1-p0) * 1e4 / float64(r.Requests)
	}
	return r
}

// --- load ------------------------------------------------------------------

type client struct {
	addr, token string
	cookie      string // a Cookie header, for the dashboard
	hc          *http.Client
}

func newClient(addr, token string, conns int) *client {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
	return &client{addr: addr, token: token, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

func (c *client) req(method, path string, body []byte) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	r, err := http.NewRequest(method, c.addr+path, rd)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		r.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.cookie != "" {
		r.Header.Set("Cookie", c.cookie)
	}
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	return r, nil
}

func (c *client) must(method, path string, v any) error {
	b, _ := json.Marshal(v)
	r, _ := c.req(method, path, b)
	res, err := c.hc.Do(r)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode >= 300 {
		msg, _ := io.ReadAll(res.Body)
		return fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, msg)
	}
	io.Copy(io.Discard, res.Body)
	return nil
}

func (c *client) get(path string) ([]byte, error) {
	r, _ := c.req("GET", path, nil)
	res, err := c.hc.Do(r)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		return nil, fmt.Errorf("GET %s: %d %s", path, res.StatusCode, b)
	}
	return b, err
}

// load runs conns workers for d and measures every request.
func load(c *client, method, path string, next func() (string, []byte), d time.Duration, conns int) result {
	var each func(int) (string, []byte)
	if next != nil {
		each = func(int) (string, []byte) { return next() }
	}
	return loadOn([]*client{c}, method, path, each, d, conns)
}

// loadOn is load spread over several servers: worker i sends to cs[i%len(cs)].
func loadOn(cs []*client, method, path string, next func(conn int) (string, []byte), d time.Duration, conns int) result {
	var (
		mu    sync.Mutex
		lats  []time.Duration
		errs  atomic.Int64
		wg    sync.WaitGroup
		until = time.Now().Add(d)
	)
	start := time.Now()
	for i := 0; i < conns; i++ {
		wg.Add(1)
		c := cs[i%len(cs)]
		go func(conn int) {
			defer wg.Done()
			local := make([]time.Duration, 0, 1<<14)
			for time.Now().Before(until) {
				p, body := path, []byte(nil)
				if next != nil {
					p, body = next(conn)
				}
				r, _ := c.req(method, p, body)
				t0 := time.Now()
				res, err := c.hc.Do(r)
				if err != nil {
					errs.Add(1)
					continue
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode >= 300 {
					errs.Add(1)
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			lats = append(lats, local...)
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	el := time.Since(start)
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	return result{RPS: float64(len(lats)) / el.Seconds(), P50ms: ms(pct(lats, 0.50)), P99ms: ms(pct(lats, 0.99)), Requests: len(lats), Errors: errs.Load()}
}

func pct(l []time.Duration, p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	return l[int(float64(len(l)-1)*p)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// watchDelay opens n watchers on one scope, makes writes and measures, for
// each watcher and write, the delay from the write's send to the event.
func watchDelay(writeAddr, watchAddr, token string, n int) (result, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr := &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: n}
	hc := &http.Client{Transport: tr}
	type ev struct {
		rev int64
		at  time.Time
	}
	c := newClient(writeAddr, token, 4)
	if err := c.must("PUT", "/v1/scopes/bench/watched/-/vars/W", map[string]string{"value": "0"}); err != nil {
		return result{}, err
	}
	events := make(chan ev, n*16)
	var ready sync.WaitGroup
	var failed atomic.Int64
	for i := 0; i < n; i++ {
		ready.Add(1)
		go func() {
			req, _ := http.NewRequestWithContext(ctx, "GET", watchAddr+"/v1/scopes/bench/watched/-/watch", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			res, err := hc.Do(req)
			ready.Done()
			if err != nil {
				if failed.Add(1) == 1 {
					fmt.Fprintln(os.Stderr, "watch stream:", err)
				}
				return
			}
			defer res.Body.Close()
			if res.StatusCode != 200 {
				if failed.Add(1) == 1 {
					b, _ := io.ReadAll(res.Body)
					fmt.Fprintln(os.Stderr, "watch stream:", res.StatusCode, string(b))
				}
				return
			}
			sc := bufio.NewScanner(res.Body)
			for sc.Scan() {
				if id, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
					rev, _ := strconv.ParseInt(id, 10, 64)
					events <- ev{rev, time.Now()}
				}
			}
		}()
	}
	ready.Wait()
	time.Sleep(500 * time.Millisecond) // let every stream subscribe
	for len(events) > 0 {
		<-events
	}
	var lats []time.Duration
	for i := 1; i <= 10; i++ {
		sent := time.Now()
		body, _ := json.Marshal(map[string]string{"value": strconv.Itoa(i)})
		r, _ := c.req("PUT", "/v1/scopes/bench/watched/-/vars/W", body)
		res, err := c.hc.Do(r)
		if err != nil {
			return result{}, err
		}
		var reply struct {
			Revision int64 `json:"revision"`
		}
		json.NewDecoder(res.Body).Decode(&reply)
		res.Body.Close()
		got := 0
		timeout := time.After(10 * time.Second)
		for got < n {
			select {
			case e := <-events:
				if e.rev >= reply.Revision {
					lats = append(lats, e.at.Sub(sent))
					got++
				}
			case <-timeout:
				return result{}, fmt.Errorf("watch: only %d of %d watchers got revision %d (%d streams failed)", got, n, reply.Revision, failed.Load())
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	return result{Case: fmt.Sprintf("write → /-/watch event, %d watchers", n), P50ms: ms(pct(lats, 0.5)), P99ms: ms(pct(lats, 0.99)), Requests: len(lats), Target: "p99 ≤ 100 ms"}, nil
}

// dashboardScopeList seeds n scopes of 5 vars (1,000 in a full run), signs in to the
// dashboard and loads its scope list page (/ui/scopes), which lists every
// scope with its var count and sync state.
func dashboardScopeList(c *client, addr, token string, n int, d time.Duration, conns int) (result, error) {
	fmt.Fprintf(os.Stderr, "seeding %d scopes for the dashboard…\n", n)
	body := map[string]string{}
	for i := 0; i < 5; i++ {
		body[fmt.Sprintf("VAR_%d", i)] = strings.Repeat("v", 20)
	}
	for i := 0; i < n; i++ {
		if err := c.must("PATCH", fmt.Sprintf("/v1/scopes/ui/team%02d/app%03d/-/vars", i/50, i), body); err != nil {
			return result{}, err
		}
	}
	// Sign in as a browser does: the sign-in form's own cookie and field,
	// then the session cookie.
	hc := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := hc.Get(addr + "/ui/signin")
	if err != nil {
		return result{}, err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	var signin string
	for _, ck := range res.Cookies() {
		if ck.Name == "envy_signin" {
			signin = ck.Value
		}
	}
	form := "signin=" + signin + "&token=" + token
	req, _ := http.NewRequest("POST", addr+"/ui/signin", strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Cookie", "envy_signin="+signin)
	res, err = hc.Do(req)
	if err != nil {
		return result{}, err
	}
	res.Body.Close()
	ui := newClient(addr, "", conns)
	for _, ck := range res.Cookies() {
		if ck.Name == "envy_session" {
			ui.cookie = "envy_session=" + ck.Value
		}
	}
	if ui.cookie == "" {
		return result{}, fmt.Errorf("dashboard sign-in: %d, no session cookie", res.StatusCode)
	}
	page, err := ui.get("/ui/scopes")
	if err != nil {
		return result{}, err
	}
	if last := fmt.Sprintf("ui/team%02d/app%03d", (n-1)/50, n-1); !bytes.Contains(page, []byte(last)) {
		return result{}, fmt.Errorf("the dashboard's scope list lacks the scopes just made")
	}
	r := load(ui, "GET", "/ui/scopes", nil, d, 1) // one user loading the page
	r.Case = fmt.Sprintf("dashboard: scope list page, %d+ scopes, one client", n)
	r.Target = "p50 ≤ 100 ms"
	r.BodyBytes = len(page)
	return r, nil
}

func seedScopes(c *client, n, conns int) error {
	fmt.Fprintf(os.Stderr, "seeding %d scopes × 50 vars…\n", n)
	body := map[string]any{}
	for i := 0; i < 50; i++ {
		v := any(fmt.Sprintf("value-%02d-%s", i, strings.Repeat("m", 30)))
		if i%5 == 0 {
			v = map[string]any{"value": v, "secret": true}
		}
		body[fmt.Sprintf("VAR_%02d", i)] = v
	}
	b, _ := json.Marshal(body)
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				r, _ := c.req("PATCH", fmt.Sprintf("/v1/scopes/mem/s%05d/-/vars", i), b)
				res, err := c.hc.Do(r)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
		}()
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return e.(error)
	}
	// Read each scope's vars and env once, so that the scope cache and
	// the resolved-env cache hold what they can of them.
	for i := 1; i <= n; i++ {
		for _, tail := range []string{"vars", "env"} {
			if _, err := c.get(fmt.Sprintf("/v1/scopes/mem/s%05d/-/%s", i, tail)); err != nil {
				return err
			}
		}
	}
	return nil
}

func printTable(rs []result) {
	// CPU per request, and PostgreSQL's part of it.
	cpu := func(r result) string {
		switch {
		case r.CPUus == 0:
			return "-"
		case r.PGCPUus == 0:
			return fmt.Sprintf("%.0f", r.CPUus)
		}
		return fmt.Sprintf("%.0f(%.0f)", r.CPUus, r.PGCPUus)
	}
	fmt.Printf("%-64s %10s %9s %9s %8s %10s %10s  %s\n", "case", "req/s", "p50 ms", "p99 ms", "ratio", "value", "CPU µs", "target")
	for _, r := range rs {
		f := func(v float64, format string) string {
			if v == 0 {
				return "-"
			}
			return fmt.Sprintf(format, v)
		}
		val := "-"
		if r.Unit != "" {
			val = fmt.Sprintf("%.1f %s", r.Value, r.Unit)
			if r.Value < 10 {
				val = fmt.Sprintf("%.2f %s", r.Value, r.Unit)
			}
		}
		fmt.Printf("%-64s %10s %9s %9s %8s %10s %10s  %s\n", r.Case, f(r.RPS, "%.0f"), f(r.P50ms, "%.2f"), f(r.P99ms, "%.2f"), f(r.Ratio, "%.2f"), val, cpu(r), r.Target)
	}
}
