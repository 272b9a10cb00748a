package service

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/envy-dev/envy"
)

// References (envy.ParseRefs): a value may be built from other values,
// ${NAME} of the same resolved env or ${scope/path:NAME} of another
// scope's. The service finds a var's references by opening its value
// once per version (refsCache), resolves with envy.ResolveRefs so that
// the referenced scopes join the resolution's deps, checks the reader's
// rights on every reference, spreads secrecy, and refuses at write time
// a syntax error or a write that would close a cycle.

// refKey names one version of a var: its last change's revision is
// store-wide unique, so a var deleted and created again never matches.
type refKey struct {
	scope, name string
	revision    int64
}

// refsCache keeps the parsed references of var versions (never a value).
type refsCache struct {
	*lruCache[refKey, []envy.Ref]
}

func newRefsCache(limit int) refsCache { return refsCache{newLRU[refKey, []envy.Ref](limit)} }

// refsOf returns the references of a stored var's value. A stored value
// that does not parse (written before references existed) has none: it
// reads as it is.
func (s *Service) refsOf(v *envy.StoredVar) ([]envy.Ref, error) {
	key := refKey{v.Scope, v.Name, v.Revision}
	if v.Revision > 0 {
		if refs, ok := s.refs.Get(key, func([]envy.Ref) bool { return true }); ok {
			return refs, nil
		}
	}
	gen := s.refs.Generation()
	plain, err := s.open(v.Scope, v.Name, v.Version, v.Sealed)
	if err != nil {
		return nil, err
	}
	refs, _ := envy.ParseRefs(plain.Reveal())
	if v.Revision > 0 {
		size := 96 + len(key.scope) + len(key.name)
		for _, r := range refs {
			size += 64 + len(r.Scope) + len(r.Name)
		}
		s.refs.Put(gen, key, refs, size)
	}
	return refs, nil
}

// refSource is what envy.ResolveRefs reads through: the scope cache and
// the refs cache.
func (s *Service) refSource(ctx context.Context) envy.RefSource {
	return envy.RefSource{
		Tree: func(p string) (map[string]*envy.ScopeVars, error) { return s.cache.ScopeTree(ctx, p) },
		Refs: s.refsOf,
	}
}

// withRefTrees returns tree with the trees of the scopes refs, added, for
// Resolution.Current. A scope that does not exist adds nothing. torn
// reports that two of the trees hold a scope at two revisions (read at
// different moments, a change between them): full is then no one state,
// and no resolution is Current over it.
func (s *Service) withRefTrees(ctx context.Context, tree map[string]*envy.ScopeVars, refs []string) (full map[string]*envy.ScopeVars, torn bool, err error) {
	full = make(map[string]*envy.ScopeVars, len(tree)+len(refs))
	for p, sv := range tree {
		full[p] = sv
	}
	for _, p := range refs {
		t, err := s.cache.ScopeTree(ctx, p)
		if envy.ErrorCode(err) == envy.ENotFound {
			continue
		}
		if err != nil {
			return nil, false, err
		}
		for q, sv := range t {
			if old, ok := full[q]; ok && old.Scope.Revision != sv.Scope.Revision {
				torn = true
			}
			full[q] = sv
		}
	}
	return full, torn, nil
}

// checkRefSyntax refuses a value with a bad reference: 422 naming the var
// and the byte offset, never the value.
func checkRefSyntax(loc, name string, in envy.VarInput) []envy.FieldError {
	if in.Value == nil {
		return nil
	}
	_, err := envy.ParseRefs(in.Value.Reveal())
	var se *envy.RefSyntaxError
	if errors.As(err, &se) {
		return []envy.FieldError{envy.Field(loc+".value", "invalid_reference", "the value of %s has an %s", name, se.Error())}
	}
	return nil
}

// refsAuth checks the caller's rights on every scope the env of r refers
// to, directly or not: read on it, and with reveal, reveal on it and on
// every scope it inherits from. A refusal is a 403 naming the reference,
// whatever the referenced scope holds and whether it exists: the caller
// can read the reference in the raw value, and learns nothing more. It
// gives up, with ctx's error, once ctx ends.
func (s *Service) refsAuth(ctx context.Context, r *envy.Resolution, reveal bool) error {
	if len(r.Referenced) == 0 {
		return nil
	}
	t := CallerFrom(ctx).Token
	var err error
	n := 0
	r.WalkRefs("", func(e envy.RefEdge) bool {
		if n++; n%64 == 0 {
			if err = ctx.Err(); err != nil {
				return false
			}
		}
		p := e.Ref.Scope
		if p == "" || p == r.Scope {
			return true
		}
		if !envy.Can(t, envy.ActRead, p) {
			s.Refused(ctx, envy.AuditEnv, p, envy.OutcomeForbidden)
			err = e.Refused("read")
			return false
		}
		if !reveal {
			return true
		}
		deps := []envy.ScopeRev{{Path: p}}
		if res := r.Referenced[p]; res != nil {
			deps = res.Deps
		}
		for _, d := range deps {
			if !envy.Can(t, envy.ActReveal, d.Path) {
				s.Refused(ctx, envy.AuditReveal, d.Path, envy.OutcomeForbidden)
				err = e.Refused("reveal")
				return false
			}
		}
		return true
	})
	return err
}

// refRefusal returns, for the caller, why a reference of r's vars into
// scope p may not be followed: "read" when the caller may not read it,
// with reveal "reveal" when it may not reveal it or a scope it inherits;
// "" when it may (p "" or r's own scope: the reader's own). Each scope is
// decided once.
func refRefusal(t *envy.Token, r *envy.Resolution, reveal bool) func(p string) string {
	known := map[string]string{}
	return func(p string) string {
		if p == "" || p == r.Scope {
			return ""
		}
		if why, ok := known[p]; ok {
			return why
		}
		why := ""
		if !envy.Can(t, envy.ActRead, p) {
			why = "read"
		} else if res := r.Referenced[p]; res != nil && reveal {
			for _, d := range res.Deps {
				if !envy.Can(t, envy.ActReveal, d.Path) {
					why = "reveal"
					break
				}
			}
		}
		known[p] = why
		return why
	}
}

// spread returns the names of r's vars that are masked for the caller
// though they are not secrets themselves: those whose value refers,
// directly or not, to a secret or to a scope the caller may not read.
// One pass over the reference graph answers for every var (RefFinder;
// the secrets are r's, worked out once). Should ctx end on the way, the
// vars not worked out yet are masked: what masks a reply is part of its
// key (spreadKey), so more masks than due never show where they are not.
func (s *Service) spread(ctx context.Context, r *envy.Resolution) map[string]bool {
	if len(r.Refs) == 0 {
		return nil
	}
	refusal := refRefusal(CallerFrom(ctx).Token, r, false)
	hidden := r.RefFinder(ctx, func(e envy.RefEdge) bool { return refusal(e.Ref.Scope) != "" })
	var out map[string]bool
	for name := range r.Refs {
		v, ok := r.Winner(name)
		if !ok || v.Secret {
			continue
		}
		_, masked, err := hidden.First(name)
		if masked || err != nil || r.Secret(name) {
			if out == nil {
				out = map[string]bool{}
			}
			out[name] = true
		}
	}
	return out
}

// spreadKey is what a masked list's reply depends on beyond its scope:
// the names masked by spreading.
func spreadKey(m map[string]bool) string {
	if len(m) == 0 {
		return ""
	}
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return "|" + strings.Join(names, ",")
}

// maskSpread masks the views of vars in spread (masked through their
// references) as a secret's would be, unless reveal.
func maskSpread(items []envy.VarView, spread map[string]bool, reveal bool) {
	for i := range items {
		v := &items[i]
		if !spread[v.Name] || v.Secret || v.Value == nil {
			continue
		}
		m := envy.Mask(*v.Value)
		v.MaskedValue = &m
		if !reveal {
			v.Value = nil
		}
	}
}

// expandEnv fills env's values with their resolved values: references
// expanded and "$${" turned into "${". plain are the raw values of r.Vars.
func (s *Service) expandEnv(r *envy.Resolution, env *envy.Env, plain []envy.Sensitive) error {
	if len(r.Refs) == 0 {
		escaped := false
		for i := range plain {
			if strings.Contains(plain[i].Reveal(), "$${") {
				escaped = true
				break
			}
		}
		if !escaped {
			return nil
		}
	}
	own := make(map[*envy.StoredVar]int, len(r.Vars))
	for i, v := range r.Vars {
		own[v] = i
	}
	vals, err := r.Expand(func(v *envy.StoredVar) (string, error) {
		if i, ok := own[v]; ok {
			return plain[i].Reveal(), nil
		}
		p, err := s.open(v.Scope, v.Name, v.Version, v.Sealed)
		return p.Reveal(), err
	})
	if err != nil {
		return err
	}
	for i := range env.Vars {
		env.Vars[i].Value = envy.NewSensitive(vals[i])
		if !env.Vars[i].Secret && len(r.Refs[env.Vars[i].Name]) > 0 {
			env.Vars[i].Secret = r.Secret(env.Vars[i].Name)
		}
	}
	return nil
}

// checkPlan refuses a write whose changes to path, planned over cur,
// would close a reference cycle: 422 naming the cycle. A write can close
// one only by adding a reference (a value that holds one, or a delete
// that uncovers an inherited one), so a write of plain values is not
// checked. The cycle may close in the env of path or in that of any
// scope that inherits it (a reference chain that comes back through an
// inherits edge, or into a scope that inherits path): checkCycles
// resolves each of them as the write would leave them.
func (s *Service) checkPlan(ctx context.Context, path string, cur envy.ScopeVars, changes []envy.VarChange) error {
	byName := make(map[string]envy.VarChange, len(changes))
	sv := &envy.ScopeVars{Scope: cur.Scope}
	sv.Scope.Path = path
	adds := false
	for _, c := range changes {
		byName[c.Name] = c
		if c.Delete {
			adds = true // it may uncover an inherited var that refers
			continue
		}
		// Revision 0: not kept in the refs cache.
		v := envy.StoredVar{ID: c.ID, Scope: path, Name: c.Name, Sealed: c.Sealed, Secret: c.Secret, Version: c.Version}
		if !adds {
			refs, err := s.refsOf(&v)
			if err != nil {
				return err
			}
			adds = len(refs) > 0
		}
		sv.Vars = append(sv.Vars, v)
	}
	if !adds {
		return nil
	}
	for _, v := range cur.Vars {
		if _, ok := byName[v.Name]; !ok {
			sv.Vars = append(sv.Vars, v)
		}
	}
	slices.SortFunc(sv.Vars, func(a, b envy.StoredVar) int { return strings.Compare(a.Name, b.Name) })
	return s.checkCycles(ctx, plannedScope{path: path, sv: sv})
}

// plannedScope is the store as a write to one scope would leave it: the
// scope as planned (sv: its vars and inherits) and, when the write
// changes its inherits, the trees of the scopes it would inherit.
type plannedScope struct {
	path    string
	sv      *envy.ScopeVars
	parents map[string]*envy.ScopeVars
}

// tree is Store.ScopeTree of p as the planned write would leave it.
func (s *Service) plannedTree(ctx context.Context, pl plannedScope, p string) (map[string]*envy.ScopeVars, error) {
	t, err := s.cache.ScopeTree(ctx, p)
	if p == pl.path && envy.ErrorCode(err) == envy.ENotFound {
		t, err = nil, nil // the write creates it
	}
	if err != nil {
		return nil, err
	}
	if _, ok := t[pl.path]; !ok && p != pl.path {
		return t, nil
	}
	full := make(map[string]*envy.ScopeVars, len(t)+len(pl.parents)+1)
	for q, sv := range t {
		full[q] = sv
	}
	for q, sv := range pl.parents {
		full[q] = sv
	}
	full[pl.path] = pl.sv
	return full, nil
}

// checkCycles refuses a planned write that would leave a reference cycle
// in the env of its scope or of any scope that inherits it, each resolved
// (envy.ResolveRefs, within its bounds) over the trees as the write would
// leave them, the scopes they refer to included. A cycle through a scope
// the caller may not read is refused without naming it.
func (s *Service) checkCycles(ctx context.Context, pl plannedScope) error {
	heirs, err := s.store.Inheritors(ctx, pl.path)
	if err != nil {
		return err
	}
	src := envy.RefSource{
		Tree: func(p string) (map[string]*envy.ScopeVars, error) { return s.plannedTree(ctx, pl, p) },
		Refs: s.refsOf,
	}
	t := CallerFrom(ctx).Token
	for _, p := range append([]string{pl.path}, heirs...) {
		tree, err := src.Tree(p)
		if envy.ErrorCode(err) == envy.ENotFound {
			continue // deleted since
		}
		if err != nil {
			return err
		}
		r, err := envy.ResolveRefs(p, tree, src)
		if envy.ErrorCode(err) == envy.ENotFound && p != pl.path {
			continue
		}
		if err != nil {
			return err
		}
		c := r.Cycle()
		if c == "" {
			continue
		}
		hidden := p != pl.path && !envy.Can(t, envy.ActRead, p)
		for _, q := range r.RefScopes() {
			hidden = hidden || strings.Contains(c, q+":") && !envy.Can(t, envy.ActRead, q)
		}
		switch {
		case hidden:
			return envy.Invalid(envy.Field("body", "reference_cycle", "the write would make a reference cycle through a scope this token may not read"))
		case p != pl.path:
			return envy.Invalid(envy.Field("body", "reference_cycle", "the write would make a reference cycle in the env of %s, which inherits %s: %s", p, pl.path, c))
		}
		return envy.Invalid(envy.Field("body", "reference_cycle", "the write would make a reference cycle: %s", c))
	}
	return nil
}

// checkInheritsPlan refuses a change of path's inherits to those the
// caller sent (in, as PutScope takes them) that would close a reference
// cycle (checkCycles), before the store applies it. Inherits that the
// write refuses anyway (a cycle of inherits, a hidden entry out of place)
// are left to it, which names why.
func (s *Service) checkInheritsPlan(ctx context.Context, path string, in []string) error {
	tree, err := s.cache.ScopeTree(ctx, path)
	if err != nil && envy.ErrorCode(err) != envy.ENotFound {
		return err
	}
	sv := &envy.ScopeVars{Scope: envy.Scope{Path: path}}
	if cur := tree[path]; cur != nil {
		*sv = *cur
	}
	inherits, err := keepHidden(CallerFrom(ctx).Token, sv.Scope.Inherits, in)
	if err != nil || slices.Equal(sv.Scope.Inherits, inherits) {
		return nil
	}
	sv.Scope.Inherits = inherits
	parents := map[string]*envy.ScopeVars{}
	for _, p := range inherits {
		t, err := s.cache.ScopeTree(ctx, p)
		if envy.ErrorCode(err) == envy.ENotFound {
			continue
		}
		if err != nil {
			return err
		}
		if _, ok := t[path]; ok {
			return nil // an inherits cycle: CheckInherits names it
		}
		for q, v := range t {
			parents[q] = v
		}
	}
	return s.checkCycles(ctx, plannedScope{path: path, sv: sv, parents: parents})
}

// spreadOf returns the own vars of path (sv) masked by spreading, and the
// deps that decides it on; nil when no var of sv holds a reference.
func (s *Service) spreadOf(ctx context.Context, path string, sv *envy.ScopeVars) (map[string]bool, []envy.ScopeRev, error) {
	r, _, err := s.resolve(ctx, path)
	if err != nil {
		return nil, nil, err
	}
	m, deps := s.spreadIn(ctx, path, r)
	return m, deps, nil
}

// spreadIn is spreadOf over path's resolution r, already read.
func (s *Service) spreadIn(ctx context.Context, path string, r *envy.Resolution) (map[string]bool, []envy.ScopeRev) {
	if len(r.Refs) == 0 {
		return nil, nil
	}
	m := s.spread(ctx, r)
	for n := range m {
		if w, ok := r.Winner(n); !ok || w.Scope != path {
			delete(m, n)
		}
	}
	return m, r.Deps
}

// viewSpread is view for one of the own vars of path (sv), masked when
// its references spread a secret to it.
func (s *Service) viewSpread(ctx context.Context, path string, sv *envy.ScopeVars, v envy.StoredVar, reveal bool) (envy.VarView, error) {
	vv, err := s.view(v, reveal)
	if err != nil {
		return vv, err
	}
	spread, _, err := s.spreadOf(ctx, path, sv)
	if err != nil {
		return envy.VarView{}, err
	}
	items := []envy.VarView{vv}
	maskSpread(items, spread, reveal)
	return items[0], nil
}

// resolvedRefs adds to out, the view of r, each var's references (those
// of a shadowed var too, as its layer of r holds it) and, for a var in
// effect, where the caller may see it, its resolved value: a var masked
// by its references (spread) shows it only with reveal, and then only
// when the caller may reveal every scope it refers to. A reference that
// does not resolve, or that the caller may not follow, is the row's
// RefError, naming the reference, never a value.
func (s *Service) resolvedRefs(ctx context.Context, r *envy.Resolution, out *envy.ResolvedView, reveal bool) error {
	if err := s.shadowedRefs(r, out); err != nil {
		return err
	}
	if len(r.Refs) == 0 {
		return nil
	}
	spread := s.spread(ctx, r)
	// A var reached here is no secret, or reveal is asked: its refusal
	// asks for reveal on the scopes it refers to exactly with reveal.
	refusal := refRefusal(CallerFrom(ctx).Token, r, reveal)
	refused := r.RefFinder(ctx, func(e envy.RefEdge) bool { return refusal(e.Ref.Scope) != "" })
	x := r.ExpanderContext(ctx, func(v *envy.StoredVar) (string, error) {
		p, err := s.open(v.Scope, v.Name, v.Version, v.Sealed)
		return p.Reveal(), err
	})
	for li := range out.Layers {
		l := &out.Layers[li]
		for vi := range l.Vars {
			v := &l.Vars[vi]
			refs := r.Refs[v.Name]
			if v.ShadowedBy != "" || len(refs) == 0 {
				continue
			}
			for _, ref := range refs {
				v.References = append(v.References, ref.String())
			}
			secret := v.Secret || spread[v.Name]
			if spread[v.Name] {
				items := []envy.VarView{v.VarView}
				maskSpread(items, spread, reveal)
				v.VarView = items[0]
			}
			if secret && !reveal {
				continue
			}
			e, found, err := refused.First(v.Name)
			if err != nil {
				return err
			}
			if found {
				v.RefError = e.Refused(refusal(e.Ref.Scope)).Message
				continue
			}
			val, err := x.Value(v.Name)
			if err != nil && ctx.Err() != nil {
				return ctx.Err() // the caller went away
			}
			if err != nil {
				var e *envy.Error
				if errors.As(err, &e) && e.Code == envy.EInvalid && len(e.Fields) > 0 {
					v.RefError = e.Fields[0].Msg
				} else {
					v.RefError = "the references do not resolve"
				}
				continue
			}
			sv := envy.NewSensitive(val)
			v.ResolvedValue = &sv
		}
	}
	return nil
}

// shadowedRefs adds to out, the view of r, the references of each var
// that a later layer shadows: the references of its value as its layer of
// r holds it. Such a var is in no env of r, so it has no resolved value.
func (s *Service) shadowedRefs(r *envy.Resolution, out *envy.ResolvedView) error {
	for li := range out.Layers {
		l := &out.Layers[li]
		for vi := range l.Vars {
			v := &l.Vars[vi]
			if v.ShadowedBy == "" {
				continue
			}
			i, ok := slices.BinarySearchFunc(r.Layers[li].Vars, v.Name, func(sv envy.StoredVar, name string) int { return strings.Compare(sv.Name, name) })
			if !ok {
				continue
			}
			refs, err := s.refsOf(&r.Layers[li].Vars[i])
			if err != nil {
				return err
			}
			for _, ref := range refs {
				v.References = append(v.References, ref.String())
			}
		}
	}
	return nil
}

// ListVarsResolved is ListVars with each value shown resolved (references
// expanded in the env of path, "$${" turned into "${"), for the dialects,
// whose reads give resolved values: a value shown is one that a read of
// the env would give. A reference to a scope the caller may not read (with
// reveal, reveal) is a 403 for the whole read, naming it; one that does
// not resolve, a 422 naming it. The values are resolved before the reveal
// is recorded: a read refused so reveals nothing and leaves no entry.
func (s *Service) ListVarsResolved(ctx context.Context, path string, reveal bool) (envy.VarList, error) {
	return s.listVarsThen(ctx, path, reveal, s.resolving(ctx, path, reveal))
}

// GetVarResolved is GetVar with the value shown resolved (ListVarsResolved).
func (s *Service) GetVarResolved(ctx context.Context, path, name string, reveal bool) (envy.VarView, error) {
	return s.getVarThen(ctx, path, name, reveal, s.resolving(ctx, path, reveal))
}

// GetVarByIDResolved is GetVarByID with the value shown resolved.
func (s *Service) GetVarByIDResolved(ctx context.Context, path, id string, reveal bool) (envy.VarView, error) {
	return s.getVarByIDThen(ctx, path, id, reveal, s.resolving(ctx, path, reveal))
}

// resolving is resolveViews for a read of path's own vars.
func (s *Service) resolving(ctx context.Context, path string, reveal bool) shown {
	return func(items []envy.VarView) error { return s.resolveViews(ctx, path, items, reveal) }
}

// resolveViews replaces the shown values of items, own vars of path, by
// their resolved values.
func (s *Service) resolveViews(ctx context.Context, path string, items []envy.VarView, reveal bool) error {
	need := false
	for _, it := range items {
		if it.Value != nil && strings.Contains(it.Value.Reveal(), "${") {
			need = true
			break
		}
	}
	if !need {
		return nil
	}
	r, _, err := s.resolve(ctx, path)
	if err != nil {
		return err
	}
	if err := s.refsAuth(ctx, r, reveal); err != nil {
		return err
	}
	x := r.ExpanderContext(ctx, func(v *envy.StoredVar) (string, error) {
		p, err := s.open(v.Scope, v.Name, v.Version, v.Sealed)
		return p.Reveal(), err
	})
	for i := range items {
		it := &items[i]
		if it.Value == nil || !strings.Contains(it.Value.Reveal(), "${") {
			continue
		}
		if w, ok := r.Winner(it.Name); !ok || w.Scope != path {
			continue
		}
		val, err := x.Value(it.Name)
		if err != nil {
			return err
		}
		sv := envy.NewSensitive(val)
		it.Value = &sv
	}
	return nil
}
