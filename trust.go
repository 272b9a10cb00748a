package envy

import (
	"context"
	"time"
)

// JWTTrust lets a workload trade a JWT from an identity provider it
// already has (a CI system, a Kubernetes cluster) for a short-lived envy
// token: the JWT's issuer, audience and bound claims must match, and its
// signature must verify against the issuer's keys (see docs/identity.md).
type JWTTrust struct {
	Name     string `json:"name"`
	Issuer   string `json:"issuer"`
	Audience string `json:"audience"`
	// JWKSURL is where the issuer's keys are; "" means the issuer's OpenID
	// discovery document says where.
	JWKSURL string `json:"jwks_url,omitempty"`
	// BoundClaims must each match the JWT's claim of the same name: the
	// value exactly, or, when it holds '*', as a glob ('*' matches any run
	// of characters).
	BoundClaims map[string]string `json:"bound_claims,omitempty"`
	// SubjectClaim names the claim whose value is the login's subject
	// ("sub" when empty).
	SubjectClaim string  `json:"subject_claim,omitempty"`
	Permissions  []Grant `json:"permissions"`
	// TTL is the life of a token a login mints (at most MaxJWTTokenTTL).
	TTL time.Duration `json:"ttl"`
	// MaxAge, when set, refuses a JWT issued (iat) longer ago than it.
	MaxAge    time.Duration `json:"max_age,omitempty"`
	CreatedAt time.Time     `json:"created_at"`
	CreatedBy string        `json:"created_by"`
	// CreatorID is the id of the token that defined the trust.
	CreatorID string `json:"creator_id"`
}

// MaxJWTTokenTTL bounds the life of a token a JWT login mints.
const MaxJWTTokenTTL = 24 * time.Hour

// The audit actions of JWT trusts and logins.
const (
	AuditTrustPut    AuditAction = "trust.put"
	AuditTrustGet    AuditAction = "trust.get"
	AuditTrustList   AuditAction = "trust.list"
	AuditTrustDelete AuditAction = "trust.delete"
	AuditJWTLogin    AuditAction = "jwt.login"
)

// TrustStore is the optional capability of a Store that keeps JWT trusts
// (both stores have it). A token minted by a login names its trust
// (Token.Trust), so that deleting the trust finds the tokens to revoke.
type TrustStore interface {
	// PutTrust creates or replaces a trust and tells whether it created it.
	PutTrust(ctx context.Context, t JWTTrust, audit []AuditEntry) (created bool, err error)
	// GetTrust returns a trust; ENotFound when there is none of its name.
	GetTrust(ctx context.Context, name string) (JWTTrust, error)
	// ListTrusts returns the trusts by name, those after the cursor.
	ListTrusts(ctx context.Context, after string, limit int) ([]JWTTrust, error)
	// DeleteTrust deletes a trust; existed is false (no error) when there
	// was none.
	DeleteTrust(ctx context.Context, name string, audit []AuditEntry) (existed bool, err error)
	// TrustTokens returns the ids of the tokens minted through the trust
	// that are not revoked.
	TrustTokens(ctx context.Context, name string) ([]string, error)
	// PruneTrustTokens deletes the tokens minted by logins (of any trust)
	// that expired or were revoked before before and minted no token.
	PruneTrustTokens(ctx context.Context, before time.Time) (deleted int64, err error)
}

// TokenVerifier verifies a JWT presented to a trust. It returns the JWT's
// claims, or an error whose message is the precise reason it is refused
// (for the audit log, never for the caller), and which never holds the JWT.
type TokenVerifier interface {
	Verify(ctx context.Context, t JWTTrust, jwt string) (claims map[string]any, err error)
}

// TrustInput defines a JWT trust (PUT /v1/auth/jwt/{name}). TTL and
// MaxAge are Go durations such as "15m"; TTL defaults to 15 minutes.
type TrustInput struct {
	Issuer, Audience, JWKSURL string
	BoundClaims               map[string]string
	SubjectClaim              string
	Permissions               []Grant
	TTL, MaxAge               string
}

// JWTLogin is what a JWT login answers: the minted token, shown this once.
type JWTLogin struct {
	Token     Token
	Plaintext string
}
