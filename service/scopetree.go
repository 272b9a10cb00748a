package service

import (
	"context"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/storecache"
)

// checkedTree is the cached tree of a request's scope as checked by
// authentication together with the token (AuthenticateFor).
type checkedTree = storecache.Checked

// scopeTree returns the scope at path and every scope it inherits, as
// Store.ScopeTree does, through the scope cache (package storecache): one
// consistent state, as of a moment after the request began. The request's
// first read of its own scope may use the check that authentication made
// with the token (AuthenticateFor), so that it costs no query of its own,
// or, for a reveal whose audit entry checks it (AuthenticateReveal), be
// the tree as cached: possibly older than the request, and then the
// reveal is not recorded and is answered again.
func (s *Service) scopeTree(ctx context.Context, path string) (map[string]*envy.ScopeVars, error) {
	if c, ok := ctx.Value(CallerKey{}).(*Caller); ok {
		if checked := c.checked.Swap(nil); checked != nil {
			return s.cache.CheckedTree(ctx, path, checked)
		}
		if c.uncheckedTree.Load() && c.uncheckedPath == path && c.uncheckedTree.CompareAndSwap(true, false) {
			// The reveal's audit entry checks it (AuthenticateReveal).
			if tree, ok := s.cache.CachedTree(path); ok {
				c.servedUnchecked.Store(true)
				return tree, nil
			}
		}
	}
	return s.cache.ScopeTree(ctx, path)
}

// planTree is scopeTree for the first plan of a write: on a shared store,
// when the request's check found the cached tree of path changed (another
// write to the scope committed since it was cached, on this server or
// another), it returns that tree as cached rather than reading the scope
// again, with fresh false. A write planned from it is still safe: each of
// its changes names the version and id of the var it was planned from,
// and the store refuses the write as stale when either changed, after
// which the write plans again from a fresh read. Under many writers of
// one scope, who change different vars, it spares each write a read of
// the whole scope. A request whose token's check was left to its write
// (AuthenticateWrite) checked no tree: it plans from the tree as cached,
// unchecked, on the same terms. When nothing of the tree is cached, the
// writes that miss it at once share one read (storecache.PlanTree).
func (s *Service) planTree(ctx context.Context, path string) (tree map[string]*envy.ScopeVars, fresh bool, err error) {
	if c, ok := ctx.Value(CallerKey{}).(*Caller); ok && s.shared {
		checked := c.checked.Load()
		if checked == nil && c.Deferred() {
			// Nothing was checked at authentication (AuthenticateWrite):
			// the cached tree, unchecked, as Stale would give it.
			if tree, ok := s.cache.CachedTree(path); ok {
				return tree, false, nil
			}
		}
		if checked == nil {
			// Nothing cached to plan from: one read, shared with the
			// writes of the scope that miss it at the same moment.
			tree, err = s.cache.PlanTree(ctx, path)
			return tree, false, err
		}
		if tree, ok := s.cache.Stale(path, checked); ok && c.checked.CompareAndSwap(checked, nil) {
			return tree, false, nil
		}
	}
	tree, err = s.scopeTree(ctx, path)
	return tree, true, err
}
