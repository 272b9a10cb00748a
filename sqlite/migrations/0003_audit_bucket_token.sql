-- Refusals with a valid token (429: over the token's rate limit) are
-- aggregated too, per token: the token joins the key of an aggregated row.
DROP INDEX audit_bucket;
CREATE UNIQUE INDEX audit_bucket ON audit (client, action, scope, status, token_id, bucket) WHERE bucket > 0;
