-- JWT trusts (workload identity): a workload trades a JWT that a trust
-- accepts for a short-lived token. The trust's definition is kept as one
-- JSON document; a token minted by a login names its trust and the JWT's
-- subject, so that deleting the trust finds the tokens to revoke.
CREATE TABLE jwt_trusts (
	name       TEXT COLLATE "C" PRIMARY KEY,
	spec       TEXT NOT NULL,
	created_at BIGINT NOT NULL
);
ALTER TABLE tokens ADD COLUMN trust TEXT NOT NULL DEFAULT '';
ALTER TABLE tokens ADD COLUMN subject TEXT NOT NULL DEFAULT '';
CREATE INDEX tokens_trust ON tokens (trust) WHERE trust <> '';
