// Package storecache is the one scope cache of envy: an envy.Store that
// wraps any other (as OpenBao's physical.NewCache wraps any backend) and
// keeps the scopes it reads, each with its sealed vars (*envy.ScopeVars,
// the stores' immutable snapshots), by path, bounded in bytes. It is kept
// true by the wrapped store's notices, whatever the store:
//
//   - A store that is not Shared (SQLite: one server per file) publishes
//     the notices of a commit from its writer before the write returns.
//     A notice evicts the scope, so a read that starts after a write
//     returned misses and loads the new state. A reader that missed notes
//     the cache's generation before it loads, and its snapshot is put only
//     when no eviction came since (it may predate the commit that evicted).
//   - A Shared store (PostgreSQL) tells another server's commit a moment
//     after it: too late for a read that starts once that commit was
//     acknowledged. So there every use of a cached tree is first checked
//     with envy.Checker.Check, one query for the whole tree, and a notice
//     evicts nothing: the older snapshot stays for a write to plan from
//     (Stale), and a notice that carries the committed state replaces it.
//     A Shared store without Checker gets no cache: every read goes to
//     the store.
//
// A reseal (ReplaceSealed) rewrites sealed bytes without a notice: the
// cache's ReplaceSealed evicts the scopes whose values it replaced.
//
// It speaks the domain's language (package envy) and nothing else: it must
// never import a database package, a store implementation (sqlite,
// postgres), package service, net/http or any HTTP or crypto package of
// this module.
package storecache

import (
	"context"
	"maps"

	"golang.org/x/sync/singleflight"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/lru"
	"github.com/envy-dev/envy/internal/storeutil"
)

// Store is an envy.Store whose scope reads (ScopeTree, GetScope) go
// through a cache. Every other method is the wrapped store's.
type Store struct {
	envy.Store
	envy.Broadcast // the wrapped store's notices, once the cache followed them

	scopes *lru.Cache[string, *envy.ScopeVars]
	// checker is set on a Shared store that offers checks: every use of a
	// cached tree is checked first. On a Shared store without one, the
	// cache is off (limit 0).
	checker envy.Checker
	shared  bool
	cancel  func()
	// plans shares one read of a tree among the writes that plan from it
	// at once (PlanTree).
	plans singleflight.Group
}

// maxCachedTree bounds the scopes of a tree assembled from the cache; a
// larger one is read from the store.
const maxCachedTree = 256

// fillTries bounds how often a reader whose load raced with a commit goes
// through the cache again before it returns what it loaded.
const fillTries = 10

// New returns store with a cache of at most limitBytes of scopes in front
// of it (limitBytes <= 0: no cache). It subscribes to store's notices at
// once; Close (or Detach) ends the subscription.
func New(store envy.Store, limitBytes int) *Store {
	c := &Store{Store: store, shared: store.Shared()}
	if c.shared {
		if ck, ok := store.(envy.Checker); ok {
			c.checker = ck
		} else {
			limitBytes = 0
		}
	}
	c.scopes = lru.New[string, *envy.ScopeVars](limitBytes)
	c.cancel = store.Subscribe(c.onNotice)
	return c
}

// Unwrap returns the wrapped store.
func (c *Store) Unwrap() envy.Store { return c.Store }

// Subscribe calls fn for every notice of the wrapped store, each once the
// cache has evicted what it changed: a subscriber that reads the scope
// when told of its change reads the new state.
func (c *Store) Subscribe(fn func(envy.Notice)) (cancel func()) { return c.Broadcast.Subscribe(fn) }

// Shared is the wrapped store's.
func (c *Store) Shared() bool { return c.shared }

// Stats returns the cache's statistics.
func (c *Store) Stats() lru.Stats { return c.scopes.Stats() }

// Detach ends the cache's subscription to the wrapped store's notices
// without closing the store. The cache must not be used after.
func (c *Store) Detach() {
	c.cancel()
	c.scopes.Clear()
}

// Close detaches the cache and closes the wrapped store.
func (c *Store) Close() error {
	c.Detach()
	return c.Store.Close()
}

func (c *Store) onNotice(n envy.Notice) {
	switch n.Kind {
	case envy.NoticeScope, envy.NoticeScopeMeta:
		// Only snapshots older than the notice: on a shared store, one
		// read after the commit may already be in. A shared store with
		// checks keeps them all the same: every use of a snapshot there
		// is checked, so an older one costs a read when it is used, never
		// a stale answer, and a write to its scope still plans from it
		// (Stale) rather than reading the whole scope again, which servers
		// that write one scope by turns would otherwise do for nearly
		// every write. The cache's bound frees the memory.
		if c.checker == nil {
			c.scopes.RemoveWhen(n.Scope, func(sv *envy.ScopeVars) bool { return sv.Scope.Revision < n.Revision })
		}
		// The committed state, when the store gives it, is kept at once
		// (after the eviction above, so that a reader's older load can't
		// land on top of it): the next write to the scope plans from it
		// without a read. A notice names exactly one scope at one revision,
		// and notices come in commit order, so the last one kept is the
		// scope as committed.
		if st := n.State; st != nil && n.Kind == envy.NoticeScope && st.Scope.Path == n.Scope && st.Scope.Revision == n.Revision {
			c.scopes.Put(c.scopes.Generation(), n.Scope, st, st.Size())
		}
	case envy.NoticeResync:
		c.scopes.Clear()
	}
	c.Publish(n)
}

// cachedTree returns the scope at path and every scope it inherits when
// all are cached, with their paths and revisions (for a check).
func (c *Store) cachedTree(path string) (tree map[string]*envy.ScopeVars, paths []string, revs []int64, ok bool) {
	sv, ok := c.scopes.Peek(path)
	if !ok {
		return nil, nil, nil, false
	}
	tree = map[string]*envy.ScopeVars{path: sv}
	if len(sv.Scope.Inherits) == 0 {
		return tree, []string{path}, []int64{sv.Scope.Revision}, true
	}
	paths, revs = []string{path}, []int64{sv.Scope.Revision}
	for i := 0; i < len(paths); i++ {
		for _, p := range tree[paths[i]].Scope.Inherits {
			if _, seen := tree[p]; seen {
				continue
			}
			sv, ok := c.scopes.Peek(p)
			if !ok || len(tree) == maxCachedTree {
				return nil, nil, nil, false
			}
			tree[p] = sv
			paths, revs = append(paths, p), append(revs, sv.Scope.Revision)
		}
	}
	return tree, paths, revs, true
}

// ScopeTree returns the scope at path and every scope it inherits, as the
// wrapped store does, from the cache when it may. The snapshots are
// shared: read-only.
func (c *Store) ScopeTree(ctx context.Context, path string) (map[string]*envy.ScopeVars, error) {
	if c.scopes.Limit() == 0 {
		return c.Store.ScopeTree(ctx, path)
	}
	if c.checker != nil {
		return c.checkedTree(ctx, path, nil)
	}
	var (
		tree map[string]*envy.ScopeVars
		err  error
	)
	for try := 0; try < fillTries; try++ {
		if tree, _, _, ok := c.cachedTree(path); ok {
			c.scopes.Count(true)
			return tree, nil
		}
		c.scopes.Count(false)
		gen := c.scopes.Generation()
		if tree, err = c.Store.ScopeTree(ctx, path); err != nil {
			return nil, err
		}
		if c.fill(gen, tree) {
			return tree, nil
		}
		// A commit was published while this loaded: go through the cache
		// again, so that a reader never sees a scope newer than the cache
		// shows the next one (the database shows a commit a moment before
		// the writer publishes it).
	}
	return tree, nil
}

// fill puts what a reader loaded, unless an eviction came since it noted
// gen, and reports whether it did.
func (c *Store) fill(gen uint64, tree map[string]*envy.ScopeVars) bool {
	for p, sv := range tree {
		if c.scopes.Generation() != gen {
			return false
		}
		c.scopes.Put(gen, p, sv, sv.Size())
	}
	return c.scopes.Generation() == gen
}

// GetScope returns the scope at path with its VarCount, from the cache
// when the store is not shared; a miss reads the store.
func (c *Store) GetScope(ctx context.Context, path string) (envy.Scope, error) {
	if c.checker == nil && c.scopes.Limit() > 0 {
		if sv, ok := c.scopes.Peek(path); ok {
			sc := storeutil.CloneScope(sv.Scope)
			sc.VarCount = len(sv.Vars)
			return sc, nil
		}
	}
	return c.Store.GetScope(ctx, path)
}

// Checked is the cached tree of a scope as one Check found it (CheckToken),
// for the first read of that tree by the same request (CheckedTree).
type Checked struct {
	path    string
	tree    map[string]*envy.ScopeVars
	current bool
}

// Checks reports whether the wrapped store is Shared and offers checks: a
// cached token may then be checked on each use (CheckToken).
func (c *Store) Checks() bool { return c.checker != nil }

// CheckToken checks, in one Check, that token (an id) is live and whether
// the cached tree of scope ("" for none) is current; the result is for the
// request's first read of scope (CheckedTree), nil when nothing of it was
// cached. It may be called only when Checks.
func (c *Store) CheckToken(ctx context.Context, token, scope string) (live bool, checked *Checked, err error) {
	var (
		tree  map[string]*envy.ScopeVars
		paths []string
		revs  []int64
	)
	if scope != "" && c.scopes.Limit() > 0 {
		tree, paths, revs, _ = c.cachedTree(scope)
	}
	current, live, err := c.checker.Check(ctx, paths, revs, token)
	if err != nil || !live || tree == nil {
		return live, nil, err
	}
	return true, &Checked{path: scope, tree: tree, current: current}, nil
}

// CheckedTree is ScopeTree for a request whose authentication checked the
// cached tree of path already (checked, from CheckToken; nil: not): the
// check was made after the request began, so the tree is as fresh as a
// read of its own, and a tree found current costs no query.
func (c *Store) CheckedTree(ctx context.Context, path string, checked *Checked) (map[string]*envy.ScopeVars, error) {
	if checked == nil || checked.path != path || c.checker == nil {
		return c.ScopeTree(ctx, path)
	}
	return c.checkedTree(ctx, path, checked)
}

// Stale returns the tree that a check found changed (checked, from
// CheckToken, for path), as cached: older than the database, for a caller
// that is told so and checks what it does with it another way (a write
// whose every change names the version and id it was planned from, which
// the store refuses as stale when either changed). ok is false when there
// is no such tree: none was cached, or it was found current (use
// CheckedTree).
func (c *Store) Stale(path string, checked *Checked) (tree map[string]*envy.ScopeVars, ok bool) {
	if checked == nil || checked.path != path || checked.current {
		return nil, false
	}
	return checked.tree, true
}

// CachedTree returns the tree of path as cached, unchecked (ok false when
// any scope of it is not cached): possibly older than the database, for a
// caller that checks what it does with it another way, as Stale's does.
func (c *Store) CachedTree(path string) (tree map[string]*envy.ScopeVars, ok bool) {
	if c.scopes.Limit() == 0 {
		return nil, false
	}
	tree, _, _, ok = c.cachedTree(path)
	return tree, ok
}

// PlanTree returns the tree of path for the first plan of a write that
// the store checks itself (each change names the var it was planned from,
// and a stale one is refused): the tree may be older than the caller's
// request. The writes that plan from a tree the cache lacks at the same
// moment (many writers of a scope that is new, or not cached since a
// restart) share one read of it instead of each reading the whole scope.
// A caller whose context ends stops waiting; the read goes on for the
// others.
func (c *Store) PlanTree(ctx context.Context, path string) (map[string]*envy.ScopeVars, error) {
	ch := c.plans.DoChan(path, func() (any, error) {
		return c.ScopeTree(context.WithoutCancel(ctx), path)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		// Each caller its own map: the snapshots in it are read-only.
		return maps.Clone(r.Val.(map[string]*envy.ScopeVars)), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// checkedTree is ScopeTree on a shared store that offers checks: a cached
// tree is served once the store confirmed that each of its scopes is still
// at the cached revision. One query checks every scope of the tree in one
// snapshot: all at their cached revisions means the tree is as cached,
// since a scope's inherits, the tree's shape, change only with a new
// revision of the scope.
func (c *Store) checkedTree(ctx context.Context, path string, checked *Checked) (map[string]*envy.ScopeVars, error) {
	switch {
	case checked != nil && checked.current:
		c.scopes.Count(true)
		return checked.tree, nil
	case checked != nil: // the check found it changed: read it
		c.scopes.Count(false)
	default:
		if tree, paths, revs, ok := c.cachedTree(path); ok {
			current, _, err := c.checker.Check(ctx, paths, revs, "")
			if err != nil {
				return nil, err
			}
			c.scopes.Count(current)
			if current {
				return tree, nil
			}
		} else {
			c.scopes.Count(false)
		}
	}
	tree, err := c.Store.ScopeTree(ctx, path)
	if envy.ErrorCode(err) == envy.ENotFound {
		c.scopes.Remove(path) // deleted: its snapshot would only be checked again
	}
	if err != nil {
		return nil, err
	}
	// Put whatever was read, even when a notice came meanwhile: every use
	// is checked, so a snapshot that is already old costs a read again,
	// never a stale answer.
	for p, sv := range tree {
		c.scopes.Put(c.scopes.Generation(), p, sv, sv.Size())
	}
	return tree, nil
}

// resealer is crypto.Resealer's method set, declared again here: package
// crypto must not be imported.
type resealer interface {
	SealedNotUnder(ctx context.Context, keep uint32, limit int) ([]envy.SealedValue, error)
	ReplaceSealed(ctx context.Context, vs []envy.SealedValue) (int, error)
	RetireDataKeys(ctx context.Context, keep uint32) ([]uint32, error)
}

func (c *Store) resealer() (resealer, error) {
	rs, ok := c.Store.(resealer)
	if !ok {
		return nil, envy.Errorf(envy.EInternal, "this store can't reseal its values")
	}
	return rs, nil
}

// SealedNotUnder is the wrapped store's (crypto.Resealer); EInternal when
// it has none.
func (c *Store) SealedNotUnder(ctx context.Context, keep uint32, limit int) ([]envy.SealedValue, error) {
	rs, err := c.resealer()
	if err != nil {
		return nil, err
	}
	return rs.SealedNotUnder(ctx, keep, limit)
}

// ReplaceSealed is the wrapped store's (crypto.Resealer), which rewrites
// sealed bytes without a revision or a notice; the cache then evicts
// every scope whose current values it was given, so that it does not keep
// serving the bytes from before. The eviction comes after the commit and
// bumps the generation, so a reader that loaded before cannot put the old
// bytes back.
//
// A Shared store's other servers keep their cached snapshots (a check
// compares revisions, which a reseal leaves alone): they hold the older
// data keys until they restart, so those bytes stay readable (see
// crypto.Keyring.Reseal).
func (c *Store) ReplaceSealed(ctx context.Context, vs []envy.SealedValue) (int, error) {
	rs, err := c.resealer()
	if err != nil {
		return 0, err
	}
	n, err := rs.ReplaceSealed(ctx, vs)
	seen := map[string]bool{}
	for _, v := range vs {
		if v.Revision == 0 && !seen[v.Scope] { // a current value, not history
			seen[v.Scope] = true
			c.scopes.Remove(v.Scope)
		}
	}
	return n, err
}

// RetireDataKeys is the wrapped store's (crypto.Resealer).
func (c *Store) RetireDataKeys(ctx context.Context, keep uint32) ([]uint32, error) {
	rs, err := c.resealer()
	if err != nil {
		return nil, err
	}
	return rs.RetireDataKeys(ctx, keep)
}
