-- OIDC providers: people sign in to the dashboard and the CLI through an
-- OpenID Connect provider. A provider's definition is one JSON document,
-- its client secret sealed inside it; its sign-ins' tokens name it in
-- tokens.trust ('oidc:{name}'), so that deleting it finds them.
CREATE TABLE oidc_providers (
	name       TEXT PRIMARY KEY,
	spec       TEXT NOT NULL,
	created_at INTEGER NOT NULL
) WITHOUT ROWID;
