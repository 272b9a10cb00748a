-- Repeated reveals coalesce: the reveals of one token, client, scope and
-- names that one commit holds are one row with a count (on SQLite, those
-- of one second). last_at is when the last request a row stands for came
-- (0: only the one at at); request_ids lists the first 16 of them as a
-- JSON array ('[]': none kept, as for aggregated refusals). The names
-- join the key of the aggregated rows as on SQLite, so that a row never
-- says that names were revealed more often than they were.
ALTER TABLE audit ADD COLUMN last_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE audit ADD COLUMN request_ids TEXT NOT NULL DEFAULT '[]';
DROP INDEX audit_bucket;
-- A hash of the names: a btree entry is bounded (a third of a page), a
-- list of names is not.
CREATE UNIQUE INDEX audit_bucket ON audit (client, action, scope, status, token_id, md5(names), bucket) WHERE bucket > 0;
