package http

import (
	"net/http"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/api"
	"github.com/envy-dev/envy/http/wire"
)

// handleResolved answers GET /v1/scopes/{path}/-/resolved: the scope's
// layers as the service resolves them, the one answer the CLI and the
// dashboard show.
func (s *Server) handleResolved(w http.ResponseWriter, r *http.Request) error {
	reveal, err := queryBool(r, "reveal")
	if err != nil {
		return err
	}
	rv, err := s.svc.Resolved(r.Context(), r.PathValue("path"), reveal)
	if err != nil {
		return err
	}
	wire.SetETag(w, rv.Revision)
	writeJSON(w, http.StatusOK, resolvedView(rv))
	return nil
}

func resolvedView(rv envy.ResolvedView) api.Resolved {
	out := api.Resolved{Scope: rv.Scope, Revision: rv.Revision, Layers: make([]api.ResolvedLayer, len(rv.Layers))}
	for i, l := range rv.Layers {
		al := api.ResolvedLayer{Scope: l.Scope, Hidden: l.Hidden, Revision: l.Revision, Vars: make([]api.ResolvedVar, len(l.Vars))}
		for j, v := range l.Vars {
			al.Vars[j] = api.ResolvedVar{Var: varView(v.VarView), From: v.From, ShadowedBy: v.ShadowedBy,
				References: v.References, ResolvedValue: revealed(v.ResolvedValue), ReferenceError: v.RefError}
		}
		out.Layers[i] = al
	}
	return out
}
