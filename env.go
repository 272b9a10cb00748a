package envy

import (
	"context"
	"slices"
)

// EnvVar is one var of a resolved env.
type EnvVar struct {
	Name   string
	Value  Sensitive
	Secret bool
	From   string // the scope it comes from
}

// Env is a scope's resolved env, sorted by name.
type Env struct {
	Scope    string
	Revision int64
	Vars     []EnvVar
}

// Env returns the resolved env of a scope: its inherited scopes merged in
// order, then its own vars. It needs reveal on the scope and on every
// scope it inherits from.
func (s *Service) Env(ctx context.Context, path string) (Env, error) {
	if err := s.readAuth(ctx, path, "env", nil, true); err != nil {
		return Env{}, err
	}
	tree, err := s.store.ScopeTree(ctx, path)
	if err != nil {
		return Env{}, err
	}
	if tree[path] == nil {
		return Env{}, scopeNotFound(path)
	}
	t := CallerFrom(ctx).Token
	for p := range tree {
		if !can(t, ActReveal, p) {
			s.Refused(ctx, "reveal", p, 403)
			// Not naming p: the caller may not even be allowed to read it.
			return Env{}, Errorf(EForbidden, "scope %s inherits a scope that this token may not reveal", path)
		}
	}
	merged, rev, err := s.resolve(path, tree)
	if err != nil {
		return Env{}, err
	}
	out := Env{Scope: path, Revision: rev, Vars: make([]EnvVar, len(merged))}
	for i, v := range merged {
		plain, err := s.open(v.Scope, v.Name, v.Version, v.Sealed)
		if err != nil {
			return Env{}, err
		}
		out.Vars[i] = EnvVar{Name: v.Name, Value: plain, Secret: v.Secret, From: v.Scope}
	}
	s.record(ctx, "reveal", path, nil, 200)
	return out, nil
}

// resolved is a scope's merged vars, computed from one set of the
// store's immutable ScopeVars snapshots; it holds sealed values only.
type resolved struct {
	layers []*ScopeVars // in merge order; the cache entry is valid while the tree holds these
	vars   []*StoredVar // sorted by name
	rev    int64
}

// resolve merges a scope's tree: inherited scopes in order, depth first,
// then the scope's own vars, later layers winning. Each layer is sorted by
// name, so this is a merge of sorted lists, not a map and a sort; and the
// result is kept until one of the layers changes (reads are the hot path).
func (s *Service) resolve(path string, tree map[string]*ScopeVars) ([]*StoredVar, int64, error) {
	var layers []*ScopeVars
	var walk func(p string, depth int) error
	walk = func(p string, depth int) error {
		sv := tree[p]
		if sv == nil || depth > MaxInheritDepth {
			return Errorf(EInternal, "inherits chain of %s is broken at %s", path, p)
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
		return nil, 0, err
	}
	if c, ok := s.resolved.Load(path); ok {
		r := c.(*resolved)
		if slices.Equal(r.layers, layers) {
			return r.vars, r.rev, nil
		}
	}
	var vars []*StoredVar
	var rev int64
	for _, l := range layers {
		rev = max(rev, l.Scope.Revision)
		next := make([]*StoredVar, 0, len(vars)+len(l.Vars))
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
	s.resolved.Store(path, &resolved{layers: layers, vars: vars, rev: rev})
	return vars, rev, nil
}

func treeRevision(tree map[string]*ScopeVars) int64 {
	var rev int64
	for _, sv := range tree {
		if sv.Scope.Revision > rev {
			rev = sv.Scope.Revision
		}
	}
	return rev
}
