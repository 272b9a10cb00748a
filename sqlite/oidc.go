package sqlite

import (
	"context"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/storeutil"
)

var _ envy.OIDCStore = (*Store)(nil)

var oidcProviders = specTable[envy.OIDCProvider]{what: "OIDC provider", sql: storeutil.OIDCSQL(storeutil.NumberedMark),
	name: func(p envy.OIDCProvider) string { return p.Name }, at: func(p envy.OIDCProvider) time.Time { return p.CreatedAt }}

// PutOIDC creates or replaces an OIDC provider.
func (s *Store) PutOIDC(ctx context.Context, p envy.OIDCProvider, audit []envy.AuditEntry) (bool, error) {
	return oidcProviders.put(ctx, s, p, audit)
}

// GetOIDC returns an OIDC provider.
func (s *Store) GetOIDC(ctx context.Context, name string) (envy.OIDCProvider, error) {
	return oidcProviders.get(ctx, s, name)
}

// ListOIDC returns the OIDC providers by name, after the cursor.
func (s *Store) ListOIDC(ctx context.Context, after string, limit int) ([]envy.OIDCProvider, error) {
	return oidcProviders.list(ctx, s, after, limit)
}

// DeleteOIDC deletes an OIDC provider.
func (s *Store) DeleteOIDC(ctx context.Context, name string, audit []envy.AuditEntry) (bool, error) {
	return oidcProviders.delete(ctx, s, name, audit)
}
