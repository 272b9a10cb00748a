package http_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/envy-dev/envy/internal/testenv"
)

// BenchmarkReadEnv reads a 50-var resolved env (10 secrets, one inherited
// scope) over loopback, as bench/ does, for profiling the read path.
func BenchmarkReadEnv(b *testing.B) {
	for _, path := range []string{"/-/env", "/-/vars"} {
		b.Run(strings.TrimPrefix(path, "/-/"), func(b *testing.B) {
			e := testenv.New(b, testenv.Options{})
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
