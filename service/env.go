package service

import (
	"context"
	"slices"

	"github.com/envy-dev/envy"
)

// Env returns the resolved env of a scope: its inherited scopes merged in
// order, then its own vars. It needs reveal on the scope and on every
// scope it inherits from.
func (s *Service) Env(ctx context.Context, path string) (envy.Env, error) {
	r, err := s.envLayers(ctx, path)
	if err != nil {
		return envy.Env{}, err
	}
	out, err := s.openEnv(path, r)
	if err != nil {
		return envy.Env{}, err
	}
	if err := s.revealed(ctx, path, nil); err != nil {
		return envy.Env{}, err
	}
	return out, nil
}

// envLayers checks that the caller may reveal the resolved env of path
// (the scope and every scope it inherits from) and returns it, sealed.
func (s *Service) envLayers(ctx context.Context, path string) (*resolved, error) {
	if err := s.readAuth(ctx, path, envy.AuditEnv, nil, true); err != nil {
		return nil, err
	}
	tree, err := s.scopeTree(ctx, path)
	if err != nil {
		return nil, err
	}
	if tree[path] == nil {
		return nil, scopeNotFound(path)
	}
	t := CallerFrom(ctx).Token
	for p := range tree {
		if !envy.Can(t, envy.ActReveal, p) {
			s.Refused(ctx, envy.AuditReveal, p, envy.OutcomeForbidden)
			// Not naming p: the caller may not even be allowed to read it.
			return nil, envy.Errorf(envy.EForbidden, "scope %s inherits a scope that this token may not reveal", path)
		}
	}
	return s.resolve(path, tree)
}

// openEnv opens the values of a resolved env.
func (s *Service) openEnv(path string, r *resolved) (envy.Env, error) {
	plain, err := s.openMany(len(r.vars), func(i int) (string, string, int64, []byte) {
		v := &r.vars[i]
		return v.Scope, v.Name, v.Version, v.Sealed
	})
	if err != nil {
		return envy.Env{}, err
	}
	out := envy.Env{Scope: path, Revision: r.rev, Vars: make([]envy.EnvVar, len(r.vars))}
	for i, v := range r.vars {
		out.Vars[i] = envy.EnvVar{Name: v.Name, Value: plain[i], Secret: v.Secret, From: v.Scope}
	}
	return out, nil
}

// resolved is a scope's merged vars as of the layers it was merged from;
// it holds sealed values only. It is shared, read-only, once cached.
type resolved struct {
	layers []layerRev    // in merge order
	vars   []resolvedVar // sorted by name
	rev    int64
}

// layerRev names a layer of a resolved env as of one revision.
type layerRev struct {
	path string
	rev  int64
}

// resolvedVar is what Env needs of a var: a copy, so that an entry
// doesn't keep the store's whole snapshot alive, only the sealed bytes.
type resolvedVar struct {
	Scope   string
	Name    string
	Version int64
	Secret  bool
	Sealed  []byte
}

// envCache keeps resolved envs by scope path, bounded in bytes. An entry
// is good while the scope's tree holds the same layers at the same
// revisions: a change to a layer, its inherits included, takes a new
// revision, and revisions only grow, so a changed, deleted and re-created
// or re-parented layer never matches an old entry. Invalidating is thus
// never needed for correctness, only to free memory early.
type envCache struct{ *lru[string, *resolved] }

// invalidate forgets the resolved envs that include scope.
func (c envCache) invalidate(scope string) {
	c.removeIf(func(path string, r *resolved) bool {
		for _, l := range r.layers {
			if l.path == scope {
				return true
			}
		}
		return path == scope
	})
}

// invalidateAll forgets every resolved env.
func (c envCache) invalidateAll() { c.clear() }

// size estimates the bytes an entry holds; the sealed bytes it shares
// with the store's snapshots count in full.
func (r *resolved) size(path string) int {
	n := 200 + len(path)
	for _, l := range r.layers {
		n += 32 + len(l.path)
	}
	for _, v := range r.vars {
		n += 96 + len(v.Name) + len(v.Sealed)
	}
	return n
}

// resolve merges a scope's tree: inherited scopes in order, depth first,
// then the scope's own vars, later layers winning. Each layer is sorted by
// name, so this is a merge of sorted lists, not a map and a sort; and the
// result is kept until one of the layers changes (reads are the hot path).
func (s *Service) resolve(path string, tree map[string]*envy.ScopeVars) (*resolved, error) {
	var layers []*envy.ScopeVars
	var walk func(p string, depth int) error
	walk = func(p string, depth int) error {
		sv := tree[p]
		if sv == nil || depth > envy.MaxInheritDepth {
			return envy.Errorf(envy.EInternal, "inherits chain of %s is broken at %s", path, p)
		}
		for _, q := range sv.Scope.Inherits {
			if err := walk(q, depth+1); err != nil {
				return err
			}
		}
		layers = append(layers, sv)
		return nil
	}
	if err := walk(path, 0); err != nil {
		return nil, err
	}
	same := func(r *resolved) bool {
		return slices.EqualFunc(r.layers, layers, func(l layerRev, sv *envy.ScopeVars) bool {
			return l.path == sv.Scope.Path && l.rev == sv.Scope.Revision
		})
	}
	if r, ok := s.envs.get(path, same); ok {
		return r, nil
	}
	gen := s.envs.generation()
	var vars []*envy.StoredVar
	r := &resolved{layers: make([]layerRev, len(layers))}
	for k, l := range layers {
		r.layers[k] = layerRev{path: l.Scope.Path, rev: l.Scope.Revision}
		r.rev = max(r.rev, l.Scope.Revision)
		next := make([]*envy.StoredVar, 0, len(vars)+len(l.Vars))
		i, j := 0, 0
		for i < len(vars) || j < len(l.Vars) {
			switch {
			case j == len(l.Vars) || i < len(vars) && vars[i].Name < l.Vars[j].Name:
				next = append(next, vars[i])
				i++
			case i == len(vars) || l.Vars[j].Name < vars[i].Name:
				next = append(next, &l.Vars[j])
				j++
			default: // the same name: the later layer wins
				next = append(next, &l.Vars[j])
				i++
				j++
			}
		}
		vars = next
	}
	r.vars = make([]resolvedVar, len(vars))
	for i, v := range vars {
		r.vars[i] = resolvedVar{Scope: v.Scope, Name: v.Name, Version: v.Version, Secret: v.Secret, Sealed: v.Sealed}
	}
	s.envs.put(gen, path, r, r.size(path))
	return r, nil
}

func treeRevision(tree map[string]*envy.ScopeVars) int64 {
	var rev int64
	for _, sv := range tree {
		if sv.Scope.Revision > rev {
			rev = sv.Scope.Revision
		}
	}
	return rev
}
