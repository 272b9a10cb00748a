package envy

import "context"

// Resolved returns the resolution of path as the caller may see it: every
// layer in merge order with its vars, secrets masked unless reveal, each
// var with the scope it comes from and, when it is not in effect, the
// scope whose value wins. It needs read on the scope, and with reveal,
// reveal on the scope and on every layer it shows.
func (s *Service) Resolved(ctx context.Context, path string, reveal bool) (ResolvedView, error) {
	if err := s.readAuth(ctx, path, "resolved", nil, reveal); err != nil {
		return ResolvedView{}, err
	}
	tree, err := s.scopeTree(ctx, path)
	if err != nil {
		return ResolvedView{}, err
	}
	r, err := Resolve(path, tree)
	if err != nil {
		return ResolvedView{}, err
	}
	t := CallerFrom(ctx).Token
	shown := func(p string) string {
		if can(t, ActRead, p) {
			return p
		}
		return HiddenScope
	}
	out := ResolvedView{Scope: path, Revision: r.Revision, Layers: make([]LayerView, 0, len(r.Layers))}
	var secrets []string
	for _, l := range r.Layers {
		if shown(l.Path) == HiddenScope {
			out.Layers = append(out.Layers, LayerView{Scope: HiddenScope, Hidden: true})
			continue
		}
		if reveal && !can(t, ActReveal, l.Path) {
			s.Refused(ctx, "reveal", l.Path, 403)
			// Not naming it: see envLayers.
			return ResolvedView{}, Errorf(EForbidden, "scope %s inherits a scope that this token may not reveal", path)
		}
		vl, err := s.listVars(l.Path, tree[l.Path], reveal)
		if err != nil {
			return ResolvedView{}, err
		}
		lv := LayerView{Scope: l.Path, Revision: l.Revision, Vars: make([]ResolvedVarView, len(vl.Items))}
		for i, v := range vl.Items {
			lv.Vars[i] = ResolvedVarView{VarView: v, From: l.Path}
			if by := r.ShadowedBy(l.Path, v.Name); by != "" {
				lv.Vars[i].ShadowedBy = shown(by)
			}
		}
		out.Layers = append(out.Layers, lv)
		secrets = append(secrets, secretNames(l.Vars)...)
	}
	if reveal {
		if err := s.revealed(ctx, path, secrets); err != nil {
			return ResolvedView{}, err
		}
	}
	return out, nil
}
