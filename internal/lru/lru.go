// Package lru is a map bounded by an estimate of the bytes its entries
// hold, with the generation scheme that keeps a cache filled by readers
// coherent with the invalidations that race with their loads. It is the
// one bounded cache of envy (the Service's caches, package storecache's
// scopes); it imports nothing but the standard library.
package lru

import (
	"container/list"
	"sync"
)

// Stats tells how a cache does, for metrics.
type Stats struct {
	Hits       uint64 // lookups that found a usable entry
	Misses     uint64 // lookups that did not
	Evictions  uint64 // entries pushed out to stay under the bound
	Entries    int
	Bytes      int // estimated bytes the entries hold
	LimitBytes int // the bound on Bytes
}

// Cache is a map bounded by an estimate of the bytes its entries hold: it
// evicts the least recently used entry until a new one fits. Each cache of
// the Service, and the scope cache of package storecache, is one Cache
// with one owner.
//
// A reader that misses notes the generation before it loads, and Put
// refuses its entry when an invalidation came since: the load may predate
// the change that invalidated.
type Cache[K comparable, V any] struct {
	mu    sync.Mutex
	m     map[K]*list.Element // of *lruEntry[K, V]
	order list.List           // most recently used first
	size  int
	limit int
	gen   uint64

	hits, misses, evictions uint64

	// tags, when set, names what an entry depends on (the scopes of a
	// reply), and byTag finds the entries of a tag without a scan
	// (RemoveTagged).
	tags  func(V) []string
	byTag map[string]map[K]struct{}
}

type lruEntry[K comparable, V any] struct {
	key  K
	val  V
	size int
}

// New returns a cache of at most limit bytes; with limit <= 0 it keeps
// nothing.
func New[K comparable, V any](limit int) *Cache[K, V] {
	return &Cache[K, V]{m: make(map[K]*list.Element), limit: max(limit, 0)}
}

// Get returns the entry for k when there is one and usable (nil: any)
// accepts it; either way it counts a hit or a miss.
func (c *Cache[K, V]) Get(k K, usable func(V) bool) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[k]; ok {
		e := el.Value.(*lruEntry[K, V])
		if usable == nil || usable(e.val) {
			c.order.MoveToFront(el)
			c.hits++
			return e.val, true
		}
	}
	c.misses++
	var zero V
	return zero, false
}

// Peek returns the entry for k, if any, and marks it used, without
// counting a hit or a miss: the caller counts (Count) once it knows
// whether the entry is still good, as a cache checked against a shared
// store does.
func (c *Cache[K, V]) Peek(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[k]; ok {
		c.order.MoveToFront(el)
		return el.Value.(*lruEntry[K, V]).val, true
	}
	var zero V
	return zero, false
}

// Count records a lookup made with Peek.
func (c *Cache[K, V]) Count(hit bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if hit {
		c.hits++
	} else {
		c.misses++
	}
}

// Generation is what a reader notes before it loads what it will put.
func (c *Cache[K, V]) Generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// Put keeps v for k, as size bytes, unless an invalidation came since gen
// or v is larger than a quarter of the bound (one huge entry must not push
// out everything else).
func (c *Cache[K, V]) Put(gen uint64, k K, v V, size int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen || c.limit == 0 || size > c.limit/4 {
		return
	}
	c.removeLocked(k)
	for c.size+size > c.limit {
		c.removeLocked(c.order.Back().Value.(*lruEntry[K, V]).key)
		c.evictions++
	}
	c.m[k] = c.order.PushFront(&lruEntry[K, V]{key: k, val: v, size: size})
	c.size += size
	if c.tags != nil {
		for _, t := range c.tags(v) {
			if c.byTag[t] == nil {
				c.byTag[t] = make(map[K]struct{})
			}
			c.byTag[t][k] = struct{}{}
		}
	}
}

// NewTagged is New with entries found by tag (RemoveTagged).
func NewTagged[K comparable, V any](limit int, tags func(V) []string) *Cache[K, V] {
	c := New[K, V](limit)
	c.tags, c.byTag = tags, make(map[string]map[K]struct{})
	return c
}

// RemoveTagged forgets every entry tagged t, without a scan of the others.
func (c *Cache[K, V]) RemoveTagged(t string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for k := range c.byTag[t] {
		c.removeLocked(k)
	}
}

// Remove forgets k.
func (c *Cache[K, V]) Remove(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.removeLocked(k)
}

// RemoveWhen forgets k when drop selects its entry.
func (c *Cache[K, V]) RemoveWhen(k K, drop func(V) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if el, ok := c.m[k]; ok && drop(el.Value.(*lruEntry[K, V]).val) {
		c.removeLocked(k)
	}
}

// RemoveIf forgets every entry that drop selects.
func (c *Cache[K, V]) RemoveIf(drop func(K, V) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for k, el := range c.m {
		if drop(k, el.Value.(*lruEntry[K, V]).val) {
			c.removeLocked(k)
		}
	}
}

// Clear forgets everything.
func (c *Cache[K, V]) Clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.m)
	clear(c.byTag)
	c.order.Init()
	c.size = 0
}

func (c *Cache[K, V]) removeLocked(k K) {
	if el, ok := c.m[k]; ok {
		e := el.Value.(*lruEntry[K, V])
		c.size -= e.size
		c.order.Remove(el)
		delete(c.m, k)
		if c.tags != nil {
			for _, t := range c.tags(e.val) {
				delete(c.byTag[t], k)
				if len(c.byTag[t]) == 0 {
					delete(c.byTag, t)
				}
			}
		}
	}
}

func (c *Cache[K, V]) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{Hits: c.hits, Misses: c.misses, Evictions: c.evictions,
		Entries: len(c.m), Bytes: c.size, LimitBytes: c.limit}
}

// Limit returns the bound in bytes; 0 when the cache keeps nothing.
func (c *Cache[K, V]) Limit() int { return c.limit }

// TagCount returns how many tags have entries, for tests.
func (c *Cache[K, V]) TagCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byTag)
}
