package service

import (
	"context"

	"github.com/envy-dev/envy"
)

// scopeCache keeps scopes with their sealed vars, by path, for a store
// shared with other servers that offers checks (Checker): PostgreSQL.
// Another server's change reaches this one as a notice a moment after it
// commits, so an entry is never trusted on the notice's word: every use of
// a cached tree is first checked against the store (Checker.Check), one
// cheap query instead of reading every var again. Notices only evict
// early, to free memory. A store that is not shared keeps its own cache
// of scopes (SQLite's follows every commit as it happens), and this one
// stays empty.
//
// Entries are the store's immutable snapshots, shared with whoever read
// them.
type scopeCache struct{ *lru[string, *envy.ScopeVars] }

// maxCachedTree bounds the scopes of a tree assembled from the cache; a
// larger one is read from the store.
const maxCachedTree = 256

// tree returns the scope at path and every scope it inherits when all are
// cached, with their paths and revisions to check.
func (c scopeCache) tree(path string) (tree map[string]*envy.ScopeVars, paths []string, revs []int64, ok bool) {
	sv, ok := c.peek(path)
	if !ok {
		return nil, nil, nil, false
	}
	tree = map[string]*envy.ScopeVars{path: sv}
	paths, revs = []string{path}, []int64{sv.Scope.Revision}
	for i := 0; i < len(paths); i++ {
		for _, p := range tree[paths[i]].Scope.Inherits {
			if _, seen := tree[p]; seen {
				continue
			}
			sv, ok := c.peek(p)
			if !ok || len(tree) == maxCachedTree {
				return nil, nil, nil, false
			}
			tree[p] = sv
			paths, revs = append(paths, p), append(revs, sv.Scope.Revision)
		}
	}
	return tree, paths, revs, true
}

// invalidate forgets path when it is cached at a revision older than rev:
// a notice of a change this server may already have read.
func (c scopeCache) invalidate(path string, rev int64) {
	c.removeWhen(path, func(sv *envy.ScopeVars) bool { return sv.Scope.Revision < rev })
}

// checkedTree is the cached tree of a request's scope as checked by
// authentication: nil tree when the check found it changed.
type checkedTree struct {
	path string
	tree map[string]*envy.ScopeVars
}

// scopeTree returns the scope at path and every scope it inherits, as
// Store.ScopeTree does: one consistent state, as of a moment after the
// request began. On a shared store that offers checks, the tree comes
// from the scope cache once the store confirmed that each of its scopes is
// still at the cached revision; otherwise (and on any other store) from
// the store. One query checks every scope of the tree in one snapshot:
// all at their cached revisions means the tree is as cached, since a
// scope's inherits, the tree's shape, change only with a new revision of
// the scope. The request's first read of its own scope may use the check
// that authentication made with the token (AuthenticateFor).
func (s *Service) scopeTree(ctx context.Context, path string) (map[string]*envy.ScopeVars, error) {
	if s.checker == nil {
		return s.store.ScopeTree(ctx, path)
	}
	var checked *checkedTree // by authentication, for this request
	if c, ok := ctx.Value(callerKey{}).(*Caller); ok {
		if checked = c.checked.Swap(nil); checked != nil && checked.path != path {
			checked = nil
		}
	}
	switch {
	case checked != nil && checked.tree != nil:
		s.scopes.count(true)
		return checked.tree, nil
	case checked != nil: // the check found it changed: read it
		s.scopes.count(false)
	default:
		if tree, paths, revs, ok := s.scopes.tree(path); ok {
			current, _, err := s.checker.Check(ctx, paths, revs, "")
			if err != nil {
				return nil, err
			}
			s.scopes.count(current)
			if current {
				return tree, nil
			}
		} else {
			s.scopes.count(false)
		}
	}
	tree, err := s.store.ScopeTree(ctx, path)
	if envy.ErrorCode(err) == envy.ENotFound {
		s.scopes.remove(path) // deleted: its snapshot would only be checked again
	}
	if err != nil {
		return nil, err
	}
	// Put whatever was read, even when a notice came meanwhile: every use
	// is checked, so a snapshot that is already old costs a read again,
	// never a stale answer.
	for p, sv := range tree {
		s.scopes.put(s.scopes.generation(), p, sv, sv.Size())
	}
	return tree, nil
}
