package sqlite

import (
	"context"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/storeutil"
)

// Write applies one atomic change to a scope's vars, planned by the
// service, if the scope is still as the plan saw it.
func (s *Store) Write(ctx context.Context, w envy.Write) (envy.WriteResult, error) {
	var res envy.WriteResult
	err := s.do(ctx, func(t *txn) error {
		var err error
		res, err = t.write(w)
		return err
	})
	if err != nil {
		return envy.WriteResult{}, err
	}
	return res, nil
}

func (t *txn) write(w envy.Write) (envy.WriteResult, error) {
	if w.LiveToken != "" {
		var live bool
		if err := t.queryRow(`SELECT EXISTS (SELECT 1 FROM tokens WHERE id = ? AND revoked_at IS NULL)`, w.LiveToken).Scan(&live); err != nil {
			return envy.WriteResult{}, dbErr("check a token", err)
		}
		if !live {
			return envy.WriteResult{}, envy.ErrTokenNotLive
		}
	}
	cur, err := t.scope(w.Scope)
	if err != nil {
		return envy.WriteResult{}, err
	}
	eff, none, err := storeutil.Prepare(w, cur)
	if err != nil || eff == nil {
		return none, err
	}
	var buf [4]uint32
	if ids := storeutil.EffectKeyIDs(buf[:0], eff); len(ids) > 0 {
		if err := t.liveKeys(ids); err != nil {
			return envy.WriteResult{}, err
		}
	}
	var curVars []envy.StoredVar
	if cur != nil {
		curVars = cur.Vars
	}

	rev, err := t.nextRevision()
	if err != nil {
		return envy.WriteResult{}, err
	}
	at := storeutil.Nanos(t.now)
	envRev, envChanged := storeutil.EnvRevision(cur, eff, rev)
	var sc envy.Scope
	if cur == nil {
		sc = envy.Scope{Path: w.Scope, Revision: rev, EnvRevision: envRev, CreatedAt: t.now, UpdatedAt: t.now}
		if _, err := t.exec(`INSERT INTO scopes (path, description, inherits, revision, env_revision, created_at, updated_at) VALUES (?, '', '[]', ?, ?, ?, ?)`,
			w.Scope, rev, envRev, at, at); err != nil {
			return envy.WriteResult{}, dbErr("create a scope", err)
		}
	} else {
		sc = cur.Scope // its Inherits are immutable and may be shared
		sc.Revision, sc.EnvRevision, sc.UpdatedAt = rev, envRev, t.now
		if _, err := t.exec(`UPDATE scopes SET revision = ?, env_revision = ?, updated_at = ? WHERE path = ?`, rev, envRev, at, w.Scope); err != nil {
			return envy.WriteResult{}, dbErr("update a scope", err)
		}
	}

	res := envy.WriteResult{Revision: rev, EnvRevision: envRev, Changed: true, ScopeCreated: cur == nil}
	next := make(map[string]*envy.StoredVar, len(eff)) // nil: deleted
	for _, c := range eff {
		if c.Delete {
			if _, err := t.exec(`DELETE FROM vars WHERE scope = ? AND name = ?`, w.Scope, c.Name); err != nil {
				return envy.WriteResult{}, dbErr("delete a var", err)
			}
			if _, err := t.exec(`INSERT INTO history (revision, scope, name, op, var_id, version, secret, description, sealed, actor, at, actor_token)
				VALUES (?, ?, ?, 'delete', ?, ?, ?, ?, NULL, ?, ?, ?)`,
				rev, w.Scope, c.Name, c.Old.ID, c.Old.Version, c.Old.Secret, c.Old.Description, w.Actor, at, w.ActorToken); err != nil {
				return envy.WriteResult{}, dbErr("record a delete", err)
			}
			next[c.Name] = nil
			continue
		}
		v := storeutil.NewVar(w.Scope, w.Actor, w.ActorToken, c, rev, t.now)
		if _, err := t.exec(`INSERT INTO vars (scope, name, id, sealed, secret, description, version, revision, created_at, updated_at, updated_by, updated_by_token)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (scope, name) DO UPDATE SET
				id = excluded.id, sealed = excluded.sealed, secret = excluded.secret,
				description = excluded.description, version = excluded.version, revision = excluded.revision,
				updated_at = excluded.updated_at, updated_by = excluded.updated_by, updated_by_token = excluded.updated_by_token`,
			w.Scope, v.Name, v.ID, v.Sealed, v.Secret, v.Description, v.Version, rev, storeutil.Nanos(v.CreatedAt), at, w.Actor, w.ActorToken); err != nil {
			return envy.WriteResult{}, dbErr("write a var", err)
		}
		if _, err := t.exec(`INSERT INTO history (revision, scope, name, op, var_id, version, secret, description, sealed, actor, at, actor_token)
			VALUES (?, ?, ?, 'set', ?, ?, ?, ?, ?, ?, ?, ?)`,
			rev, w.Scope, v.Name, v.ID, v.Version, v.Secret, v.Description, v.Sealed, w.Actor, at, w.ActorToken); err != nil {
			return envy.WriteResult{}, dbErr("record a set", err)
		}
		next[c.Name] = &v
		res.Vars = append(res.Vars, v)
	}
	if err := t.audit(w.Audit, rev); err != nil {
		return envy.WriteResult{}, err
	}
	if envChanged {
		if err := t.event(storeutil.WriteEvent(&w, eff, rev, t.now)); err != nil {
			return envy.WriteResult{}, err
		}
	}

	// The scope's new state, for the later ops of the batch.
	vars := storeutil.Merge(curVars, next)
	sc.VarCount = len(vars)
	state := &envy.ScopeVars{Scope: sc, Vars: vars}
	t.setScope(w.Scope, state)
	// The notice carries the committed state, so that a cache of scopes
	// keeps it rather than reading the scope again for the next write.
	t.notify(envy.Notice{Kind: envy.NoticeScope, Scope: w.Scope, Revision: rev, MetaOnly: !envChanged, State: state})
	return res, nil
}

const changeColumns = storeutil.ChangeColumns

// checkScope returns ENotFound unless the scope exists.
func (s *Store) checkScope(ctx context.Context, path string) error {
	var ok bool
	if err := s.readers.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM scopes WHERE path = ?)`, path).Scan(&ok); err != nil {
		return dbErr("look up a scope", err)
	}
	if !ok {
		return storeutil.NotFound(path)
	}
	return nil
}
