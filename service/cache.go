package service

import "github.com/envy-dev/envy/internal/lru"

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
// metrics endpoint. "scopes" is the scope cache of the store the Service
// reads through (package storecache).
func (s *Service) CacheStats() []CacheStats {
	var scopes lru.Stats
	if s.cache != nil {
		scopes = s.cache.Stats()
	}
	return []CacheStats{statsOf("tokens", s.tokens.Stats()), statsOf("env", s.envs.Stats()), statsOf("scopes", scopes),
		statsOf("plaintext", s.replies.Stats()), statsOf("no_consumers", s.noConsumers.Stats())}
}

func statsOf(name string, st lru.Stats) CacheStats {
	return CacheStats{Name: name, Hits: st.Hits, Misses: st.Misses, Evictions: st.Evictions,
		Entries: st.Entries, Bytes: st.Bytes, LimitBytes: st.LimitBytes}
}

// The Service's caches are each one lru.Cache with one owner, the Service.
type lruCache[K comparable, V any] = lru.Cache[K, V]

func newLRU[K comparable, V any](limit int) *lru.Cache[K, V] { return lru.New[K, V](limit) }

func newTaggedLRU[K comparable, V any](limit int, tags func(V) []string) *lru.Cache[K, V] {
	return lru.NewTagged[K, V](limit, tags)
}
