package http_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/internal/testenv"
)

// seedBenchApp makes bench/app: a 50-var resolved env (10 secrets, one
// inherited scope), as bench/ makes it.
func seedBenchApp(b *testing.B, e *testenv.Env) {
	var base, app []string
	for i := 0; i < 10; i++ {
		base = append(base, fmt.Sprintf(`"BASE_%02d":"base-value-%02d-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"`, i, i))
	}
	for i := 0; i < 40; i++ {
		v := fmt.Sprintf(`"app-value-%02d-yyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"`, i)
		if i < 10 {
			v = fmt.Sprintf(`{"value":"sk-secret-%02d-zzzzzzzzzzzzzzzzzzzzzz","secret":true}`, i)
		}
		app = append(app, fmt.Sprintf(`"APP_%02d":%s`, i, v))
	}
	e.Do(b, "PATCH", "/v1/scopes/bench/base/-/vars", e.Admin, "{"+strings.Join(base, ",")+"}")
	e.Do(b, "PUT", "/v1/scopes/bench/app", e.Admin, `{"inherits":["bench/base"]}`)
	e.Do(b, "PATCH", "/v1/scopes/bench/app/-/vars", e.Admin, "{"+strings.Join(app, ",")+"}")
}

// BenchmarkReadEnv reads a 50-var resolved env (10 secrets, one inherited
// scope) over loopback, as bench/ does, for profiling the read path.
func BenchmarkReadEnv(b *testing.B) {
	for _, path := range []string{"/-/env", "/-/vars"} {
		b.Run(strings.TrimPrefix(path, "/-/"), func(b *testing.B) {
			e := testenv.New(b, testenv.Options{})
			seedBenchApp(b, e)
			tr := &http.Transport{MaxIdleConnsPerHost: 64}
			hc := &http.Client{Transport: tr}
			url := e.URL + "/v1/scopes/bench/app" + path
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("GET", url, nil)
					req.Header.Set("Authorization", "Bearer "+e.Admin)
					res, err := hc.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != 200 {
						b.Fatalf("status %d", res.StatusCode)
					}
				}
			})
		})
	}
}

// BenchmarkHandler serves requests in process, without a network, so that
// -benchmem reports what the middleware and the handlers allocate per
// request (figures that a loaded machine does not change).
func BenchmarkHandler(b *testing.B) {
	e := testenv.New(b, testenv.Options{HTTP: envyhttp.Options{
		Logger: slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}})
	seedBenchApp(b, e)
	h := e.API.Handler()
	for _, tc := range []struct{ name, method, path, body string }{
		{"healthz", "GET", "/healthz", ""},
		{"env", "GET", "/v1/scopes/bench/app/-/env", ""},
		{"vars", "GET", "/v1/scopes/bench/app/-/vars", ""},
		{"var", "GET", "/v1/scopes/bench/app/-/vars/APP_20", ""},
		{"put", "PUT", "/v1/scopes/bench/hot/-/vars/V", `{"value":"some-value"}`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				w := &discardWriter{h: http.Header{}}
				// One request, its body reset each time: the figures are the
				// server's own.
				body := strings.NewReader(tc.body)
				req := httptest.NewRequest(tc.method, tc.path, body)
				req.RemoteAddr = "127.0.0.1:1234"
				if tc.path != "/healthz" {
					req.Header.Set("Authorization", "Bearer "+e.Admin)
				}
				if tc.body != "" {
					req.Header.Set("Content-Type", "application/json")
				}
				for pb.Next() {
					body.Reset(tc.body)
					clear(w.h)
					h.ServeHTTP(w, req)
				}
			})
		})
	}
}
