package service

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/envy-dev/envy"
)

func validPath(path string) error {
	if f := envy.ValidateScopePath("path.scope", path); f != nil {
		return envy.Invalid(*f)
	}
	return nil
}

func scopeNotFound(path string) *envy.Error {
	return envy.Errorf(envy.ENotFound, "scope %s not found", path)
}

// ListScopes returns the scopes the caller can see, in path order.
func (s *Service) ListScopes(ctx context.Context, q envy.ScopeListQuery) (envy.Page[envy.Scope], error) {
	t := CallerFrom(ctx).Token
	limit, err := limitOf("query.limit", q.Limit)
	if err != nil {
		return envy.Page[envy.Scope]{}, err
	}
	if len(q.Prefix) > envy.MaxScopePath {
		return envy.Page[envy.Scope]{}, envy.Invalid(envy.Field("query.prefix", "too_long", "prefix is longer than %d characters", envy.MaxScopePath))
	}
	allow := func(p string) bool { return envy.Visible(t, p) }
	page, err := fetchPage(limit, func(n int) ([]envy.Scope, error) {
		// Only the ranges the token's grants can match are read, in path
		// order, so a token that sees few scopes costs few rows.
		var out []envy.Scope
		for _, p := range visiblePrefixes(t, q.Prefix) {
			if len(out) == n {
				break
			}
			if q.Cursor >= p && !strings.HasPrefix(q.Cursor, p) {
				continue // the whole range lies before the cursor
			}
			got, err := s.store.ListScopes(ctx, envy.ScopeQuery{Prefix: p, After: q.Cursor, Limit: n - len(out), Allow: allow})
			if err != nil {
				return nil, err
			}
			out = append(out, got...)
		}
		return out, nil
	}, func(sc envy.Scope) string { return sc.Path })
	for i := range page.Items {
		page.Items[i] = hideInherits(t, page.Items[i])
	}
	return page, err
}

// visiblePrefixes returns the path prefixes, within prefix, under which
// every scope that t may see lies: for each grant, its literal segments
// before the first wildcard. They are sorted and none is a prefix of
// another, so their ranges follow each other in path order. A grant that
// starts with a wildcard gives prefix itself: the whole range.
func visiblePrefixes(t *envy.Token, prefix string) []string {
	if t == nil {
		return nil
	}
	var out []string
	for _, g := range t.Permissions {
		if len(g.Actions) == 0 {
			continue
		}
		segs := strings.Split(g.Scopes, "/")
		lit := 0
		for lit < len(segs) && segs[lit] != "*" && segs[lit] != "**" {
			lit++
		}
		p := strings.Join(segs[:lit], "/")
		switch {
		case strings.HasPrefix(prefix, p):
			p = prefix
		case !strings.HasPrefix(p, prefix):
			continue // no path under p is under prefix
		}
		out = append(out, p)
	}
	slices.Sort(out)
	kept := out[:0]
	for _, p := range out {
		if len(kept) == 0 || !strings.HasPrefix(p, kept[len(kept)-1]) {
			kept = append(kept, p)
		}
	}
	return kept
}

// hideInherits returns sc with each inherited scope that t may not read
// shown as HiddenScope.
func hideInherits(t *envy.Token, sc envy.Scope) envy.Scope {
	var shown []string // a copy: sc.Inherits may be shared with a cache
	for i, p := range sc.Inherits {
		if envy.Can(t, envy.ActRead, p) {
			continue
		}
		if shown == nil {
			shown = slices.Clone(sc.Inherits)
		}
		shown[i] = envy.HiddenScope
	}
	if shown != nil {
		sc.Inherits = shown
	}
	return sc
}

// GetScope returns a scope with its var count.
func (s *Service) GetScope(ctx context.Context, path string) (envy.Scope, error) {
	if err := validPath(path); err != nil {
		return envy.Scope{}, err
	}
	if err := s.Authorize(ctx, envy.ActRead, path, envy.AuditScopeGet); err != nil {
		return envy.Scope{}, err
	}
	sc, err := s.store.GetScope(ctx, path)
	if err != nil {
		return envy.Scope{}, err
	}
	if s.rollouts.rs != nil {
		if sc.Rollout, err = s.rollouts.rs.RolloutPolicy(ctx, path); err != nil {
			return envy.Scope{}, err
		}
	}
	return hideInherits(CallerFrom(ctx).Token, sc), nil
}

// PutScope creates or updates a scope's description and inherits.
func (s *Service) PutScope(ctx context.Context, path string, in envy.ScopeInput, c envy.Cond) (envy.Scope, envy.WriteInfo, error) {
	if err := validPath(path); err != nil {
		return envy.Scope{}, envy.WriteInfo{}, err
	}
	var fields []envy.FieldError
	if in.Description != nil {
		if f := envy.ValidateDescription("body.description", *in.Description); f != nil {
			fields = append(fields, *f)
		}
	}
	t := CallerFrom(ctx).Token
	if in.Inherits != nil {
		seen := map[string]bool{}
		for i, p := range *in.Inherits {
			loc := fmt.Sprintf("body.inherits[%d]", i)
			switch {
			case p == envy.HiddenScope:
				continue // keeps a scope the caller can't read: see keepHidden
			case envy.ValidateScopePath(loc, p) != nil:
				fields = append(fields, *envy.ValidateScopePath(loc, p))
			case p == path:
				fields = append(fields, envy.Field(loc, "cycle", "a scope can't inherit itself"))
			case seen[p]:
				fields = append(fields, envy.Field(loc, "duplicate", "scope %s is listed twice", p))
			case !envy.Can(t, envy.ActRead, p):
				fields = append(fields, envy.Field(loc, "not_found", "scope %s does not exist", p))
			}
			seen[p] = true
		}
		if len(*in.Inherits) > envy.MaxInheritDepth {
			fields = append(fields, envy.Field("body.inherits", "too_many", "a scope inherits at most %d scopes", envy.MaxInheritDepth))
		}
	}
	fields = append(fields, s.validRollout(in)...)
	if (in.Rollout != nil || in.ClearRollout) && s.rollouts.rs == nil {
		fields = append(fields, envy.Field("body.rollout", "unsupported", "this server's store can't coordinate rollouts"))
	}
	if len(fields) > 0 {
		return envy.Scope{}, envy.WriteInfo{}, envy.Invalid(fields...)
	}
	if err := s.Authorize(ctx, envy.ActWrite, path, envy.AuditScopePut); err != nil {
		return envy.Scope{}, envy.WriteInfo{}, err
	}
	if in.Inherits != nil {
		if err := s.checkInheritsPlan(ctx, path, *in.Inherits); err != nil {
			return envy.Scope{}, envy.WriteInfo{}, err
		}
	}
	e := s.entry(ctx, envy.AuditScopePut, path, nil, envy.OutcomeOK)
	rec, err := s.toStreams(1)
	if err != nil {
		return envy.Scope{}, envy.WriteInfo{}, err
	}
	sc, created, err := s.store.PutScope(ctx, envy.ScopeWrite{
		Path: path, Actor: e.Actor, IfRevision: c.IfRevision, Audit: []envy.AuditEntry{e},
		Rollout: in.Rollout, ClearRollout: in.ClearRollout && in.Rollout == nil,
		Plan: func(cur *envy.Scope, lookup func(string) (envy.Scope, error)) (string, []string, error) {
			desc, inherits := "", []string{}
			if cur != nil {
				desc, inherits = cur.Description, cur.Inherits
			}
			if in.Description != nil {
				desc = *in.Description
			}
			if in.Inherits == nil {
				return desc, inherits, nil
			}
			var cur0 []string
			if cur != nil {
				cur0 = cur.Inherits
			}
			inherits, err := keepHidden(t, cur0, *in.Inherits)
			if err != nil {
				return "", nil, err
			}
			if err := envy.CheckInherits(path, inherits, lookup); err != nil {
				return "", nil, err
			}
			return desc, inherits, nil
		},
	})
	rec.done(err, sc.Revision, e)
	if err != nil {
		return envy.Scope{}, envy.WriteInfo{}, err
	}
	if sc.Rollout, err = s.rolloutPolicyPut(ctx, path, in); err != nil {
		return envy.Scope{}, envy.WriteInfo{}, err
	}
	// Watchers hear of it through the store's notice (follow.go).
	info := envy.WriteInfo{Scope: path, Revision: sc.Revision, Created: created}
	info.Synced, info.Behind = s.synced(ctx, path, sc.EnvRevision) // a description only leaves it
	return hideInherits(t, sc), info, nil
}

// keepHidden returns the inherits a caller sent with each HiddenScope
// entry replaced by the scope it stands for: the caller read its scope's
// inherits with the scopes it may not read shown as HiddenScope, and
// sending them back keeps those, in the order it puts them; leaving one
// out removes it.
func keepHidden(t *envy.Token, cur, in []string) ([]string, error) {
	var hidden []string
	for _, p := range cur {
		if !envy.Can(t, envy.ActRead, p) {
			hidden = append(hidden, p)
		}
	}
	out := make([]string, 0, len(in))
	for i, p := range in {
		if p == envy.HiddenScope {
			if len(hidden) == 0 {
				return nil, envy.Invalid(envy.Field(fmt.Sprintf("body.inherits[%d]", i), "not_found", "the scope inherits no more hidden scopes to keep"))
			}
			p, hidden = hidden[0], hidden[1:]
		}
		out = append(out, p)
	}
	return out, nil
}

// DeleteScope deletes a scope and its vars; deleting an absent scope
// succeeds. EConflict while another scope inherits it.
func (s *Service) DeleteScope(ctx context.Context, path string, c envy.Cond) (envy.WriteInfo, error) {
	if err := validPath(path); err != nil {
		return envy.WriteInfo{}, err
	}
	if err := s.Authorize(ctx, envy.ActWrite, path, envy.AuditScopeDelete); err != nil {
		return envy.WriteInfo{}, err
	}
	e := s.entry(ctx, envy.AuditScopeDelete, path, nil, envy.OutcomeDeleted)
	rec, err := s.toStreams(1)
	if err != nil {
		return envy.WriteInfo{}, err
	}
	_, rev, err := s.store.DeleteScope(ctx, path, c.IfRevision, []envy.AuditEntry{e})
	rec.done(err, rev, e)
	if envy.ErrorCode(err) == envy.EConflict {
		return envy.WriteInfo{}, inheritedRefusal(CallerFrom(ctx).Token, path, err)
	}
	if err != nil {
		return envy.WriteInfo{}, err
	}
	// Caches and watchers hear of it through the store's notice.
	return envy.WriteInfo{Scope: path, Revision: rev, Synced: true}, nil
}

// inheritedRefusal is the refusal to delete path while other scopes
// inherit it: it names the first of them that the caller may see (the
// store names some), and none when it may see none of them.
func inheritedRefusal(t *envy.Token, path string, err error) error {
	var ie *envy.InheritedError
	if errors.As(err, &ie) {
		var seen []string
		for _, c := range ie.By {
			if envy.Visible(t, c) {
				seen = append(seen, c)
			}
		}
		switch len(seen) {
		case 0:
		case 1:
			return envy.Errorf(envy.EConflict, "scope %s is inherited by %s: remove it from the inherits of %s first", path, seen[0], seen[0])
		default:
			return envy.Errorf(envy.EConflict, "scope %s is inherited by %s and %d more: remove it from their inherits first", path, seen[0], len(seen)-1)
		}
	}
	return envy.Errorf(envy.EConflict, "scope %s is inherited by another scope: remove it from that scope's inherits first", path)
}
