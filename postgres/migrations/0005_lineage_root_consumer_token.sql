-- Cost an attacker controls, second round.

-- root_id is the first token of a token's lineage below a global admin:
-- a token minted by a global admin (admin on **), or by none, is a root
-- ('', its own id); one minted by any other token has its minter's root.
-- Per-token rate limits are counted per root, so that a scoped admin
-- does not multiply its limit by minting children.
ALTER TABLE tokens ADD COLUMN root_id TEXT COLLATE "C" NOT NULL DEFAULT '';
WITH RECURSIVE ga (id) AS (
	SELECT t.id FROM tokens t, jsonb_array_elements(t.permissions::jsonb) g, jsonb_array_elements_text(g->'actions') a
	WHERE g->>'scopes' = '**' AND a = 'admin'
), down (id, root) AS (
	SELECT t.id, t.id FROM tokens t WHERE t.parent_id = '' OR t.parent_id IN (SELECT id FROM ga)
	UNION ALL
	SELECT t.id, down.root FROM tokens t JOIN down ON t.parent_id = down.id
	WHERE down.id NOT IN (SELECT id FROM ga)
)
UPDATE tokens SET root_id = down.root FROM down WHERE down.id = tokens.id AND down.root <> tokens.id;

-- token_id is the token that first reported the consumer: another
-- token's report under its id is refused. '' (a consumer reported before
-- this migration) binds to the next token that reports it.
ALTER TABLE consumers ADD COLUMN token_id TEXT COLLATE "C" NOT NULL DEFAULT '';

-- The acting token's id beside its name in the history and on each var,
-- so that two tokens of one name are told apart ('' for changes made
-- before).
ALTER TABLE vars ADD COLUMN updated_by_token TEXT NOT NULL DEFAULT '';
ALTER TABLE history ADD COLUMN actor_token TEXT NOT NULL DEFAULT '';
