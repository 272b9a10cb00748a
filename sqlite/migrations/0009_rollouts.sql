-- Rolling restarts (envy.RolloutStore): a scope's policy, the slots of
-- its rollout held by instances restarting (leases, freed by the
-- instance's report of the new revision, its goodbye, or expiry), and the
-- pause of a rollout whose instance did not come back healthy. Times are
-- UnixNano.
CREATE TABLE rollout_policies (
	scope TEXT PRIMARY KEY REFERENCES scopes (path) ON DELETE CASCADE,
	spec  TEXT NOT NULL -- JSON: max_unavailable, health_timeout_ms, debounce_ms
);

CREATE TABLE rollout_leases (
	scope      TEXT NOT NULL,
	consumer   TEXT NOT NULL,
	revision   INTEGER NOT NULL,
	granted_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	PRIMARY KEY (scope, consumer)
);

CREATE TABLE rollout_pauses (
	scope    TEXT PRIMARY KEY REFERENCES scopes (path) ON DELETE CASCADE,
	revision INTEGER NOT NULL,
	reason   TEXT NOT NULL,
	failed   TEXT NOT NULL, -- JSON array of consumer ids
	at       INTEGER NOT NULL
);
