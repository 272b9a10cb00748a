package http

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/api"
	"github.com/envy-dev/envy/http/wire"
	"github.com/envy-dev/envy/service"
)

func (s *Server) handleCreateToken(w http.ResponseWriter, r *http.Request) error {
	o, err := s.body.Object(w, r)
	if err != nil {
		return err
	}
	if err := o.Only("name", "owner", "permissions", "expires_at", "expires_in"); err != nil {
		return err
	}
	var in envy.TokenInput
	if in.Name, _, err = o.String("name"); err != nil {
		return err
	}
	if in.Owner, _, err = o.String("owner"); err != nil {
		return err
	}
	if in.ExpiresIn, _, err = o.String("expires_in"); err != nil {
		return err
	}
	at, ok, err := o.String("expires_at")
	if err != nil {
		return err
	}
	if ok {
		t, err := time.Parse(time.RFC3339Nano, at)
		if err != nil {
			return envy.Invalid(envy.Field("body.expires_at", "invalid", "expires_at must be an RFC 3339 time"))
		}
		in.ExpiresAt = &t
	}
	if in.Permissions, err = grants(o); err != nil {
		return err
	}
	tok, plaintext, err := s.svc.CreateToken(r.Context(), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, tokenCreatedView(tok, plaintext))
	return nil
}

// grants decodes a token's "permissions": [{"scopes","actions"}, …].
func grants(o *wire.Object) ([]envy.Grant, error) {
	raw, ok := o.Members["permissions"]
	if !ok {
		return nil, nil
	}
	loc := o.Loc + ".permissions"
	items, err := nativeWords.ArrayAt(loc, raw)
	if err != nil {
		return nil, err
	}
	var out []envy.Grant
	for i, it := range items {
		g, err := nativeWords.ObjectAt(loc+"["+strconv.Itoa(i)+"]", it)
		if err != nil {
			return nil, err
		}
		if err := g.Only("scopes", "actions"); err != nil {
			return nil, err
		}
		var grant envy.Grant
		if grant.Scopes, _, err = g.String("scopes"); err != nil {
			return nil, err
		}
		actions, err := g.StringList("actions")
		if err != nil {
			return nil, err
		}
		if actions != nil {
			for _, a := range *actions {
				grant.Actions = append(grant.Actions, envy.Action(a))
			}
		}
		out = append(out, grant)
	}
	return out, nil
}

func (s *Server) handleListTokens(w http.ResponseWriter, r *http.Request) error {
	limit, err := queryLimit(r)
	if err != nil {
		return err
	}
	page, err := s.svc.ListTokens(r.Context(), r.URL.Query().Get("cursor"), limit)
	return writeList(w, page, err, tokenView)
}

func (s *Server) handleGetToken(w http.ResponseWriter, r *http.Request) error {
	tok, err := s.svc.GetToken(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, tokenView(tok))
	return nil
}

func (s *Server) handleRevokeToken(w http.ResponseWriter, r *http.Request) error {
	var o service.RevokeOptions
	var err error
	if o.Force, err = queryBool(r, "force"); err != nil {
		return err
	}
	if o.DryRun, err = queryBool(r, "dry_run"); err != nil {
		return err
	}
	n, err := s.svc.Revoke(r.Context(), r.PathValue("id"), o)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.Revocation{ID: strings.ToLower(r.PathValue("id")), Revoked: n, DryRun: o.DryRun})
	return nil
}

func (s *Server) handleSelf(w http.ResponseWriter, r *http.Request) error {
	tok, err := s.svc.Self(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, tokenView(tok))
	return nil
}

func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request) error {
	limit, err := queryLimit(r)
	if err != nil {
		return err
	}
	since, err := queryTime(r, "since")
	if err != nil {
		return err
	}
	q := r.URL.Query()
	page, err := s.svc.Audit(r.Context(), envy.AuditListQuery{
		Scope:  q.Get("scope"),
		Actor:  q.Get("actor"),
		Since:  since,
		Cursor: q.Get("cursor"),
		Limit:  limit,
	})
	return writeList(w, page, err, auditView)
}
