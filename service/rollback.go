package service

import (
	"context"
	"sort"

	"github.com/envy-dev/envy"
)

// RollbackPlan is what a rollback to a revision would change, by name.
type RollbackPlan struct {
	Added   []string // vars the scope had then and lacks now
	Removed []string // vars it has now and lacked then
	Changed []string // vars whose value, flag or description differs
}

// PlanRollback tells what Rollback(path, to) would change now, for a
// caller who may read the scope. It costs what the scope's vars cost, not
// its history: the state at to comes from the store's VarsAt (one row per
// var), and only the values of plain vars whose version differs are
// opened, to compare them. A secret is changed unless it is the very
// version it was then: whether its value is equal is not told.
func (s *Service) PlanRollback(ctx context.Context, path string, to int64) (RollbackPlan, error) {
	if err := s.readAuth(ctx, path, envy.AuditHistory, nil, false); err != nil {
		return RollbackPlan{}, err
	}
	cur, err := s.store.Revision(ctx)
	if err != nil {
		return RollbackPlan{}, err
	}
	if to < 1 || to > cur {
		return RollbackPlan{}, envy.Invalid(envy.Field("query.to", "out_of_range", "the revision must be between 1 and %d", cur))
	}
	sv, err := s.ownVars(ctx, path)
	if err != nil {
		return RollbackPlan{}, err
	}
	then, err := s.store.VarsAt(ctx, path, to)
	if err != nil {
		return RollbackPlan{}, err
	}
	want := make(map[string]envy.Change, len(then))
	for _, t := range then {
		want[t.Name] = t
	}
	var p RollbackPlan
	have := make(map[string]bool, len(sv.Vars))
	for _, v := range sv.Vars {
		have[v.Name] = true
		t, ok := want[v.Name]
		if !ok {
			p.Removed = append(p.Removed, v.Name)
			continue
		}
		same := v.Revision == t.Revision && v.Version == t.Version
		if !same && !v.Secret && !t.Secret && v.Description == t.Description {
			now, err := s.open(path, v.Name, v.Version, v.Sealed)
			if err != nil {
				return RollbackPlan{}, err
			}
			old, err := s.open(path, t.Name, t.Version, t.Sealed)
			if err != nil {
				return RollbackPlan{}, err
			}
			same = now.Equal(old)
		}
		if !same {
			p.Changed = append(p.Changed, v.Name)
		}
	}
	for _, t := range then {
		if !have[t.Name] {
			p.Added = append(p.Added, t.Name)
		}
	}
	sort.Strings(p.Added)
	sort.Strings(p.Removed)
	sort.Strings(p.Changed)
	return p, nil
}
