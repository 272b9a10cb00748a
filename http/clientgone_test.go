package http

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/crypto"
	"github.com/envy-dev/envy/service"
	"github.com/envy-dev/envy/sqlite"
)

// heldAuditStore holds every audit append until released, so that a
// reveal waits for its audit entry as long as the test wants.
type heldAuditStore struct {
	*sqlite.Store
	release chan struct{}
}

func (s *heldAuditStore) AppendAudit(ctx context.Context, entries ...envy.AuditEntry) error {
	<-s.release
	return s.Store.AppendAudit(ctx, entries...)
}

// storeAndKeys opens a SQLite store and its keyring in a directory of the
// test's own.
func storeAndKeys(t *testing.T) (*sqlite.Store, *crypto.Keyring) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "envy.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	mk, _, err := crypto.OpenMasterKeyFile(filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mk.Close() })
	keys, err := crypto.OpenKeyring(ctx, mk, st)
	if err != nil {
		t.Fatal(err)
	}
	return st, keys
}

func TestAClientThatGivesUpIsNotAnInternalError(t *testing.T) {
	ctx := context.Background()
	st, keys := storeAndKeys(t)
	held := &heldAuditStore{Store: st, release: make(chan struct{})}
	svc := service.New(held, keys, service.Options{})
	admin, _, err := svc.Bootstrap(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	t.Cleanup(func() { close(held.release) }) // before the service closes: its audit loop must end
	logs := &syncBuffer{}
	reg := prometheus.NewRegistry()
	srv := NewServer(svc, Options{Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), Registry: reg})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)

	req, _ := http.NewRequest("PATCH", ts.URL+"/v1/scopes/acme/app/-/vars", strings.NewReader(`{"A":"1"}`))
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("Content-Type", "application/json")
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 200 {
		t.Fatalf("seed: %v %v", err, res)
	}

	// The reveal waits for its audit entry, which is held: the client
	// gives up first.
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	req, _ = http.NewRequestWithContext(cctx, "GET", ts.URL+"/v1/scopes/acme/app/-/env", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
		t.Fatalf("the held reveal was answered %d", res.StatusCode)
	}

	closed := func() float64 {
		return testutil.ToFloat64(srv.metrics.requests.WithLabelValues("/v1/scopes/{path}/-/env", "GET", "499"))
	}
	deadline := time.Now().Add(10 * time.Second)
	for closed() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no request counted as 499 within 10 s of the client giving up; log:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := testutil.ToFloat64(srv.metrics.storeErrors.WithLabelValues(string(envy.EInternal))); n != 0 {
		t.Errorf("envy_store_errors_total{code=internal} = %v after a client gave up, want 0", n)
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "internal error") || strings.Contains(line, `"status":499`) && !strings.Contains(line, `"level":"DEBUG"`) {
			t.Errorf("a client that gave up is logged as more than a debug line: %s", line)
		}
	}
}

// A prober that gives up on /readyz before the server's readiness check
// answers (a database that does not) is a client gone: 499, at debug
// level, and no store error, as any request's; the alert on store errors
// must not page on every probe of an outage.
func TestAProberThatGivesUpOnReadyzIsNotAStoreError(t *testing.T) {
	ctx := context.Background()
	st, keys := storeAndKeys(t)
	svc := service.New(st, keys, service.Options{})
	t.Cleanup(svc.Close)
	logs := &syncBuffer{}
	reg := prometheus.NewRegistry()
	// A readiness check that answers only when asked to stop, as one
	// stuck on a database that does not answer.
	ready := func(ctx context.Context) error {
		<-ctx.Done()
		return envy.Errorf(envy.EUnavailable, "the database is unavailable")
	}
	srv := NewServer(svc, Options{Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), Registry: reg, Ready: ready})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)

	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(cctx, "GET", ts.URL+"/readyz", nil)
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
		t.Fatalf("/readyz was answered %d", res.StatusCode)
	}
	counted := func(status string) float64 {
		return testutil.ToFloat64(srv.metrics.requests.WithLabelValues("/readyz", "GET", status))
	}
	deadline := time.Now().Add(10 * time.Second)
	for counted("499")+counted("503") == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the probe was not counted within 10 s of its giving up; log:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if counted("499") != 1 {
		t.Errorf("the probe that gave up was counted as 503, not 499")
	}
	if n := testutil.ToFloat64(srv.metrics.storeErrors.WithLabelValues(string(envy.EUnavailable))); n != 0 {
		t.Errorf("envy_store_errors_total{code=unavailable} = %v after a prober gave up, want 0", n)
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "not ready") || strings.Contains(line, `"status":503`) {
			t.Errorf("a prober that gave up is logged as a server not ready: %s", line)
		}
	}
}
