package service

import (
	"context"

	"github.com/envy-dev/envy"
)

// Resolved returns the resolution of path as the caller may see it: every
// layer in merge order with its vars, secrets masked unless reveal, each
// var with the scope it comes from and, when it is not in effect, the
// scope whose value wins. It needs read on the scope, and with reveal,
// reveal on the scope and on every layer it shows.
func (s *Service) Resolved(ctx context.Context, path string, reveal bool) (envy.ResolvedView, error) {
	if err := s.readAuth(ctx, path, envy.AuditResolved, nil, reveal); err != nil {
		return envy.ResolvedView{}, err
	}
	r, tree, err := s.resolve(ctx, path)
	if err != nil {
		return envy.ResolvedView{}, err
	}
	t := CallerFrom(ctx).Token
	shown := func(p string) string {
		if envy.Can(t, envy.ActRead, p) {
			return p
		}
		return envy.HiddenScope
	}
	out := envy.ResolvedView{Scope: path, Revision: r.Revision, Layers: make([]envy.LayerView, 0, len(r.Layers))}
	var secrets []string
	for _, l := range r.Layers {
		if shown(l.Path) == envy.HiddenScope {
			out.Layers = append(out.Layers, envy.LayerView{Scope: envy.HiddenScope, Hidden: true})
			continue
		}
		if reveal && !envy.Can(t, envy.ActReveal, l.Path) {
			s.Refused(ctx, envy.AuditReveal, l.Path, envy.OutcomeForbidden)
			return envy.ResolvedView{}, revealRefusal(t, path, l.Path, true)
		}
		vl, err := s.listVars(l.Path, tree[l.Path], reveal)
		if err != nil {
			return envy.ResolvedView{}, err
		}
		lv := envy.LayerView{Scope: l.Path, Revision: l.Revision, Vars: make([]envy.ResolvedVarView, len(vl.Items))}
		for i, v := range vl.Items {
			lv.Vars[i] = envy.ResolvedVarView{VarView: v, From: l.Path}
			if by := r.ShadowedBy(l.Path, v.Name); by != "" {
				lv.Vars[i].ShadowedBy = shown(by)
			}
		}
		out.Layers = append(out.Layers, lv)
		secrets = append(secrets, secretNames(l.Vars)...)
	}
	if err := s.resolvedRefs(ctx, r, &out, reveal); err != nil {
		return envy.ResolvedView{}, err
	}
	if reveal {
		if err := s.revealed(ctx, path, secrets); err != nil {
			return envy.ResolvedView{}, err
		}
	}
	return out, nil
}

// EnvBroken returns the error a read of path's env would fail with on a
// reference that names a scope or a var that does not exist (nil when
// none does), worked out by the one resolution without opening a value:
// it needs read on path, not reveal. A write may leave such a reference
// (the API accepts one to a var not set yet); a form that wrote it says
// so rather than a plain success.
func (s *Service) EnvBroken(ctx context.Context, path string) error {
	if err := s.readAuth(ctx, path, envy.AuditResolved, nil, false); err != nil {
		return err
	}
	r, _, err := s.resolve(ctx, path)
	if err != nil {
		return err
	}
	return r.BrokenRef()
}
