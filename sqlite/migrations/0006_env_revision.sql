-- env_revision is the revision of a scope's last change of what the envs
-- resolved over it hold (a var's value, secret flag or presence, or the
-- scope's inherits); a change of descriptions only takes a revision but
-- leaves it. Until now every change counted, so it starts at revision.
ALTER TABLE scopes ADD COLUMN env_revision INTEGER NOT NULL DEFAULT 0;
UPDATE scopes SET env_revision = revision;
