package service

import (
	"context"
	"slices"
	"time"

	"github.com/envy-dev/envy"
)

// Env returns the resolved env of a scope (envy.Resolve). It needs reveal
// on the scope and on every scope it inherits from.
func (s *Service) Env(ctx context.Context, path string) (envy.Env, error) {
	r, err := s.envResolution(ctx, path, false)
	if err != nil {
		return envy.Env{}, err
	}
	out, err := s.openEnv(r)
	if err != nil {
		return envy.Env{}, err
	}
	if err := s.revealed(ctx, path, nil); err != nil {
		return envy.Env{}, err
	}
	return out, nil
}

// envResolution checks that the caller may reveal the resolved env of
// path (the scope and every scope it depends on) and returns it, sealed.
// A raw read (references not expanded) depends on the scope's own tree
// only, for the rights it needs.
func (s *Service) envResolution(ctx context.Context, path string, raw bool) (*envy.Resolution, error) {
	if err := s.readAuth(ctx, path, envy.AuditEnv, nil, true); err != nil {
		return nil, err
	}
	r, _, err := s.resolve(ctx, path)
	if err != nil {
		return nil, err
	}
	deps := r.Deps
	if raw {
		deps = make([]envy.ScopeRev, len(r.Layers))
		for i, l := range r.Layers {
			deps[i] = envy.ScopeRev{Path: l.Path}
		}
	} else if err := s.refsAuth(ctx, r, true); err != nil {
		return nil, err
	}
	t := CallerFrom(ctx).Token
	for _, d := range deps {
		if !envy.Can(t, envy.ActReveal, d.Path) {
			s.Refused(ctx, envy.AuditReveal, d.Path, envy.OutcomeForbidden)
			inherited := slices.ContainsFunc(r.Layers, func(l envy.Layer) bool { return l.Path == d.Path })
			return nil, revealRefusal(t, path, d.Path, inherited)
		}
	}
	return r, nil
}

// openEnv opens the values of a resolved env.
func (s *Service) openEnv(r *envy.Resolution) (envy.Env, error) {
	return s.openEnvRaw(r, false)
}

// openEnvRaw opens the values of a resolved env, their references
// expanded unless raw.
func (s *Service) openEnvRaw(r *envy.Resolution, raw bool) (envy.Env, error) {
	plain, err := s.openMany(len(r.Vars), func(i int) (string, string, int64, []byte) {
		v := r.Vars[i]
		return v.Scope, v.Name, v.Version, v.Sealed
	})
	if err != nil {
		return envy.Env{}, err
	}
	out := envy.Env{Scope: r.Scope, Revision: r.Revision, Vars: make([]envy.EnvVar, len(r.Vars))}
	for i, v := range r.Vars {
		out.Vars[i] = envy.EnvVar{Name: v.Name, Value: plain[i], Secret: v.Secret, From: v.Scope}
	}
	if raw {
		for i := range out.Vars {
			if !out.Vars[i].Secret && len(r.Refs[out.Vars[i].Name]) > 0 {
				out.Vars[i].Secret = r.Secret(out.Vars[i].Name)
			}
		}
		return out, nil
	}
	if err := s.expandEnv(r, &out, plain); err != nil {
		return envy.Env{}, err
	}
	return out, nil
}

// resolve reads the tree of path and returns its resolution, the one
// every consumer of a resolved env takes: the env and its reply, the
// ETag, the watch hub's dependencies, synced, /-/resolved. A resolution
// is kept in the env cache and served again while it is Current, every
// dep at the revision it was resolved from. Resolving is linear in the
// tree; the cache saves the merge on the hot path.
func (s *Service) resolve(ctx context.Context, path string) (*envy.Resolution, map[string]*envy.ScopeVars, error) {
	tree, err := s.scopeTree(ctx, path)
	if err != nil {
		return nil, nil, err
	}
	full, torn := tree, false // with the trees of the scopes it refers to (refs.go)
	var refsRead []string
	if prev, ok := s.envs.Peek(path); ok && len(prev.Referenced) > 0 {
		refsRead = prev.RefScopes()
		if full, torn, err = s.withRefTrees(ctx, tree, refsRead); err != nil {
			return nil, nil, err
		}
	}
	if s.afterPeek != nil {
		s.afterPeek()
	}
	// Over torn trees a kept resolution could be Current by the newer
	// snapshot of a scope while tree, returned with it, holds the older:
	// resolve, which makes them one state. And the resolution kept may
	// have been put since the Peek: one that refers to a scope whose
	// tree was not read could take that scope for missing (a dep at
	// revision 0, absent from full) though it was created since.
	if r, ok := s.envs.Get(path, func(r *envy.Resolution) bool {
		return !torn && refersWithin(r, refsRead) && r.Current(full)
	}); ok {
		return r, tree, nil
	}
	gen := s.envs.Generation()
	read := treeSet{}
	src := s.refSource(ctx)
	readTree := read.recording(src.Tree)
	src.Tree = readTree
	r, err := envy.ResolveRefs(path, tree, src)
	for try := 1; err == nil && r.Torn; try++ {
		// A scope changed between the reads of the trees (the scope's,
		// perhaps as cached and unchecked, and those it refers to), and
		// two of them hold it at two revisions. Resolve again over one
		// state: each scope read at its newest revision, and every tree
		// taken from those (a scope none of them holds is read). The
		// newest of each is what a reader after the change sees; on a
		// reveal, the audit entry's check confirms every one of them.
		if try == maxTornReads {
			return nil, nil, &envy.Error{Code: envy.EUnavailable, RetryAfter: time.Second,
				Message: "the scopes of the env of " + path + " kept changing while it was read: try again"}
		}
		read.add(tree)
		if tree, err = read.tree(path, readTree); err != nil {
			return nil, nil, err
		}
		gen = s.envs.Generation()
		src.Tree = func(p string) (map[string]*envy.ScopeVars, error) { return read.tree(p, readTree) }
		r, err = envy.ResolveRefs(path, tree, src)
	}
	if err != nil {
		return nil, nil, err
	}
	s.envs.Put(gen, path, r, resolutionSize(r))
	return r, tree, nil
}

// refersWithin reports whether every scope r refers to is in read
// (sorted).
func refersWithin(r *envy.Resolution, read []string) bool {
	for p := range r.Referenced {
		if _, ok := slices.BinarySearch(read, p); !ok {
			return false
		}
	}
	return true
}

// maxTornReads bounds how many times resolve resolves an env whose
// trees disagree (envy.Resolution.Torn).
const maxTornReads = 4

// treeSet is the newest snapshot of each scope that resolve has read.
type treeSet map[string]*envy.ScopeVars

// add keeps each scope of t unless a newer snapshot of it is kept.
func (ts treeSet) add(t map[string]*envy.ScopeVars) {
	for p, sv := range t {
		if old, ok := ts[p]; !ok || old.Scope.Revision < sv.Scope.Revision {
			ts[p] = sv
		}
	}
}

// recording wraps a tree source so that every tree it reads is added.
func (ts treeSet) recording(read func(string) (map[string]*envy.ScopeVars, error)) func(string) (map[string]*envy.ScopeVars, error) {
	return func(p string) (map[string]*envy.ScopeVars, error) {
		t, err := read(p)
		if err == nil {
			ts.add(t)
		}
		return t, err
	}
}

// tree returns the tree of p from the snapshots kept: p and every scope
// it inherits, directly or not, each as kept. When one of them is not
// kept (the newest snapshot of a scope inherits one that no tree read
// held), the tree of p is read through read, added, and taken again.
func (ts treeSet) tree(p string, read func(string) (map[string]*envy.ScopeVars, error)) (map[string]*envy.ScopeVars, error) {
	for attempt := 0; ; attempt++ {
		out := map[string]*envy.ScopeVars{}
		queue := []string{p}
		complete := true
		for len(queue) > 0 && complete {
			q := queue[0]
			queue = queue[1:]
			if _, done := out[q]; done {
				continue
			}
			sv, ok := ts[q]
			if !ok {
				complete = false
				break
			}
			out[q] = sv
			queue = append(queue, sv.Scope.Inherits...)
		}
		if complete {
			return out, nil
		}
		if attempt == 1 {
			return nil, &envy.Error{Code: envy.EUnavailable, RetryAfter: time.Second,
				Message: "the scopes that " + p + " inherits kept changing while its env was read: try again"}
		}
		t, err := read(p)
		if err != nil {
			return nil, err
		}
		ts.add(t)
	}
}

// envCache keeps resolutions by scope path, bounded in bytes. An entry is
// used only while it is Current over the tree just read: a change to a
// dep, its inherits included, takes a new revision, and revisions only
// grow, so a changed, deleted and re-created or re-parented dep never
// matches an old entry. Invalidating is thus never needed for
// correctness, only to free memory early.
type envCache struct {
	*lruCache[string, *envy.Resolution]
}

// invalidate forgets the resolutions that depend on scope.
func (c envCache) invalidate(scope string) {
	c.RemoveIf(func(path string, r *envy.Resolution) bool { return dependsOn(r, scope) })
}

// dependsOn reports whether scope is one of r's deps (sorted by path).
func dependsOn(r *envy.Resolution, scope string) bool {
	for _, d := range r.Deps {
		if d.Path == scope {
			return true
		}
	}
	return r.Scope == scope
}

// invalidateAll forgets every resolution.
func (c envCache) invalidateAll() { c.Clear() }

// resolutionSize estimates the bytes an entry keeps alive: its layers'
// vars, those it shadows too, count in full, as the entry holds the
// store's snapshots of them.
func resolutionSize(r *envy.Resolution) int {
	n := 200 + len(r.Scope) + 8*len(r.Vars)
	for _, d := range r.Deps {
		n += 32 + len(d.Path)
	}
	for _, l := range r.Layers {
		for i := range l.Vars {
			n += 96 + len(l.Vars[i].Name) + len(l.Vars[i].Sealed)
		}
	}
	return n
}

// revealRefusal is the refusal to reveal the env of path because the
// caller may not reveal dep, a scope path inherits (or refers to): it
// names dep when the caller may see it, and only says there is one
// otherwise.
func revealRefusal(t *envy.Token, path, dep string, inherited bool) error {
	how := "inherits"
	if !inherited {
		how = "refers to"
	}
	switch {
	case dep == path:
		return envy.Errorf(envy.EForbidden, "token may not reveal scope %s", path)
	case envy.Visible(t, dep):
		return envy.Errorf(envy.EForbidden, "scope %s %s scope %s, which this token may not reveal", path, how, dep)
	case !inherited:
		return envy.Errorf(envy.EForbidden, "scope %s refers to a scope that this token may not reveal", path)
	}
	return envy.Errorf(envy.EForbidden, "scope %s inherits a scope that this token may not reveal", path)
}
