package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/storeutil"
)

var _ envy.OIDCStore = (*Store)(nil)

var oidcProviders = storeutil.OIDCTable(storeutil.NumberedMark)

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

// ReplaceOIDCSecret puts a reseal's bytes in place of a provider's sealed
// client secret, if the provider still exists and its secret is still
// sealed, in the writer's transaction: no put or delete runs meanwhile.
func (s *Store) ReplaceOIDCSecret(ctx context.Context, name string, sealed, replacement []byte) (bool, error) {
	var replaced bool
	err := s.do(ctx, func(t *txn) error {
		replaced = false
		var spec string
		switch err := t.queryRow(oidcProviders.SQL.Get, name).Scan(&spec); {
		case errors.Is(err, sql.ErrNoRows):
			return nil // deleted meanwhile: it stays deleted
		case err != nil:
			return dbErr("read an OIDC provider", err)
		}
		out, ok, err := storeutil.ReplaceOIDCSecret(spec, sealed, replacement)
		if err != nil {
			return dbErr("reseal an OIDC provider's secret", err)
		}
		if !ok {
			return nil // given another secret meanwhile
		}
		if _, err := t.exec(`UPDATE oidc_providers SET spec = ? WHERE name = ?`, out, name); err != nil {
			return dbErr("reseal an OIDC provider's secret", err)
		}
		replaced = true
		return nil
	})
	return replaced && err == nil, err
}
