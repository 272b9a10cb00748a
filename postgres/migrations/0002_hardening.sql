-- Hardening: token lineage, unique token names, the acting token in the
-- audit log, refusals aggregated per client and minute, and an index for
-- the retention sweep. The same as SQLite's 0002.

-- parent_id is the token that minted this one ('' for none): revoking a
-- token revokes its descendants.
ALTER TABLE tokens ADD COLUMN parent_id TEXT COLLATE "C" NOT NULL DEFAULT '';
CREATE INDEX tokens_parent ON tokens (parent_id);

-- Token names are unique per owner among tokens that are not revoked.
-- Older databases may hold duplicates: the newer ones get their id as a
-- suffix, so that each still works and none is lost.
UPDATE tokens SET name = name || ' (' || id || ')'
WHERE revoked_at IS NULL AND EXISTS (
	SELECT 1 FROM tokens o
	WHERE o.owner = tokens.owner AND o.name = tokens.name AND o.revoked_at IS NULL
		AND (o.created_at < tokens.created_at OR (o.created_at = tokens.created_at AND o.id < tokens.id))
);
CREATE UNIQUE INDEX tokens_owner_name ON tokens (owner, name) WHERE revoked_at IS NULL;

ALTER TABLE audit ADD COLUMN token_id TEXT NOT NULL DEFAULT '';
-- count is how many requests an entry stands for; bucket, when > 0, is the
-- minute (UTC nanoseconds) of an aggregated refusal, whose row is updated
-- rather than repeated.
ALTER TABLE audit ADD COLUMN count BIGINT NOT NULL DEFAULT 1;
ALTER TABLE audit ADD COLUMN bucket BIGINT NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX audit_bucket ON audit (client, action, scope, status, bucket) WHERE bucket > 0;
CREATE INDEX audit_at ON audit (at);
