package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/storeutil"
)

// querier runs a query on the readers' pool or in the writer's
// transaction.
type querier func(ctx context.Context, query string, args ...any) (*sql.Rows, error)

// loadScopeVars reads a scope with its vars, nil when it does not exist.
// It is one statement, so the scope row and its vars come from one
// snapshot without a read transaction.
func loadScopeVars(ctx context.Context, q querier, path string) (*envy.ScopeVars, error) {
	rows, err := q(ctx, `SELECT `+storeutil.ScopeVarsColumns+`
		FROM scopes s LEFT JOIN vars v ON v.scope = s.path
		WHERE s.path = ?
		ORDER BY v.name`, path)
	if err != nil {
		return nil, dbErr("read a scope", err)
	}
	m, err := storeutil.ScanScopeVars(sqlRows{rows})
	if err != nil {
		return nil, dbErr("read a scope", err)
	}
	return m[path], nil
}

// scopeVars reads a scope with its vars from the readers' pool; nil when
// it does not exist.
func (s *Store) scopeVars(ctx context.Context, path string) (*envy.ScopeVars, error) {
	return loadScopeVars(ctx, s.readers.QueryContext, path)
}

// GetScope returns the scope at path with its VarCount.
func (s *Store) GetScope(ctx context.Context, path string) (envy.Scope, error) {
	if s.closed.Load() {
		return envy.Scope{}, storeutil.ErrClosed()
	}
	sv, err := s.scopeVars(ctx, path)
	if err != nil {
		return envy.Scope{}, err
	}
	if sv == nil {
		return envy.Scope{}, storeutil.NotFound(path)
	}
	return storeutil.CloneScope(sv.Scope), nil
}

// ListScopes returns scopes in path order.
func (s *Store) ListScopes(ctx context.Context, q envy.ScopeQuery) ([]envy.Scope, error) {
	if s.closed.Load() {
		return nil, storeutil.ErrClosed()
	}
	return storeutil.ListScopes(q, func(prefix, after string, n int) ([]envy.Scope, bool, error) {
		return s.listScopes(ctx, prefix, after, n)
	})
}

// listScopes reads up to n scopes after the cursor, from the first path
// not below prefix; more tells whether the page was full.
func (s *Store) listScopes(ctx context.Context, prefix, after string, n int) (page []envy.Scope, more bool, err error) {
	rows, err := s.readers.QueryContext(ctx, `SELECT s.path, s.description, s.inherits, s.revision, s.created_at, s.updated_at,
			(SELECT COUNT(*) FROM vars v WHERE v.scope = s.path)
		FROM scopes s
		WHERE s.path > ? AND s.path >= ?
		ORDER BY s.path
		LIMIT ?`, after, prefix, n)
	if err != nil {
		return nil, false, dbErr("list scopes", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			sc       envy.Scope
			inherits string
			c, u     int64
		)
		if err := rows.Scan(&sc.Path, &sc.Description, &inherits, &sc.Revision, &c, &u, &sc.VarCount); err != nil {
			return nil, false, dbErr("list scopes", err)
		}
		sc.CreatedAt, sc.UpdatedAt = storeutil.FromNanos(c), storeutil.FromNanos(u)
		if sc.Inherits, err = storeutil.ParseList[string](inherits); err != nil {
			return nil, false, dbErr("decode inherits", err)
		}
		page = append(page, sc)
	}
	if err := rows.Err(); err != nil {
		return nil, false, dbErr("list scopes", err)
	}
	return page, len(page) == n, nil
}

// ScopeTree returns the scope at path and every scope it inherits from,
// keyed by path. The ScopeVars may be shared with a cache and with other
// callers: treat them as read-only.
func (s *Store) ScopeTree(ctx context.Context, path string) (map[string]*envy.ScopeVars, error) {
	if s.closed.Load() {
		return nil, storeutil.ErrClosed()
	}
	tree := make(map[string]*envy.ScopeVars)
	queue := []string{path}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if _, seen := tree[p]; seen {
			continue // a diamond, or a cycle that slipped past validation
		}
		sv, err := s.scopeVars(ctx, p)
		if err != nil {
			return nil, err
		}
		if sv == nil {
			if p == path {
				return nil, storeutil.NotFound(path)
			}
			// Deleting an inherited scope is refused, so this is a read
			// between two commits; what is left is still a valid tree.
			continue
		}
		tree[p] = sv
		queue = append(queue, sv.Scope.Inherits...)
	}
	return tree, nil
}

// PutScope creates or updates a scope's description and inherits.
func (s *Store) PutScope(ctx context.Context, w envy.ScopeWrite) (envy.Scope, bool, error) {
	if w.Plan == nil {
		return envy.Scope{}, false, errNoPlan
	}
	return storeutil.Returning(func(fn func(*txn) error) error { return s.do(ctx, fn) }, func(t *txn) (envy.Scope, bool, error) { return t.putScope(w) })
}

func (t *txn) putScope(w envy.ScopeWrite) (envy.Scope, bool, error) {
	cur, err := t.scope(w.Path)
	if err != nil {
		return envy.Scope{}, false, err
	}
	if err := storeutil.CheckRevision(w.Path, scopeOf(cur), w.IfRevision); err != nil {
		return envy.Scope{}, false, err
	}
	desc, inherits, err := storeutil.PlanScope(w, scopeOf(cur), func(path string) (envy.Scope, error) {
		sv, err := t.scope(path)
		if err != nil {
			return envy.Scope{}, err
		}
		if sv == nil {
			return envy.Scope{}, storeutil.NotFound(path)
		}
		return storeutil.CloneScope(sv.Scope), nil
	}, func(p string) (bool, error) {
		sv, err := t.scope(p)
		return sv != nil, err
	})
	if err != nil {
		return envy.Scope{}, false, err
	}
	inheritsJSON, err := storeutil.JSONList(inherits)
	if err != nil {
		return envy.Scope{}, false, dbErr("encode inherits", err)
	}
	rev, err := t.nextRevision()
	if err != nil {
		return envy.Scope{}, false, err
	}
	var curScope *envy.Scope
	if cur != nil {
		curScope = &cur.Scope
	}
	envRev, envChanged := storeutil.ScopeEnvRevision(curScope, inherits, rev)
	sc := envy.Scope{Path: w.Path, Description: desc, Inherits: inherits, Revision: rev, EnvRevision: envRev, CreatedAt: t.now, UpdatedAt: t.now}
	var vars []envy.StoredVar
	if cur == nil {
		if _, err := t.exec(`INSERT INTO scopes (path, description, inherits, revision, env_revision, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			w.Path, desc, inheritsJSON, rev, envRev, storeutil.Nanos(t.now), storeutil.Nanos(t.now)); err != nil {
			return envy.Scope{}, false, dbErr("insert a scope", err)
		}
	} else {
		sc.CreatedAt = cur.Scope.CreatedAt
		vars = cur.Vars // immutable, so the new entry may share them
		if _, err := t.exec(`UPDATE scopes SET description = ?, inherits = ?, revision = ?, env_revision = ?, updated_at = ? WHERE path = ?`,
			desc, inheritsJSON, rev, envRev, storeutil.Nanos(t.now), w.Path); err != nil {
			return envy.Scope{}, false, dbErr("update a scope", err)
		}
		if _, err := t.exec(`DELETE FROM scope_parents WHERE child = ?`, w.Path); err != nil {
			return envy.Scope{}, false, dbErr("update a scope's parents", err)
		}
	}
	for i, p := range inherits {
		if _, err := t.exec(`INSERT INTO scope_parents (child, position, parent) VALUES (?, ?, ?)`, w.Path, i, p); err != nil {
			return envy.Scope{}, false, dbErr("update a scope's parents", err)
		}
	}
	if w.Rollout != nil || w.ClearRollout {
		if err := t.rollout().PutPolicy(w.Path, w.Rollout); err != nil {
			return envy.Scope{}, false, dbErr("put a rollout policy", err)
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
	sc.VarCount = len(vars)
	t.setScope(w.Path, &envy.ScopeVars{Scope: sc, Vars: vars})
	t.notify(envy.Notice{Kind: envy.NoticeScopeMeta, Scope: w.Path, Revision: rev, MetaOnly: !envChanged})
	return storeutil.CloneScope(sc), cur == nil, nil
}

// DeleteScope deletes a scope with its vars, history and consumers.
func (s *Store) DeleteScope(ctx context.Context, path string, ifRevision int64, audit []envy.AuditEntry) (bool, int64, error) {
	return storeutil.Returning(func(fn func(*txn) error) error { return s.do(ctx, fn) },
		func(t *txn) (bool, int64, error) { return t.deleteScope(path, ifRevision, audit) })
}

func (t *txn) deleteScope(path string, ifRevision int64, audit []envy.AuditEntry) (bool, int64, error) {
	cur, err := t.scope(path)
	if err != nil {
		return false, 0, err
	}
	if err := storeutil.CheckRevision(path, scopeOf(cur), ifRevision); err != nil {
		return false, 0, err
	}
	if cur == nil {
		return false, 0, nil
	}
	rows, err := t.query(t.ctx, `SELECT child FROM scope_parents WHERE parent = ? AND child <> ? ORDER BY child LIMIT ?`, path, path, envy.MaxInheritorsNamed)
	if err != nil {
		return false, 0, dbErr("look up inheriting scopes", err)
	}
	var children []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			rows.Close()
			return false, 0, dbErr("look up inheriting scopes", err)
		}
		children = append(children, c)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return false, 0, dbErr("look up inheriting scopes", err)
	}
	if len(children) > 0 {
		return false, 0, &envy.InheritedError{By: children}
	}
	rev, err := t.nextRevision()
	if err != nil {
		return false, 0, err
	}
	for _, q := range []string{
		`DELETE FROM history WHERE scope = ?`,
		`DELETE FROM vars WHERE scope = ?`,
		`DELETE FROM consumers WHERE scope = ?`,
		`DELETE FROM scope_parents WHERE child = ?`,
		`DELETE FROM scopes WHERE path = ?`,
	} {
		if _, err := t.exec(q, path); err != nil {
			return false, 0, dbErr("delete a scope", err)
		}
	}
	if err := t.audit(audit, rev); err != nil {
		return false, 0, err
	}
	if err := t.event(storeutil.DeleteEvent(path, storeutil.Removed(cur.Vars), rev, t.now, audit)); err != nil {
		return false, 0, err
	}
	t.setScope(path, nil)
	t.notify(envy.Notice{Kind: envy.NoticeScopeMeta, Scope: path, Revision: rev})
	return true, rev, nil
}

// scopeOf is the scope of sv, nil when sv is.
func scopeOf(sv *envy.ScopeVars) *envy.Scope {
	if sv == nil {
		return nil
	}
	return &sv.Scope
}
