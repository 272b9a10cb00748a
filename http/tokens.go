package http

import (
	"net/http"
	"strconv"
	"time"

	"github.com/envy-dev/envy"
)

func (s *Server) handleCreateToken(w http.ResponseWriter, r *http.Request) error {
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	o, err := parseBody(body)
	if err != nil {
		return err
	}
	if err := o.only("name", "owner", "permissions", "expires_at", "expires_in"); err != nil {
		return err
	}
	var in envy.TokenInput
	if in.Name, _, err = o.str("name"); err != nil {
		return err
	}
	if in.Owner, _, err = o.str("owner"); err != nil {
		return err
	}
	if in.ExpiresIn, _, err = o.str("expires_in"); err != nil {
		return err
	}
	at, ok, err := o.str("expires_at")
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
	if raw, ok := o.members["permissions"]; ok {
		items, err := arrayAt("body.permissions", raw)
		if err != nil {
			return err
		}
		for i, it := range items {
			loc := "body.permissions[" + strconv.Itoa(i) + "]"
			g, err := objectAt(loc, it)
			if err != nil {
				return err
			}
			if err := g.only("scopes", "actions"); err != nil {
				return err
			}
			var grant envy.Grant
			if grant.Scopes, _, err = g.str("scopes"); err != nil {
				return err
			}
			actions, err := g.stringList("actions")
			if err != nil {
				return err
			}
			if actions != nil {
				for _, a := range *actions {
					grant.Actions = append(grant.Actions, envy.Action(a))
				}
			}
			in.Permissions = append(in.Permissions, grant)
		}
	}
	tok, plaintext, err := s.svc.CreateToken(r.Context(), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, tokenCreatedJSON{tokenJSON: tokenView(tok), Token: plaintext})
	return nil
}

func (s *Server) handleListTokens(w http.ResponseWriter, r *http.Request) error {
	limit, err := queryLimit(r)
	if err != nil {
		return err
	}
	page, err := s.svc.ListTokens(r.Context(), r.URL.Query().Get("cursor"), limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list(page, tokenView))
	return nil
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
	if err := s.svc.RevokeToken(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
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
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list(page, auditView))
	return nil
}
