package lru

import (
	"fmt"
	"testing"
)

func TestLRUStaysUnderItsBound(t *testing.T) {
	c := New[string, int](10_000)
	for i := range 1000 {
		c.Put(c.Generation(), fmt.Sprint(i), i, 100+i%7)
		if _, ok := c.Get("0", nil); !ok && i < 500 {
			t.Fatalf("after %d puts the entry read after each put was evicted", i+1)
		}
		if st := c.Stats(); st.Bytes > st.LimitBytes {
			t.Fatalf("after %d puts the cache holds %d bytes, over its bound %d", i+1, st.Bytes, st.LimitBytes)
		}
	}
	st := c.Stats()
	if st.Entries > 100 || st.Evictions == 0 || st.Entries+int(st.Evictions) != 1000 {
		t.Fatalf("stats = %+v; want at most 100 entries and the rest evicted", st)
	}
	if _, ok := c.Get("0", nil); !ok {
		t.Error("the most recently used entry was evicted")
	}
	if _, ok := c.Get("1", nil); ok {
		t.Error("an entry used once, long ago, is still there")
	}
	if v, ok := c.Get("999", nil); !ok || v != 999 {
		t.Errorf("the newest entry = %d, %v; want 999", v, ok)
	}
}

func TestLRUCountsAndRefuses(t *testing.T) {
	c := New[string, int](1000)
	c.Put(c.Generation(), "huge", 1, 251)
	if _, ok := c.Get("huge", nil); ok {
		t.Error("an entry over a quarter of the bound was kept")
	}
	gen := c.Generation()
	c.Remove("other")
	c.Put(gen, "stale", 1, 10)
	if _, ok := c.Get("stale", nil); ok {
		t.Error("an entry loaded before an invalidation was kept")
	}
	c.Put(c.Generation(), "k", 1, 10)
	if _, ok := c.Get("k", func(v int) bool { return v == 2 }); ok {
		t.Error("an entry its reader found unusable was returned")
	}
	c.Get("k", nil)
	if st := c.Stats(); st.Hits != 1 || st.Misses != 3 || st.Entries != 1 || st.Bytes != 10 {
		t.Errorf("stats = %+v; want 1 hit, 3 misses, 1 entry of 10 bytes", st)
	}
	c.RemoveIf(func(k string, _ int) bool { return k == "k" })
	c.Put(c.Generation(), "a", 1, 10)
	c.Clear()
	if st := c.Stats(); st.Entries != 0 || st.Bytes != 0 {
		t.Errorf("after clear stats = %+v", st)
	}
	off := New[string, int](-1)
	off.Put(off.Generation(), "k", 1, 0)
	if _, ok := off.Get("k", nil); ok {
		t.Error("a cache with a negative bound kept an entry")
	}
}
