-- A consumer that runs with its fallback copy (envy run --fallback, the
-- server unreachable at its start) says since when: UnixNano, 0 when it
-- runs with values the server gave.
ALTER TABLE consumers ADD COLUMN fallback_since INTEGER NOT NULL DEFAULT 0;
