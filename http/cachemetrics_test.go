package http_test

import (
	"regexp"
	"strconv"
	"testing"

	"github.com/envy-dev/envy/internal/testenv"
)

// TestCacheMetrics checks that /metrics reports the service's caches:
// reading an env twice misses then hits the env cache, which then holds
// some bytes under its bound.
func TestCacheMetrics(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	e.Do(t, "PATCH", "/v1/scopes/app/-/vars", e.Admin, `{"A":"1","B":"2"}`)
	e.Do(t, "GET", "/v1/scopes/app/-/env", e.Admin, "")
	e.Do(t, "GET", "/v1/scopes/app/-/env", e.Admin, "")
	body := string(e.Do(t, "GET", "/metrics", "", "").Body)
	metric := func(name, cache string) float64 {
		t.Helper()
		m := regexp.MustCompile(`(?m)^` + name + `\{cache="` + cache + `"\} (\S+)$`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("/metrics has no %s for cache %s:\n%s", name, cache, body)
		}
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if metric("envy_cache_hits_total", "env") < 1 || metric("envy_cache_misses_total", "env") < 1 {
		t.Errorf("the env cache counts no hit or no miss after two reads")
	}
	if b := metric("envy_cache_bytes", "env"); b <= 0 || b > metric("envy_cache_limit_bytes", "env") {
		t.Errorf("envy_cache_bytes{cache=\"env\"} = %v, want some bytes under the bound", b)
	}
	for _, c := range []string{"tokens", "no_consumers"} {
		metric("envy_cache_evictions_total", c)
		metric("envy_cache_entries", c)
	}
}
