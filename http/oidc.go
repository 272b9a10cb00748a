package http

import (
	"net/http"
	"strconv"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/api"
)

// OIDC providers (docs/identity.md): people sign in through them, in the
// dashboard and with `envy login --oidc`. The two sign-in routes need no
// token: the CLI starts a sign-in (auth_url) and, once the provider sent
// the browser back to its loopback listener, finishes it (callback).

func (s *Server) handlePutOIDC(w http.ResponseWriter, r *http.Request) error {
	o, err := s.body.Object(w, r)
	if err != nil {
		return err
	}
	if err := o.Only("issuer", "client_id", "client_secret", "redirect_uris", "scopes", "roles", "session_ttl", "trust_email"); err != nil {
		return err
	}
	var in envy.OIDCInput
	for _, f := range []struct {
		name string
		dst  *string
	}{{"issuer", &in.Issuer}, {"client_id", &in.ClientID}, {"session_ttl", &in.SessionTTL}} {
		if *f.dst, _, err = o.String(f.name); err != nil {
			return err
		}
	}
	secret, _, err := o.String("client_secret")
	if err != nil {
		return err
	}
	in.ClientSecret = envy.NewSensitive(secret)
	if trust, err := o.Bool("trust_email"); err != nil {
		return err
	} else if trust != nil {
		in.TrustEmail = *trust
	}
	for _, l := range []struct {
		name string
		dst  *[]string
	}{{"redirect_uris", &in.RedirectURIs}, {"scopes", &in.Scopes}} {
		v, err := o.StringList(l.name)
		if err != nil {
			return err
		}
		if v != nil {
			*l.dst = *v
		}
	}
	if raw, ok := o.Members["roles"]; ok {
		items, err := nativeWords.ArrayAt("body.roles", raw)
		if err != nil {
			return err
		}
		for i, it := range items {
			ro, err := nativeWords.ObjectAt("body.roles["+strconv.Itoa(i)+"]", it)
			if err != nil {
				return err
			}
			if err := ro.Only("name", "claim", "value", "permissions"); err != nil {
				return err
			}
			var role envy.OIDCRole
			for _, f := range []struct {
				name string
				dst  *string
			}{{"name", &role.Name}, {"claim", &role.Claim}, {"value", &role.Value}} {
				if *f.dst, _, err = ro.String(f.name); err != nil {
					return err
				}
			}
			if role.Permissions, err = grants(ro); err != nil {
				return err
			}
			in.Roles = append(in.Roles, role)
		}
	}
	p, created, err := s.svc.PutOIDC(r.Context(), r.PathValue("name"), in)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, oidcView(p))
	return nil
}

func (s *Server) handleGetOIDC(w http.ResponseWriter, r *http.Request) error {
	p, err := s.svc.GetOIDC(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, oidcView(p))
	return nil
}

func (s *Server) handleListOIDC(w http.ResponseWriter, r *http.Request) error {
	limit, err := queryLimit(r)
	if err != nil {
		return err
	}
	page, err := s.svc.ListOIDC(r.Context(), r.URL.Query().Get("cursor"), limit)
	return writeList(w, page, err, oidcView)
}

func (s *Server) handleDeleteOIDC(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.svc.DeleteOIDC(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// handleOIDCAuthURL starts a CLI sign-in: {redirect_uri, client_nonce}
// → the provider's authorization URL.
func (s *Server) handleOIDCAuthURL(w http.ResponseWriter, r *http.Request) error {
	o, err := s.body.Object(w, r)
	if err != nil {
		return err
	}
	if err := o.Only("redirect_uri", "client_nonce"); err != nil {
		return err
	}
	redirect, err := o.RequiredString("redirect_uri")
	if err != nil {
		return err
	}
	nonce, err := o.RequiredString("client_nonce")
	if err != nil {
		return err
	}
	u, err := s.svc.OIDCAuthURL(r.Context(), r.PathValue("name"), redirect, nonce)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.OIDCAuthURL{AuthURL: u})
	return nil
}

// handleOIDCCallback finishes a CLI sign-in: {state, code, client_nonce}
// → a token. A refused sign-in counts against the client address like a
// bad token.
func (s *Server) handleOIDCCallback(w http.ResponseWriter, r *http.Request) error {
	o, err := s.body.Object(w, r)
	if err != nil {
		return err
	}
	if err := o.Only("state", "code", "client_nonce"); err != nil {
		return err
	}
	var vals [3]string
	for i, name := range []string{"state", "code", "client_nonce"} {
		if vals[i], err = o.RequiredString(name); err != nil {
			return err
		}
	}
	login, err := s.svc.OIDCCallback(r.Context(), r.PathValue("name"), vals[0], vals[1], vals[2])
	if err != nil {
		return s.loginFailed(r, err)
	}
	writeJSON(w, http.StatusCreated, api.JWTLogin{ID: login.Token.ID, Token: login.Plaintext, Name: login.Token.Name, ExpiresAt: login.Token.ExpiresAt.UTC()})
	return nil
}

func oidcView(p envy.OIDCProvider) api.OIDCProvider {
	roles := make([]api.OIDCRole, 0, len(p.Roles))
	for _, r := range p.Roles {
		roles = append(roles, api.OIDCRole{Name: r.Name, Claim: r.Claim, Value: r.Value, Permissions: permissionViews(r.Permissions)})
	}
	return api.OIDCProvider{Name: p.Name, Issuer: p.Issuer, ClientID: p.ClientID, RedirectURIs: p.RedirectURIs, Scopes: p.Scopes,
		Roles: roles, SessionTTL: p.SessionTTL.String(), TrustEmail: p.TrustEmail, CreatedAt: p.CreatedAt.UTC(), CreatedBy: p.CreatedBy}
}
