package service

import (
	"context"
	"sort"
	"strconv"
	"strings"

	"github.com/envy-dev/envy"
)

// History returns a scope's changes, newest first.
func (s *Service) History(ctx context.Context, path string, q envy.HistoryQuery) (envy.Page[envy.ChangeView], error) {
	limit, err := limitOf("query.limit", q.Limit)
	if err != nil {
		return envy.Page[envy.ChangeView]{}, err
	}
	after, err := parseHistoryCursor(q.Cursor, q.Before)
	if err != nil {
		return envy.Page[envy.ChangeView]{}, err
	}
	if err := s.readAuth(ctx, path, envy.AuditHistory, nil, q.Reveal); err != nil {
		return envy.Page[envy.ChangeView]{}, err
	}
	if _, err := s.store.GetScope(ctx, path); err != nil {
		return envy.Page[envy.ChangeView]{}, err
	}
	changes, err := fetchPage(limit, func(n int) ([]envy.Change, error) {
		return s.store.History(ctx, path, after, n)
	}, func(c envy.Change) string { return strconv.FormatInt(c.Revision, 10) + ":" + c.Name })
	if err != nil {
		return envy.Page[envy.ChangeView]{}, err
	}
	var lastSecret map[string]int64
	if len(changes.Items) > 0 {
		if lastSecret, err = s.store.LastSecret(ctx, path); err != nil {
			return envy.Page[envy.ChangeView]{}, err
		}
	}
	p := envy.Page[envy.ChangeView]{NextCursor: changes.NextCursor, Items: make([]envy.ChangeView, 0, len(changes.Items))}
	mayReveal := envy.Can(CallerFrom(ctx).Token, envy.ActReveal, path)
	plains := make([]envy.Sensitive, len(changes.Items))
	for i, c := range changes.Items {
		// Secret is whether the entry reads as one (envy.MaskedChange):
		// set secret, or a version of a var that was secret later.
		secret := envy.MaskedChange(c, lastSecret)
		cv := envy.ChangeView{Revision: c.Revision, Name: c.Name, Op: c.Op, Version: c.Version, Actor: c.Actor, ActorToken: c.ActorToken, At: c.At, Secret: secret, Description: c.Description}
		if c.Op == envy.OpSet {
			plain, err := s.open(path, c.Name, c.Version, c.Sealed)
			if err != nil {
				return envy.Page[envy.ChangeView]{}, err
			}
			plains[i] = plain
			if secret {
				m := envy.Mask(plain)
				cv.MaskedValue = &m
			}
			if !secret || q.Reveal {
				cv.Value = &plain
			}
		}
		p.Items = append(p.Items, cv)
	}
	// Newest first: a var's version before is further down the page.
	for i := range p.Items {
		c := &p.Items[i]
		if c.Op != envy.OpSet || c.Secret && !mayReveal {
			continue
		}
		for j := i + 1; j < len(p.Items); j++ {
			if b := p.Items[j]; b.Name == c.Name {
				// A plain version after a secret one would tell the
				// secret's value: both must be the caller's to see.
				c.SameValue = b.Op == envy.OpSet && b.Version == c.Version-1 && (!b.Secret || mayReveal) && plains[j].Equal(plains[i])
				break
			}
		}
	}
	if q.Reveal {
		if err := s.revealed(ctx, path, nil); err != nil {
			return envy.Page[envy.ChangeView]{}, err
		}
	}
	return p, nil
}

// parseHistoryCursor reads a history cursor ("<revision>:<name>", as
// History gives it) or, without one, a plain before revision.
func parseHistoryCursor(cursor string, before int64) (envy.HistoryCursor, error) {
	if before < 0 {
		return envy.HistoryCursor{}, envy.Invalid(envy.Field("query.before", "out_of_range", "before must be a positive revision"))
	}
	if cursor == "" {
		if before > 0 {
			// Everything older than before: no name sorts before "".
			return envy.HistoryCursor{Revision: before - 1, Name: "\x00"}, nil
		}
		return envy.HistoryCursor{}, nil
	}
	revs, name, ok := strings.Cut(cursor, ":")
	rev, err := strconv.ParseInt(revs, 10, 64)
	if !ok || err != nil || rev < 1 || (name != "" && envy.ValidateName("query.cursor", name, nil) != nil) {
		return envy.HistoryCursor{}, envy.Invalid(envy.Field("query.cursor", "invalid_cursor", "cursor is not one this server gave"))
	}
	return envy.HistoryCursor{Revision: rev, Name: name}, nil
}

// Rollback makes a new revision whose vars equal those the scope had at
// the given revision.
func (s *Service) Rollback(ctx context.Context, path string, revision int64, c envy.Cond) (envy.WriteInfo, error) {
	if err := validPath(path); err != nil {
		return envy.WriteInfo{}, err
	}
	if err := s.Authorize(ctx, envy.ActWrite, path, envy.AuditScopeRollback); err != nil {
		return envy.WriteInfo{}, err
	}
	cur, err := s.store.Revision(ctx)
	if err != nil {
		return envy.WriteInfo{}, err
	}
	if revision < 1 || revision > cur {
		return envy.WriteInfo{}, envy.Invalid(envy.Field("body.revision", "out_of_range", "revision must be between 1 and %d", cur))
	}
	target, err := s.store.VarsAt(ctx, path, revision)
	if err != nil {
		return envy.WriteInfo{}, err
	}
	mayReveal := envy.Can(CallerFrom(ctx).Token, envy.ActReveal, path)
	var lastSecret map[string]int64
	if !mayReveal {
		if lastSecret, err = s.store.LastSecret(ctx, path); err != nil {
			return envy.WriteInfo{}, err
		}
	}
	want := make(map[string]envy.Change, len(target))
	for _, t := range target {
		want[t.Name] = t
	}
	_, info, err := s.write(ctx, writeReq{Path: path, Action: envy.AuditScopeRollback, Outcome: envy.OutcomeOK, Opts: envy.SetOptions{Cond: c, ScopeMustExist: true}, Whole: true, Plan: func(cs envy.ScopeVars, _ *envy.Outcome) ([]envy.VarChange, error) {
		var out []envy.VarChange
		for _, v := range cs.Vars {
			if _, ok := want[v.Name]; !ok {
				out = append(out, envy.VarChange{Name: v.Name, Delete: true})
			}
		}
		names := make([]string, 0, len(want))
		for n := range want {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			t := want[n]
			plain, err := s.open(path, n, t.Version, t.Sealed)
			if err != nil {
				return nil, err
			}
			old, ok := findVar(cs.Vars, n)
			in := envy.VarInput{Value: &plain, Secret: &t.Secret, Description: &t.Description}
			if ok && sameVar(s, path, old, in) {
				continue
			}
			if ok && old.Secret && !t.Secret && !mayReveal {
				return nil, envy.Errorf(envy.EForbidden, "the rollback turns secret %s into a non-secret, which needs the reveal permission", n)
			}
			// Nor may it bring back as plain a version that its history
			// masks (envy.MaskedChange: the var was secret later).
			if !t.Secret && !mayReveal && envy.MaskedChange(t, lastSecret) {
				return nil, envy.Errorf(envy.EForbidden, "the rollback brings back a version of %s that was secret later as a non-secret, which needs the reveal permission", n)
			}
			ch := envy.VarChange{Name: n, ID: t.VarID, Secret: t.Secret, Description: t.Description, Version: 1}
			if ok {
				ch.ID, ch.Version = old.ID, old.Version+1
			}
			if ch.Sealed, err = s.seal(path, n, ch.Version, plain); err != nil {
				return nil, err
			}
			out = append(out, ch)
		}
		if err := s.checkPlan(ctx, path, cs, out); err != nil {
			return nil, err
		}
		return out, nil
	}})
	return info, err
}
