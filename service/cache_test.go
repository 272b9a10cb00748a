package service

import (
	"fmt"
	"testing"

	"github.com/envy-dev/envy"
)

func TestCachesInvalidate(t *testing.T) {
	envs := envCache{newLRU[string, *envy.Resolution](1 << 20)}
	put := func(path string, layers ...string) {
		r := &envy.Resolution{Scope: path}
		for _, l := range layers {
			r.Deps = append(r.Deps, envy.ScopeRev{Path: l, Revision: 1})
		}
		envs.Put(envs.Generation(), path, r, resolutionSize(r))
	}
	has := func(path string) bool {
		_, ok := envs.Get(path, nil)
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

	tokens := tokenCache{newLRU[[32]byte, cachedToken](1 << 20)}
	tok := &envy.Token{ID: "a"}
	tokens.Put(tokens.Generation(), [32]byte{1}, cachedToken{tok: tok}, tokenSize(tok))
	tokens.invalidateAll()
	if st := tokens.Stats(); st.Entries != 0 {
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
	if st := c.Stats(); st.Entries != 1 || c.TagCount() != 1 {
		t.Errorf("after invalidate(base): %d entries, tags %d; want other's only", st.Entries, c.TagCount())
	}
	want(read("app", base2, app2), "app@[{base 2} {app 3}]", 7)
	c.Clear()
	if st := c.Stats(); st.Entries != 0 || st.Bytes != 0 || c.TagCount() != 0 {
		t.Errorf("after clear: %+v, tags %d", st, c.TagCount())
	}

	off := newReplyCache(-1)
	for range 2 {
		if _, err := off.cached(replyKey{"env", "json", "app"}, []envy.ScopeRev{app1}, 1, func() ([]byte, error) { return []byte("x"), nil }); err != nil {
			t.Fatal(err)
		}
	}
	if st := off.Stats(); st.Entries != 0 || st.Hits != 0 || st.Misses != 0 {
		t.Errorf("a cache turned off: %+v", st)
	}
}
