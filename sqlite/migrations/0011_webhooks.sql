-- Webhooks (docs/webhooks.md). Every change of an env writes an event to
-- the outbox in its own transaction, keyed by its revision; the servers
-- fan the events out to the webhooks that cover them (webhook_deliveries,
-- the cursor in webhook_cursor) and one server at a time delivers a
-- webhook's queue, holding its lease (lease_owner, lease_until). No row
-- holds a value; the signing secrets are sealed.
CREATE TABLE outbox (
	revision    INTEGER PRIMARY KEY,
	type        TEXT NOT NULL,
	scope       TEXT NOT NULL,
	vars        TEXT NOT NULL,
	actor       TEXT NOT NULL,
	actor_token TEXT NOT NULL,
	at          INTEGER NOT NULL
);
CREATE TABLE webhook_cursor (
	id       INTEGER PRIMARY KEY CHECK (id = 1),
	revision INTEGER NOT NULL
);
INSERT INTO webhook_cursor (id, revision) SELECT 1, revision FROM meta WHERE id = 1;
CREATE TABLE webhooks (
	id          TEXT PRIMARY KEY,
	spec        TEXT NOT NULL,
	secret      BLOB NOT NULL,
	old_secret  BLOB,
	old_until   INTEGER NOT NULL DEFAULT 0,
	paused      BOOLEAN NOT NULL DEFAULT FALSE,
	disabled_at INTEGER NOT NULL DEFAULT 0,
	failures    INTEGER NOT NULL DEFAULT 0,
	lease_owner TEXT NOT NULL DEFAULT '',
	lease_until INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE webhook_deliveries (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	webhook_id    TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
	message_id    TEXT NOT NULL,
	type          TEXT NOT NULL,
	scope         TEXT NOT NULL,
	revision      INTEGER NOT NULL,
	body          BLOB NOT NULL,
	status        TEXT NOT NULL,
	attempts      INTEGER NOT NULL DEFAULT 0,
	next_at       INTEGER NOT NULL,
	last_error    TEXT NOT NULL DEFAULT '',
	response_code INTEGER NOT NULL DEFAULT 0,
	latency_ns    INTEGER NOT NULL DEFAULT 0,
	created_at    INTEGER NOT NULL,
	done_at       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX webhook_deliveries_queue ON webhook_deliveries (webhook_id, status, id);
