-- Repeated reveals coalesce: the same token revealing the same names of
-- the same scope from the same client within one second is one row with
-- a count, like the refusals of a minute (bucket). last_at is when the
-- last request a row stands for came (0: only the one at at); request_ids
-- lists the first 16 of them as a JSON array ('[]': none kept, as for
-- aggregated refusals).
-- The names join the key, so that a row never says that names were
-- revealed more often than they were.
ALTER TABLE audit ADD COLUMN last_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE audit ADD COLUMN request_ids TEXT NOT NULL DEFAULT '[]';
DROP INDEX audit_bucket;
CREATE UNIQUE INDEX audit_bucket ON audit (client, action, scope, status, token_id, names, bucket) WHERE bucket > 0;
