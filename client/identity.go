package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/envy-dev/envy/api"
)

// JWTTrust is a JWT trust (workload identity); JWTLogin is a login's reply.
type (
	JWTTrust = api.JWTTrust
	JWTLogin = api.JWTLogin
)

// JWTTrustInput is the body of PutJWTTrust (see docs/identity.md).
type JWTTrustInput struct {
	Issuer       string            `json:"issuer"`
	Audience     string            `json:"audience"`
	JWKSURL      string            `json:"jwks_url,omitempty"`
	BoundClaims  map[string]string `json:"bound_claims,omitempty"`
	SubjectClaim string            `json:"subject_claim,omitempty"`
	Permissions  []Permission      `json:"permissions"`
	TTL          string            `json:"ttl,omitempty"`
	MaxAge       string            `json:"max_age,omitempty"`
}

// SetToken makes the Client authenticate with token from now on, such as
// a token renewed by a JWT login; requests under way keep the old one.
func (c *Client) SetToken(token string) { c.renewed.Store(&token) }

// bearer is the token requests carry.
func (c *Client) bearer() string {
	if t := c.renewed.Load(); t != nil {
		return *t
	}
	return c.token
}

// PutJWTTrust defines or replaces a JWT trust (admin).
func (c *Client) PutJWTTrust(ctx context.Context, name string, in JWTTrustInput) (*JWTTrust, error) {
	var out JWTTrust
	if _, err := c.call(ctx, request{method: http.MethodPut, path: "/v1/auth/jwt/" + url.PathEscape(name), body: in}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetJWTTrust returns a JWT trust.
func (c *Client) GetJWTTrust(ctx context.Context, name string) (*JWTTrust, error) {
	var out JWTTrust
	if _, err := c.call(ctx, request{method: http.MethodGet, path: "/v1/auth/jwt/" + url.PathEscape(name)}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListJWTTrusts returns a page of JWT trusts (admin).
func (c *Client) ListJWTTrusts(ctx context.Context, cursor string, limit int) (*Page[JWTTrust], error) {
	q := url.Values{}
	setNonEmpty(q, "cursor", cursor)
	setLimit(q, limit)
	var out Page[JWTTrust]
	if _, err := c.call(ctx, request{method: http.MethodGet, path: "/v1/auth/jwt", query: q}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteJWTTrust deletes a JWT trust and revokes the tokens its logins
// minted.
func (c *Client) DeleteJWTTrust(ctx context.Context, name string) error {
	_, err := c.call(ctx, request{method: http.MethodDelete, path: "/v1/auth/jwt/" + url.PathEscape(name)}, nil)
	return err
}

// LoginJWT trades a JWT that trust name accepts for a short-lived token.
// It needs no token of its own.
func (c *Client) LoginJWT(ctx context.Context, name, jwt string) (*JWTLogin, error) {
	var out JWTLogin
	if _, err := c.call(ctx, request{method: http.MethodPost, path: "/v1/auth/jwt/" + url.PathEscape(name) + "/login",
		body: map[string]string{"jwt": jwt}}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// OIDCAuthURL starts a sign-in through OIDC provider name: it returns the
// provider's authorization URL, which sends the browser back to
// redirectURI (a loopback listener of the caller's) with a code and a
// state that only the holder of clientNonce can finish. It needs no token.
func (c *Client) OIDCAuthURL(ctx context.Context, name, redirectURI, clientNonce string) (string, error) {
	var out api.OIDCAuthURL
	body := map[string]string{"redirect_uri": redirectURI, "client_nonce": clientNonce}
	if _, err := c.call(ctx, request{method: http.MethodPost, path: "/v1/auth/oidc/" + url.PathEscape(name) + "/auth_url", body: body}, &out); err != nil {
		return "", err
	}
	return out.AuthURL, nil
}

// OIDCCallback finishes a sign-in that OIDCAuthURL started, with the code
// and state the provider sent back, for a token named after the person.
func (c *Client) OIDCCallback(ctx context.Context, name, state, code, clientNonce string) (*JWTLogin, error) {
	var out JWTLogin
	body := map[string]string{"state": state, "code": code, "client_nonce": clientNonce}
	if _, err := c.call(ctx, request{method: http.MethodPost, path: "/v1/auth/oidc/" + url.PathEscape(name) + "/callback", body: body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
