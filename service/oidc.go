package service

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/identity"
)

// People sign in through an OpenID Connect provider (docs/identity.md):
// the authorization-code flow with PKCE, for the dashboard (a redirect to
// /ui/oidc/{name}/callback) and for `envy login --oidc` (a loopback
// redirect to the CLI, which hands the code to the server). The server
// holds the client secret, so the code is always exchanged here.
//
// A sign-in's state is its own record: sealed with the keyring (so any
// server sharing the store can finish it), it holds the PKCE verifier,
// the nonce, the redirect URI, an expiry and the hash of a binding the
// starter keeps (the browser's cookie, the CLI's client nonce), so that a
// code delivered to another browser can't be finished there.

// oidcStateLife bounds how long a sign-in may take at the provider.
const oidcStateLife = 10 * time.Minute

// maxOIDCSessionTTL bounds a sign-in's token life.
const maxOIDCSessionTTL = 7 * 24 * time.Hour

// oidcAlgorithms are the ID token signatures accepted (never none or HMAC).
var oidcAlgorithms = []string{oidc.RS256, oidc.ES256, oidc.EdDSA}

// oidcProviders caches the providers' discovery documents (go-oidc's
// Provider, whose key set refetches on an unknown key id), by issuer.
type oidcProviders struct {
	mu     sync.Mutex
	m      map[string]oidcDiscovered
	client *http.Client
}

type oidcDiscovered struct {
	p  *oidc.Provider
	at time.Time
}

func (c *oidcProviders) httpClient() *http.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client == nil {
		c.client = &http.Client{Timeout: 10 * time.Second, Transport: httpsOnly{},
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) >= 5 {
					return errors.New("an identity provider redirected too often")
				}
				return nil
			}}
	}
	return c.client
}

// httpsOnly refuses every request to an identity provider that is not
// https (plain http to a loopback address only), whatever named its URL:
// the issuer, a redirect, or the discovery document, whose token and keys
// endpoints the provider's definer controls. Checked on the issuer alone,
// a discovery naming http://internal-host/token made the server post the
// code, the PKCE verifier and the client secret there, in clear.
type httpsOnly struct{}

func (t httpsOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := identity.CheckURL(req.URL.String()); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errors.New("an identity provider is reached over https only")
	}
	return http.DefaultTransport.RoundTrip(req) // as a client without a Transport would, at the time of the request
}

// discover returns the issuer's provider, fetched at most once an hour.
func (c *oidcProviders) discover(ctx context.Context, issuer string, now time.Time) (*oidc.Provider, context.Context, error) {
	ctx = oidc.ClientContext(ctx, c.httpClient())
	c.mu.Lock()
	d, ok := c.m[issuer]
	c.mu.Unlock()
	if ok && now.Sub(d.at) < identity.MaxKeyAge {
		return d.p, ctx, nil
	}
	p, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		return nil, ctx, err
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]oidcDiscovered{}
	}
	c.m[issuer] = oidcDiscovered{p: p, at: now}
	c.mu.Unlock()
	return p, ctx, nil
}

func (s *Service) oidcStore() (envy.OIDCStore, error) {
	var st envy.Store = s.store
	if s.cache != nil {
		st = s.cache.Unwrap()
	}
	if os, ok := st.(envy.OIDCStore); ok {
		return os, nil
	}
	return nil, envy.Errorf(envy.EInternal, "the store keeps no OIDC providers")
}

// PutOIDC creates or replaces the OIDC provider name. Only a holder of
// admin may, and its roles can't grant more than the caller holds. An
// empty client secret keeps the one the provider has.
func (s *Service) PutOIDC(ctx context.Context, name string, in envy.OIDCInput) (envy.OIDCProvider, bool, error) {
	caller := CallerFrom(ctx).Token
	var fields []envy.FieldError
	if f := validDefName(name, "an OIDC provider"); f != nil {
		fields = append(fields, *f)
	}
	if identity.CheckURL(in.Issuer) != nil || len(in.Issuer) > 2000 {
		fields = append(fields, envy.Field("body.issuer", "invalid_url", "issuer must be an https URL (plain http only to a loopback address)"))
	}
	if in.ClientID == "" || len(in.ClientID) > 500 || !envy.Printable(in.ClientID) {
		fields = append(fields, envy.Field("body.client_id", "invalid_client_id", "client_id must be 1 to 500 printable characters"))
	}
	if len(in.ClientSecret.Reveal()) > 4096 {
		fields = append(fields, envy.Field("body.client_secret", "too_long", "client_secret is at most 4096 bytes"))
	}
	if len(in.RedirectURIs) == 0 || len(in.RedirectURIs) > 16 {
		fields = append(fields, envy.Field("body.redirect_uris", "missing", "1 to 16 redirect URIs are required: the dashboard's https://{host}/ui/oidc/%s/callback and, for envy login --oidc, http://127.0.0.1/callback", name))
	}
	for i, u := range in.RedirectURIs {
		if p, err := url.Parse(u); identity.CheckURL(u) != nil || len(u) > 2000 || err != nil || p.Fragment != "" {
			fields = append(fields, envy.Field(fmt.Sprintf("body.redirect_uris[%d]", i), "invalid_url", "a redirect URI is an https URL without fragment (plain http only to a loopback address)"))
		}
	}
	if len(in.Scopes) == 0 {
		in.Scopes = []string{oidc.ScopeOpenID, "email", "profile"}
	} else if !slices.Contains(in.Scopes, oidc.ScopeOpenID) {
		in.Scopes = append([]string{oidc.ScopeOpenID}, in.Scopes...)
	}
	for i, sc := range in.Scopes {
		if sc == "" || len(sc) > 100 || strings.ContainsAny(sc, " \"\\") || !envy.Printable(sc) || len(in.Scopes) > 32 {
			fields = append(fields, envy.Field(fmt.Sprintf("body.scopes[%d]", i), "invalid_scope", "a scope is 1 to 100 printable characters without space or quote, at most 32 scopes"))
		}
	}
	if len(in.Roles) == 0 || len(in.Roles) > 64 {
		fields = append(fields, envy.Field("body.roles", "missing", "1 to 64 roles are required: each maps a claim to permissions"))
	}
	var all []envy.Grant
	for i, r := range in.Roles {
		loc := fmt.Sprintf("body.roles[%d]", i)
		if r.Claim == "" || len(r.Claim) > 100 || !envy.Printable(r.Claim) {
			fields = append(fields, envy.Field(loc+".claim", "invalid_claim", "claim must be 1 to 100 printable characters (a dotted path reaches a nested claim)"))
		}
		if r.Value == "" || len(r.Value) > 500 || !envy.Printable(r.Value) {
			fields = append(fields, envy.Field(loc+".value", "invalid_value", "value must be 1 to 500 printable characters"))
		}
		if len(r.Name) > 100 || !envy.Printable(r.Name) {
			fields = append(fields, envy.Field(loc+".name", "invalid_name", "name is at most 100 printable characters"))
		}
		for _, f := range validGrants(r.Permissions) {
			f.Loc = loc + strings.TrimPrefix(f.Loc, "body")
			fields = append(fields, f)
		}
		all = append(all, r.Permissions...)
	}
	ttl := envy.DefaultOIDCSessionTTL
	if in.SessionTTL != "" {
		d, err := time.ParseDuration(in.SessionTTL)
		if err != nil || d < time.Minute || d > maxOIDCSessionTTL {
			fields = append(fields, envy.Field("body.session_ttl", "invalid_duration", "session_ttl must be a duration from 1m to 168h, such as 8h"))
		}
		ttl = d
	}
	if len(fields) > 0 {
		return envy.OIDCProvider{}, false, envy.Invalid(fields...)
	}
	if caller == nil {
		return envy.OIDCProvider{}, false, envy.Errorf(envy.EUnauthenticated, "authentication required")
	}
	if err := s.bounded(ctx, caller, all, envy.AuditOIDCPut, "an OIDC provider"); err != nil {
		return envy.OIDCProvider{}, false, err
	}
	os, err := s.oidcStore()
	if err != nil {
		return envy.OIDCProvider{}, false, err
	}
	old, err := os.GetOIDC(ctx, name)
	switch {
	case err == nil && old.CreatorID != caller.ID && !envy.IsGlobalAdmin(caller):
		s.Refused(ctx, envy.AuditOIDCPut, "", envy.OutcomeForbidden)
		return envy.OIDCProvider{}, false, envy.Errorf(envy.EForbidden, "OIDC provider %s was defined by another token; only it or a global admin may replace it", name)
	case err != nil && envy.ErrorCode(err) != envy.ENotFound:
		return envy.OIDCProvider{}, false, err
	}
	p := envy.OIDCProvider{Name: name, Issuer: in.Issuer, ClientID: in.ClientID, RedirectURIs: in.RedirectURIs, Scopes: in.Scopes,
		Roles: in.Roles, SessionTTL: ttl, TrustEmail: in.TrustEmail, CreatedAt: s.now().UTC(), CreatedBy: caller.Name, CreatorID: caller.ID}
	switch secret := in.ClientSecret.Reveal(); {
	case secret != "":
		if p.SealedSecret, err = s.keys.Seal([]byte(secret), envy.OIDCSecretAD(name)); err != nil {
			return envy.OIDCProvider{}, false, envy.Errorf(envy.EInternal, "cannot seal the client secret")
		}
	case err == nil:
		p.SealedSecret = old.SealedSecret
	default:
		return envy.OIDCProvider{}, false, envy.Invalid(envy.Field("body.client_secret", "missing", "client_secret is required for a new provider"))
	}
	e := s.entry(ctx, envy.AuditOIDCPut, "", []string{name}, envy.OutcomeOK)
	rec, err := s.toStreams(1)
	if err != nil {
		return envy.OIDCProvider{}, false, err
	}
	created, err := os.PutOIDC(ctx, p, []envy.AuditEntry{e})
	if rec.done(err, 0, e); err != nil {
		return envy.OIDCProvider{}, false, err
	}
	p.SealedSecret = nil
	return p, created, nil
}

// oidcFor returns provider name when the caller is a global admin or
// defined it; to anyone else it does not exist (403, as for a trust).
func (s *Service) oidcFor(ctx context.Context, name string, action envy.AuditAction) (envy.OIDCProvider, envy.OIDCStore, error) {
	os, err := s.oidcStore()
	if err != nil {
		return envy.OIDCProvider{}, nil, err
	}
	p, err := definedBy(s, ctx, name, "an OIDC provider", action, os.GetOIDC, func(p envy.OIDCProvider) string { return p.CreatorID })
	p.SealedSecret = nil
	return p, os, err
}

// GetOIDC returns an OIDC provider, without its client secret (global
// admin, or the token that defined it).
func (s *Service) GetOIDC(ctx context.Context, name string) (envy.OIDCProvider, error) {
	p, _, err := s.oidcFor(ctx, name, envy.AuditOIDCGet)
	return p, err
}

// ListOIDC lists the OIDC providers by name, without their secrets
// (global admin).
func (s *Service) ListOIDC(ctx context.Context, cursor string, limit int) (envy.Page[envy.OIDCProvider], error) {
	limit, err := limitOf("query.limit", limit)
	if err != nil {
		return envy.Page[envy.OIDCProvider]{}, err
	}
	if err := s.requireGlobalAdmin(ctx, envy.AuditOIDCList); err != nil {
		return envy.Page[envy.OIDCProvider]{}, err
	}
	os, err := s.oidcStore()
	if err != nil {
		return envy.Page[envy.OIDCProvider]{}, err
	}
	page, err := fetchPage(limit, func(n int) ([]envy.OIDCProvider, error) {
		return os.ListOIDC(ctx, cursor, n)
	}, func(p envy.OIDCProvider) string { return p.Name })
	for i := range page.Items {
		page.Items[i].SealedSecret = nil
	}
	return page, err
}

// OIDCNames lists the providers' names, for the dashboard's sign-in page
// (which shows "Sign in with {name}" to anyone).
func (s *Service) OIDCNames(ctx context.Context) ([]string, error) {
	os, err := s.oidcStore()
	if err != nil {
		return nil, err
	}
	ps, err := os.ListOIDC(ctx, "", 20)
	var names []string
	for _, p := range ps {
		names = append(names, p.Name)
	}
	return names, err
}

// DeleteOIDC deletes an OIDC provider and revokes every token its
// sign-ins minted, which ends their dashboard sessions (global admin, or
// the token that defined it). It returns how many tokens it revoked.
func (s *Service) DeleteOIDC(ctx context.Context, name string) (int, error) {
	_, os, err := s.oidcFor(ctx, name, envy.AuditOIDCDelete)
	if err != nil {
		return 0, err
	}
	e := s.entry(ctx, envy.AuditOIDCDelete, "", []string{name}, envy.OutcomeDeleted)
	rec, err := s.toStreams(1)
	if err != nil {
		return 0, err
	}
	_, err = os.DeleteOIDC(ctx, name, []envy.AuditEntry{e})
	if rec.done(err, 0, e); err != nil {
		return 0, err
	}
	return s.revokeLineage(ctx, envy.OIDCTrustPrefix+name, "OIDC provider "+name+" deleted")
}

// oidcState is a sign-in's state, sealed into the state parameter.
type oidcState struct {
	Provider string `json:"p"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Redirect string `json:"r"`
	Binding  []byte `json:"b"` // SHA-256 of what the starter keeps
	Expires  int64  `json:"e"`
}

func oidcStateAD(name string) []byte { return []byte("oidc-state:" + name) }

// DashboardRedirect returns the redirect URI of provider name that the
// dashboard uses: the first of its redirect URIs whose path is
// /ui/oidc/{name}/callback.
func (s *Service) DashboardRedirect(ctx context.Context, name string) (string, error) {
	p, err := s.signInProvider(ctx, name)
	if err != nil {
		return "", err
	}
	for _, u := range p.RedirectURIs {
		if pu, err := url.Parse(u); err == nil && pu.Path == "/ui/oidc/"+name+"/callback" {
			return u, nil
		}
	}
	return "", envy.Errorf(envy.EInvalid, "OIDC provider %s has no redirect URI for the dashboard (…/ui/oidc/%s/callback)", name, name)
}

func (s *Service) signInProvider(ctx context.Context, name string) (envy.OIDCProvider, error) {
	if validDefName(name, "an OIDC provider") != nil {
		return envy.OIDCProvider{}, envy.Errorf(envy.ENotFound, "no OIDC provider %q", name)
	}
	os, err := s.oidcStore()
	if err != nil {
		return envy.OIDCProvider{}, err
	}
	p, err := os.GetOIDC(ctx, name)
	if envy.ErrorCode(err) == envy.ENotFound {
		return envy.OIDCProvider{}, envy.Errorf(envy.ENotFound, "no OIDC provider %q", name)
	}
	return p, err
}

// redirectAllowed: uri is one of p's redirect URIs, or a loopback http
// URI that differs from one only in its port (RFC 8252, 7.3).
func redirectAllowed(p envy.OIDCProvider, uri string) bool {
	if slices.Contains(p.RedirectURIs, uri) {
		return true
	}
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "http" || identity.CheckURL(uri) != nil || u.User != nil || u.Fragment != "" {
		return false
	}
	for _, r := range p.RedirectURIs {
		ru, err := url.Parse(r)
		if err == nil && ru.Scheme == "http" && ru.Hostname() == u.Hostname() && ru.Path == u.Path && ru.RawQuery == u.RawQuery {
			return true
		}
	}
	return false
}

// OIDCAuthURL starts a sign-in with provider name: it returns the
// provider's authorization URL, which sends the person back to
// redirectURI (one of the provider's) with a code and a state that only
// the holder of binding can finish.
func (s *Service) OIDCAuthURL(ctx context.Context, name, redirectURI, binding string) (string, error) {
	p, err := s.signInProvider(ctx, name)
	if err != nil {
		return "", err
	}
	if !redirectAllowed(p, redirectURI) {
		return "", envy.Invalid(envy.Field("body.redirect_uri", "not_allowed", "redirect_uri is not one of OIDC provider %s's redirect URIs", name))
	}
	if len(binding) < 16 {
		return "", envy.Invalid(envy.Field("body.client_nonce", "too_short", "client_nonce must be at least 16 characters"))
	}
	prov, _, err := s.oidcProviders.discover(ctx, p.Issuer, s.now())
	if err != nil {
		s.log.Warn("cannot reach an OIDC provider", "provider", name, "err", err)
		return "", envy.Errorf(envy.EUnavailable, "OIDC provider %s can't be reached; try again later", name)
	}
	bh := sha256.Sum256([]byte(binding))
	st := oidcState{Provider: name, Nonce: rand.Text(), Verifier: oauth2.GenerateVerifier(), Redirect: redirectURI, Binding: bh[:],
		Expires: s.now().Add(oidcStateLife).Unix()}
	b, _ := json.Marshal(st)
	sealed, err := s.keys.Seal(b, oidcStateAD(name))
	if err != nil {
		return "", envy.Errorf(envy.EInternal, "cannot seal a sign-in's state")
	}
	cfg := oauth2.Config{ClientID: p.ClientID, Endpoint: prov.Endpoint(), RedirectURL: redirectURI, Scopes: p.Scopes}
	return cfg.AuthCodeURL(base64.RawURLEncoding.EncodeToString(sealed), oauth2.S256ChallengeOption(st.Verifier), oidc.Nonce(st.Nonce)), nil
}

// errSignInStale is the answer to a state that is not this sign-in's.
func errSignInStale() error {
	return envy.Errorf(envy.EUnauthenticated, "this sign-in expired or was started elsewhere; sign in again")
}

// OIDCCallback finishes a sign-in with provider name: it checks state
// (this provider's, not expired, started by the holder of binding),
// exchanges code with the PKCE verifier, verifies the ID token (signature,
// issuer, audience, expiry, nonce) and mints a token holding the grants
// of every role whose claim matches, named after the person. A person no
// role matches is refused (EForbidden, saying so). The audit log records
// every refusal's reason, never a code or a token.
func (s *Service) OIDCCallback(ctx context.Context, name, state, code, binding string) (envy.OIDCLogin, error) {
	refuse := func(reason string, err error) (envy.OIDCLogin, error) {
		e := s.entry(ctx, envy.AuditOIDCLogin, "", []string{name, "refused: " + reason}, envy.OutcomeUnauthenticated)
		if envy.ErrorCode(err) == envy.EForbidden {
			e.Status = envy.OutcomeForbidden
		}
		e.Actor = envy.OIDCTrustPrefix + name
		if s.loginRefusals.admit(e.Client, e.At) {
			s.enqueue(auditItem{e: e})
		} else {
			s.Refused(ctx, envy.AuditOIDCLogin, "", e.Status)
		}
		return envy.OIDCLogin{}, err
	}
	p, err := s.signInProvider(ctx, name)
	if err != nil {
		return envy.OIDCLogin{}, err
	}
	name = p.Name
	raw, err := base64.RawURLEncoding.DecodeString(state)
	if err != nil || len(state) > 4096 {
		return refuse("malformed state", errSignInStale())
	}
	opened, err := s.keys.Open(raw, oidcStateAD(name))
	var st oidcState
	if err != nil || json.Unmarshal(opened, &st) != nil || st.Provider != name {
		return refuse("state not sealed by envy for this provider", errSignInStale())
	}
	if s.now().Unix() > st.Expires {
		return refuse("state expired", errSignInStale())
	}
	bh := sha256.Sum256([]byte(binding))
	if subtle.ConstantTimeCompare(bh[:], st.Binding) != 1 {
		return refuse("state started by another browser or client", errSignInStale())
	}
	if code == "" || len(code) > 4096 {
		return refuse("no code", errSignInStale())
	}
	secret, err := s.keys.Open(p.SealedSecret, envy.OIDCSecretAD(name))
	if err != nil {
		s.log.Error("cannot open an OIDC provider's client secret", "provider", name, "err", err)
		return envy.OIDCLogin{}, envy.Errorf(envy.EInternal, "cannot open OIDC provider %s's client secret", name)
	}
	prov, pctx, err := s.oidcProviders.discover(ctx, p.Issuer, s.now())
	if err != nil {
		return refuse("provider unreachable", envy.Errorf(envy.EUnavailable, "OIDC provider %s can't be reached; try again later", name))
	}
	cfg := oauth2.Config{ClientID: p.ClientID, ClientSecret: string(secret), Endpoint: prov.Endpoint(), RedirectURL: st.Redirect, Scopes: p.Scopes}
	unverified := envy.Errorf(envy.EUnauthenticated, "the identity provider's answer could not be verified; sign in again")
	tok, err := cfg.Exchange(pctx, code, oauth2.VerifierOption(st.Verifier))
	if err != nil {
		return refuse("code exchange failed", unverified)
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		return refuse("no ID token", unverified)
	}
	idt, err := prov.VerifierContext(pctx, &oidc.Config{ClientID: p.ClientID, SupportedSigningAlgs: oidcAlgorithms, Now: s.now}).Verify(pctx, rawID)
	if err != nil {
		return refuse("ID token: "+idTokenReason(err), unverified)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(st.Nonce)) != 1 {
		return refuse("ID token: nonce did not match", unverified)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return refuse("ID token: malformed claims", unverified)
	}
	emailNote := ""
	if v, said := claims["email_verified"]; v != true && v != "true" && (said || !p.TrustEmail) {
		// An email the provider has not verified is anyone's to claim
		// (a provider that lets people register, or one whose users set
		// their own address): it names no one, and no role matches on
		// it. Some providers send the claim as a string; one that sends
		// none is trusted only when the provider is defined so
		// (trust_email).
		if e, _ := claims["email"].(string); e != "" {
			emailNote = " (its email is left out: email_verified is not true"
			if !said {
				emailNote += "; trust_email trusts a provider that verifies every address and does not say so"
			}
			emailNote += ")"
		}
		delete(claims, "email")
	}
	email, _ := claims["email"].(string)
	if !validSubject(idt.Subject) || email != "" && (!validSubject(email) || strings.ContainsAny(email, " <>")) {
		return refuse("ID token: subject or email invalid", unverified)
	}
	who := idt.Subject
	if email != "" {
		who += " <" + email + ">"
	}
	var grants []envy.Grant
	for _, r := range p.Roles {
		if identity.ClaimHolds(claims, r.Claim, r.Value) {
			grants = append(grants, r.Permissions...)
		}
	}
	if len(grants) == 0 {
		return refuse("no role matches "+who+emailNote, envy.Errorf(envy.EForbidden,
			"you signed in as %s%s, but no role of OIDC provider %s matches you, so envy gives you no access: ask an admin to add a role for you", who, emailNote, name))
	}
	now := s.now()
	d, why, err := s.definer(ctx, p.CreatorID, grants, now)
	if err != nil {
		return envy.OIDCLogin{}, err
	}
	if why != "" {
		return refuse("provider "+name+": "+why, errDefinerGone(name))
	}
	exp := now.Add(p.SessionTTL)
	plain := envy.NewTokenValue()
	id := newID()
	t := envy.Token{ID: id, Name: envy.OIDCTrustPrefix + name + ":" + who, Owner: envy.OIDCTrustPrefix + id, Hash: envy.HashToken(plain),
		Permissions: grants, CreatedAt: now, CreatedBy: envy.OIDCTrustPrefix + name, ExpiresAt: &exp,
		Trust: envy.OIDCTrustPrefix + name, Subject: idt.Subject}
	childOf(&t, d)
	e := s.entry(ctx, envy.AuditOIDCLogin, "", []string{name, p.Issuer, idt.Subject}, envy.OutcomeCreated)
	e.Actor, e.TokenID = t.Name, t.ID
	rec, err := s.toStreams(1)
	if err != nil {
		return envy.OIDCLogin{}, err
	}
	_, err = s.store.CreateToken(ctx, t, false, []envy.AuditEntry{e})
	if rec.done(err, 0, e); err != nil {
		if d != nil && envy.ErrorCode(err) == envy.EUnauthenticated {
			return refuse("provider "+name+": the token that defined it is revoked or expired", errDefinerGone(name))
		}
		return envy.OIDCLogin{}, err
	}
	// The provider deleted meanwhile: its deletion may have listed its
	// tokens before this one existed, so this sign-in revokes its own.
	if err := s.revokeIfGone(ctx, id, "OIDC provider "+name+" deleted", func() error {
		os, err := s.oidcStore()
		if err == nil {
			_, err = os.GetOIDC(ctx, name)
		}
		return err
	}); err != nil {
		if envy.ErrorCode(err) == envy.ENotFound {
			return refuse("provider deleted during the sign-in", errSignInStale())
		}
		return envy.OIDCLogin{}, err
	}
	return envy.OIDCLogin{Token: t, Plaintext: plain, Email: email}, nil
}

// idTokenReason words go-oidc's refusal of an ID token for the audit log.
func idTokenReason(err error) string {
	var exp *oidc.TokenExpiredError
	switch msg := err.Error(); {
	case errors.As(err, &exp):
		return "expired"
	case strings.Contains(msg, "issuer"):
		return "wrong issuer"
	case strings.Contains(msg, "audience"):
		return "wrong audience"
	case strings.Contains(msg, "signature"), strings.Contains(msg, "signing"):
		return "bad signature"
	default:
		return "invalid"
	}
}

// ResealOIDCSecrets seals every OIDC provider's client secret again under
// the keyring's newest data key, so that a reseal (crypto.Keyring.Reseal),
// which retires the older data keys once no value needs them, leaves
// every secret openable. A reseal runs it first (ResealSecrets). Each
// secret is replaced only where it is still the one read
// (ReplaceOIDCSecret): a provider deleted meanwhile stays deleted, and
// one put meanwhile keeps what it was put with (if that is still sealed
// under an older key, the retirement refuses and the reseal is run
// again). It returns how many it sealed again.
func (s *Service) ResealOIDCSecrets(ctx context.Context) (int, error) {
	os, err := s.oidcStore()
	if err != nil {
		return 0, nil // a store without providers has no secrets
	}
	n, after := 0, ""
	for {
		ps, err := os.ListOIDC(ctx, after, 100)
		if err != nil || len(ps) == 0 {
			return n, err
		}
		for _, p := range ps {
			after = p.Name
			if len(p.SealedSecret) == 0 {
				continue
			}
			plain, err := s.keys.Open(p.SealedSecret, envy.OIDCSecretAD(p.Name))
			if err != nil {
				return n, fmt.Errorf("open OIDC provider %s's client secret: %w", p.Name, err)
			}
			resealed, err := s.keys.Seal(plain, envy.OIDCSecretAD(p.Name))
			clear(plain)
			if err != nil {
				return n, fmt.Errorf("seal OIDC provider %s's client secret: %w", p.Name, err)
			}
			ok, err := os.ReplaceOIDCSecret(ctx, p.Name, p.SealedSecret, resealed)
			if err != nil {
				return n, err
			}
			if ok {
				n++
			}
		}
	}
}

// ResealSecrets seals every secret the store keeps besides the values
// again under the keyring's newest data key: the OIDC providers' client
// secrets (ResealOIDCSecrets) and the webhooks' signing secrets
// (ResealWebhookSecrets). A reseal (`envy keys rotate --reseal`) runs it
// before it reseals the values and retires the older data keys, which it
// refuses while one of these is still sealed under them. It returns how
// many it sealed again.
func (s *Service) ResealSecrets(ctx context.Context) (int, error) {
	n, err := s.ResealOIDCSecrets(ctx)
	if err != nil {
		return n, err
	}
	m, err := s.ResealWebhookSecrets(ctx)
	return n + m, err
}

// errDefinerGone is a sign-in's answer when the provider's definer may no
// longer mint (Service.definer).
func errDefinerGone(name string) error {
	return envy.Errorf(envy.EForbidden, "OIDC provider %s can't sign anyone in now: the token that defined it is no longer live or no longer holds its roles' grants; ask an admin to define it again", name)
}
