package service

import (
	"container/list"
	"sync"
)

// CacheStats tells how one of the Service's caches does, for metrics.
type CacheStats struct {
	Name       string // "tokens", "env", "scopes", "plaintext" or "no_consumers"
	Hits       uint64 // lookups that found a usable entry
	Misses     uint64 // lookups that did not
	Evictions  uint64 // entries pushed out to stay under the bound
	Entries    int
	Bytes      int // estimated bytes the entries hold
	LimitBytes int // the bound on Bytes
}

// CacheStats returns the statistics of the Service's caches, for the
// metrics endpoint.
func (s *Service) CacheStats() []CacheStats {
	return []CacheStats{s.tokens.stats("tokens"), s.envs.stats("env"), s.scopes.stats("scopes"), s.replies.stats("plaintext"),
		s.noConsumers.stats("no_consumers")}
}

// lru is a map bounded by an estimate of the bytes its entries hold: it
// evicts the least recently used entry until a new one fits. Each cache
// of the Service is one lru with one owner, the Service.
//
// A reader that misses notes the generation before it loads, and put
// refuses its entry when an invalidation came since: the load may predate
// the change that invalidated.
type lru[K comparable, V any] struct {
	mu    sync.Mutex
	m     map[K]*list.Element // of *lruEntry[K, V]
	order list.List           // most recently used first
	size  int
	limit int
	gen   uint64

	hits, misses, evictions uint64

	// tags, when set, names what an entry depends on (the scopes of a
	// reply), and byTag finds the entries of a tag without a scan
	// (removeTagged).
	tags  func(V) []string
	byTag map[string]map[K]struct{}
}

type lruEntry[K comparable, V any] struct {
	key  K
	val  V
	size int
}

// newLRU returns a cache of at most limit bytes; with limit <= 0 it keeps
// nothing.
func newLRU[K comparable, V any](limit int) *lru[K, V] {
	return &lru[K, V]{m: make(map[K]*list.Element), limit: max(limit, 0)}
}

// get returns the entry for k when there is one and usable (nil: any)
// accepts it; either way it counts a hit or a miss.
func (c *lru[K, V]) get(k K, usable func(V) bool) (V, bool) {
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

// peek returns the entry for k, if any, and marks it used, without
// counting a hit or a miss: the caller counts (count) once it knows
// whether the entry is still good, as a cache checked against a shared
// store does.
func (c *lru[K, V]) peek(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[k]; ok {
		c.order.MoveToFront(el)
		return el.Value.(*lruEntry[K, V]).val, true
	}
	var zero V
	return zero, false
}

// count records a lookup made with peek.
func (c *lru[K, V]) count(hit bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if hit {
		c.hits++
	} else {
		c.misses++
	}
}

// generation is what a reader notes before it loads what it will put.
func (c *lru[K, V]) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put keeps v for k, as size bytes, unless an invalidation came since gen
// or v is larger than a quarter of the bound (one huge entry must not push
// out everything else).
func (c *lru[K, V]) put(gen uint64, k K, v V, size int) {
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

// newTaggedLRU is newLRU with entries found by tag (removeTagged).
func newTaggedLRU[K comparable, V any](limit int, tags func(V) []string) *lru[K, V] {
	c := newLRU[K, V](limit)
	c.tags, c.byTag = tags, make(map[string]map[K]struct{})
	return c
}

// removeTagged forgets every entry tagged t, without a scan of the others.
func (c *lru[K, V]) removeTagged(t string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for k := range c.byTag[t] {
		c.removeLocked(k)
	}
}

// remove forgets k.
func (c *lru[K, V]) remove(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.removeLocked(k)
}

// removeWhen forgets k when drop selects its entry.
func (c *lru[K, V]) removeWhen(k K, drop func(V) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if el, ok := c.m[k]; ok && drop(el.Value.(*lruEntry[K, V]).val) {
		c.removeLocked(k)
	}
}

// removeIf forgets every entry that drop selects.
func (c *lru[K, V]) removeIf(drop func(K, V) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for k, el := range c.m {
		if drop(k, el.Value.(*lruEntry[K, V]).val) {
			c.removeLocked(k)
		}
	}
}

// clear forgets everything.
func (c *lru[K, V]) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.m)
	clear(c.byTag)
	c.order.Init()
	c.size = 0
}

func (c *lru[K, V]) removeLocked(k K) {
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

func (c *lru[K, V]) stats(name string) CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return CacheStats{Name: name, Hits: c.hits, Misses: c.misses, Evictions: c.evictions,
		Entries: len(c.m), Bytes: c.size, LimitBytes: c.limit}
}
