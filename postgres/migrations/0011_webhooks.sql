-- Webhooks (docs/webhooks.md). Every change of an env writes an event to
-- the outbox in its own transaction, keyed by its revision; the servers
-- fan the events out to the webhooks that cover them (webhook_deliveries,
-- the cursor in webhook_cursor) and one server at a time delivers a
-- webhook's queue, holding its lease (lease_owner, lease_until). No row
-- holds a value; the signing secrets are sealed.
CREATE TABLE outbox (
	revision    BIGINT PRIMARY KEY,
	type        TEXT NOT NULL,
	scope       TEXT NOT NULL,
	vars        TEXT NOT NULL,
	actor       TEXT NOT NULL,
	actor_token TEXT NOT NULL,
	at          BIGINT NOT NULL
);
CREATE TABLE webhook_cursor (
	id       INTEGER PRIMARY KEY CHECK (id = 1),
	revision BIGINT NOT NULL
);
INSERT INTO webhook_cursor (id, revision) SELECT 1, revision FROM meta WHERE id = 1;
CREATE TABLE webhooks (
	id          TEXT COLLATE "C" PRIMARY KEY,
	spec        TEXT NOT NULL,
	secret      BYTEA NOT NULL,
	old_secret  BYTEA,
	old_until   BIGINT NOT NULL DEFAULT 0,
	paused      BOOLEAN NOT NULL DEFAULT FALSE,
	disabled_at BIGINT NOT NULL DEFAULT 0,
	failures    BIGINT NOT NULL DEFAULT 0,
	lease_owner TEXT NOT NULL DEFAULT '',
	lease_until BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE webhook_deliveries (
	id            BIGSERIAL PRIMARY KEY,
	webhook_id    TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
	message_id    TEXT NOT NULL,
	type          TEXT NOT NULL,
	scope         TEXT NOT NULL,
	revision      BIGINT NOT NULL,
	body          BYTEA NOT NULL,
	status        TEXT NOT NULL,
	attempts      BIGINT NOT NULL DEFAULT 0,
	next_at       BIGINT NOT NULL,
	last_error    TEXT NOT NULL DEFAULT '',
	response_code BIGINT NOT NULL DEFAULT 0,
	latency_ns    BIGINT NOT NULL DEFAULT 0,
	created_at    BIGINT NOT NULL,
	done_at       BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX webhook_deliveries_queue ON webhook_deliveries (webhook_id, status, id);
