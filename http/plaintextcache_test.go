package http_test

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/testenv"
	"github.com/envy-dev/envy/service"
)

func plaintextStats(e *testenv.Env) service.CacheStats {
	for _, st := range e.Svc.CacheStats() {
		if st.Name == "plaintext" {
			return st
		}
	}
	panic("no plaintext cache")
}

func mask(v string) string { return "masked:" + envy.Mask(envy.NewSensitive(v)) }

// TestPlaintextCacheNeverServesAStaleReply reads a resolved env, its
// dotenv file and a masked list again and again while each layer changes:
// every change is in the very next read, whether it is a write to the
// scope, to a scope it inherits from, or a change of its inherits; and
// the reads in between are served from the cache (it is in play).
func TestPlaintextCacheNeverServesAStaleReply(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	do := func(method, path, body string) testenv.Response {
		t.Helper()
		r := e.Do(t, method, path, e.Admin, body)
		if r.Status >= 300 {
			t.Fatalf("%s %s: %d %s", method, path, r.Status, r.Body)
		}
		return r
	}
	do("PATCH", "/v1/scopes/base/-/vars", `{"A":"a1","SHARED":"from-base"}`)
	do("PATCH", "/v1/scopes/other/-/vars", `{"C":"c1"}`)
	do("PUT", "/v1/scopes/app", `{"inherits":["base"]}`)
	do("PATCH", "/v1/scopes/app/-/vars", `{"B":"b1","S":{"value":"sk-0123456789abcdef","secret":true}}`)

	env := func() map[string]string {
		t.Helper()
		var got struct{ Env map[string]string }
		if err := json.Unmarshal(do("GET", "/v1/scopes/app/-/env", "").Body, &got); err != nil {
			t.Fatal(err)
		}
		return got.Env
	}
	dotenv := func() string { t.Helper(); return string(do("GET", "/v1/scopes/app/-/env?format=dotenv", "").Body) }
	list := func() map[string]string {
		t.Helper()
		var got struct {
			Items []struct {
				Name   string
				Value  *string
				Masked *string `json:"masked_value"`
			}
		}
		if err := json.Unmarshal(do("GET", "/v1/scopes/app/-/vars", "").Body, &got); err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, it := range got.Items {
			switch {
			case it.Value != nil:
				m[it.Name] = *it.Value
			case it.Masked != nil:
				m[it.Name] = "masked:" + *it.Masked
			}
		}
		return m
	}
	// Each check reads twice: the second read is the one the cache may
	// answer, and must still be right.
	check := func(step string, want map[string]string, wantList map[string]string) {
		t.Helper()
		for range 2 {
			got := env()
			if len(got) != len(want) {
				t.Errorf("%s: env %v, want %v", step, got, want)
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s: env %s = %q, want %q", step, k, got[k], v)
				}
			}
			d := dotenv()
			for k, v := range want {
				if !strings.Contains(d, k+"="+v+"\n") && !strings.Contains(d, k+"='"+v+"'\n") && !strings.Contains(d, k+`="`+v+`"`+"\n") {
					t.Errorf("%s: the dotenv file has no %s=%s:\n%s", step, k, v, d)
				}
			}
			gl := list()
			for k, v := range wantList {
				if gl[k] != v {
					t.Errorf("%s: list %s = %q, want %q", step, k, gl[k], v)
				}
			}
		}
	}
	check("start", map[string]string{"A": "a1", "SHARED": "from-base", "B": "b1", "S": "sk-0123456789abcdef"},
		map[string]string{"B": "b1", "S": mask("sk-0123456789abcdef")})
	hits := plaintextStats(e).Hits
	if hits == 0 {
		t.Fatal("the second reads were not served from the plaintext cache")
	}

	do("PUT", "/v1/scopes/app/-/vars/B", `{"value":"b2"}`)
	check("a write to the scope", map[string]string{"A": "a1", "SHARED": "from-base", "B": "b2", "S": "sk-0123456789abcdef"},
		map[string]string{"B": "b2", "S": mask("sk-0123456789abcdef")})
	do("PUT", "/v1/scopes/app/-/vars/S", `{"value":"sk-fedcba9876543210"}`)
	check("a write to a secret", map[string]string{"A": "a1", "SHARED": "from-base", "B": "b2", "S": "sk-fedcba9876543210"},
		map[string]string{"B": "b2", "S": mask("sk-fedcba9876543210")})
	do("PATCH", "/v1/scopes/base/-/vars", `{"A":"a2","SHARED":"from-base-2"}`)
	check("a write to the inherited scope", map[string]string{"A": "a2", "SHARED": "from-base-2", "B": "b2", "S": "sk-fedcba9876543210"}, nil)
	do("PUT", "/v1/scopes/app", `{"inherits":["other"]}`)
	check("a change of inherits", map[string]string{"C": "c1", "B": "b2", "S": "sk-fedcba9876543210"}, nil)
	do("DELETE", "/v1/scopes/app/-/vars/B", "")
	check("a delete", map[string]string{"C": "c1", "S": "sk-fedcba9876543210"}, map[string]string{"S": mask("sk-fedcba9876543210")})
	if plaintextStats(e).Hits <= hits {
		t.Error("the reads after the changes were never served from the cache")
	}
}

// TestPlaintextCacheStillAuthorizesAndAudits reads a cached resolved env
// with several tokens: a token without reveal is refused, a revoked token
// is refused at its very next read, and every reveal the cache answers has
// its own audit row with its request id.
func TestPlaintextCacheStillAuthorizesAndAudits(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	e.Do(t, "PATCH", "/v1/scopes/app/-/vars", e.Admin, `{"A":"1","S":{"value":"sk-0123456789abcdef","secret":true}}`)
	id, revealer := minted(t, e, e.Admin, map[string]any{"name": "revealer",
		"permissions": []envy.Grant{{Scopes: "**", Actions: []envy.Action{envy.ActReveal}}}})
	reader := e.Token(t, "reader", envy.Grant{Scopes: "**", Actions: []envy.Action{envy.ActRead}})

	const n = 20
	ids := map[string]bool{}
	// The first read fills the cache; the others, at once, are served from it.
	r0 := e.Do(t, "GET", "/v1/scopes/app/-/env", revealer, "")
	ids[r0.Header.Get("X-Request-Id")] = r0.Status == 200
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.Do(t, "GET", "/v1/scopes/app/-/env", revealer, "")
			if r.Status != 200 || !strings.Contains(string(r.Body), "sk-0123456789abcdef") {
				t.Errorf("reveal: %d %s", r.Status, r.Body)
			}
			mu.Lock()
			ids[r.Header.Get("X-Request-Id")] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	if plaintextStats(e).Hits < n {
		t.Fatal("no read was served from the plaintext cache")
	}
	if r := e.Do(t, "GET", "/v1/scopes/app/-/env", reader, ""); r.Status != 403 || strings.Contains(string(r.Body), "sk-0123") {
		t.Errorf("a token without reveal: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "DELETE", "/v1/tokens/"+id, e.Admin, ""); r.Status != 200 {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "GET", "/v1/scopes/app/-/env", revealer, ""); r.Status != 401 || strings.Contains(string(r.Body), "sk-0123") {
		t.Errorf("the revoked token's next read: %d %s", r.Status, r.Body)
	}

	var page struct{ Items []auditRow }
	r := e.Do(t, "GET", "/v1/audit?actor=revealer&limit=1000", e.Admin, "")
	if err := json.Unmarshal(r.Body, &page); err != nil {
		t.Fatal(err)
	}
	// Every reveal counts once in the rows (reveals of one token, client
	// and scope in a second add up in one), and each id a row lists is
	// one of theirs, listed once.
	var count int64
	listed := map[string]bool{}
	for _, it := range page.Items {
		if it.Action == "reveal" && it.Status == 200 {
			count += it.Count
			if int64(len(it.RequestIDs)) != min(it.Count, envy.MaxAuditRequestIDs) {
				t.Errorf("reveal row %+v: want its first request ids", it)
			}
			for _, rid := range it.RequestIDs {
				if listed[rid] || !ids[rid] {
					t.Errorf("reveal row %+v lists %s, which is not a reveal of its own", it, rid)
				}
				listed[rid] = true
			}
		}
	}
	if count != n+1 {
		t.Errorf("the reveal rows count %d reveals, want %d", count, n+1)
	}
}

// TestPlaintextCacheOff: with the cache turned off nothing is kept, and
// reads still answer every change.
func TestPlaintextCacheOff(t *testing.T) {
	e := testenv.New(t, testenv.Options{Service: service.Options{PlaintextCacheBytes: -1}})
	e.Do(t, "PATCH", "/v1/scopes/app/-/vars", e.Admin, `{"A":"1"}`)
	for i := range 3 {
		for _, p := range []string{"/v1/scopes/app/-/env", "/v1/scopes/app/-/env?format=shell", "/v1/scopes/app/-/vars"} {
			if r := e.Do(t, "GET", p, e.Admin, ""); r.Status != 200 || !strings.Contains(string(r.Body), "1") {
				t.Fatalf("read %d of %s: %d %s", i, p, r.Status, r.Body)
			}
		}
	}
	if st := plaintextStats(e); st.Entries != 0 || st.Bytes != 0 || st.Hits != 0 || st.LimitBytes != 0 {
		t.Errorf("the plaintext cache is off and holds %+v", st)
	}
	m := string(e.Do(t, "GET", "/metrics", "", "").Body)
	for _, want := range []string{`envy_cache_entries{cache="plaintext"} 0`, `envy_cache_bytes{cache="plaintext"} 0`, `envy_cache_limit_bytes{cache="plaintext"} 0`} {
		if !strings.Contains(m, want+"\n") {
			t.Errorf("/metrics has no %s", want)
		}
	}
}
