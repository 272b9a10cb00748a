package http_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/envy-dev/envy/internal/testenv"
	"github.com/envy-dev/envy/service"
)

// TestPlaintextCacheSavesAllocations: a read that the plaintext cache
// answers opens and encodes nothing, so it allocates less than the same
// read with the cache off (compared in the same run, so the bound does
// not depend on the machine), and a masked list allocates about 30
// objects (49 without the cache, 51 before it).
func TestPlaintextCacheSavesAllocations(t *testing.T) {
	allocs := map[bool]map[string]float64{}
	for _, off := range []bool{false, true} {
		opts := testenv.Options{}
		if off {
			opts.Service = service.Options{PlaintextCacheBytes: -1}
		}
		e := testenv.New(t, opts)
		var kv []string
		for i := range 50 {
			v := fmt.Sprintf(`"value-%02d-%s"`, i, strings.Repeat("v", 30))
			if i%5 == 0 {
				v = fmt.Sprintf(`{"value":"secret-%02d-%s","secret":true}`, i, strings.Repeat("s", 30))
			}
			kv = append(kv, fmt.Sprintf(`"VAR_%02d":%s`, i, v))
		}
		e.Do(t, "PATCH", "/v1/scopes/large/-/vars", e.Admin, "{"+strings.Join(kv, ",")+"}")
		allocs[off] = map[string]float64{}
		for _, tail := range []string{"/-/env", "/-/vars"} {
			allocs[off][tail] = allocsPerRequest(t, e.API.Handler(), "/v1/scopes/large"+tail, e.Admin)
		}
	}
	for _, tail := range []string{"/-/env", "/-/vars"} {
		if on, off := allocs[false][tail], allocs[true][tail]; on > off-5 {
			t.Errorf("%s: %.0f allocations a request with the plaintext cache, %.0f without: want at least 5 fewer", tail, on, off)
		}
	}
	if n := allocs[false]["/-/vars"]; n > 36 {
		t.Errorf("/-/vars: %.0f allocations a request with the plaintext cache, want at most 36", n)
	}
}
