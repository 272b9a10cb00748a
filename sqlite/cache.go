package sqlite

import (
	"sync"

	"github.com/envy-dev/envy"
)

// scopeCache keeps each read scope with its sealed vars, as committed.
//
// Entries are immutable: the writer replaces them, never edits them, so a
// reader holds one without a lock. Two kinds of code put entries in:
//
//   - the writer, after each COMMIT and before answering, with the state it
//     just committed (or removes the entry when it does not know it);
//   - readers that missed and loaded the scope from the database. Such a
//     load may have read a snapshot from before a commit whose update the
//     writer has already applied; putting it in would bring the old state
//     back. So a reader notes the generation before loading and fill
//     refuses the entry when any commit was published since.
//
// Together these keep the invariant the writer relies on: an entry, when
// present, equals the committed state of its scope.
type scopeCache struct {
	mu    sync.RWMutex
	m     map[string]scopeEntry
	gen   uint64 // bumped by every publish of a commit
	size  int    // estimated bytes held
	limit int
}

type scopeEntry struct {
	sv   *envy.ScopeVars
	size int
}

func newScopeCache(limit int) *scopeCache {
	return &scopeCache{m: make(map[string]scopeEntry), limit: limit}
}

func (c *scopeCache) get(path string) (*envy.ScopeVars, bool) {
	c.mu.RLock()
	e, ok := c.m[path]
	c.mu.RUnlock()
	return e.sv, ok
}

// tree returns the scope at path and all it inherits, transitively, when
// every one of them is cached. It reads under one lock, so the tree is one
// consistent state even when a commit changed several of its scopes.
func (c *scopeCache) tree(path string) (map[string]*envy.ScopeVars, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.m[path]
	if !ok {
		return nil, false
	}
	tree := map[string]*envy.ScopeVars{path: e.sv}
	if len(e.sv.Scope.Inherits) == 0 {
		return tree, true
	}
	queue := append([]string(nil), e.sv.Scope.Inherits...)
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if _, seen := tree[p]; seen {
			continue
		}
		e, ok := c.m[p]
		if !ok {
			return nil, false
		}
		tree[p] = e.sv
		queue = append(queue, e.sv.Scope.Inherits...)
	}
	return tree, true
}

// generation is what a reader notes before loading from the database.
func (c *scopeCache) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// fill puts in what a reader loaded, unless a commit was published since
// it noted gen (its snapshot may be older than that commit).
// It reports whether no commit was published since gen: only then is sv
// as new as what the cache would give. A nil sv (the scope does not
// exist) is not kept.
func (c *scopeCache) fill(gen uint64, path string, sv *envy.ScopeVars) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return false
	}
	if _, ok := c.m[path]; !ok && sv != nil {
		c.putLocked(path, sv)
	}
	return true
}

// apply publishes a commit: the new state of each scope it changed, nil
// for a scope deleted or whose new state the writer did not keep.
func (c *scopeCache) apply(changes map[string]*envy.ScopeVars) {
	if len(changes) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for p, sv := range changes {
		c.deleteLocked(p)
		if sv != nil {
			c.putLocked(p, sv)
		}
	}
}

func (c *scopeCache) putLocked(path string, sv *envy.ScopeVars) {
	n := sv.Size()
	if n > c.limit/4 {
		return // one huge scope must not push out everything else
	}
	// Evict arbitrary entries (map order is random) until it fits: cheap,
	// needs no bookkeeping on the read path, and a scope read often is
	// soon back.
	for p := range c.m {
		if c.size+n <= c.limit {
			break
		}
		c.deleteLocked(p)
	}
	c.m[path] = scopeEntry{sv: sv, size: n}
	c.size += n
}

func (c *scopeCache) deleteLocked(path string) {
	if e, ok := c.m[path]; ok {
		c.size -= e.size
		delete(c.m, path)
	}
}
