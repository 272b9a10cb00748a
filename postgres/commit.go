package postgres

import (
	"context"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/storeutil"
)

// Group commit: Write queues its op for the store's
// committer goroutine, which takes whatever is queued (up to maxBatch ops)
// and applies it in one transaction with one COMMIT, so that concurrent
// writers share the round trips, the hold of the revision row and the
// commit's flush to disk instead of taking them one at a time.
const (
	// maxBatch bounds how many ops share one transaction, so that it
	// stays short even under a flood of writes.
	maxBatch = 256
	// queueSize is how many ops may wait for the committer before
	// callers block on sending (still honouring their contexts).
	queueSize = 4 * maxBatch
)

// commitLinger is how long the committer waits for more writes before a
// batch that follows one of several: up to 1 ms after the last came, 4 ms
// at most. Each server's batch costs PostgreSQL two round trips and a
// transaction's statements, and every server's batches take turns on the
// revision counter: with three servers on one database a longer wait made
// 3,375 writes/s at 420 µs of CPU each, against 2,075 at 661 µs with the
// 100 µs / 1 ms that SQLite keeps (docs/benchmarks.md). A lone writer
// never waits.
var commitLinger = storeutil.Linger{Gap: time.Millisecond, Max: 4 * time.Millisecond}

// commitOp is a Write waiting for the committer, and what the batch
// answers it. (AppendAudit's entries take no revision and don't queue
// here: see AppendAudit.)
type commitOp struct {
	write *envy.Write

	res envy.WriteResult
	err error // the op's own outcome in a batch that committed
}

type op = storeutil.Op[*commitOp]

// commitBatch is the committer's run: it applies ops in one transaction
// and answers each. An op that must see the revision an earlier op of
// the batch takes (see applyBatch) goes in a next transaction, right
// after.
func (s *Store) commitBatch(ops []*op) {
	for len(ops) > 0 {
		ops = s.commitRound(ops)
	}
}

// commitRound runs ops in one transaction and answers all but those that
// it returns, which wait for the next round. When the transaction fails
// for a reason that is not the database's unavailability (a constraint
// that one op's data breaks, say), it runs each op again in a transaction
// of its own, so that the others commit and each gets its own outcome.
func (s *Store) commitRound(ops []*op) (later []*op) {
	later, err := s.runBatch(ops)
	if err == nil {
		for _, o := range ops {
			if !slices.Contains(later, o) {
				o.Answer(o.Arg.err)
			}
		}
		return later
	}
	if len(ops) == 1 || envy.ErrorCode(err) == envy.EUnavailable {
		for _, o := range ops {
			o.Answer(err)
		}
		return nil
	}
	s.split.Add(1)
	s.log.Warn("a batch of writes failed; running each alone", "ops", len(ops), "err", err)
	for _, o := range ops {
		if _, err := s.runBatch([]*op{o}); err != nil {
			o.Answer(err)
		} else {
			o.Answer(o.Arg.err)
		}
	}
	return nil
}

// runBatch applies ops in one transaction and commits it, again when it
// lost a race that PostgreSQL resolved by aborting it. The callers'
// contexts don't count: their ops are taken, and each waits for its real
// outcome.
func (s *Store) runBatch(ops []*op) (later []*op, err error) {
	for attempt := 0; ; attempt++ {
		later, err = s.runBatchOnce(ops)
		if retryable(err) && attempt < 5 {
			continue
		}
		if err == nil {
			s.commits.Add(1)
			s.committed.Add(int64(len(ops) - len(later)))
		}
		return later, err
	}
}

func (s *Store) runBatchOnce(ops []*op) ([]*op, error) {
	ctx, cancel := context.WithTimeout(context.Background(), txTimeout)
	defer cancel()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, s.dbErr("write", err)
	}
	defer conn.Release()
	later, err := s.applyBatch(ctx, conn.Conn(), ops)
	if err != nil {
		// Whatever failed came before the COMMIT, which PostgreSQL then
		// skipped; the transaction is still open, aborted.
		if !conn.Conn().IsClosed() {
			conn.Exec(ctx, `ROLLBACK`)
		}
		if retryable(err) {
			return nil, err
		}
		return nil, s.dbErr("write", err)
	}
	return later, nil
}

// applyBatch applies the ops in order in one transaction on conn, which
// it begins and commits in the round trips it needs anyway:
//
//   - BEGIN, the advisory lock of every scope the writes change, in the
//     order of the locks' keys, so that two servers' batches can't each
//     hold a lock the other waits for, and the state of those scopes, in
//     one round trip;
//   - it checks each write against the state the writes before it leave
//     (storeutil.Prepare): a stale write, or one whose IfRevision fails,
//     gets its error and is left out, the others go on;
//   - it takes the batch's revisions with one UPDATE of the revision row,
//     the last lock it takes (see the package comment), each write the
//     next number in queue order;
//   - and it sends every statement (scopes, vars, history, audit), the
//     notices and the COMMIT in one round trip.
//
// A write that depends on its scope's revision (IfRevision, WholeScope,
// or one that changes nothing and answers the current revision) can't be
// checked against a scope that an earlier write of this batch changed,
// whose revision is not taken yet: it is returned in later, for the next
// transaction.
func (s *Store) applyBatch(ctx context.Context, conn *pgx.Conn, ops []*op) (later []*op, err error) {
	// The statements of the batch are queued, never run one by one: the
	// txn has no Tx.
	b := &pgx.Batch{}
	t := &txn{ctx: ctx, now: storeutil.Now(), pending: b}
	var (
		paths, tokens []string
		keyIDs        []uint32 // the data keys that the writes' values name
	)
	for _, o := range ops {
		o.Arg.res, o.Arg.err = envy.WriteResult{}, nil
		paths = append(paths, o.Arg.write.Scope)
		if tok := o.Arg.write.LiveToken; tok != "" && !slices.Contains(tokens, tok) {
			tokens = append(tokens, tok)
		}
		keyIDs = storeutil.AddKeyIDs(keyIDs, o.Arg.write.Changes)
	}
	slices.Sort(paths)
	slices.Sort(keyIDs)
	state, live, keys, err := beginAndLoad(ctx, conn, slices.Compact(paths), tokens, keyIDs)
	if err != nil {
		return nil, err
	}
	keyGone := false // a write was refused for a retired data key

	// What each applied write does; its revision is the base + k.
	type applied struct {
		c       *commitOp
		eff     []storeutil.Effect
		created bool
		cur     *envy.ScopeVars // what the write was prepared against
	}
	var (
		apps    []applied
		changed = make(map[string]bool) // scopes that an applied write of this batch changes
	)
	for _, o := range ops {
		c := o.Arg
		w := c.write
		if w.LiveToken != "" && !live[w.LiveToken] {
			c.err = envy.ErrTokenNotLive
			continue
		}
		if changed[w.Scope] && (w.IfRevision > 0 || w.WholeScope) {
			later = append(later, o)
			continue
		}
		cur := state[w.Scope]
		eff, none, err := storeutil.Prepare(*w, cur)
		switch {
		case err != nil:
			c.err = err
			continue
		case eff == nil && changed[w.Scope]:
			later = append(later, o)
			continue
		case eff == nil:
			c.res = none
			continue
		}
		if id, gone := retiredIn(eff, keys); gone {
			c.err, keyGone = storeutil.RetiredKey(id), true
			continue
		}
		for i := range eff {
			if eff[i].Old != nil {
				old := *eff[i].Old // the state below may change in place
				eff[i].Old = &old
			}
		}
		apps = append(apps, applied{c: c, eff: eff, created: cur == nil, cur: cur})
		state[w.Scope] = after(cur, changed[w.Scope], w, eff, t.now)
		changed[w.Scope] = true
	}
	// A write refused for a retired data key was sealed by a server that
	// does not hold the newest key yet (its notice is late, or was lost):
	// a notice of that key, to every server, makes its keyring reload
	// the data keys before the write is tried again.
	var keyNotice []envy.Notice
	if keyGone {
		keyNotice = []envy.Notice{storeutil.RetiredKeyNotice(keys.newest)}
	}
	n := int64(len(apps))
	if n == 0 {
		// Nothing to write: every write was stale, or changed nothing.
		staleWith(ops, state)
		if keyGone {
			nb := &pgx.Batch{}
			queueNotices(nb, keyNotice, false)
			nb.Queue(`COMMIT`) // it wrote nothing: only the notice commits
			return later, conn.SendBatch(ctx, nb).Close()
		}
		return later, conn.PgConn().Exec(ctx, `ROLLBACK`).Close()
	}

	// The batch's revisions are taken in its last round trip, just before
	// the COMMIT (countRevisions): the revision row's lock, which every
	// writer on every server waits for, is held for that round trip and
	// the COMMIT only, not while the rows are built. Until then the batch
	// numbers its writes 1…n, and every statement adds the base that the
	// counter's update leaves in the transaction's envy.base setting.
	var (
		at      = storeutil.Nanos(t.now)
		scopes  = make(map[string]int64) // path → its newest revision in the batch
		envRevs = make(map[string]int64) // path → its EnvRevision after the batch
		envRel  = make(map[string]bool)  // path → whether envRevs holds one of the batch's own numbers
		relEnv  []bool                   // for each of apps, whether its result's EnvRevision is the batch's own
		behind  behindQuestions          // the questions of apps' writes that ask for consumers behind
		created []string
		vars    = make(map[[2]string]*envy.StoredVar) // (scope, name) → its last state; nil: deleted
		order   [][2]string                           // the keys of vars, in the order first changed
		hist    historyRows
		entries []envy.AuditEntry
		events  []envy.OutboxEvent // the outbox's, numbered as the batch's own revisions
		rev     int64              // the batch's own numbering, 1…n
	)
	for k, a := range apps {
		c := a.c
		w := c.write
		rev++
		if _, ok := scopes[w.Scope]; !ok && a.created {
			created = append(created, w.Scope)
		}
		scopes[w.Scope] = rev
		// The state a later write of the batch is prepared against keeps
		// the EnvRevision of the batch's start: envRevs has the newer one.
		// A batch's own revisions are 1…n until the database adds its
		// base (countRevisions); an EnvRevision kept from before the batch
		// is whole already: envRel tells which one each is.
		envRev, envChanged := storeutil.EnvRevision(a.cur, a.eff, rev)
		if prev, ok := envRevs[w.Scope]; ok && !envChanged {
			envRev, envChanged = prev, envRel[w.Scope]
		}
		envRevs[w.Scope], envRel[w.Scope] = envRev, envChanged
		c.res = envy.WriteResult{Revision: rev, EnvRevision: envRev, Changed: true, ScopeCreated: a.created}
		relEnv = append(relEnv, envChanged)
		if q := w.Behind; q != nil {
			behind.add(k, w.Scope, q.Since, c.res.EnvRevision, envChanged, q.Limit)
		}
		for _, e := range a.eff {
			key := [2]string{w.Scope, e.Name}
			if _, ok := vars[key]; !ok {
				order = append(order, key)
			}
			if e.Delete {
				vars[key] = nil
				hist.add(rev, w.Scope, e.Name, "delete", e.Old.ID, e.Old.Version, e.Old.Secret, e.Old.Description, nil, w.Actor, w.ActorToken, at)
				continue
			}
			v := storeutil.NewVar(w.Scope, w.Actor, w.ActorToken, e, rev, t.now)
			vars[key] = &v
			hist.add(rev, w.Scope, v.Name, "set", v.ID, v.Version, v.Secret, v.Description, v.Sealed, w.Actor, w.ActorToken, at)
			c.res.Vars = append(c.res.Vars, v)
		}
		for _, e := range w.Audit {
			e.Revision = rev
			entries = append(entries, e)
		}
		if _, own := storeutil.EnvRevision(a.cur, a.eff, rev); own {
			events = append(events, storeutil.WriteEvent(w, a.eff, rev, t.now))
		}
		t.notify(envy.Notice{Kind: envy.NoticeScope, Scope: w.Scope, Revision: rev, MetaOnly: !envChanged})
	}
	countRevisions(b, n)
	queueScopes(b, scopes, envRevs, envRel, created, at)
	queueVars(b, vars, order)
	b.Queue(`INSERT INTO history (revision, scope, name, op, var_id, version, secret, description, sealed, actor, at, actor_token)
		SELECT `+baseRev+` + r, s, n, o, i, v, sc, d, se, a, t, at2
		FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bool[], $8::text[], $9::bytea[], $10::text[], $11::bigint[], $12::text[])
			AS x(r, s, n, o, i, v, sc, d, se, a, t, at2)`,
		hist.rev, hist.scope, hist.name, hist.op, hist.id, hist.version, hist.secret, hist.desc, hist.sealed, hist.actor, hist.at, hist.actorToken)
	queueEvents(b, events, true)
	t.relative = true
	if err := t.audit(entries, 0); err != nil {
		return nil, err
	}
	queueNotices(b, t.notices, true)
	queueNotices(b, keyNotice, false)
	b.Queue(`COMMIT`)
	statements := b.Len()
	// The consumers behind the writes that ask, after the COMMIT in the
	// same round trip: a statement of its own, which sees every consumer
	// report committed before it, as BehindConsumers asked after the
	// write would (the revisions come from envy.lastbase, which the
	// counter's update leaves in the session).
	behind.queue(b)
	ob := s.own.begin(scopes)
	br := conn.SendBatch(ctx, b)
	var first int64 // the revision before the batch's first
	err = br.QueryRow().Scan(&first)
	for i := 1; i < statements && err == nil; i++ {
		_, err = br.Exec()
	}
	if err != nil {
		br.Close()
		s.own.end(ob, nil, t.now)
		return nil, err
	}
	// Committed: what follows can't fail the batch. (A statement that
	// fails to prepare, the first time a connection sends it, fails the
	// batch before anything ran: nothing committed, as reported.)
	answers, berr := behind.read(br)
	if err := br.Close(); berr == nil {
		berr = err
	}
	if berr != nil {
		answers = nil // each caller asks for itself
		s.log.Warn("consumers behind a batch of writes: asked apart", "err", berr)
	}
	committed := committedStates(state, scopes, envRevs, envRel, vars, first, t.now)
	s.own.end(ob, committed, t.now)
	for _, sv := range committed {
		state[sv.Scope.Path] = sv
	}
	staleWith(ops, state)
	for k, a := range apps {
		c := a.c
		c.res.Revision += first
		if relEnv[k] {
			c.res.EnvRevision += first
		}
		for i := range c.res.Vars {
			c.res.Vars[i].Revision += first
		}
		if out, ok := answers[k]; ok {
			c.res.Behind, c.res.BehindAnswered = out, true
		}
	}
	return later, nil
}

// staleWith gives each op found stale the scope as committed, from state
// (each scope of the batch as loaded, or as the batch committed it), for
// the service to plan again from (envy.StaleError).
func staleWith(ops []*op, state map[string]*envy.ScopeVars) {
	for _, o := range ops {
		if c := o.Arg; c.err == envy.ErrStale {
			c.err = &envy.StaleError{Current: state[c.write.Scope]}
		}
	}
}

// countRevisions queues, as the batch's first statement of its last round
// trip, the update of the revision row that takes its n revisions, and
// keeps the revision before them in the transaction's envy.base setting
// for the statements after it (revisionExpr), and in the session's
// envy.lastbase for a statement after the COMMIT (behindQuestions). Its
// row is the first result.
func countRevisions(b *pgx.Batch, n int64) {
	b.Queue(`WITH u AS (UPDATE meta SET revision = revision + $1 WHERE id = 1 RETURNING revision - $1 AS base)
		SELECT base FROM u, LATERAL set_config('envy.base', base::text, true) AS s,
			LATERAL set_config('envy.lastbase', base::text, false) AS s2`, n)
}

// baseRev is the SQL of the revision before a batch's first, once
// countRevisions ran in its transaction: a batch's revision k is
// baseRev + k.
const baseRev = `current_setting('envy.base')::bigint`

// after is a scope's state once a write's effects apply to cur (nil: the
// write creates it), for the writes after it in the batch to be checked
// against. Its revisions are not known yet, and not needed: a write that
// depends on them waits for the next transaction. When own, cur is this
// batch's own copy, made by an earlier call, and a write that only sets
// vars cur has changes it in place: a hot scope's writes don't copy all
// its vars each.
func after(cur *envy.ScopeVars, own bool, w *envy.Write, eff []storeutil.Effect, now time.Time) *envy.ScopeVars {
	if own && replacesOnly(cur.Vars, eff) {
		for _, e := range eff {
			*storeutil.Find(cur.Vars, e.Name) = storeutil.NewVar(w.Scope, w.Actor, w.ActorToken, e, 0, now)
		}
		return cur
	}
	next := make(map[string]*envy.StoredVar, len(eff))
	for _, e := range eff {
		if e.Delete {
			next[e.Name] = nil
			continue
		}
		v := storeutil.NewVar(w.Scope, w.Actor, w.ActorToken, e, 0, now)
		next[e.Name] = &v
	}
	sv := &envy.ScopeVars{Scope: envy.Scope{Path: w.Scope, CreatedAt: now}}
	if cur != nil {
		sv.Scope = cur.Scope
		sv.Vars = storeutil.Merge(cur.Vars, next)
	} else {
		sv.Vars = storeutil.Merge(nil, next)
	}
	sv.Scope.VarCount = len(sv.Vars)
	return sv
}

// replacesOnly reports whether every effect sets a var that vars has.
func replacesOnly(vars []envy.StoredVar, eff []storeutil.Effect) bool {
	for _, e := range eff {
		if e.Delete || storeutil.Find(vars, e.Name) == nil {
			return false
		}
	}
	return true
}

// liveKeys is which of the data keys that a batch's writes name are in
// the store, each locked (FOR KEY SHARE) until the batch commits, and the
// newest data key.
type liveKeys struct {
	ids    map[uint32]bool
	newest uint32
}

// retiredIn returns a data key that a value of eff is sealed under and
// that is not in keys: a rotation retired it since the value was sealed.
func retiredIn(eff []storeutil.Effect, keys liveKeys) (uint32, bool) {
	for i := range eff {
		if eff[i].Delete {
			continue
		}
		if id, ok := storeutil.SealedKeyID(eff[i].Sealed); ok && !keys.ids[id] {
			return id, true
		}
	}
	return 0, false
}

// beginAndLoad begins a transaction on conn, takes the locks of the
// scopes at paths (see lockScope), in the order of their keys, and reads
// them with their vars, in one round trip. A scope that does not exist is
// missing from the map. With no paths it does nothing.
//
// It also locks the data keys keyIDs that the writes' values name (FOR
// KEY SHARE, in the order of their ids, as RetireDataKeys locks those it
// deletes) and says which exist: a retirement that began first has
// deleted them by then (a locking read waits for it and skips the rows
// it deleted), and one that comes later waits for the batch's COMMIT,
// then counts the values it wrote (EConflict).
func beginAndLoad(ctx context.Context, conn *pgx.Conn, paths, tokens []string, keyIDs []uint32) (map[string]*envy.ScopeVars, map[string]bool, liveKeys, error) {
	m := map[string]*envy.ScopeVars{}
	live := map[string]bool{}
	var keys liveKeys
	if len(paths) == 0 {
		return m, live, keys, nil
	}
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	b.Queue(`SELECT pg_advisory_xact_lock(l.k)
		FROM (SELECT DISTINCT hashtextextended(p, 0) AS k FROM unnest($1::text[]) AS p ORDER BY 1) AS l`, paths)
	// A statement of its own, after the locks: under READ COMMITTED it
	// sees what committed before it began, so every write that held one
	// of these locks before. The vars are read scope by scope through the
	// primary key (LATERAL … OFFSET 0): a plan that PostgreSQL caches for
	// any list of paths (a generic plan, which it picks after a few runs)
	// would otherwise guess ten paths and join them with a scan of every
	// var in the database, in every batch.
	b.Queue(`SELECT `+storeutil.ScopeVarsColumns+`
		FROM scopes s LEFT JOIN LATERAL (SELECT * FROM vars v WHERE v.scope = s.path OFFSET 0) v ON true
		WHERE s.path = ANY($1::text[])
		ORDER BY s.path, v.name`, paths).Query(func(rows pgx.Rows) error {
		var err error
		m, err = storeutil.ScanScopeVars(rows)
		return err
	})
	if len(tokens) > 0 {
		// After the locks too: a revocation committed before a write of
		// the token took its scope's lock counts.
		b.Queue(`SELECT id FROM tokens WHERE id = ANY($1::text[]) AND revoked_at IS NULL`, tokens).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					return err
				}
				live[id] = true
			}
			return rows.Err()
		})
	}
	if len(keyIDs) > 0 {
		ids := make([]int64, len(keyIDs))
		for i, id := range keyIDs {
			ids[i] = int64(id)
		}
		keys.ids = make(map[uint32]bool, len(keyIDs))
		b.Queue(`WITH l AS (SELECT id FROM data_keys WHERE id = ANY($1::bigint[]) ORDER BY id FOR KEY SHARE)
			SELECT COALESCE(array_agg(l.id), '{}'), (SELECT COALESCE(max(id), 0) FROM data_keys) FROM l`, ids).QueryRow(func(row pgx.Row) error {
			var (
				got    []int64
				newest int64
			)
			if err := row.Scan(&got, &newest); err != nil {
				return err
			}
			for _, id := range got {
				keys.ids[uint32(id)] = true
			}
			keys.newest = uint32(newest)
			return nil
		})
	}
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return nil, nil, liveKeys{}, err
	}
	return m, live, keys, nil
}

// queueScopes creates the scopes that the batch creates and sets the
// revision of the others, each to the newest that the batch gives it.
func queueScopes(b *pgx.Batch, scopes, envRevs map[string]int64, envRel map[string]bool, created []string, at int64) {
	var newPaths, oldPaths []string
	var newRevs, oldRevs, newEnv, oldEnv []int64
	var newRel, oldRel []bool
	for _, p := range created {
		newPaths, newRevs, newEnv, newRel = append(newPaths, p), append(newRevs, scopes[p]), append(newEnv, envRevs[p]), append(newRel, envRel[p])
	}
	for p, rev := range scopes {
		if !slices.Contains(created, p) {
			oldPaths, oldRevs, oldEnv, oldRel = append(oldPaths, p), append(oldRevs, rev), append(oldEnv, envRevs[p]), append(oldRel, envRel[p])
		}
	}
	if len(newPaths) > 0 {
		b.Queue(`INSERT INTO scopes (path, description, inherits, revision, env_revision, created_at, updated_at)
			SELECT p, '', '[]', `+baseRev+` + r, CASE WHEN rel THEN `+baseRev+` + e ELSE e END, $5, $5
			FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bool[]) AS n(p, r, e, rel)`, newPaths, newRevs, newEnv, newRel, at)
	}
	if len(oldPaths) > 0 {
		b.Queue(`UPDATE scopes SET revision = `+baseRev+` + u.r, env_revision = CASE WHEN u.rel THEN `+baseRev+` + u.e ELSE u.e END, updated_at = $5
			FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bool[]) AS u(p, r, e, rel) WHERE scopes.path = u.p`, oldPaths, oldRevs, oldEnv, oldRel, at)
	}
}

// queueVars stores each var's last state in the batch: the batch's writes
// may change one var more than once, and only its end state is stored.
func queueVars(b *pgx.Batch, vars map[[2]string]*envy.StoredVar, order [][2]string) {
	var (
		delScope, delName                 []string
		scope, name, id, desc, by, byTok  []string
		sealed                            [][]byte
		secret                            []bool
		version, rev, createdAt, updateAt []int64
	)
	for _, key := range order {
		v := vars[key]
		if v == nil {
			delScope, delName = append(delScope, key[0]), append(delName, key[1])
			continue
		}
		scope, name, id, desc, by = append(scope, v.Scope), append(name, v.Name), append(id, v.ID), append(desc, v.Description), append(by, v.UpdatedBy)
		byTok = append(byTok, v.UpdatedByToken)
		sealed, secret = append(sealed, v.Sealed), append(secret, v.Secret)
		version, rev = append(version, v.Version), append(rev, v.Revision)
		createdAt, updateAt = append(createdAt, storeutil.Nanos(v.CreatedAt)), append(updateAt, storeutil.Nanos(v.UpdatedAt))
	}
	if len(delScope) > 0 {
		b.Queue(`DELETE FROM vars USING unnest($1::text[], $2::text[]) AS d(scope, name)
			WHERE vars.scope = d.scope AND vars.name = d.name`, delScope, delName)
	}
	if len(scope) > 0 {
		// created_at is set too: a var deleted and set again within the
		// batch is a new var.
		b.Queue(`INSERT INTO vars (scope, name, id, sealed, secret, description, version, revision, created_at, updated_at, updated_by, updated_by_token)
			SELECT s, n, i, se, sc, d, v, `+baseRev+` + r, c, u, b, bt
			FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::bool[], $6::text[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::text[], $12::text[])
				AS x(s, n, i, se, sc, d, v, r, c, u, b, bt)
			ON CONFLICT (scope, name) DO UPDATE SET
				id = excluded.id, sealed = excluded.sealed, secret = excluded.secret,
				description = excluded.description, version = excluded.version, revision = excluded.revision,
				created_at = excluded.created_at, updated_at = excluded.updated_at, updated_by = excluded.updated_by,
				updated_by_token = excluded.updated_by_token`,
			scope, name, id, sealed, secret, desc, version, rev, createdAt, updateAt, by, byTok)
	}
}

// historyRows are the history rows of a batch, column by column.
type historyRows struct {
	rev, version, at                 []int64
	scope, name, op, id, desc, actor []string
	actorToken                       []string
	secret                           []bool
	sealed                           [][]byte
}

func (h *historyRows) add(rev int64, scope, name, op, id string, version int64, secret bool, desc string, sealed []byte, actor, actorToken string, at int64) {
	h.rev, h.scope, h.name, h.op, h.id = append(h.rev, rev), append(h.scope, scope), append(h.name, name), append(h.op, op), append(h.id, id)
	h.version, h.secret, h.desc, h.sealed = append(h.version, version), append(h.secret, secret), append(h.desc, desc), append(h.sealed, sealed)
	h.actor, h.at, h.actorToken = append(h.actor, actor), append(h.at, at), append(h.actorToken, actorToken)
}

// committedStates returns each scope that a batch changed as it committed
// it: state holds the batch's end state of each, whose revisions (the
// scope's, its EnvRevision and those of the vars the batch set) are the
// batch's own 1…n until first, the revision before the batch, is added.
// The snapshots are new: state's may have been changed in place.
func committedStates(state map[string]*envy.ScopeVars, scopes, envRevs map[string]int64, envRel map[string]bool,
	vars map[[2]string]*envy.StoredVar, first int64, now time.Time) []*envy.ScopeVars {
	out := make([]*envy.ScopeVars, 0, len(scopes))
	for p, rev := range scopes {
		cur := state[p]
		if cur == nil {
			continue
		}
		sv := &envy.ScopeVars{Scope: cur.Scope, Vars: make([]envy.StoredVar, len(cur.Vars))}
		for i, v := range cur.Vars {
			if nv, ok := vars[[2]string{p, v.Name}]; ok && nv != nil {
				v = *nv
				v.Revision += first
			}
			sv.Vars[i] = v
		}
		sv.Scope.Revision, sv.Scope.EnvRevision, sv.Scope.UpdatedAt = rev+first, envRevs[p], now
		if envRel[p] {
			sv.Scope.EnvRevision += first
		}
		sv.Scope.VarCount = len(sv.Vars)
		out = append(out, sv)
	}
	return out
}
