package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/storeutil"
)

// querier is a pool, a connection or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// GetScope returns the scope at path with its VarCount.
func (s *Store) GetScope(ctx context.Context, path string) (envy.Scope, error) {
	if s.closed.Load() {
		return envy.Scope{}, storeutil.ErrClosed()
	}
	sc, err := getScope(ctx, s.pool, path)
	if err != nil {
		return envy.Scope{}, s.dbErr("read a scope", err)
	}
	return sc, nil
}

func getScope(ctx context.Context, q querier, path string) (envy.Scope, error) {
	sc, err := scanScope(q.QueryRow(ctx, `SELECT `+scopeColumns+` FROM scopes s WHERE s.path = $1`, path))
	if errors.Is(err, pgx.ErrNoRows) {
		return envy.Scope{}, storeutil.NotFound(path)
	}
	return sc, err
}

const scopeColumns = `s.path, s.description, s.inherits, s.revision, s.env_revision, s.created_at, s.updated_at,
	(SELECT COUNT(*) FROM vars v WHERE v.scope = s.path)`

func scanScope(row pgx.Row) (envy.Scope, error) {
	var (
		sc       envy.Scope
		inherits string
		c, u     int64
	)
	if err := row.Scan(&sc.Path, &sc.Description, &inherits, &sc.Revision, &sc.EnvRevision, &c, &u, &sc.VarCount); err != nil {
		return envy.Scope{}, err
	}
	sc.CreatedAt, sc.UpdatedAt = storeutil.FromNanos(c), storeutil.FromNanos(u)
	var err error
	sc.Inherits, err = storeutil.ParseList[string](inherits)
	return sc, err
}

// ListScopes returns scopes in path order.
func (s *Store) ListScopes(ctx context.Context, q envy.ScopeQuery) ([]envy.Scope, error) {
	if s.closed.Load() {
		return nil, storeutil.ErrClosed()
	}
	return storeutil.ListScopes(q, func(prefix, after string, n int) ([]envy.Scope, bool, error) {
		rows, err := s.pool.Query(ctx, `SELECT `+scopeColumns+` FROM scopes s
			WHERE s.path > $1 AND s.path >= $2 ORDER BY s.path LIMIT $3`, after, prefix, n)
		if err != nil {
			return nil, false, s.dbErr("list scopes", err)
		}
		defer rows.Close()
		var page []envy.Scope
		for rows.Next() {
			sc, err := scanScope(rows)
			if err != nil {
				return nil, false, s.dbErr("list scopes", err)
			}
			page = append(page, sc)
		}
		if err := rows.Err(); err != nil {
			return nil, false, s.dbErr("list scopes", err)
		}
		return page, len(page) == n, nil
	})
}

// ScopeTree returns the scope at path and every scope it inherits from,
// keyed by path, read in one statement: one consistent snapshot.
//
// Each step is an index lookup by path, whatever the planner guesses of
// the recursive part's size: the LATERAL subqueries with OFFSET 0 can't be
// turned into joins, so each runs once per scope of the tree. (As plain
// joins, the plan followed the planner's guess of the tree's size, which
// grows with the tables: it scanned and hashed every scope, with
// statistics behind the tables' growth every var too, and then compiled
// itself with JIT; from 1 ms to hundreds a read at 11,000 scopes.)
func (s *Store) ScopeTree(ctx context.Context, path string) (map[string]*envy.ScopeVars, error) {
	if s.closed.Load() {
		return nil, storeutil.ErrClosed()
	}
	rows, err := s.pool.Query(ctx, `WITH RECURSIVE tree (path) AS (
			SELECT $1::text COLLATE "C"
			UNION
			SELECT p.parent FROM tree t
			CROSS JOIN LATERAL (SELECT parent FROM scope_parents p WHERE p.child = t.path OFFSET 0) p
		)
		SELECT `+storeutil.ScopeVarsColumns+`
		FROM tree
		CROSS JOIN LATERAL (SELECT * FROM scopes s WHERE s.path = tree.path OFFSET 0) s
		LEFT JOIN LATERAL (SELECT * FROM vars v WHERE v.scope = s.path OFFSET 0) v ON true
		ORDER BY s.path, v.name`, path)
	if err != nil {
		return nil, s.dbErr("read a scope tree", err)
	}
	tree, err := storeutil.ScanScopeVars(rows)
	if err != nil {
		return nil, s.dbErr("read a scope tree", err)
	}
	if tree[path] == nil {
		return nil, storeutil.NotFound(path)
	}
	return tree, nil
}

// PutScope creates or updates a scope's description and inherits.
func (s *Store) PutScope(ctx context.Context, w envy.ScopeWrite) (envy.Scope, bool, error) {
	if w.Plan == nil {
		return envy.Scope{}, false, errNoPlan
	}
	return storeutil.Returning(func(fn func(*txn) error) error { return s.tx(ctx, "put a scope", fn) }, func(t *txn) (envy.Scope, bool, error) { return t.putScope(w) })
}

func (t *txn) putScope(w envy.ScopeWrite) (envy.Scope, bool, error) {
	// Changes of inherits take turns, so that two servers can't each add
	// one half of a cycle that neither plan saw; they are rare.
	if _, err := t.Exec(t.ctx, `SELECT pg_advisory_xact_lock($1)`, inheritsLock); err != nil {
		return envy.Scope{}, false, err
	}
	if err := t.lockScope(w.Path); err != nil {
		return envy.Scope{}, false, err
	}
	var cur *envy.Scope
	switch sc, err := getScope(t.ctx, t, w.Path); {
	case err == nil:
		cur = &sc
	case envy.ErrorCode(err) != envy.ENotFound:
		return envy.Scope{}, false, err
	}
	if err := storeutil.CheckRevision(w.Path, cur, w.IfRevision); err != nil {
		return envy.Scope{}, false, err
	}
	// The parents are locked against deletion until this commits; one
	// that is missing is the caller's mistake.
	desc, inherits, err := storeutil.PlanScope(w, cur, func(path string) (envy.Scope, error) { return getScope(t.ctx, t, path) },
		func(p string) (bool, error) {
			var one int
			err := t.QueryRow(t.ctx, `SELECT 1 FROM scopes WHERE path = $1 FOR KEY SHARE`, p).Scan(&one)
			if errors.Is(err, pgx.ErrNoRows) {
				return false, nil
			}
			return err == nil, err
		})
	if err != nil {
		return envy.Scope{}, false, err
	}
	inheritsJSON, err := storeutil.JSONList(inherits)
	if err != nil {
		return envy.Scope{}, false, err
	}
	rev, err := t.nextRevision()
	if err != nil {
		return envy.Scope{}, false, err
	}
	at := storeutil.Nanos(t.now)
	envRev, envChanged := storeutil.ScopeEnvRevision(cur, inherits, rev)
	sc := envy.Scope{Path: w.Path, Description: desc, Inherits: inherits, Revision: rev, EnvRevision: envRev, CreatedAt: t.now, UpdatedAt: t.now}
	b := &pgx.Batch{}
	if cur == nil {
		b.Queue(`INSERT INTO scopes (path, description, inherits, revision, env_revision, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)`,
			w.Path, desc, inheritsJSON, rev, envRev, at)
	} else {
		sc.CreatedAt, sc.VarCount = cur.CreatedAt, cur.VarCount
		b.Queue(`UPDATE scopes SET description = $1, inherits = $2, revision = $3, env_revision = $4, updated_at = $5 WHERE path = $6`,
			desc, inheritsJSON, rev, envRev, at, w.Path)
		b.Queue(`DELETE FROM scope_parents WHERE child = $1`, w.Path)
	}
	for i, p := range inherits {
		b.Queue(`INSERT INTO scope_parents (child, position, parent) VALUES ($1, $2, $3)`, w.Path, i, p)
	}
	if err := t.SendBatch(t.ctx, b).Close(); err != nil {
		return envy.Scope{}, false, err
	}
	if w.Rollout != nil || w.ClearRollout {
		x, err := t.rolloutTx(w.Path)
		if err != nil {
			return envy.Scope{}, false, err
		}
		if err := x.PutPolicy(w.Path, w.Rollout); err != nil {
			return envy.Scope{}, false, err
		}
	}
	if err := t.audit(w.Audit, rev); err != nil {
		return envy.Scope{}, false, err
	}
	if envChanged {
		if err := t.event(storeutil.ScopeEvent(envy.EventScopeChanged, w.Path, rev, t.now, w.Audit)); err != nil {
			return envy.Scope{}, false, err
		}
	}
	t.notify(envy.Notice{Kind: envy.NoticeScopeMeta, Scope: w.Path, Revision: rev, MetaOnly: !envChanged})
	return storeutil.CloneScope(sc), cur == nil, nil
}

// DeleteScope deletes a scope with its vars, history and consumers.
func (s *Store) DeleteScope(ctx context.Context, path string, ifRevision int64, audit []envy.AuditEntry) (bool, int64, error) {
	return storeutil.Returning(func(fn func(*txn) error) error { return s.tx(ctx, "delete a scope", fn) },
		func(t *txn) (bool, int64, error) { return t.deleteScope(path, ifRevision, audit) })
}

func (t *txn) deleteScope(path string, ifRevision int64, audit []envy.AuditEntry) (bool, int64, error) {
	if err := t.lockScope(path); err != nil {
		return false, 0, err
	}
	cur, err := getScope(t.ctx, t, path)
	if envy.ErrorCode(err) == envy.ENotFound {
		return false, 0, storeutil.CheckRevision(path, nil, ifRevision)
	}
	if err != nil {
		return false, 0, err
	}
	if err := storeutil.CheckRevision(path, &cur, ifRevision); err != nil {
		return false, 0, err
	}
	rows, err := t.Query(t.ctx, `SELECT child FROM scope_parents WHERE parent = $1 AND child <> $1 ORDER BY child LIMIT $2`, path, envy.MaxInheritorsNamed)
	if err != nil {
		return false, 0, err
	}
	children, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return false, 0, err
	}
	if len(children) > 0 {
		return false, 0, &envy.InheritedError{By: children}
	}
	// The vars it removes, for the event (a scope whose values refer to
	// it loses them); the scope's lock keeps them as read.
	rows, err = t.Query(t.ctx, `SELECT name, secret FROM vars WHERE scope = $1 ORDER BY name`, path)
	if err != nil {
		return false, 0, err
	}
	removed, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (envy.EventVar, error) {
		v := envy.EventVar{Change: envy.VarRemoved}
		return v, r.Scan(&v.Name, &v.Secret)
	})
	if err != nil {
		return false, 0, err
	}
	// Delete first and take the revision last: the revision row is
	// the last lock a transaction takes (see the package comment).
	b := &pgx.Batch{}
	for _, q := range []string{
		`DELETE FROM history WHERE scope = $1`,
		`DELETE FROM vars WHERE scope = $1`,
		`DELETE FROM consumers WHERE scope = $1`,
		`DELETE FROM scope_parents WHERE child = $1`,
		`DELETE FROM scopes WHERE path = $1`,
	} {
		b.Queue(q, path)
	}
	if err := t.SendBatch(t.ctx, b).Close(); err != nil {
		if isCode(err, "23503") { // a scope that inherits it committed meanwhile
			return false, 0, envy.Errorf(envy.EConflict, "scope is inherited by another scope")
		}
		return false, 0, err
	}
	rev, err := t.nextRevision()
	if err != nil {
		return false, 0, err
	}
	if err := t.audit(audit, rev); err != nil {
		return false, 0, err
	}
	if err := t.event(storeutil.DeleteEvent(path, removed, rev, t.now, audit)); err != nil {
		return false, 0, err
	}
	t.notify(envy.Notice{Kind: envy.NoticeScopeMeta, Scope: path, Revision: rev})
	return true, rev, nil
}
