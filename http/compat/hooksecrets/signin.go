package hooksecrets

import (
	"net/http"
	"strings"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/http/compat/internal/dialect"
)

// TokenLife is the life of an access token, Auth0's default for the
// Management API: 24 hours (expires_in 86400), never beyond the client
// secret's own expiry.
const TokenLife = 86400 * time.Second

// Codes of the token endpoint, answered in Auth0's OAuth envelope
// {"error","error_description"} (see envelope).
const (
	codeOAuthDenied      envy.Code = "hooksecrets.oauth.access_denied"
	codeOAuthInvalid     envy.Code = "hooksecrets.oauth.invalid_request"
	codeOAuthGrant       envy.Code = "hooksecrets.oauth.unsupported_grant_type"
	codeOAuthAudience    envy.Code = "hooksecrets.oauth.audience"
	codeOAuthRateLimited envy.Code = "hooksecrets.oauth.too_many_requests"
	codeOAuthServer      envy.Code = "hooksecrets.oauth.server_error"
)

// tokenJSON is Auth0's reply to a client-credentials grant.
type tokenJSON struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope"`
}

// signIn serves POST /oauth/token: grant_type client_credentials, the
// client id and secret in the body (JSON or a form) or in "Authorization:
// Basic", and the audience, which is the Management API's
// (https://{domain}/api/v2/) or absent. The secret is an envy token, the
// id its id or name; the reply is a new access token (see
// service.Service.SignIn).
func (h *handler) signIn(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if err := h.token(w, r); err != nil {
		h.Errors.Write(w, r, oauthError(err))
	}
}

func (h *handler) token(w http.ResponseWriter, r *http.Request) error {
	raw, err := h.Body.Bytes(w, r)
	if err != nil {
		return err
	}
	c := dialect.ReadCredentials(r, raw)
	switch {
	case c.GrantType == "":
		return &envy.Error{Code: codeOAuthInvalid, Message: "Missing required parameter: grant_type"}
	case c.GrantType != "client_credentials":
		return &envy.Error{Code: codeOAuthGrant, Message: "Unsupported grant type: " + truncate(c.GrantType)}
	case c.ClientID == "":
		return &envy.Error{Code: codeOAuthDenied, Message: "Unauthorized"}
	case c.Audience != "" && !strings.HasSuffix(strings.TrimSuffix(c.Audience, "/"), "/api/v2"):
		return &envy.Error{Code: codeOAuthAudience, Message: "Service not found: " + truncate(c.Audience)}
	}
	tok, plain, err := h.Server.SignIn(r, "auth0", c.ClientID, c.ClientSecret, TokenLife)
	if err != nil {
		return err
	}
	scope := "read:hooks"
	for _, g := range tok.Permissions {
		if envy.GrantAllows(g, envy.ActWrite) {
			scope = "read:hooks create:hooks update:hooks delete:hooks"
			break
		}
	}
	h.JSON(w, http.StatusOK, tokenJSON{AccessToken: plain, TokenType: "Bearer",
		ExpiresIn: int64(tok.ExpiresAt.Sub(tok.CreatedAt) / time.Second), Scope: scope})
	return nil
}

// truncate keeps what a client sent short in a reply.
func truncate(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}

// oauthError turns any refusal of the token endpoint into one of its own
// codes, so that it is answered in the OAuth envelope.
func oauthError(err error) error {
	e := envy.AsError(err)
	if e == nil {
		return &envy.Error{Code: codeOAuthServer}
	}
	switch e.Code {
	case codeOAuthDenied, codeOAuthInvalid, codeOAuthGrant, codeOAuthAudience:
		return e
	case envy.EUnauthenticated:
		return &envy.Error{Code: codeOAuthDenied, Message: "Unauthorized"}
	case envy.ERateLimited:
		return &envy.Error{Code: codeOAuthRateLimited, Message: "Too many requests", RetryAfter: e.RetryAfter}
	case envy.EBadRequest, envy.EInvalid, envy.ETooLarge, envy.EUnsupportedMedia:
		return &envy.Error{Code: codeOAuthInvalid, Message: "Invalid request"}
	}
	return &envy.Error{Code: codeOAuthServer}
}
