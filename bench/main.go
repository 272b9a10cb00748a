// Command bench is envy's load benchmark (docs/benchmarks.md). In one run
// it builds and starts `envy server` on SQLite in a temp dir (or on an
// empty PostgreSQL database with -database-url), seeds it,
// and measures it against a baseline net/http handler that serves a fixed
// JSON body of the same size, started the same way:
//
//	go run ./bench [-duration 5s] [-conns 32] [-json bench/results.json] [-scopes 10000] [-database-url postgres://…]
//	go run ./bench -soak 5m [-rate 200] [-database-url postgres://…]
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
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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
}

func main() {
	if len(os.Args) > 2 && os.Args[1] == "-baseline" {
		serveBaseline(os.Args[2], os.Args[3])
		return
	}
	duration := flag.Duration("duration", 5*time.Second, "how long each load case runs")
	conns := flag.Int("conns", 32, "concurrent connections")
	out := flag.String("json", "bench/results.json", "where to write the figures as JSON")
	scopes := flag.Int("scopes", 10000, "scopes of 50 vars for the memory case (0 skips it)")
	watchers := flag.Int("watchers", 1000, "watchers for the watch delay case")
	soak := flag.Duration("soak", 0, "instead of the benchmark, a soak run of this length (bench/soak.go)")
	rate := flag.Int("rate", 200, "soak run: requests per second")
	dbURL := flag.String("database-url", "", "run on PostgreSQL at this URL (an empty database) instead of SQLite")
	flag.Parse()
	if *soak > 0 {
		if err := runSoak(*soak, *rate, *dbURL, "bench/soak.json"); err != nil {
			fmt.Fprintln(os.Stderr, "bench -soak:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*duration, *conns, *out, *scopes, *watchers, *dbURL); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(duration time.Duration, conns int, out string, nScopes, nWatchers int, databaseURL string) error {
	dir, bin, err := buildEnvy()
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	token := "envy_" + strings.Repeat("0", 13) + "benchmarkTokenForEnvyLoadTest1"
	var extra []string
	store := "SQLite"
	if databaseURL != "" {
		extra, store = []string{"--database-url", databaseURL}, "PostgreSQL"
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

	c := newClient(srv.addr, token, conns)
	// Seed: a base scope with 10 vars, inherited by app with 40 more (10
	// secrets among them): 50 resolved vars.
	base, app := map[string]any{}, map[string]any{}
	for i := 0; i < 10; i++ {
		base[fmt.Sprintf("BASE_VAR_%02d", i)] = fmt.Sprintf("base-value-%02d-%s", i, strings.Repeat("x", 40))
	}
	for i := 0; i < 40; i++ {
		v := any(fmt.Sprintf("app-value-%02d-%s", i, strings.Repeat("y", 40)))
		if i < 10 {
			v = map[string]any{"value": fmt.Sprintf("sk-secret-%02d-%s", i, strings.Repeat("z", 40)), "secret": true}
		}
		app[fmt.Sprintf("APP_VAR_%02d", i)] = v
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

	// Baseline: a bare net/http handler serving a fixed body of the same size.
	baseline := func(body []byte) (result, error) {
		f := filepath.Join(dir, "baseline.json")
		os.WriteFile(f, body, 0o600)
		b, err := startBaseline(f)
		if err != nil {
			return result{}, err
		}
		defer b.stop()
		return load(newClient(b.addr, "", conns), "GET", "/", nil, duration, conns), nil
	}
	for _, tc := range []struct {
		name, path, target string
		body               []byte
	}{
		{"read a 50-var resolved env", "/v1/scopes/bench/app/-/env", "≥ 0.50 of baseline; p99 ≤ 5 ms", envBody},
		{"list the vars of that scope (masked)", "/v1/scopes/bench/app/-/vars", "≥ 0.50 of baseline", listBody},
	} {
		bl, err := baseline(tc.body)
		if err != nil {
			return err
		}
		bl.Case = "baseline for: " + tc.name
		bl.BodyBytes = len(tc.body)
		r := load(c, "GET", tc.path, nil, duration, conns)
		r.Case, r.Target, r.BodyBytes = tc.name, tc.target, len(tc.body)
		r.Ratio = r.RPS / bl.RPS
		results = append(results, bl, r)
	}

	var n atomic.Int64
	w := load(c, "PUT", "", func() (string, []byte) {
		i := n.Add(1)
		// 64 scopes of 50 vars, a realistic size; each write is one var.
		return fmt.Sprintf("/v1/scopes/bench/writes/s%02d/-/vars/V_%02d", (i/50)%64, i%50), []byte(`{"value":"v` + strconv.FormatInt(i, 10) + `"}`)
	}, duration, conns)
	w.Case, w.Target = "single-var write, durable, 32 connections", "≥ 5,000 writes/s; p99 ≤ 20 ms"
	results = append(results, w)

	bulk := map[string]string{}
	for i := 0; i < 200; i++ {
		bulk[fmt.Sprintf("BULK_%03d", i)] = fmt.Sprintf("bulk-value-%03d-%s", i, strings.Repeat("b", 30))
	}
	bulkBody, _ := json.Marshal(bulk)
	b := load(c, "PATCH", "", func() (string, []byte) { return "/v1/scopes/bench/bulk/-/vars", bulkBody }, duration, 1)
	b.Case, b.Target = "200-key bulk merge (one client)", "p50 ≤ 20 ms"
	results = append(results, b)

	wr, err := watchDelay(srv.addr, token, nWatchers)
	if err != nil {
		return err
	}
	results = append(results, wr)

	ui, err := dashboardScopeList(c, srv.addr, token, duration, conns)
	if err != nil {
		return err
	}
	results = append(results, ui)

	results = append(results, result{Case: "resident memory, idle", Value: idleRSS, Unit: "MB", Target: "≤ 30 MB"})
	if nScopes > 0 {
		if err := seedScopes(c, nScopes, conns); err != nil {
			return err
		}
		results = append(results, result{Case: fmt.Sprintf("resident memory at %d scopes × 50 vars", nScopes), Value: rssMB(srv.cmd.Process.Pid), Unit: "MB", Target: "≤ 150 MB"})
	}

	printTable(results)
	if out != "" {
		b, _ := json.MarshalIndent(map[string]any{"at": time.Now().UTC(), "store": store, "duration": duration.String(), "connections": conns, "results": results}, "", "  ")
		if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
			return err
		}
		fmt.Println("figures written to", out)
	}
	return nil
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
	if b, err := exec.Command("go", "build", "-o", bin, "./cmd/envy").CombinedOutput(); err != nil {
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
	cmd := exec.Command(bin, append([]string{"server", "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--rate-limit", "0"}, flags...)...)
	cmd.Env = append(os.Environ(), "ENVY_BOOTSTRAP_TOKEN="+token)
	stderr, _ := cmd.StderrPipe()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, 0, err
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
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
		return nil, 0, fmt.Errorf("envy server did not start")
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
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 1<<14)
			for time.Now().Before(until) {
				p, body := path, []byte(nil)
				if next != nil {
					p, body = next()
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
		}()
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
func watchDelay(addr, token string, n int) (result, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr := &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: n}
	hc := &http.Client{Transport: tr}
	type ev struct {
		rev int64
		at  time.Time
	}
	c := newClient(addr, token, 4)
	if err := c.must("PUT", "/v1/scopes/bench/watched/-/vars/W", map[string]string{"value": "0"}); err != nil {
		return result{}, err
	}
	events := make(chan ev, n*16)
	var ready sync.WaitGroup
	var failed atomic.Int64
	for i := 0; i < n; i++ {
		ready.Add(1)
		go func() {
			req, _ := http.NewRequestWithContext(ctx, "GET", addr+"/v1/scopes/bench/watched/-/watch", nil)
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

// dashboardScopeList seeds 1,000 scopes of 5 vars, signs in to the
// dashboard and loads its scope list page (/ui/scopes), which lists every
// scope with its var count and sync state.
func dashboardScopeList(c *client, addr, token string, d time.Duration, conns int) (result, error) {
	const n = 1000
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
	if !bytes.Contains(page, []byte("ui/team19/app999")) {
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
	// Read each scope once, so that the read cache holds them all.
	for i := 1; i <= n; i++ {
		if _, err := c.get(fmt.Sprintf("/v1/scopes/mem/s%05d/-/vars", i)); err != nil {
			return err
		}
	}
	return nil
}

func printTable(rs []result) {
	fmt.Printf("%-46s %10s %9s %9s %8s %10s  %s\n", "case", "req/s", "p50 ms", "p99 ms", "ratio", "value", "target")
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
		}
		fmt.Printf("%-46s %10s %9s %9s %8s %10s  %s\n", r.Case, f(r.RPS, "%.0f"), f(r.P50ms, "%.2f"), f(r.P99ms, "%.2f"), f(r.Ratio, "%.2f"), val, r.Target)
	}
}
