package envy

import (
	"context"
	"time"
)

// OIDCProvider lets people sign in to the dashboard and the CLI through
// an OpenID Connect provider (authorization-code flow with PKCE): the
// person gets a token that holds the grants of every role whose claim
// matches (see docs/identity.md).
type OIDCProvider struct {
	Name     string `json:"name"`
	Issuer   string `json:"issuer"`
	ClientID string `json:"client_id"`
	// SealedSecret is the client secret, sealed under OIDCSecretAD(Name):
	// it is never shown back.
	SealedSecret []byte `json:"sealed_secret,omitempty"`
	// RedirectURIs are where the provider may send the browser back: the
	// dashboard's /ui/oidc/{name}/callback, and for the CLI a loopback
	// URL whose port is ignored (RFC 8252).
	RedirectURIs []string   `json:"redirect_uris"`
	Scopes       []string   `json:"scopes"`
	Roles        []OIDCRole `json:"roles"`
	// SessionTTL is the life of a sign-in's token.
	SessionTTL time.Duration `json:"session_ttl"`
	// TrustEmail takes an ID token's email as verified when it has no
	// email_verified claim, for a provider that verifies every address
	// and does not say so. Without it such an email names no one and no
	// role matches on it; email_verified false is never trusted.
	TrustEmail bool      `json:"trust_email,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	CreatedBy  string    `json:"created_by"`
	CreatorID  string    `json:"creator_id"`
}

// OIDCRole maps a claim of the ID token to grants: it matches when the
// claim (a dotted path reaches a nested one) is a string equal to Value,
// or a list that holds it; Value may be a glob with '*'.
type OIDCRole struct {
	Name        string  `json:"name"`
	Claim       string  `json:"claim"`
	Value       string  `json:"value"`
	Permissions []Grant `json:"permissions"`
}

// DefaultOIDCSessionTTL is a sign-in's token life when none is set.
const DefaultOIDCSessionTTL = 8 * time.Hour

// OIDCTrustPrefix marks the tokens a sign-in minted (Token.Trust is
// "oidc:{provider}"): no JWT trust's name holds ':', so no trust's
// deletion reaches them, and deleting the provider finds them.
const OIDCTrustPrefix = "oidc:"

// OIDCSecretAD is the additional data of a provider's sealed client secret.
func OIDCSecretAD(name string) []byte { return []byte("oidc-client-secret:" + name) }

// The audit actions of OIDC providers and sign-ins.
const (
	AuditOIDCPut    AuditAction = "oidc.put"
	AuditOIDCGet    AuditAction = "oidc.get"
	AuditOIDCList   AuditAction = "oidc.list"
	AuditOIDCDelete AuditAction = "oidc.delete"
	AuditOIDCLogin  AuditAction = "oidc.login"
)

// OIDCStore is the optional capability of a Store that keeps OIDC
// providers (both stores have it). Their sign-ins' tokens are found by
// TrustStore.TrustTokens(OIDCTrustPrefix + name).
type OIDCStore interface {
	// PutOIDC creates or replaces a provider and tells whether it created it.
	PutOIDC(ctx context.Context, p OIDCProvider, audit []AuditEntry) (created bool, err error)
	// GetOIDC returns a provider; ENotFound when there is none of its name.
	GetOIDC(ctx context.Context, name string) (OIDCProvider, error)
	// ListOIDC returns the providers by name, those after the cursor.
	ListOIDC(ctx context.Context, after string, limit int) ([]OIDCProvider, error)
	// DeleteOIDC deletes a provider; existed is false (no error) when
	// there was none.
	DeleteOIDC(ctx context.Context, name string, audit []AuditEntry) (existed bool, err error)
	// ReplaceOIDCSecret puts replacement in place of the provider's
	// sealed client secret if the provider still exists and its sealed
	// secret is still sealed (a provider deleted or given another secret
	// meanwhile is left alone: replaced is false), and changes nothing
	// else. It is how a reseal (service.ResealOIDCSecrets) seals the
	// secret again under the newest data key.
	ReplaceOIDCSecret(ctx context.Context, name string, sealed, replacement []byte) (replaced bool, err error)
}

// OIDCInput defines an OIDC provider (PUT /v1/auth/oidc/{name}).
// ClientSecret is kept when empty and the provider exists.
type OIDCInput struct {
	Issuer, ClientID string
	ClientSecret     Sensitive
	RedirectURIs     []string
	Scopes           []string
	Roles            []OIDCRole
	SessionTTL       string
	TrustEmail       bool
}

// OIDCLogin is what a sign-in answers: the minted token, shown this once,
// and the person's identity as the provider gave it.
type OIDCLogin struct {
	Token     Token
	Plaintext string
	Email     string
}
