package main

// The soak run: `go run ./bench -soak 5m [-database-url postgres://…]`
// puts a bounded mixed load on one server for the given time (reads,
// lists, single writes, bulk merges, watch streams opened and closed,
// consumer reports, tokens created and revoked) and samples the server's
// resident memory, heap, goroutines, open files and database connections.
// It reports whether any of them grew: it compares the server idle before
// the load with the server idle after it (goroutines, open files,
// connections must come back), and the memory of the second fifth of the
// run with that of its end (the caches are warm by then, so memory must
// level off). It exits 1 when something grew.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
)

// sample is one look at the server.
type sample struct {
	At         time.Duration `json:"at"` // since the load started
	RSSMB      float64       `json:"rss_mb"`
	HeapMB     float64       `json:"heap_mb"`
	Goroutines int           `json:"goroutines"`
	OpenFiles  int           `json:"open_files"`
	DBConns    int           `json:"db_connections"` // PostgreSQL backends of the server's database; 0 on SQLite
	Requests   int64         `json:"requests"`
	Errors     int64         `json:"errors"`
}

func runSoak(d time.Duration, rate int, databaseURL, out string) error {
	dir, bin, err := buildEnvy()
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	token := "envy_" + strings.Repeat("0", 13) + "benchmarkTokenForEnvySoakTest1"
	var extra []string
	if databaseURL != "" {
		extra = []string{"--database-url", databaseURL}
	}
	srv, _, err := startEnvy(bin, filepath.Join(dir, "data"), token, extra...)
	if err != nil {
		return err
	}
	defer srv.stop()
	look := newLooker(srv, token, databaseURL)
	defer look.close()

	c := newClient(srv.addr, token, 64)
	if err := c.must("PATCH", "/v1/scopes/soak/base/-/vars", map[string]any{"BASE_A": "a", "BASE_B": map[string]any{"value": "sk-soak-secret-value", "secret": true}}); err != nil {
		return err
	}
	if err := c.must("PUT", "/v1/scopes/soak/app", map[string]any{"inherits": []string{"soak/base"}}); err != nil {
		return err
	}
	// A warm-up fills the pools and caches; then the server, idle, is the
	// reference that it must come back to after the run.
	warmup := min(d/5, 30*time.Second)
	fmt.Fprintf(os.Stderr, "warming up for %s…\n", warmup)
	var requests, errs atomic.Int64
	if _, err := soakLoad(c, look, warmup, rate, &requests, &errs, nil); err != nil {
		return err
	}
	c.hc.CloseIdleConnections() // idle means no client connection held open
	idleBefore, err := look.idle(0)
	if err != nil {
		return err
	}
	requests.Store(0)
	errs.Store(0)
	start := time.Now()
	samples, err := soakLoad(c, look, d, rate, &requests, &errs, func(s sample) {
		fmt.Fprintf(os.Stderr, "  %5s  rss %6.1f MB  heap %6.1f MB  goroutines %4d  files %3d  db conns %2d  requests %d  errors %d\n",
			s.At.Round(time.Second), s.RSSMB, s.HeapMB, s.Goroutines, s.OpenFiles, s.DBConns, s.Requests, s.Errors)
	})
	if err != nil {
		return err
	}
	c.hc.CloseIdleConnections()
	idleAfter, err := look.idle(time.Since(start))
	if err != nil {
		return err
	}
	idleAfter.Requests, idleAfter.Errors = requests.Load(), errs.Load()

	// Verdicts.
	type verdict struct {
		what, before, after, allowed string
		grew                         bool
	}
	var vs []verdict
	count := func(what string, b, a, slack int) {
		vs = append(vs, verdict{what + " (idle before → idle after)", strconv.Itoa(b), strconv.Itoa(a), "+" + strconv.Itoa(slack), a > b+slack})
	}
	count("goroutines", idleBefore.Goroutines, idleAfter.Goroutines, 10)
	count("open files", idleBefore.OpenFiles, idleAfter.OpenFiles, 5)
	if databaseURL != "" {
		count("database connections", idleBefore.DBConns, idleAfter.DBConns, 2)
	}
	if len(samples) >= 5 {
		warm := samples[len(samples)/5]
		mb := func(what string, b, a float64) {
			allowed := max(b*0.25, 10)
			vs = append(vs, verdict{what + " (warm → end)", fmt.Sprintf("%.1f MB", b), fmt.Sprintf("%.1f MB", a), fmt.Sprintf("+%.1f MB", allowed), a > b+allowed})
		}
		mb("resident memory", warm.RSSMB, idleAfter.RSSMB)
		mb("heap", warm.HeapMB, idleAfter.HeapMB)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "soak %s at %d requests/s (%d requests, %d errors)\n", d, rate, idleAfter.Requests, idleAfter.Errors)
	fmt.Fprintln(tw, "WHAT\tBEFORE\tAFTER\tALLOWED\tVERDICT")
	grew := false
	for _, v := range vs {
		word := "steady"
		if v.grew {
			word, grew = "GREW", true
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", v.what, v.before, v.after, v.allowed, word)
	}
	tw.Flush()
	if out != "" {
		b, _ := json.MarshalIndent(map[string]any{"duration": d.String(), "rate": rate, "idle_before": idleBefore, "samples": samples, "idle_after": idleAfter, "grew": grew}, "", "  ")
		if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
			return err
		}
		fmt.Println("samples written to", out)
	}
	if grew {
		return fmt.Errorf("something grew during the soak run")
	}
	if e := idleAfter.Errors; e > idleAfter.Requests/100 {
		return fmt.Errorf("%d of %d requests failed", e, idleAfter.Requests)
	}
	return nil
}

// soakLoad runs the mixed load at rate requests per second for d,
// counting requests and errors; with onSample set it samples the server
// ten times on the way and returns the samples.
func soakLoad(c *client, look *looker, d time.Duration, rate int, requests, errs *atomic.Int64, onSample func(sample)) ([]sample, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(max(rate, 1)))
	defer tick.Stop()
	jobs := make(chan int, 64)
	for w := 0; w < 64; w++ { // watch streams hold a worker each for a while
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range jobs {
				requests.Add(1)
				if err := soakOp(ctx, c, n); err != nil && ctx.Err() == nil {
					errs.Add(1)
				}
			}
		}()
	}
	defer wg.Wait()
	defer close(jobs)
	var samples []sample
	every := max(d/10, time.Second)
	next := start.Add(every)
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return samples, nil
		case <-tick.C:
			select {
			case jobs <- n:
			default: // the server is behind: the load stays bounded
			}
		}
		if onSample != nil && time.Now().After(next) {
			next = next.Add(every)
			s, err := look.sample(time.Since(start))
			if err != nil {
				return samples, err
			}
			s.Requests, s.Errors = requests.Load(), errs.Load()
			samples = append(samples, s)
			onSample(s)
		}
	}
}

// soakOp makes the n-th request of the mixed load.
func soakOp(ctx context.Context, c *client, n int) error {
	switch r := n % 100; {
	case r < 50:
		return soakDo(ctx, c, "GET", "/v1/scopes/soak/app/-/env", nil)
	case r < 60:
		return soakDo(ctx, c, "GET", "/v1/scopes/soak/app/-/vars", nil)
	case r < 80:
		// 20 scopes × 50 vars: the data stays bounded, the history grows.
		return soakDo(ctx, c, "PUT", fmt.Sprintf("/v1/scopes/soak/w/s%02d/-/vars/V_%02d", n%20, (n/20)%50), map[string]any{"value": "v" + strconv.Itoa(n)})
	case r < 85:
		bulk := map[string]any{}
		for i := 0; i < 50; i++ {
			bulk[fmt.Sprintf("B_%02d", i)] = fmt.Sprintf("bulk %d", n)
		}
		return soakDo(ctx, c, "PATCH", "/v1/scopes/soak/bulk/-/vars", bulk)
	case r < 90:
		return soakWatch(ctx, c, time.Duration(500+rand.IntN(1500))*time.Millisecond)
	case r < 95:
		return soakDo(ctx, c, "PUT", fmt.Sprintf("/v1/scopes/soak/app/-/consumers/c%d", n%200), map[string]any{"revision": 1, "hostname": "soak"})
	default:
		var tok struct {
			ID string `json:"id"`
		}
		if err := soakDoInto(ctx, c, "POST", "/v1/tokens", map[string]any{"name": "soak-" + strconv.Itoa(n), "permissions": []map[string]any{{"scopes": "soak/**", "actions": []string{"read"}}}}, &tok); err != nil {
			return err
		}
		return soakDo(ctx, c, "DELETE", "/v1/tokens/"+url.PathEscape(tok.ID), nil)
	}
}

func soakDo(ctx context.Context, c *client, method, path string, body any) error {
	return soakDoInto(ctx, c, method, path, body, nil)
}

func soakDoInto(ctx context.Context, c *client, method, path string, body, out any) error {
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	r, err := c.req(method, path, b)
	if err != nil {
		return err
	}
	res, err := c.hc.Do(r.WithContext(ctx))
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode >= 300 {
		io.Copy(io.Discard, res.Body)
		return fmt.Errorf("%s %s: %d", method, path, res.StatusCode)
	}
	if out != nil {
		return json.NewDecoder(res.Body).Decode(out)
	}
	io.Copy(io.Discard, res.Body)
	return nil
}

// soakWatch follows a watch stream for a while, then drops it.
func soakWatch(ctx context.Context, c *client, hold time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, hold)
	defer cancel()
	r, err := c.req("GET", "/v1/scopes/soak/app/-/watch", nil)
	if err != nil {
		return err
	}
	res, err := c.hc.Do(r.WithContext(ctx))
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		return fmt.Errorf("watch: %d", res.StatusCode)
	}
	io.Copy(io.Discard, res.Body) // until hold ends
	return nil
}

// looker samples the server.
type looker struct {
	srv   *proc
	token string
	hc    *http.Client
	pg    *pgx.Conn // on PostgreSQL: counts the server's connections
	db    string
}

func newLooker(srv *proc, token, databaseURL string) *looker {
	// No keep-alive: the looker's own connection must not count.
	l := &looker{srv: srv, token: token, hc: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
	if databaseURL != "" {
		if conn, err := pgx.Connect(context.Background(), databaseURL); err == nil {
			l.pg = conn
			l.pg.QueryRow(context.Background(), `SELECT current_database()`).Scan(&l.db)
		}
	}
	return l
}

func (l *looker) close() {
	if l.pg != nil {
		l.pg.Close(context.Background())
	}
}

// idle waits until the server has no request in flight (the watch
// streams closed, the pools settled), then samples it.
func (l *looker) idle(at time.Duration) (sample, error) {
	var s sample
	var err error
	// Goroutines of streams that just ended take a moment to go: take the
	// lowest of a few looks.
	for i := 0; i < 10; i++ {
		time.Sleep(300 * time.Millisecond)
		t, e := l.sample(at)
		if e != nil {
			err = e
			continue
		}
		if i == 0 || t.Goroutines < s.Goroutines {
			s = t
		}
	}
	if s.Goroutines == 0 {
		return s, err
	}
	return s, nil
}

func (l *looker) sample(at time.Duration) (sample, error) {
	s := sample{At: at, RSSMB: rssMB(l.srv.cmd.Process.Pid)}
	res, err := l.hc.Get(l.srv.addr + "/metrics")
	if err != nil {
		return s, fmt.Errorf("read /metrics: %v", err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		f, _ := strconv.ParseFloat(val, 64)
		switch name {
		case "go_goroutines":
			s.Goroutines = int(f)
		case "process_open_fds":
			s.OpenFiles = int(f)
		case "go_memstats_heap_alloc_bytes":
			s.HeapMB = f / (1 << 20)
		}
	}
	if l.pg != nil {
		var n int
		if err := l.pg.QueryRow(context.Background(), `SELECT COUNT(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, l.db).Scan(&n); err == nil {
			s.DBConns = n
		}
	}
	return s, nil
}
