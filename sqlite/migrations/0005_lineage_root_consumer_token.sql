-- Cost an attacker controls, second round.

-- root_id is the first token of a token's lineage below a global admin:
-- a token minted by a global admin (admin on **), or by none, is a root
-- ('', its own id); one minted by any other token has its minter's root.
-- Per-token rate limits are counted per root, so that a scoped admin
-- does not multiply its limit by minting children.
ALTER TABLE tokens ADD COLUMN root_id TEXT NOT NULL DEFAULT '';
WITH RECURSIVE ga (id) AS (
	SELECT t.id FROM tokens t, json_each(t.permissions) g, json_each(g.value, '$.actions') a
	WHERE json_extract(g.value, '$.scopes') = '**' AND a.value = 'admin'
), down (id, root) AS (
	SELECT t.id, t.id FROM tokens t WHERE t.parent_id = '' OR t.parent_id IN (SELECT id FROM ga)
	UNION ALL
	SELECT t.id, down.root FROM tokens t JOIN down ON t.parent_id = down.id
	WHERE down.id NOT IN (SELECT id FROM ga)
)
UPDATE tokens SET root_id = (SELECT root FROM down WHERE down.id = tokens.id)
WHERE EXISTS (SELECT 1 FROM down WHERE down.id = tokens.id AND down.root <> tokens.id);

-- token_id is the token that first reported the consumer: another
-- token's report under its id is refused. '' (a consumer reported before
-- this migration) binds to the next token that reports it.
ALTER TABLE consumers ADD COLUMN token_id TEXT NOT NULL DEFAULT '';

-- The acting token's id beside its name in the history and on each var,
-- so that two tokens of one name are told apart ('' for changes made
-- before).
ALTER TABLE vars ADD COLUMN updated_by_token TEXT NOT NULL DEFAULT '';
ALTER TABLE history ADD COLUMN actor_token TEXT NOT NULL DEFAULT '';
