-- Dashboard sessions, so that every server sharing the database knows
-- them and a restart signs no one out. A row holds nothing usable on its
-- own: it is keyed by the SHA-256 of the session id (which only the
-- browser's cookie holds), and the token is sealed by the keyring.
CREATE TABLE sessions (
	id_hash    BLOB PRIMARY KEY,
	sealed     BLOB NOT NULL,
	csrf       TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	used_at    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_used_at ON sessions (used_at);
CREATE INDEX sessions_created_at ON sessions (created_at);
