-- What each master key that `envy keys rotate` retired wraps of a fixed
-- marker (crypto's retiredMarker): a server started with a retired key
-- can then say that the data was sealed with a newer one, rather than
-- that the key is wrong. Nothing in it opens anything.
CREATE TABLE retired_master_keys (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	check_wrap BLOB NOT NULL,
	retired_at INTEGER NOT NULL
);
