-- The initial schema. Times are UTC nanoseconds since the Unix epoch, 0 for
-- none. Text sorts with the BINARY collation, i.e. by bytes, which is the
-- order of Go strings: paths and names come back in the order Go sorts them.

-- meta holds the newest store-wide revision in its one row. It is written
-- in the same transaction as the changes that took the numbers, so after a
-- crash it agrees with them: a number is never given out twice.
CREATE TABLE meta (
	id       INTEGER PRIMARY KEY CHECK (id = 1),
	revision INTEGER NOT NULL
);
INSERT INTO meta (id, revision) VALUES (1, 0);

CREATE TABLE scopes (
	path        TEXT PRIMARY KEY,
	description TEXT NOT NULL,
	inherits    TEXT NOT NULL, -- JSON array of paths, in override order
	revision    INTEGER NOT NULL,
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL
);

-- scope_parents mirrors scopes.inherits so that "who inherits this scope?"
-- is an index lookup, and so that the database itself refuses to delete a
-- scope that another one inherits.
CREATE TABLE scope_parents (
	child    TEXT NOT NULL REFERENCES scopes (path),
	position INTEGER NOT NULL,
	parent   TEXT NOT NULL REFERENCES scopes (path),
	PRIMARY KEY (child, position)
);
CREATE INDEX scope_parents_parent ON scope_parents (parent);

CREATE TABLE vars (
	scope       TEXT NOT NULL REFERENCES scopes (path),
	name        TEXT NOT NULL,
	id          TEXT NOT NULL,
	sealed      BLOB NOT NULL,
	secret      INTEGER NOT NULL,
	description TEXT NOT NULL,
	version     INTEGER NOT NULL,
	revision    INTEGER NOT NULL,
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL,
	updated_by  TEXT NOT NULL,
	PRIMARY KEY (scope, name)
);

-- history has one row per applied change; sealed is NULL for a delete.
CREATE TABLE history (
	revision    INTEGER NOT NULL,
	scope       TEXT NOT NULL REFERENCES scopes (path),
	name        TEXT NOT NULL,
	op          TEXT NOT NULL CHECK (op IN ('set', 'delete')),
	var_id      TEXT NOT NULL,
	version     INTEGER NOT NULL,
	secret      INTEGER NOT NULL,
	description TEXT NOT NULL,
	sealed      BLOB,
	actor       TEXT NOT NULL,
	at          INTEGER NOT NULL,
	PRIMARY KEY (scope, revision, name)
);
-- VarsAt looks up, per name, the last change at or before a revision.
CREATE INDEX history_scope_name ON history (scope, name, revision);

CREATE TABLE tokens (
	id          TEXT PRIMARY KEY,
	name        TEXT NOT NULL,
	owner       TEXT NOT NULL,
	hash        BLOB NOT NULL,
	permissions TEXT NOT NULL, -- JSON array of envy.Grant
	created_at  INTEGER NOT NULL,
	created_by  TEXT NOT NULL,
	expires_at  INTEGER,
	revoked_at  INTEGER
);
CREATE UNIQUE INDEX tokens_hash ON tokens (hash);

-- AUTOINCREMENT so that an id is never reused, even after the newest
-- entries are pruned: ids are the audit log's paging cursor.
CREATE TABLE audit (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	at         INTEGER NOT NULL,
	actor      TEXT NOT NULL,
	action     TEXT NOT NULL,
	scope      TEXT NOT NULL,
	names      TEXT NOT NULL, -- JSON array
	status     INTEGER NOT NULL,
	request_id TEXT NOT NULL,
	client     TEXT NOT NULL,
	revision   INTEGER NOT NULL
);
CREATE INDEX audit_scope ON audit (scope, id);
CREATE INDEX audit_actor ON audit (actor, id);

CREATE TABLE consumers (
	scope      TEXT NOT NULL REFERENCES scopes (path),
	id         TEXT NOT NULL,
	hostname   TEXT NOT NULL,
	pid        INTEGER NOT NULL,
	revision   INTEGER NOT NULL,
	first_seen INTEGER NOT NULL,
	seen_at    INTEGER NOT NULL,
	PRIMARY KEY (scope, id)
);

CREATE TABLE data_keys (
	id         INTEGER PRIMARY KEY,
	wrapped    BLOB NOT NULL,
	created_at INTEGER NOT NULL
);
