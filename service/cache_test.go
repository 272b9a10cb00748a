package service

import (
	"fmt"
	"testing"

	"github.com/envy-dev/envy"
)

func TestLRUStaysUnderItsBound(t *testing.T) {
	c := newLRU[string, int](10_000)
	for i := range 1000 {
		c.put(c.generation(), fmt.Sprint(i), i, 100+i%7)
		if _, ok := c.get("0", nil); !ok && i < 500 {
			t.Fatalf("after %d puts the entry read after each put was evicted", i+1)
		}
		if st := c.stats("t"); st.Bytes > st.LimitBytes {
			t.Fatalf("after %d puts the cache holds %d bytes, over its bound %d", i+1, st.Bytes, st.LimitBytes)
		}
	}
	st := c.stats("t")
	if st.Entries > 100 || st.Evictions == 0 || st.Entries+int(st.Evictions) != 1000 {
		t.Fatalf("stats = %+v; want at most 100 entries and the rest evicted", st)
	}
	if _, ok := c.get("0", nil); !ok {
		t.Error("the most recently used entry was evicted")
	}
	if _, ok := c.get("1", nil); ok {
		t.Error("an entry used once, long ago, is still there")
	}
	if v, ok := c.get("999", nil); !ok || v != 999 {
		t.Errorf("the newest entry = %d, %v; want 999", v, ok)
	}
}

func TestLRUCountsAndRefuses(t *testing.T) {
	c := newLRU[string, int](1000)
	c.put(c.generation(), "huge", 1, 251)
	if _, ok := c.get("huge", nil); ok {
		t.Error("an entry over a quarter of the bound was kept")
	}
	gen := c.generation()
	c.remove("other")
	c.put(gen, "stale", 1, 10)
	if _, ok := c.get("stale", nil); ok {
		t.Error("an entry loaded before an invalidation was kept")
	}
	c.put(c.generation(), "k", 1, 10)
	if _, ok := c.get("k", func(v int) bool { return v == 2 }); ok {
		t.Error("an entry its reader found unusable was returned")
	}
	c.get("k", nil)
	if st := c.stats("t"); st.Hits != 1 || st.Misses != 3 || st.Entries != 1 || st.Bytes != 10 {
		t.Errorf("stats = %+v; want 1 hit, 3 misses, 1 entry of 10 bytes", st)
	}
	c.removeIf(func(k string, _ int) bool { return k == "k" })
	c.put(c.generation(), "a", 1, 10)
	c.clear()
	if st := c.stats("t"); st.Entries != 0 || st.Bytes != 0 {
		t.Errorf("after clear stats = %+v", st)
	}
	off := newLRU[string, int](-1)
	off.put(off.generation(), "k", 1, 0)
	if _, ok := off.get("k", nil); ok {
		t.Error("a cache with a negative bound kept an entry")
	}
}

func TestCachesInvalidate(t *testing.T) {
	envs := envCache{newLRU[string, *envy.Resolution](1 << 20)}
	put := func(path string, layers ...string) {
		r := &envy.Resolution{Scope: path}
		for _, l := range layers {
			r.Deps = append(r.Deps, envy.ScopeRev{Path: l, Revision: 1})
		}
		envs.put(envs.generation(), path, r, resolutionSize(r))
	}
	has := func(path string) bool {
		_, ok := envs.get(path, nil)
		return ok
	}
	put("base", "base")
	put("prod", "base", "prod")
	put("other", "other")
	envs.invalidate("base")
	if has("base") || has("prod") || !has("other") {
		t.Errorf("invalidate(base) left base %v, prod %v; dropped other %v", has("base"), has("prod"), !has("other"))
	}
	envs.invalidateAll()
	if has("other") {
		t.Error("invalidateAll left an entry")
	}

	tokens := tokenCache{newLRU[string, cachedToken](1 << 20)}
	tok := &envy.Token{ID: "a"}
	tokens.put(tokens.generation(), "hash-a", cachedToken{tok: tok}, tokenSize(tok))
	tokens.invalidateAll()
	if st := tokens.stats("tokens"); st.Entries != 0 {
		t.Errorf("invalidateAll left %d tokens", st.Entries)
	}
}

// TestReplyCacheIsKeyedByLayers checks the plaintext cache without the
// notices that evict it: a reply is served again only for the very layers,
// at the very revisions, it was encoded from, and invalidate finds the
// replies of a scope by tag, inherited layers included.
func TestReplyCacheIsKeyedByLayers(t *testing.T) {
	c := newReplyCache(1 << 20)
	builds := 0
	read := func(path string, layers ...envy.ScopeRev) string {
		t.Helper()
		rev := int64(0)
		for _, l := range layers {
			rev = max(rev, l.Revision)
		}
		r, err := c.cached(replyKey{"env", "json", path}, layers, rev, func() ([]byte, error) {
			builds++
			return fmt.Appendf(nil, "%s@%v", path, layers), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return string(r.Body)
	}
	base1, base2, app1, app2 := envy.ScopeRev{Path: "base", Revision: 1}, envy.ScopeRev{Path: "base", Revision: 2}, envy.ScopeRev{Path: "app", Revision: 1}, envy.ScopeRev{Path: "app", Revision: 3}
	want := func(got, wantBody string, wantBuilds int) {
		t.Helper()
		if got != wantBody || builds != wantBuilds {
			t.Errorf("got %q after %d builds, want %q after %d", got, builds, wantBody, wantBuilds)
		}
	}
	want(read("app", base1, app1), "app@[{base 1} {app 1}]", 1)
	want(read("app", base1, app1), "app@[{base 1} {app 1}]", 1) // a hit
	want(read("app", base2, app1), "app@[{base 2} {app 1}]", 2) // an inherited layer changed
	want(read("app", base2, app2), "app@[{base 2} {app 3}]", 3)
	want(read("app", app2), "app@[{app 3}]", 4) // inherits nothing any more
	want(read("app", base2, app2), "app@[{base 2} {app 3}]", 5)
	read("other", envy.ScopeRev{Path: "other", Revision: 1})
	c.invalidate("base")
	if st := c.stats("plaintext"); st.Entries != 1 || len(c.byTag) != 1 {
		t.Errorf("after invalidate(base): %d entries, tags %v; want other's only", st.Entries, c.byTag)
	}
	want(read("app", base2, app2), "app@[{base 2} {app 3}]", 7)
	c.clear()
	if st := c.stats("plaintext"); st.Entries != 0 || st.Bytes != 0 || len(c.byTag) != 0 {
		t.Errorf("after clear: %+v, tags %v", st, c.byTag)
	}

	off := newReplyCache(-1)
	for range 2 {
		if _, err := off.cached(replyKey{"env", "json", "app"}, []envy.ScopeRev{app1}, 1, func() ([]byte, error) { return []byte("x"), nil }); err != nil {
			t.Fatal(err)
		}
	}
	if st := off.stats("plaintext"); st.Entries != 0 || st.Hits != 0 || st.Misses != 0 {
		t.Errorf("a cache turned off: %+v", st)
	}
}
