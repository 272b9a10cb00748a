package smarthooks

import (
	"net/http"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/http/compat/internal/dialect"
)

// TokenLife is the life of an access token, OneLogin's: 10 hours
// (expires_in 36000), never beyond the client secret's own expiry.
const TokenLife = 36000 * time.Second

// Codes of the token endpoint, which answers OneLogin's OAuth errors
// {statusCode,name,message} with names of its own (see envelope).
const (
	codeAuthFailure envy.Code = "smarthooks.auth_failure"
	codeBadGrant    envy.Code = "smarthooks.bad_grant"
)

// tokenJSON is OneLogin's reply to POST /auth/oauth2/v2/token.
type tokenJSON struct {
	AccessToken  string  `json:"access_token"`
	CreatedAt    string  `json:"created_at"`
	ExpiresIn    int64   `json:"expires_in"`
	RefreshToken *string `json:"refresh_token"`
	TokenType    string  `json:"token_type"`
	AccountID    int64   `json:"account_id"`
}

// signIn serves POST /auth/oauth2/v2/token: {"grant_type":
// "client_credentials"} with the client id and secret in "Authorization:
// Basic" or in the body; the secret is an envy token, the id its id or
// name. It answers a new access token (see service.Service.SignIn).
func (h *handler) signIn(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if err := h.token(w, r); err != nil {
		h.Errors.Write(w, r, tokenError(err))
	}
}

func (h *handler) token(w http.ResponseWriter, r *http.Request) error {
	raw, err := h.Body.Bytes(w, r)
	if err != nil {
		return err
	}
	c := dialect.ReadCredentials(r, raw)
	if c.GrantType != "client_credentials" {
		return &envy.Error{Code: codeBadGrant}
	}
	tok, plain, err := h.Server.SignIn(r, "onelogin", c.ClientID, c.ClientSecret, TokenLife)
	if err != nil {
		return err
	}
	h.JSON(w, http.StatusOK, tokenJSON{AccessToken: plain, CreatedAt: tok.CreatedAt.UTC().Format(timeFormat),
		ExpiresIn: int64(tok.ExpiresAt.Sub(tok.CreatedAt) / time.Second), TokenType: "bearer"})
	return nil
}

// tokenError words a refused sign-in as OneLogin's token endpoint does:
// every failed authentication is the same 401.
func tokenError(err error) error {
	if envy.ErrorCode(err) == envy.EUnauthenticated {
		return &envy.Error{Code: codeAuthFailure}
	}
	return err
}
