package http

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
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/envy-dev/envy/crypto"
	"github.com/envy-dev/envy/http/wire"
	"github.com/envy-dev/envy/service"
	"github.com/envy-dev/envy/sqlite"
)

// testEnv is a server over real SQLite and a real keyring in a temp dir,
// served over loopback.
type testEnv struct {
	URL   string
	Admin string // the admin token's plaintext
	Srv   *Server
	Svc   *service.Service
	Reg   *prometheus.Registry
	Logs  *syncBuffer // the server's log, JSON lines
}

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

func newTestEnv(t *testing.T, opts Options) *testEnv {
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
	svc := service.New(store, keys, service.Options{})
	t.Cleanup(svc.Close)
	admin, _, err := svc.Bootstrap(ctx, "")
	if err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}
	logs := &syncBuffer{}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	srv := NewServer(svc, opts)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close) // runs first: no request outlives the service
	return &testEnv{URL: ts.URL, Admin: admin, Srv: srv, Svc: svc, Reg: opts.Registry, Logs: logs}
}

// newTestServer returns the base URL of a fresh server and its admin
// token.
func newTestServer(t *testing.T) (baseURL, adminToken string) {
	e := newTestEnv(t, Options{})
	return e.URL, e.Admin
}

type reply struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the reply's body as a JSON object.
func (r reply) JSON(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("reply is not a JSON object (status %d): %v\n%s", r.Status, err, r.Body)
	}
	return m
}

// do sends a request. body is nil (none), a string or []byte (sent as it
// is, as application/json) or anything else (marshalled). hdr holds
// header name/value pairs; a Content-Type among them replaces the default.
func do(t *testing.T, method, url, token string, body any, hdr ...string) reply {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	case io.Reader: // sent without a Content-Length
		rd = b
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{Status: res.StatusCode, Header: res.Header, Body: data}
}

// wantStatus fails unless r has the status.
func wantStatus(t *testing.T, r reply, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body: %s", r.Status, status, r.Body)
	}
}

// wantProblem checks that r is a problem of the status and type; with a
// loc, that its errors name it (and typ, when given), else that it has no
// errors member.
func wantProblem(t *testing.T, r reply, status int, typ, loc string, fieldType ...string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body: %s", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	if r.Header.Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id on a problem")
	}
	p := r.JSON(t)
	if p["type"] != typ {
		t.Errorf("type %v, want %s; body: %s", p["type"], typ, r.Body)
	}
	if s, ok := p["title"].(string); !ok || s == "" {
		t.Errorf("no title: %s", r.Body)
	}
	if p["status"] != float64(status) {
		t.Errorf("status member %v, want %d", p["status"], status)
	}
	if _, ok := p["detail"].(string); !ok {
		t.Errorf("no detail: %s", r.Body)
	}
	errs, has := p["errors"]
	if loc == "" {
		if has {
			t.Errorf("unexpected errors member: %s", r.Body)
		}
		return
	}
	list, _ := errs.([]any)
	for _, e := range list {
		m, _ := e.(map[string]any)
		if m["loc"] == loc && (len(fieldType) == 0 || m["type"] == fieldType[0]) {
			if m["msg"] == "" || m["msg"] == nil {
				t.Errorf("field error without msg: %s", r.Body)
			}
			return
		}
	}
	t.Errorf("no field error at %s %v in %s", loc, fieldType, r.Body)
}

// keys returns a JSON object's member names, sorted.
func keys(m map[string]any) []string {
	return wire.SortedKeys(m)
}
