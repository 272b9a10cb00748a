// Package testenv starts a real envy server for tests: SQLite in a temp
// dir, the real keyring, the native API and any dialect, served over
// loopback. It is for tests only.
package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/crypto"
	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/service"
	"github.com/envy-dev/envy/sqlite"
)

// Options tune a test server.
type Options struct {
	HTTP    envyhttp.Options
	Service service.Options
	// Setup runs before the server starts serving, e.g. to mount a dialect.
	Setup func(api *envyhttp.Server, svc *service.Service)
	// WrapStore, when set, gives the store the service reads and writes
	// through, over the SQLite one (e.g. to count what a request reads).
	WrapStore func(*sqlite.Store) envy.Store
}

// Env is a running test server.
type Env struct {
	URL   string
	Admin string // the admin token's plaintext
	API   *envyhttp.Server
	Svc   *service.Service
	Store *sqlite.Store
	Reg   *prometheus.Registry
	Logs  *Buffer // the server's log at debug level, JSON lines
	Dir   string
}

// Buffer is a concurrency-safe bytes.Buffer.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// HeldWriter is a Buffer whose writes can be held, as a reader that has
// stopped reading: after Hold, each write waits until Release.
type HeldWriter struct {
	Buffer
	mu      sync.Mutex
	release chan struct{} // while held
	waiting chan struct{} // closed once a write waits; nil once closed
}

// Hold holds the writes from now on; the channel is closed once one waits.
func (w *HeldWriter) Hold() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.release, w.waiting = make(chan struct{}), make(chan struct{})
	return w.waiting
}

// Release lets the writes held, and those to come, through. Twice is once.
func (w *HeldWriter) Release() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.release != nil {
		close(w.release)
		w.release = nil
	}
}

func (w *HeldWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	release := w.release
	if release != nil && w.waiting != nil {
		close(w.waiting)
		w.waiting = nil
	}
	w.mu.Unlock()
	if release != nil {
		<-release
	}
	return w.Buffer.Write(p)
}

// New starts a server and stops it when the test ends.
func New(t testing.TB, o Options) *Env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "envy.db"))
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { store.Close() })
	mk, _, err := crypto.OpenMasterKeyFile(filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatalf("OpenMasterKeyFile: %v", err)
	}
	t.Cleanup(func() { mk.Close() })
	keys, err := crypto.OpenKeyring(ctx, mk, store)
	if err != nil {
		t.Fatalf("OpenKeyring: %v", err)
	}
	logs := &Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if o.Service.Logger == nil {
		o.Service.Logger = log
	}
	var through envy.Store = store
	if o.WrapStore != nil {
		through = o.WrapStore(store)
	}
	svc := service.New(through, keys, o.Service)
	admin, _, err := svc.Bootstrap(ctx, "")
	if err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}
	if o.HTTP.Logger == nil {
		o.HTTP.Logger = log
	}
	if o.HTTP.Registry == nil {
		o.HTTP.Registry = prometheus.NewRegistry()
	}
	api := envyhttp.NewServer(svc, o.HTTP)
	if o.Setup != nil {
		o.Setup(api, svc)
	}
	ts := httptest.NewUnstartedServer(api.Handler())
	ts.Config.RegisterOnShutdown(svc.CloseWatches)
	ts.Start()
	t.Cleanup(func() {
		svc.CloseWatches()
		ts.Close()
		svc.Close()
	})
	return &Env{URL: ts.URL, Admin: admin, API: api, Svc: svc, Store: store, Reg: o.HTTP.Registry, Logs: logs, Dir: dir}
}

// Token creates a token with the given grants through the native API and
// returns its plaintext.
func (e *Env) Token(t testing.TB, name string, grants ...envy.Grant) string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"name": name, "permissions": grants})
	r := e.Do(t, "POST", "/v1/tokens", e.Admin, string(body))
	if r.Status != 201 {
		t.Fatalf("create token %s: %d %s", name, r.Status, r.Body)
	}
	return r.JSON(t)["token"].(string)
}

// Response is a reply read whole.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body as a JSON object.
func (r Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, r.Body)
	}
	return m
}

// Do sends a request to path (relative to the server) with the token as a
// bearer token ("" for none) and a JSON body ("" for none). Extra headers
// come as name, value pairs.
func (e *Env) Do(t testing.TB, method, path, token, body string, headers ...string) Response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return Response{Status: res.StatusCode, Header: res.Header, Body: b}
}
