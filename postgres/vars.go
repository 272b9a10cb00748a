package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/storeutil"
)

var errNoPlan = errors.New("postgres: the scope write has no Plan")

// Write applies one atomic change to a scope's vars, planned by the
// service, if the scope is still as the plan saw it. The scope is locked
// against other writers on any server while its state is checked.
func (s *Store) Write(ctx context.Context, w envy.Write) (envy.WriteResult, error) {
	var res envy.WriteResult
	err := s.tx(ctx, "write", func(t *txn) error {
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
	cur, err := t.lockAndLoad(w.Scope)
	if err != nil {
		return envy.WriteResult{}, err
	}
	eff, none, err := storeutil.Prepare(w, cur)
	if err != nil || len(eff) == 0 {
		return none, err
	}

	rev, err := t.nextRevision()
	if err != nil {
		return envy.WriteResult{}, err
	}
	at := storeutil.Nanos(t.now)
	b := &pgx.Batch{}
	if cur == nil {
		b.Queue(`INSERT INTO scopes (path, description, inherits, revision, created_at, updated_at) VALUES ($1, '', '[]', $2, $3, $3)`,
			w.Scope, rev, at)
	} else {
		b.Queue(`UPDATE scopes SET revision = $1, updated_at = $2 WHERE path = $3`, rev, at, w.Scope)
	}
	res := envy.WriteResult{Revision: rev, Changed: true, ScopeCreated: cur == nil}
	for _, e := range eff {
		if e.Delete {
			b.Queue(`DELETE FROM vars WHERE scope = $1 AND name = $2`, w.Scope, e.Name)
			b.Queue(`INSERT INTO history (revision, scope, name, op, var_id, version, secret, description, sealed, actor, at)
				VALUES ($1, $2, $3, 'delete', $4, $5, $6, $7, NULL, $8, $9)`,
				rev, w.Scope, e.Name, e.Old.ID, e.Old.Version, e.Old.Secret, e.Old.Description, w.Actor, at)
			continue
		}
		v := storeutil.NewVar(w.Scope, w.Actor, e, rev, t.now)
		b.Queue(`INSERT INTO vars (scope, name, id, sealed, secret, description, version, revision, created_at, updated_at, updated_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
			ON CONFLICT (scope, name) DO UPDATE SET
				id = excluded.id, sealed = excluded.sealed, secret = excluded.secret,
				description = excluded.description, version = excluded.version, revision = excluded.revision,
				updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
			w.Scope, v.Name, v.ID, v.Sealed, v.Secret, v.Description, v.Version, rev, storeutil.Nanos(v.CreatedAt), at, w.Actor)
		b.Queue(`INSERT INTO history (revision, scope, name, op, var_id, version, secret, description, sealed, actor, at)
			VALUES ($1, $2, $3, 'set', $4, $5, $6, $7, $8, $9, $10)`,
			rev, w.Scope, v.Name, v.ID, v.Version, v.Secret, v.Description, v.Sealed, w.Actor, at)
		res.Vars = append(res.Vars, v)
	}
	t.pending = b // sent with the audit entries and the notice, in one round trip
	if err := t.audit(w.Audit, rev); err != nil {
		return envy.WriteResult{}, err
	}
	t.notify(envy.Notice{Kind: envy.NoticeScope, Scope: w.Scope, Revision: rev})
	return res, nil
}

const changeColumns = storeutil.ChangeColumns
