package http_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/internal/testenv"
	"github.com/envy-dev/envy/service"
)

// discardWriter is a ResponseWriter that keeps nothing, so that an
// in-process benchmark counts the server's allocations only.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

// allocsPerRequest is how many allocations the server makes, on average,
// to serve one request to path (the request itself is made once).
func allocsPerRequest(t *testing.T, h http.Handler, path, token string) float64 {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	req.RemoteAddr = "127.0.0.1:1234"
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := &discardWriter{h: http.Header{}}
	return testing.AllocsPerRun(200, func() {
		clear(w.h)
		h.ServeHTTP(w, req)
	})
}

// TestHotReadsAllocateLittle checks the hot paths' allocations, which
// unlike their times do not depend on the machine's load: the middleware
// alone (/healthz) allocates a handful of objects, and reading a resolved
// env or listing vars costs no allocation per value (the values are
// opened into one buffer, their masks built in another).
func TestHotReadsAllocateLittle(t *testing.T) {
	// The middleware's own: its per-request state, the request with its
	// context, a new request id. The caller is answered by that context
	// (no context.WithValue), and the id's header values and /healthz's
	// headers allocate nothing. (A server that logs every request at
	// debug level, as testenv's does, adds the log record's buffer, which
	// a sync.Pool keeps, except under the race detector.)
	quiet := testenv.New(t, testenv.Options{HTTP: envyhttp.Options{Logger: slog.New(slog.DiscardHandler)}})
	if n := allocsPerRequest(t, quiet.API.Handler(), "/healthz", ""); n > 3 {
		t.Errorf("/healthz: %.0f allocations a request, want at most 3", n)
	}
	e := testenv.New(t, testenv.Options{})
	h := e.API.Handler()
	seed := func(scope string, n int) {
		var kv []string
		for i := range n {
			v := fmt.Sprintf(`"value-%02d-%s"`, i, strings.Repeat("v", 30))
			if i%5 == 0 {
				v = fmt.Sprintf(`{"value":"secret-%02d-%s","secret":true}`, i, strings.Repeat("s", 30))
			}
			kv = append(kv, fmt.Sprintf(`"VAR_%02d":%s`, i, v))
		}
		e.Do(t, "PATCH", "/v1/scopes/"+scope+"/-/vars", e.Admin, "{"+strings.Join(kv, ",")+"}")
	}
	seed("small", 5)
	seed("large", 50)
	for _, tail := range []string{"/-/env", "/-/vars"} {
		small := allocsPerRequest(t, h, "/v1/scopes/small"+tail, e.Admin)
		large := allocsPerRequest(t, h, "/v1/scopes/large"+tail, e.Admin)
		if perValue := (large - small) / 45; perValue > 0.25 {
			t.Errorf("%s: %.0f allocations for 5 vars, %.0f for 50: %.2f per value, want none", tail, small, large, perValue)
		}
	}
}

// TestScopeRoutesSkipTheMuxUnlessAPatternSharesTheirPaths: a scope route
// is served without the ServeMux's walk of its pattern tree, which
// allocates at each segment; once a pattern mounted with Handle could
// match a path under /v1/scopes/, every such path goes through the mux
// again, so that the pattern is served. The replies are the same either
// way.
func TestScopeRoutesSkipTheMuxUnlessAPatternSharesTheirPaths(t *testing.T) {
	direct := testenv.New(t, testenv.Options{})
	shared := testenv.New(t, testenv.Options{Setup: func(api *envyhttp.Server, _ *service.Service) {
		api.Handle("GET /v1/scopes/x/-/ping", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	}})
	for _, e := range []*testenv.Env{direct, shared} {
		e.Do(t, "PATCH", "/v1/scopes/acme/app/-/vars", e.Admin, `{"A":"1","S":{"value":"s3cret","secret":true}}`)
	}
	if r := shared.Do(t, "GET", "/v1/scopes/x/-/ping", shared.Admin, ""); r.Status != http.StatusTeapot {
		t.Errorf("the pattern under /v1/scopes/ answered %d, want 418: %s", r.Status, r.Body)
	}
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/scopes/acme/app/-/vars"},
		{"GET", "/v1/scopes/acme/app/-/env?format=dotenv"},
		{"GET", "/v1/scopes/acme%2Fapp/-/vars/A"},
		{"GET", "/v1/scopes/acme/app/-/nothing"},
		{"POST", "/v1/scopes/acme/app/-/vars"},
		{"GET", "/v1/scopes/"},
		{"GET", "/v1/scopes/x/-/ping"},
	} {
		a, b := direct.Do(t, c.method, c.path, direct.Admin, ""), shared.Do(t, c.method, c.path, shared.Admin, "")
		if c.path == "/v1/scopes/x/-/ping" {
			b.Status = a.Status // the pattern is mounted on one server only
		}
		if a.Status != b.Status || a.Header.Get("Allow") != b.Header.Get("Allow") {
			t.Errorf("%s %s: %d (Allow %q) without the mux, %d (Allow %q) through it", c.method, c.path, a.Status, a.Header.Get("Allow"), b.Status, b.Header.Get("Allow"))
		}
	}
	path := "/v1/scopes/acme/app/-/vars"
	viaShortcut := allocsPerRequest(t, direct.API.Handler(), path, direct.Admin)
	viaMux := allocsPerRequest(t, shared.API.Handler(), path, shared.Admin)
	if viaMux-viaShortcut < 5 {
		t.Errorf("a scope route: %.0f allocations without the mux, %.0f through it: want at least 5 fewer", viaShortcut, viaMux)
	}
}
