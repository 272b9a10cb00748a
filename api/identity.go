package api

import "time"

// JWTTrust is a JWT trust (workload identity): a workload presenting a
// JWT that it accepts gets a token with its permissions for TTL.
type JWTTrust struct {
	Name         string            `json:"name"`
	Issuer       string            `json:"issuer"`
	Audience     string            `json:"audience"`
	JWKSURL      string            `json:"jwks_url,omitempty"`
	BoundClaims  map[string]string `json:"bound_claims"`
	SubjectClaim string            `json:"subject_claim"`
	Permissions  []Permission      `json:"permissions"`
	TTL          string            `json:"ttl"`
	MaxAge       string            `json:"max_age,omitempty"`
	CreatedAt    time.Time         `json:"created_at"`
	CreatedBy    string            `json:"created_by"`
}

// JWTLogin is the reply to a JWT login: the minted token, shown this once.
type JWTLogin struct {
	ID        string    `json:"id"`
	Token     string    `json:"token"`
	Name      string    `json:"name"`
	ExpiresAt time.Time `json:"expires_at"`
}

// OIDCProvider is an OIDC provider people sign in through; its client
// secret is never shown back.
type OIDCProvider struct {
	Name         string     `json:"name"`
	Issuer       string     `json:"issuer"`
	ClientID     string     `json:"client_id"`
	RedirectURIs []string   `json:"redirect_uris"`
	Scopes       []string   `json:"scopes"`
	Roles        []OIDCRole `json:"roles"`
	SessionTTL   string     `json:"session_ttl"`
	TrustEmail   bool       `json:"trust_email,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	CreatedBy    string     `json:"created_by"`
}

// OIDCRole maps a claim of the person's ID token to permissions.
type OIDCRole struct {
	Name        string       `json:"name,omitempty"`
	Claim       string       `json:"claim"`
	Value       string       `json:"value"`
	Permissions []Permission `json:"permissions"`
}

// OIDCAuthURL is where a sign-in sends the person: the provider's
// authorization URL.
type OIDCAuthURL struct {
	AuthURL string `json:"auth_url"`
}
