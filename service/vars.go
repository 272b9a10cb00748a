package service

import (
	"context"
	"errors"
	"sort"
	"strings"

	"github.com/envy-dev/envy"
)

func (s *Service) validName(loc, name string) *envy.FieldError {
	return envy.ValidateName(loc, name, s.opts.ReservedPrefixes)
}

// view returns what a read shows of a stored var: the value of a secret
// only when reveal is set.
func (s *Service) view(v envy.StoredVar, reveal bool) (envy.VarView, error) {
	plain, err := s.open(v.Scope, v.Name, v.Version, v.Sealed)
	if err != nil {
		return envy.VarView{}, err
	}
	var m string
	if v.Secret {
		m = envy.Mask(plain)
	}
	return viewOf(&v, &plain, &m, reveal), nil
}

// viewOf is view's reply for v, whose value is *plain and, for a secret,
// mask *m; the view points at them.
func viewOf(v *envy.StoredVar, plain *envy.Sensitive, m *string, reveal bool) envy.VarView {
	out := envy.VarView{
		ID: v.ID, Scope: v.Scope, Name: v.Name, Secret: v.Secret, Description: v.Description,
		Version: v.Version, Revision: v.Revision, CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt, UpdatedBy: v.UpdatedBy, UpdatedByToken: v.UpdatedByToken,
	}
	if v.Secret {
		out.MaskedValue = m
		if reveal {
			out.Value = plain
		}
	} else {
		out.Value = plain
	}
	return out
}

func (s *Service) ownVars(ctx context.Context, path string) (*envy.ScopeVars, error) {
	tree, err := s.scopeTree(ctx, path)
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
func (s *Service) ListVars(ctx context.Context, path string, reveal bool) (envy.VarList, error) {
	return s.listVarsThen(ctx, path, reveal, nil)
}

// shown, when set, finishes the views of a read before its reveal is
// recorded (resolveViews): a read it fails is no reveal.
type shown func(items []envy.VarView) error

// listVarsThen is ListVars whose items go through then, when set, before
// the reveal is recorded.
func (s *Service) listVarsThen(ctx context.Context, path string, reveal bool, then shown) (envy.VarList, error) {
	if err := s.readAuth(ctx, path, envy.AuditVarsList, nil, reveal); err != nil {
		return envy.VarList{}, err
	}
	sv, err := s.ownVars(ctx, path)
	if err != nil {
		return envy.VarList{}, err
	}
	out, err := s.listVars(path, sv, reveal)
	if err != nil {
		return envy.VarList{}, err
	}
	spread, _, err := s.spreadOf(ctx, path, sv)
	if err != nil {
		return envy.VarList{}, err
	}
	maskSpread(out.Items, spread, reveal)
	if then != nil {
		if err := then(out.Items); err != nil {
			return envy.VarList{}, err
		}
	}
	if reveal {
		if err := s.revealed(ctx, path, secretNames(sv.Vars)); err != nil {
			return envy.VarList{}, err
		}
	}
	return out, nil
}

// listVars opens a scope's own vars for a list, secrets masked unless
// reveal.
func (s *Service) listVars(path string, sv *envy.ScopeVars, reveal bool) (envy.VarList, error) {
	// A list is a hot read: its values are opened together and its masks
	// built in one buffer, a few allocations in all (openMany).
	plain, err := s.openMany(len(sv.Vars), func(i int) (string, string, int64, []byte) {
		v := &sv.Vars[i]
		return v.Scope, v.Name, v.Version, v.Sealed
	})
	if err != nil {
		return envy.VarList{}, err
	}
	masks := make([]string, len(sv.Vars))
	var buf []byte
	var ends []int
	for i := range sv.Vars {
		if sv.Vars[i].Secret {
			buf = envy.AppendMask(buf, plain[i].Reveal())
			ends = append(ends, len(buf))
		}
	}
	all, start := string(buf), 0
	clear(buf) // a mask shows a little of a secret
	out := envy.VarList{Scope: path, Revision: sv.Scope.Revision, Items: make([]envy.VarView, len(sv.Vars))}
	for i := range sv.Vars {
		if sv.Vars[i].Secret {
			masks[i] = all[start:ends[0]]
			start, ends = ends[0], ends[1:]
		}
		out.Items[i] = viewOf(&sv.Vars[i], &plain[i], &masks[i], reveal)
	}
	return out, nil
}

func secretNames(vars []envy.StoredVar) []string {
	var names []string
	for _, v := range vars {
		if v.Secret {
			names = append(names, v.Name)
		}
	}
	return names
}

// GetVar returns one var.
func (s *Service) GetVar(ctx context.Context, path, name string, reveal bool) (envy.VarView, error) {
	return s.getVarThen(ctx, path, name, reveal, nil)
}

// getVarThen is GetVar whose view goes through then, when set, before
// the reveal is recorded.
func (s *Service) getVarThen(ctx context.Context, path, name string, reveal bool, then shown) (envy.VarView, error) {
	if f := s.validName("path.name", name); f != nil {
		return envy.VarView{}, envy.Invalid(*f)
	}
	if err := s.readAuth(ctx, path, envy.AuditVarGet, []string{name}, reveal); err != nil {
		return envy.VarView{}, err
	}
	sv, err := s.ownVars(ctx, path)
	if err != nil {
		return envy.VarView{}, err
	}
	v, ok := findVar(sv.Vars, name)
	if !ok {
		return envy.VarView{}, envy.Errorf(envy.ENotFound, "var %s not found in scope %s", name, path)
	}
	return s.revealedView(ctx, path, sv, v, reveal, then)
}

// revealedView is the view of v, its value shown with reveal and
// finished by then (when set), and then the reveal recorded: a read that
// fails before its value is ready (a value that does not open, a
// reference that does not resolve) is no reveal, and the audit log must
// not say it was.
func (s *Service) revealedView(ctx context.Context, path string, sv *envy.ScopeVars, v envy.StoredVar, reveal bool, then shown) (envy.VarView, error) {
	vv, err := s.viewSpread(ctx, path, sv, v, reveal)
	if err != nil {
		return vv, err
	}
	if then != nil {
		items := []envy.VarView{vv}
		if err := then(items); err != nil {
			return envy.VarView{}, err
		}
		vv = items[0]
	}
	if !reveal {
		return vv, nil
	}
	if err := s.revealed(ctx, path, []string{v.Name}); err != nil {
		return envy.VarView{}, err
	}
	return vv, nil
}

// GetVarByID returns the var with the given id (any letter case) in a
// scope, for dialects that address vars by id.
func (s *Service) GetVarByID(ctx context.Context, path, id string, reveal bool) (envy.VarView, error) {
	return s.getVarByIDThen(ctx, path, id, reveal, nil)
}

// getVarByIDThen is GetVarByID whose view goes through then, when set,
// before the reveal is recorded.
func (s *Service) getVarByIDThen(ctx context.Context, path, id string, reveal bool, then shown) (envy.VarView, error) {
	if err := s.readAuth(ctx, path, envy.AuditVarGet, nil, reveal); err != nil {
		return envy.VarView{}, err
	}
	sv, err := s.ownVars(ctx, path)
	if err != nil {
		return envy.VarView{}, err
	}
	for _, v := range sv.Vars {
		if strings.EqualFold(v.ID, id) {
			return s.revealedView(ctx, path, sv, v, reveal, then)
		}
	}
	return envy.VarView{}, envy.Errorf(envy.ENotFound, "no var with id %s in scope %s", id, path)
}

func findVar(vars []envy.StoredVar, name string) (envy.StoredVar, bool) {
	i := sort.Search(len(vars), func(i int) bool { return vars[i].Name >= name })
	if i < len(vars) && vars[i].Name == name {
		return vars[i], true
	}
	return envy.StoredVar{}, false
}

// validateInput checks one var input at loc ("body" or "body.NAME").
func validateInput(loc string, in envy.VarInput) []envy.FieldError {
	var fields []envy.FieldError
	if in.Value != nil {
		if f := envy.ValidateValue(loc+".value", in.Value.Reveal()); f != nil {
			fields = append(fields, *f)
		}
	}
	if in.Description != nil {
		if f := envy.ValidateDescription(loc+".description", *in.Description); f != nil {
			fields = append(fields, *f)
		}
	}
	return fields
}

// change computes the new state of a var from its current state (when ok)
// and the input, sealed for its new version. It refuses writing back a
// secret's own mask and a missing value for a new var.
func (s *Service) change(scope, name, loc string, cur envy.StoredVar, ok bool, in envy.VarInput, mayReveal bool) (envy.VarChange, error) {
	c := envy.VarChange{Name: name, ID: newID(), Version: 1}
	var value, old envy.Sensitive
	if ok {
		c.ID, c.Secret, c.Description, c.Version = cur.ID, cur.Secret, cur.Description, cur.Version+1
		// Opened always: a change that keeps the value and the secret
		// flag is MetaOnly, and leaves the envs over the scope as they are.
		var err error
		if old, err = s.open(scope, name, cur.Version, cur.Sealed); err != nil {
			return envy.VarChange{}, err
		}
		if cur.Secret && in.Value != nil && in.Value.Reveal() == envy.Mask(old) {
			return envy.VarChange{}, envy.Invalid(envy.Field(loc+".value", "masked_value_write", "the value is the secret's own masked_value; send the real value, or leave value out to keep it"))
		}
		value = old
	} else if in.Value == nil {
		return envy.VarChange{}, envy.Invalid(envy.Field(loc+".value", "missing", "value is required to create a var"))
	}
	if in.Value != nil {
		value = *in.Value
	}
	if in.Secret != nil {
		if ok && cur.Secret && !*in.Secret && !mayReveal {
			return envy.VarChange{}, envy.Errorf(envy.EForbidden, "turning secret %s into a non-secret needs the reveal permission", name)
		}
		c.Secret = *in.Secret
	}
	if in.Description != nil {
		c.Description = *in.Description
	}
	c.MetaOnly = ok && c.Secret == cur.Secret && value.Equal(old)
	sealed, err := s.seal(scope, name, c.Version, value)
	if err != nil {
		return envy.VarChange{}, err
	}
	c.Sealed = sealed
	return c, nil
}

// maxPlans bounds how often a write is planned again because the scope
// changed meanwhile (ErrStale). Writers to different vars of one scope
// don't conflict, and writers to one var take turns once they contend
// (turns.go), so only writers on other servers can make a write run out.
const maxPlans = 50

// writeReq is a var write as write runs it.
type writeReq struct {
	Path   string
	Action envy.AuditAction // what its audit entry records
	Names  []string         // the vars it writes, for the audit entry and the turn (nil: the whole scope)
	// Outcome is what its audit entry records when it succeeds; Plan may
	// change it (a var created rather than updated).
	Outcome envy.Outcome
	Opts    envy.SetOptions
	// Whole makes the write depend on every var of the scope (a replace,
	// a rollback) rather than only on those it changes.
	Whole bool
	// Plan returns the changes to make to cur, the scope's current vars:
	// it seals the new values and checks them. It runs again when the
	// scope changed meanwhile.
	Plan func(cur envy.ScopeVars, outcome *envy.Outcome) ([]envy.VarChange, error)
}

// write runs a var write with its audit entry. It plans the write from
// the scope's current vars and hands the store the prepared changes,
// each with the version it was planned from; when the scope changed
// meanwhile, it plans again.
func (s *Service) write(ctx context.Context, w writeReq) (envy.WriteResult, envy.WriteInfo, error) {
	var release func() // the scope's turn, once writers contend (turns.go)
	defer func() {
		if release != nil {
			release()
		}
	}()
	// A caller whose token's check was left to this write (AuthenticateWrite)
	// has it checked by the store's write, which every answer but an
	// error comes from (the HTTP layer confirms the token before it
	// answers an error: ConfirmToken).
	live := liveToken(ctx)
	turn := turnKey(w.Path, w.Names, w.Whole)
	// A write that depends on nothing but the vars it changes may plan
	// from a cached tree older than the database (planTree); what such a
	// plan decides without a change to check it (an error, nothing to
	// write, or a name it leaves out) is decided again from a fresh read.
	mayBeStale := w.Opts.IfRevision == 0 && !w.Whole
	// The scope as the store found it when it refused the last attempt as
	// stale, when it said (envy.StaleError): the next plan starts from it
	// rather than from a read of its own.
	var stale *envy.StaleError
	for attempt := 1; ; attempt++ {
		if release == nil && (attempt > 1 || s.turns.busy(turn)) {
			r, err := s.turns.take(ctx, turn)
			if err != nil {
				return envy.WriteResult{}, envy.WriteInfo{}, envy.Errorf(envy.EUnavailable, "gave up waiting to write scope %s: %v", w.Path, err)
			}
			release = r
		}
		cur := envy.ScopeVars{Scope: envy.Scope{Path: w.Path}}
		var (
			tree  map[string]*envy.ScopeVars
			fresh = true
			err   error
		)
		switch {
		case attempt == 1 && mayBeStale:
			tree, fresh, err = s.planTree(ctx, w.Path)
		case stale != nil && stale.Current != nil:
			tree = map[string]*envy.ScopeVars{w.Path: stale.Current}
		case stale != nil:
			err = scopeNotFound(w.Path)
		default:
			tree, err = s.scopeTree(ctx, w.Path)
		}
		stale = nil
		switch {
		case err == nil:
			cur = *tree[w.Path] // shared and immutable: read-only
		case envy.ErrorCode(err) != envy.ENotFound:
			return envy.WriteResult{}, envy.WriteInfo{}, err
		case w.Opts.ScopeMustExist && !fresh && attempt < maxPlans:
			continue // read before the request, perhaps: read it again
		case w.Opts.ScopeMustExist:
			return envy.WriteResult{}, envy.WriteInfo{}, scopeNotFound(w.Path)
		}
		if w.Opts.IfRevision > 0 && cur.Scope.Revision != w.Opts.IfRevision {
			// Refuse before planning: a plan's errors (invalid, conflict) must not
			// hide that the caller's view is out of date.
			if err == nil {
				return envy.WriteResult{}, envy.WriteInfo{}, envy.Errorf(envy.EPrecondition, "scope %s is at revision %d, not %d", w.Path, cur.Scope.Revision, w.Opts.IfRevision)
			}
			return envy.WriteResult{}, envy.WriteInfo{}, envy.Errorf(envy.EPrecondition, "scope %s does not exist, so it is not at revision %d", w.Path, w.Opts.IfRevision)
		}
		audit := []envy.AuditEntry{s.entry(ctx, w.Action, w.Path, w.Names, w.Outcome)}
		changes, err := w.Plan(cur, &audit[0].Status)
		// A plan from an older state that leaves out a name it was asked
		// for (a merge's value taken for unchanged, its delete of a var
		// the state lacks) decided that from the older state, which the
		// store can't check: it is decided again from a fresh read too.
		if !fresh && (err != nil || len(changes) < max(1, len(w.Names))) && attempt < maxPlans {
			continue // decided from an older state: decide it from a fresh one
		}
		if err != nil {
			return envy.WriteResult{}, envy.WriteInfo{}, err
		}
		for i := range changes {
			if old, ok := findVar(cur.Vars, changes[i].Name); ok {
				// The version and the id: a var deleted and set again
				// since starts at version 1 again.
				changes[i].Base, changes[i].ID = old.Version, old.ID
			}
		}
		rec, err := s.toStreams(len(audit))
		if err != nil {
			return envy.WriteResult{}, envy.WriteInfo{}, err
		}
		var behind *envy.BehindQuery
		if s.shared { // asked in the write's round trips where the store can (synced)
			behind = &envy.BehindQuery{Since: s.now().Add(-s.opts.ConsumerTTL), Limit: envy.MaxBehindShown}
		}
		res, err := s.store.Write(ctx, envy.Write{
			Scope: w.Path, Actor: audit[0].Actor, ActorToken: audit[0].TokenID, IfRevision: w.Opts.IfRevision, CreateScope: !w.Opts.ScopeMustExist,
			Changes: changes, WholeScope: w.Whole, BaseRevision: cur.Scope.Revision, Audit: audit,
			// A caller who may not read the scope gets a new revision
			// for every write, or the reply to deleting an absent var
			// would tell it that the var was not there.
			Touch:     !envy.Can(CallerFrom(ctx).Token, envy.ActRead, w.Path),
			LiveToken: live,
			Behind:    behind,
		})
		rec.done(err, res.Revision, audit...)
		if errors.Is(err, envy.ErrTokenNotLive) {
			return envy.WriteResult{}, envy.WriteInfo{}, s.tokenNotLive(CallerFrom(ctx))
		}
		if err == nil && live != "" {
			CallerFrom(ctx).unchecked.Store(false) // the store found it live
		}
		if errors.Is(err, envy.ErrStale) && attempt < maxPlans {
			errors.As(err, &stale)
			continue
		}
		if err != nil {
			return envy.WriteResult{}, envy.WriteInfo{}, err
		}
		// Watchers hear of a change through the store's notice (follow.go).
		info := envy.WriteInfo{Scope: w.Path, Revision: res.Revision}
		// Consumers are behind when they run an env older than the
		// scope's EnvRevision: a change of descriptions only leaves it.
		if res.BehindAnswered {
			info.Synced = len(res.Behind) == 0
			if !info.Synced {
				info.Behind = res.Behind
			}
		} else {
			info.Synced, info.Behind = s.synced(ctx, w.Path, res.EnvRevision)
		}
		return res, info, nil
	}
}

// SetVar creates or updates one var.
func (s *Service) SetVar(ctx context.Context, path, name string, in envy.VarInput, o envy.SetOptions) (envy.VarView, envy.WriteInfo, error) {
	if err := validPath(path); err != nil {
		return envy.VarView{}, envy.WriteInfo{}, err
	}
	var fields []envy.FieldError
	if f := s.validName("path.name", name); f != nil {
		fields = append(fields, *f)
	}
	fields = append(fields, validateInput("body", in)...)
	fields = append(fields, checkRefSyntax("body", name, in)...)
	if len(fields) > 0 {
		return envy.VarView{}, envy.WriteInfo{}, envy.Invalid(fields...)
	}
	if err := s.Authorize(ctx, envy.ActWrite, path, envy.AuditVarSet); err != nil {
		return envy.VarView{}, envy.WriteInfo{}, err
	}
	mayReveal := envy.Can(CallerFrom(ctx).Token, envy.ActReveal, path)
	mayRead := envy.Can(CallerFrom(ctx).Token, envy.ActRead, path)
	created := false
	var unchanged *envy.StoredVar // the var as it is, when the write leaves it so
	res, info, err := s.write(ctx, writeReq{Path: path, Action: envy.AuditVarSet, Names: []string{name}, Outcome: envy.OutcomeOK, Opts: o, Plan: func(cur envy.ScopeVars, outcome *envy.Outcome) ([]envy.VarChange, error) {
		old, ok := findVar(cur.Vars, name)
		switch {
		case ok && o.Mode == envy.CreateOnly:
			return nil, envy.Errorf(envy.EConflict, "var %s already exists in scope %s", name, path)
		case !ok && o.Mode == envy.UpdateOnly:
			return nil, envy.Errorf(envy.ENotFound, "var %s not found in scope %s", name, path)
		}
		// A write that leaves the var as it is takes no revision and
		// restarts nobody, but only for a caller who may see the value:
		// for any other, the revision would confirm a guess.
		unchanged = nil
		if ok && mayRead && (!old.Secret || mayReveal) && sameVar(s, path, old, in) {
			unchanged = &old
			return nil, nil
		}
		created = !ok
		if created {
			*outcome = envy.OutcomeCreated
		}
		c, err := s.change(path, name, "body", old, ok, in, mayReveal)
		if err != nil {
			return nil, err
		}
		if err := s.checkPlan(ctx, path, cur, []envy.VarChange{c}); err != nil {
			return nil, err
		}
		return []envy.VarChange{c}, nil
	}})
	if err != nil {
		return envy.VarView{}, envy.WriteInfo{}, err
	}
	info.Created = created
	v := unchanged
	if len(res.Vars) > 0 {
		v = &res.Vars[0]
	}
	if v == nil {
		return envy.VarView{}, envy.WriteInfo{}, envy.Errorf(envy.EInternal, "write to %s/%s answered no var", path, name)
	}
	vv, err := s.view(*v, false)
	if !mayRead {
		// A writer who may not read learns nothing of the value, not
		// even the mask that a read would show.
		vv.Value, vv.MaskedValue = nil, nil
	}
	return vv, info, err
}

// MergeVars sets and deletes several vars in one revision: a nil input
// deletes, an empty one (every field left out) keeps the var as it is.
// 1–1000 keys.
func (s *Service) MergeVars(ctx context.Context, path string, in map[string]*envy.VarInput, o envy.SetOptions) (envy.WriteInfo, error) {
	return s.bulk(ctx, path, envy.AuditVarsMerge, in, false, 1, o, nil)
}

// MergeVarsIf is MergeVars for a request whose answer depends on which
// vars the scope holds, such as an add that refuses names that exist:
// check sees the scope's names as the write plans from them, and whatever
// it refuses is refused with nothing written. The write depends on the
// whole scope, as a replace does: when any var changed between the plan
// and the commit, it plans and checks again, so the check and the write
// are one atomic step. As its refusals tell which names exist, it needs
// read as well as write.
func (s *Service) MergeVarsIf(ctx context.Context, path string, in map[string]*envy.VarInput, o envy.SetOptions, check func(exists func(name string) bool) error) (envy.WriteInfo, error) {
	return s.bulk(ctx, path, envy.AuditVarsMerge, in, false, 1, o, check)
}

// ReplaceVars makes the scope's vars exactly in (0–1000 keys), in one revision.
func (s *Service) ReplaceVars(ctx context.Context, path string, in map[string]envy.VarInput, c envy.Cond) (envy.WriteInfo, error) {
	m := make(map[string]*envy.VarInput, len(in))
	for k, v := range in {
		v := v
		if v.Value == nil {
			return envy.WriteInfo{}, envy.Invalid(envy.Field("body."+k+".value", "missing", "value is required"))
		}
		m[k] = &v
	}
	return s.bulk(ctx, path, envy.AuditVarsReplace, m, true, 0, envy.SetOptions{Cond: c}, nil)
}

func (s *Service) bulk(ctx context.Context, path string, action envy.AuditAction, in map[string]*envy.VarInput, replace bool, min int, o envy.SetOptions, check func(exists func(name string) bool) error) (envy.WriteInfo, error) {
	if err := validPath(path); err != nil {
		return envy.WriteInfo{}, err
	}
	if len(in) < min || len(in) > envy.MaxBulkKeys {
		return envy.WriteInfo{}, envy.Invalid(envy.Field("body", "key_count", "the body must hold %d to %d keys, not %d", min, envy.MaxBulkKeys, len(in)))
	}
	names := make([]string, 0, len(in))
	for k := range in {
		names = append(names, k)
	}
	sort.Strings(names)
	var fields []envy.FieldError
	for _, k := range names {
		if f := s.validName("body."+k, k); f != nil {
			fields = append(fields, *f)
			continue
		}
		if in[k] != nil {
			fields = append(fields, validateInput("body."+k, *in[k])...)
			fields = append(fields, checkRefSyntax("body."+k, k, *in[k])...)
		}
	}
	if len(fields) > 0 {
		return envy.WriteInfo{}, envy.Invalid(fields...)
	}
	if err := s.Authorize(ctx, envy.ActWrite, path, action); err != nil {
		return envy.WriteInfo{}, err
	}
	if check != nil {
		if err := s.Authorize(ctx, envy.ActRead, path, action); err != nil {
			return envy.WriteInfo{}, err
		}
	}
	mayReveal := envy.Can(CallerFrom(ctx).Token, envy.ActReveal, path)
	mayRead := envy.Can(CallerFrom(ctx).Token, envy.ActRead, path)
	// A check reads every name of the scope, so the write depends on the
	// whole scope, as a replace does: it is planned again (and checked
	// again) if any var changed meanwhile, not only one it writes.
	whole := replace || check != nil
	_, info, err := s.write(ctx, writeReq{Path: path, Action: action, Names: names, Outcome: envy.OutcomeOK, Opts: o, Whole: whole, Plan: func(cur envy.ScopeVars, _ *envy.Outcome) ([]envy.VarChange, error) {
		if check != nil {
			exists := func(name string) bool {
				_, ok := findVar(cur.Vars, name)
				return ok
			}
			if err := check(exists); err != nil {
				return nil, err
			}
		}
		var out []envy.VarChange
		for _, k := range names {
			old, ok := findVar(cur.Vars, k)
			if in[k] == nil {
				if ok {
					out = append(out, envy.VarChange{Name: k, Delete: true})
				}
				continue
			}
			// Skipping a var the replace leaves as it is would tell a
			// caller who may not see its value that the value it sent was
			// right: only one who may see it gets the shortcut.
			// An input that leaves every field out sends nothing to
			// learn from: it keeps the var for anyone.
			seesValue := mayRead && (!old.Secret || mayReveal)
			if ok && (*in[k] == envy.VarInput{} || seesValue && sameVar(s, path, old, *in[k])) {
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
					out = append(out, envy.VarChange{Name: v.Name, Delete: true})
				}
			}
		}
		if err := s.checkPlan(ctx, path, cur, out); err != nil {
			return nil, err
		}
		return out, nil
	}})
	return info, err
}

// sameVar reports whether a write leaves a var as it is (a field left
// out keeps its value), so that a write only records what it changes.
func sameVar(s *Service, scope string, cur envy.StoredVar, in envy.VarInput) bool {
	if in.Secret != nil && *in.Secret != cur.Secret || in.Description != nil && *in.Description != cur.Description {
		return false
	}
	if in.Value == nil {
		return true
	}
	old, err := s.open(scope, cur.Name, cur.Version, cur.Sealed)
	return err == nil && old.Equal(*in.Value)
}

// DeleteVar deletes one var; deleting an absent var succeeds.
func (s *Service) DeleteVar(ctx context.Context, path, name string, c envy.Cond) (envy.WriteInfo, error) {
	if err := validPath(path); err != nil {
		return envy.WriteInfo{}, err
	}
	if f := s.validName("path.name", name); f != nil {
		return envy.WriteInfo{}, envy.Invalid(*f)
	}
	if err := s.Authorize(ctx, envy.ActWrite, path, envy.AuditVarDelete); err != nil {
		return envy.WriteInfo{}, err
	}
	_, info, err := s.write(ctx, writeReq{Path: path, Action: envy.AuditVarDelete, Names: []string{name}, Outcome: envy.OutcomeDeleted, Opts: envy.SetOptions{Cond: c, ScopeMustExist: true}, Plan: func(cur envy.ScopeVars, _ *envy.Outcome) ([]envy.VarChange, error) {
		if _, ok := findVar(cur.Vars, name); !ok {
			return nil, nil
		}
		out := []envy.VarChange{{Name: name, Delete: true}}
		if err := s.checkPlan(ctx, path, cur, out); err != nil {
			return nil, err // it uncovers an inherited var whose reference closes a cycle
		}
		return out, nil
	}})
	if envy.ErrorCode(err) == envy.ENotFound {
		return envy.WriteInfo{Scope: path, Synced: true}, nil
	}
	return info, err
}
