package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

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

// ReplaceOIDCSecret puts a reseal's bytes in place of a provider's sealed
// client secret, if the provider still exists and its secret is still
// sealed: the row's lock holds off a put or a delete until it commits
// (one that committed first is seen, and the provider left alone).
func (s *Store) ReplaceOIDCSecret(ctx context.Context, name string, sealed, replacement []byte) (bool, error) {
	var replaced bool
	err := s.tx(ctx, "reseal an OIDC provider's secret", func(t *txn) error {
		replaced = false
		var spec string
		switch err := t.QueryRow(t.ctx, `SELECT spec FROM oidc_providers WHERE name = $1 FOR UPDATE`, name).Scan(&spec); {
		case errors.Is(err, pgx.ErrNoRows):
			return nil // deleted meanwhile: it stays deleted
		case err != nil:
			return err
		}
		out, ok, err := storeutil.ReplaceOIDCSecret(spec, sealed, replacement)
		if err != nil || !ok {
			return err // !ok: given another secret meanwhile
		}
		if _, err := t.Exec(t.ctx, `UPDATE oidc_providers SET spec = $2 WHERE name = $1`, name, out); err != nil {
			return err
		}
		replaced = true
		return nil
	})
	return replaced && err == nil, err
}
