package postgres

import (
	"context"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/storeutil"
)

var _ envy.OIDCStore = (*Store)(nil)

var oidcProviders = storeutil.OIDCTable(storeutil.DollarMark)

// PutOIDC creates or replaces an OIDC provider.
func (s *Store) PutOIDC(ctx context.Context, p envy.OIDCProvider, audit []envy.AuditEntry) (bool, error) {
	return putSpec(ctx, s, oidcProviders, p, audit)
}

// GetOIDC returns an OIDC provider.
func (s *Store) GetOIDC(ctx context.Context, name string) (envy.OIDCProvider, error) {
	return getSpec(ctx, s, oidcProviders, name)
}

// ListOIDC returns the OIDC providers by name, after the cursor.
func (s *Store) ListOIDC(ctx context.Context, after string, limit int) ([]envy.OIDCProvider, error) {
	return listSpec(ctx, s, oidcProviders, after, limit)
}

// DeleteOIDC deletes an OIDC provider.
func (s *Store) DeleteOIDC(ctx context.Context, name string, audit []envy.AuditEntry) (bool, error) {
	return deleteSpec(ctx, s, oidcProviders, name, audit)
}
