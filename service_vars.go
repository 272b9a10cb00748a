package envy

import (
	"context"
	"slices"
	"sort"
	"strconv"
	"strings"
)

func (s *Service) validName(loc, name string) *FieldError {
	return ValidateName(loc, name, s.opts.ReservedPrefixes)
}

// view returns what a read shows of a stored var: the value of a secret
// only when reveal is set.
func (s *Service) view(v StoredVar, reveal bool) (VarView, error) {
	plain, err := s.open(v.Scope, v.Name, v.Version, v.Sealed)
	if err != nil {
		return VarView{}, err
	}
	out := VarView{
		ID: v.ID, Scope: v.Scope, Name: v.Name, Secret: v.Secret, Description: v.Description,
		Version: v.Version, Revision: v.Revision, CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt, UpdatedBy: v.UpdatedBy,
	}
	if v.Secret {
		m := Mask(plain)
		out.MaskedValue = &m
		if reveal {
			out.Value = &plain
		}
	} else {
		out.Value = &plain
	}
	return out, nil
}

// readAuth checks read, and reveal when asked, and records the reveal.
func (s *Service) readAuth(ctx context.Context, path, action string, names []string, reveal bool) error {
	if err := validPath(path); err != nil {
		return err
	}
	if err := s.authorize(ctx, ActRead, path, action); err != nil {
		return err
	}
	if reveal {
		if err := s.authorize(ctx, ActReveal, path, "reveal"); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) ownVars(ctx context.Context, path string) (*ScopeVars, error) {
	tree, err := s.store.ScopeTree(ctx, path)
	if err != nil {
		return nil, err
	}
	sv := tree[path]
	if sv == nil {
		return nil, scopeNotFound(path)
	}
	return sv, nil
}

// ListVars returns a scope's own vars, secrets masked unless reveal.
func (s *Service) ListVars(ctx context.Context, path string, reveal bool) (VarList, error) {
	if err := s.readAuth(ctx, path, "vars.list", nil, reveal); err != nil {
		return VarList{}, err
	}
	sv, err := s.ownVars(ctx, path)
	if err != nil {
		return VarList{}, err
	}
	out := VarList{Scope: path, Revision: sv.Scope.Revision, Items: make([]VarView, 0, len(sv.Vars))}
	for _, v := range sv.Vars {
		vv, err := s.view(v, reveal)
		if err != nil {
			return VarList{}, err
		}
		out.Items = append(out.Items, vv)
	}
	if reveal {
		s.record(ctx, "reveal", path, secretNames(sv.Vars), 200)
	}
	return out, nil
}

func secretNames(vars []StoredVar) []string {
	var names []string
	for _, v := range vars {
		if v.Secret {
			names = append(names, v.Name)
		}
	}
	return names
}

// GetVar returns one var.
func (s *Service) GetVar(ctx context.Context, path, name string, reveal bool) (VarView, error) {
	if f := s.validName("path.name", name); f != nil {
		return VarView{}, Invalid(*f)
	}
	if err := s.readAuth(ctx, path, "var.get", []string{name}, reveal); err != nil {
		return VarView{}, err
	}
	sv, err := s.ownVars(ctx, path)
	if err != nil {
		return VarView{}, err
	}
	v, ok := findVar(sv.Vars, name)
	if !ok {
		return VarView{}, Errorf(ENotFound, "var %s not found in scope %s", name, path)
	}
	if reveal {
		s.record(ctx, "reveal", path, []string{name}, 200)
	}
	return s.view(v, reveal)
}

func findVar(vars []StoredVar, name string) (StoredVar, bool) {
	i := sort.Search(len(vars), func(i int) bool { return vars[i].Name >= name })
	if i < len(vars) && vars[i].Name == name {
		return vars[i], true
	}
	return StoredVar{}, false
}

// validateInput checks one var input at loc ("body" or "body.NAME").
func validateInput(loc string, in VarInput) []FieldError {
	var fields []FieldError
	if in.Value != nil {
		if f := ValidateValue(loc+".value", in.Value.Reveal()); f != nil {
			fields = append(fields, *f)
		}
	}
	if in.Description != nil {
		if f := ValidateDescription(loc+".description", *in.Description); f != nil {
			fields = append(fields, *f)
		}
	}
	return fields
}

// change computes the new state of a var from its current state (when ok)
// and the input, sealed for its new version. It refuses writing back a
// secret's own mask and a missing value for a new var.
func (s *Service) change(scope, name, loc string, cur StoredVar, ok bool, in VarInput, mayReveal bool) (VarChange, error) {
	c := VarChange{Name: name, ID: newID(), Version: 1}
	var value Sensitive
	if ok {
		c.ID, c.Secret, c.Description, c.Version = cur.ID, cur.Secret, cur.Description, cur.Version+1
		if in.Value == nil || cur.Secret {
			old, err := s.open(scope, name, cur.Version, cur.Sealed)
			if err != nil {
				return VarChange{}, err
			}
			if cur.Secret && in.Value != nil && in.Value.Reveal() == Mask(old) {
				return VarChange{}, Invalid(Field(loc+".value", "masked_value_write", "the value is the secret's own masked_value; send the real value, or leave value out to keep it"))
			}
			value = old
		}
	} else if in.Value == nil {
		return VarChange{}, Invalid(Field(loc+".value", "missing", "value is required to create a var"))
	}
	if in.Value != nil {
		value = *in.Value
	}
	if in.Secret != nil {
		if ok && cur.Secret && !*in.Secret && !mayReveal {
			return VarChange{}, Errorf(EForbidden, "turning secret %s into a non-secret needs the reveal permission", name)
		}
		c.Secret = *in.Secret
	}
	if in.Description != nil {
		c.Description = *in.Description
	}
	sealed, err := s.seal(scope, name, c.Version, value)
	if err != nil {
		return VarChange{}, err
	}
	c.Sealed = sealed
	return c, nil
}

// write runs a var write with its audit entry and publishes the change.
// The plan may set *status, the status its audit entry records.
func (s *Service) write(ctx context.Context, path, action string, names []string, status int, o SetOptions, plan func(cur ScopeVars, status *int) ([]VarChange, error)) (WriteResult, WriteInfo, error) {
	audit := []AuditEntry{s.entry(ctx, action, path, names, status)}
	res, err := s.store.Write(ctx, Write{
		Scope: path, Actor: audit[0].Actor, IfRevision: o.IfRevision, CreateScope: !o.ScopeMustExist,
		Plan:  func(cur ScopeVars) ([]VarChange, error) { return plan(cur, &audit[0].Status) },
		Audit: audit,
	})
	if err != nil {
		return WriteResult{}, WriteInfo{}, err
	}
	if res.Changed {
		s.hub.publish(path, res.Revision, false)
	}
	info := WriteInfo{Scope: path, Revision: res.Revision}
	info.Synced = s.synced(ctx, path, res.Revision)
	return res, info, nil
}

// SetVar creates or updates one var.
func (s *Service) SetVar(ctx context.Context, path, name string, in VarInput, o SetOptions) (VarView, WriteInfo, error) {
	if err := validPath(path); err != nil {
		return VarView{}, WriteInfo{}, err
	}
	var fields []FieldError
	if f := s.validName("path.name", name); f != nil {
		fields = append(fields, *f)
	}
	fields = append(fields, validateInput("body", in)...)
	if len(fields) > 0 {
		return VarView{}, WriteInfo{}, Invalid(fields...)
	}
	if err := s.authorize(ctx, ActWrite, path, "var.set"); err != nil {
		return VarView{}, WriteInfo{}, err
	}
	mayReveal := can(CallerFrom(ctx).Token, ActReveal, path)
	created := false
	res, info, err := s.write(ctx, path, "var.set", []string{name}, 200, o, func(cur ScopeVars, status *int) ([]VarChange, error) {
		old, ok := findVar(cur.Vars, name)
		switch {
		case ok && o.Mode == CreateOnly:
			return nil, Errorf(EConflict, "var %s already exists in scope %s", name, path)
		case !ok && o.Mode == UpdateOnly:
			return nil, Errorf(ENotFound, "var %s not found in scope %s", name, path)
		}
		created = !ok
		if created {
			*status = 201
		}
		c, err := s.change(path, name, "body", old, ok, in, mayReveal)
		if err != nil {
			return nil, err
		}
		return []VarChange{c}, nil
	})
	if err != nil {
		return VarView{}, WriteInfo{}, err
	}
	info.Created = created
	vv, err := s.view(res.Vars[0], false)
	return vv, info, err
}

// MergeVars sets and deletes several vars in one revision: a nil input
// deletes. 1–1000 keys.
func (s *Service) MergeVars(ctx context.Context, path string, in map[string]*VarInput, o SetOptions) (WriteInfo, error) {
	return s.bulk(ctx, path, "vars.merge", in, false, 1, o)
}

// ReplaceVars makes the scope's vars exactly in (0–1000 keys), in one revision.
func (s *Service) ReplaceVars(ctx context.Context, path string, in map[string]VarInput, c Cond) (WriteInfo, error) {
	m := make(map[string]*VarInput, len(in))
	for k, v := range in {
		v := v
		if v.Value == nil {
			return WriteInfo{}, Invalid(Field("body."+k+".value", "missing", "value is required"))
		}
		m[k] = &v
	}
	return s.bulk(ctx, path, "vars.replace", m, true, 0, SetOptions{Cond: c})
}

func (s *Service) bulk(ctx context.Context, path, action string, in map[string]*VarInput, replace bool, min int, o SetOptions) (WriteInfo, error) {
	if err := validPath(path); err != nil {
		return WriteInfo{}, err
	}
	if len(in) < min || len(in) > MaxBulkKeys {
		return WriteInfo{}, Invalid(Field("body", "key_count", "the body must hold %d to %d keys, not %d", min, MaxBulkKeys, len(in)))
	}
	names := make([]string, 0, len(in))
	for k := range in {
		names = append(names, k)
	}
	sort.Strings(names)
	var fields []FieldError
	for _, k := range names {
		if f := s.validName("body."+k, k); f != nil {
			fields = append(fields, *f)
			continue
		}
		if in[k] != nil {
			fields = append(fields, validateInput("body."+k, *in[k])...)
		}
	}
	if len(fields) > 0 {
		return WriteInfo{}, Invalid(fields...)
	}
	if err := s.authorize(ctx, ActWrite, path, action); err != nil {
		return WriteInfo{}, err
	}
	mayReveal := can(CallerFrom(ctx).Token, ActReveal, path)
	_, info, err := s.write(ctx, path, action, names, 200, o, func(cur ScopeVars, _ *int) ([]VarChange, error) {
		var out []VarChange
		for _, k := range names {
			old, ok := findVar(cur.Vars, k)
			if in[k] == nil {
				if ok {
					out = append(out, VarChange{Name: k, Delete: true})
				}
				continue
			}
			if ok && replace && sameVar(s, path, old, *in[k]) {
				continue
			}
			c, err := s.change(path, k, "body."+k, old, ok, *in[k], mayReveal)
			if err != nil {
				return nil, err
			}
			out = append(out, c)
		}
		if replace {
			for _, v := range cur.Vars {
				if _, keep := in[v.Name]; !keep {
					out = append(out, VarChange{Name: v.Name, Delete: true})
				}
			}
		}
		return out, nil
	})
	return info, err
}

// sameVar reports whether a replace leaves a var as it is, so that a
// replace only records what it changes.
func sameVar(s *Service, scope string, cur StoredVar, in VarInput) bool {
	if in.Secret != nil && *in.Secret != cur.Secret || in.Description != nil && *in.Description != cur.Description {
		return false
	}
	old, err := s.open(scope, cur.Name, cur.Version, cur.Sealed)
	return err == nil && in.Value != nil && old.Equal(*in.Value)
}

// DeleteVar deletes one var; deleting an absent var succeeds.
func (s *Service) DeleteVar(ctx context.Context, path, name string, c Cond) (WriteInfo, error) {
	if err := validPath(path); err != nil {
		return WriteInfo{}, err
	}
	if f := s.validName("path.name", name); f != nil {
		return WriteInfo{}, Invalid(*f)
	}
	if err := s.authorize(ctx, ActWrite, path, "var.delete"); err != nil {
		return WriteInfo{}, err
	}
	_, info, err := s.write(ctx, path, "var.delete", []string{name}, 204, SetOptions{Cond: c, ScopeMustExist: true}, func(cur ScopeVars, _ *int) ([]VarChange, error) {
		if _, ok := findVar(cur.Vars, name); !ok {
			return nil, nil
		}
		return []VarChange{{Name: name, Delete: true}}, nil
	})
	if ErrorCode(err) == ENotFound {
		return WriteInfo{Scope: path, Synced: true}, nil
	}
	return info, err
}

// Env returns the resolved env of a scope: its inherited scopes merged in
// order, then its own vars. It needs reveal on the scope and on every
// scope it inherits from.
func (s *Service) Env(ctx context.Context, path string) (Env, error) {
	if err := s.readAuth(ctx, path, "env", nil, true); err != nil {
		return Env{}, err
	}
	tree, err := s.store.ScopeTree(ctx, path)
	if err != nil {
		return Env{}, err
	}
	if tree[path] == nil {
		return Env{}, scopeNotFound(path)
	}
	t := CallerFrom(ctx).Token
	for p := range tree {
		if !can(t, ActReveal, p) {
			s.Refused(ctx, "reveal", p, 403)
			return Env{}, Errorf(EForbidden, "scope %s inherits %s, which this token may not reveal", path, p)
		}
	}
	merged, rev, err := s.resolve(path, tree)
	if err != nil {
		return Env{}, err
	}
	out := Env{Scope: path, Revision: rev, Vars: make([]EnvVar, len(merged))}
	for i, v := range merged {
		plain, err := s.open(v.Scope, v.Name, v.Version, v.Sealed)
		if err != nil {
			return Env{}, err
		}
		out.Vars[i] = EnvVar{Name: v.Name, Value: plain, Secret: v.Secret, From: v.Scope}
	}
	s.record(ctx, "reveal", path, nil, 200)
	return out, nil
}

// resolved is a scope's merged vars, computed from one set of the
// store's immutable ScopeVars snapshots; it holds sealed values only.
type resolved struct {
	layers []*ScopeVars // in merge order; the cache entry is valid while the tree holds these
	vars   []*StoredVar // sorted by name
	rev    int64
}

// resolve merges a scope's tree: inherited scopes in order, depth first,
// then the scope's own vars, later layers winning. Each layer is sorted by
// name, so this is a merge of sorted lists, not a map and a sort; and the
// result is kept until one of the layers changes (reads are the hot path).
func (s *Service) resolve(path string, tree map[string]*ScopeVars) ([]*StoredVar, int64, error) {
	var layers []*ScopeVars
	var walk func(p string, depth int) error
	walk = func(p string, depth int) error {
		sv := tree[p]
		if sv == nil || depth > MaxInheritDepth {
			return Errorf(EInternal, "inherits chain of %s is broken at %s", path, p)
		}
		for _, q := range sv.Scope.Inherits {
			if err := walk(q, depth+1); err != nil {
				return err
			}
		}
		layers = append(layers, sv)
		return nil
	}
	if err := walk(path, 0); err != nil {
		return nil, 0, err
	}
	if c, ok := s.resolved.Load(path); ok {
		r := c.(*resolved)
		if slices.Equal(r.layers, layers) {
			return r.vars, r.rev, nil
		}
	}
	var vars []*StoredVar
	var rev int64
	for _, l := range layers {
		rev = max(rev, l.Scope.Revision)
		next := make([]*StoredVar, 0, len(vars)+len(l.Vars))
		i, j := 0, 0
		for i < len(vars) || j < len(l.Vars) {
			switch {
			case j == len(l.Vars) || i < len(vars) && vars[i].Name < l.Vars[j].Name:
				next = append(next, vars[i])
				i++
			case i == len(vars) || l.Vars[j].Name < vars[i].Name:
				next = append(next, &l.Vars[j])
				j++
			default: // the same name: the later layer wins
				next = append(next, &l.Vars[j])
				i++
				j++
			}
		}
		vars = next
	}
	s.resolved.Store(path, &resolved{layers: layers, vars: vars, rev: rev})
	return vars, rev, nil
}

// History returns a scope's changes, newest first.
func (s *Service) History(ctx context.Context, path string, q HistoryQuery) (Page[ChangeView], error) {
	limit, err := limitOf("query.limit", q.Limit)
	if err != nil {
		return Page[ChangeView]{}, err
	}
	after, err := parseHistoryCursor(q.Cursor, q.Before)
	if err != nil {
		return Page[ChangeView]{}, err
	}
	if err := s.readAuth(ctx, path, "history", nil, q.Reveal); err != nil {
		return Page[ChangeView]{}, err
	}
	if _, err := s.store.GetScope(ctx, path); err != nil {
		return Page[ChangeView]{}, err
	}
	changes, err := s.store.History(ctx, path, after, limit+1)
	if err != nil {
		return Page[ChangeView]{}, err
	}
	var p Page[ChangeView]
	if len(changes) > limit {
		changes = changes[:limit]
		last := changes[limit-1]
		p.NextCursor = strconv.FormatInt(last.Revision, 10) + ":" + last.Name
	}
	p.Items = make([]ChangeView, 0, len(changes))
	for _, c := range changes {
		cv := ChangeView{Revision: c.Revision, Name: c.Name, Op: c.Op, Version: c.Version, Actor: c.Actor, At: c.At, Secret: c.Secret}
		if c.Op == OpSet {
			plain, err := s.open(path, c.Name, c.Version, c.Sealed)
			if err != nil {
				return Page[ChangeView]{}, err
			}
			if c.Secret {
				m := Mask(plain)
				cv.MaskedValue = &m
			}
			if !c.Secret || q.Reveal {
				cv.Value = &plain
			}
		}
		p.Items = append(p.Items, cv)
	}
	if q.Reveal {
		s.record(ctx, "reveal", path, nil, 200)
	}
	return p, nil
}

// parseHistoryCursor reads a history cursor ("<revision>:<name>", as
// History gives it) or, without one, a plain before revision.
func parseHistoryCursor(cursor string, before int64) (HistoryCursor, error) {
	if before < 0 {
		return HistoryCursor{}, Invalid(Field("query.before", "out_of_range", "before must be a positive revision"))
	}
	if cursor == "" {
		if before > 0 {
			// Everything older than before: no name sorts before "".
			return HistoryCursor{Revision: before - 1, Name: "\x00"}, nil
		}
		return HistoryCursor{}, nil
	}
	revs, name, ok := strings.Cut(cursor, ":")
	rev, err := strconv.ParseInt(revs, 10, 64)
	if !ok || err != nil || rev < 1 || (name != "" && ValidateName("query.cursor", name, nil) != nil) {
		return HistoryCursor{}, Invalid(Field("query.cursor", "invalid_cursor", "cursor is not one this server gave"))
	}
	return HistoryCursor{Revision: rev, Name: name}, nil
}

// Rollback makes a new revision whose vars equal those the scope had at
// the given revision.
func (s *Service) Rollback(ctx context.Context, path string, revision int64, c Cond) (WriteInfo, error) {
	if err := validPath(path); err != nil {
		return WriteInfo{}, err
	}
	if err := s.authorize(ctx, ActWrite, path, "scope.rollback"); err != nil {
		return WriteInfo{}, err
	}
	cur, err := s.store.Revision(ctx)
	if err != nil {
		return WriteInfo{}, err
	}
	if revision < 1 || revision > cur {
		return WriteInfo{}, Invalid(Field("body.revision", "out_of_range", "revision must be between 1 and %d", cur))
	}
	target, err := s.store.VarsAt(ctx, path, revision)
	if err != nil {
		return WriteInfo{}, err
	}
	want := make(map[string]Change, len(target))
	for _, t := range target {
		want[t.Name] = t
	}
	mayReveal := can(CallerFrom(ctx).Token, ActReveal, path)
	_, info, err := s.write(ctx, path, "scope.rollback", nil, 200, SetOptions{Cond: c, ScopeMustExist: true}, func(cs ScopeVars, _ *int) ([]VarChange, error) {
		var out []VarChange
		for _, v := range cs.Vars {
			if _, ok := want[v.Name]; !ok {
				out = append(out, VarChange{Name: v.Name, Delete: true})
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
			in := VarInput{Value: &plain, Secret: &t.Secret, Description: &t.Description}
			if ok && sameVar(s, path, old, in) {
				continue
			}
			if ok && old.Secret && !t.Secret && !mayReveal {
				return nil, Errorf(EForbidden, "the rollback turns secret %s into a non-secret, which needs the reveal permission", n)
			}
			ch := VarChange{Name: n, ID: t.VarID, Secret: t.Secret, Description: t.Description, Version: 1}
			if ok {
				ch.ID, ch.Version = old.ID, old.Version+1
			}
			if ch.Sealed, err = s.seal(path, n, ch.Version, plain); err != nil {
				return nil, err
			}
			out = append(out, ch)
		}
		return out, nil
	})
	return info, err
}

// GetVarByID returns the var with the given id (any letter case) in a
// scope, for dialects that address vars by id.
func (s *Service) GetVarByID(ctx context.Context, path, id string, reveal bool) (VarView, error) {
	if err := s.readAuth(ctx, path, "var.get", nil, reveal); err != nil {
		return VarView{}, err
	}
	sv, err := s.ownVars(ctx, path)
	if err != nil {
		return VarView{}, err
	}
	for _, v := range sv.Vars {
		if strings.EqualFold(v.ID, id) {
			if reveal {
				s.record(ctx, "reveal", path, []string{v.Name}, 200)
			}
			return s.view(v, reveal)
		}
	}
	return VarView{}, Errorf(ENotFound, "no var with id %s in scope %s", id, path)
}

// Visible reports whether the caller holds any grant on the scope, that
// is whether a missing scope should read as empty rather than as hidden.
func (s *Service) Visible(ctx context.Context, path string) bool {
	return visible(CallerFrom(ctx).Token, path)
}
