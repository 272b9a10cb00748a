package http

import (
	"net/http"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/api"
	"github.com/envy-dev/envy/service"
)

// The JWT trusts of workload identity (docs/identity.md): defined by an
// admin, and a login route that needs no token, only a JWT.

func (s *Server) handlePutTrust(w http.ResponseWriter, r *http.Request) error {
	o, err := s.body.Object(w, r)
	if err != nil {
		return err
	}
	if err := o.Only("issuer", "audience", "jwks_url", "bound_claims", "subject_claim", "permissions", "ttl", "max_age"); err != nil {
		return err
	}
	var in envy.TrustInput
	for _, f := range []struct {
		name string
		dst  *string
	}{{"issuer", &in.Issuer}, {"audience", &in.Audience}, {"jwks_url", &in.JWKSURL}, {"subject_claim", &in.SubjectClaim}, {"ttl", &in.TTL}, {"max_age", &in.MaxAge}} {
		if *f.dst, _, err = o.String(f.name); err != nil {
			return err
		}
	}
	if _, ok := o.Members["bound_claims"]; ok {
		bc, err := o.Object("bound_claims")
		if err != nil {
			return err
		}
		in.BoundClaims = map[string]string{}
		for k := range bc.Members {
			if in.BoundClaims[k], _, err = bc.String(k); err != nil {
				return err
			}
		}
	}
	if in.Permissions, err = grants(o); err != nil {
		return err
	}
	t, created, err := s.svc.PutTrust(r.Context(), r.PathValue("name"), in)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, trustView(t))
	return nil
}

func (s *Server) handleGetTrust(w http.ResponseWriter, r *http.Request) error {
	t, err := s.svc.GetTrust(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, trustView(t))
	return nil
}

func (s *Server) handleListTrusts(w http.ResponseWriter, r *http.Request) error {
	limit, err := queryLimit(r)
	if err != nil {
		return err
	}
	page, err := s.svc.ListTrusts(r.Context(), r.URL.Query().Get("cursor"), limit)
	return writeList(w, page, err, trustView)
}

func (s *Server) handleDeleteTrust(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.svc.DeleteTrust(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// handleJWTLogin trades a JWT for a token. It needs no bearer token; a
// refused login counts against the client address like a bad token, and
// is answered "invalid token" whatever the reason (the audit log says it).
func (s *Server) handleJWTLogin(w http.ResponseWriter, r *http.Request) error {
	o, err := s.body.Object(w, r)
	if err != nil {
		return err
	}
	if err := o.Only("jwt"); err != nil {
		return err
	}
	raw, err := o.RequiredString("jwt")
	if err != nil {
		return err
	}
	login, err := s.svc.LoginJWT(r.Context(), r.PathValue("name"), raw)
	if err != nil {
		return s.loginFailed(r, err)
	}
	writeJSON(w, http.StatusCreated, api.JWTLogin{ID: login.Token.ID, Token: login.Plaintext, Name: login.Token.Name, ExpiresAt: login.Token.ExpiresAt.UTC()})
	return nil
}

// loginFailed counts a refused login (EUnauthenticated) against the
// client address like a bad token, and answers 429 beyond the limit.
func (s *Server) loginFailed(r *http.Request, err error) error {
	if envy.ErrorCode(err) == envy.EUnauthenticated {
		client := service.CallerFrom(r.Context()).Client
		if client == "" {
			client = clientAddr(r)
		}
		if wait, ok := s.authFail.allow(client, s.now()); !ok {
			return &envy.Error{Code: envy.ERateLimited, Message: "too many failed authentications from this address", RetryAfter: wait}
		}
	}
	return err
}

func trustView(t envy.JWTTrust) api.JWTTrust {
	perms := permissionViews(t.Permissions)
	bc := t.BoundClaims
	if bc == nil {
		bc = map[string]string{}
	}
	v := api.JWTTrust{Name: t.Name, Issuer: t.Issuer, Audience: t.Audience, JWKSURL: t.JWKSURL, BoundClaims: bc,
		SubjectClaim: t.SubjectClaim, Permissions: perms, TTL: t.TTL.String(), CreatedAt: t.CreatedAt.UTC(), CreatedBy: t.CreatedBy}
	if t.MaxAge > 0 {
		v.MaxAge = t.MaxAge.String()
	}
	return v
}

func permissionViews(gs []envy.Grant) []api.Permission {
	perms := make([]api.Permission, 0, len(gs))
	for _, g := range gs {
		actions := make([]string, 0, len(g.Actions))
		for _, a := range g.Actions {
			actions = append(actions, string(a))
		}
		perms = append(perms, api.Permission{Scopes: g.Scopes, Actions: actions})
	}
	return perms
}
