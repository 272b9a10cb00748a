package envy

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"unicode/utf8"
)

// The bounds of references (docs/api.md, "References").
const (
	// MaxRefDepth bounds how deep references nest: a value that refers to
	// a value that refers to … at most this many levels.
	MaxRefDepth = 8
	// MaxRefScopes bounds the distinct scopes a resolution reaches through
	// references, besides its own tree.
	MaxRefScopes = 32
	// MaxEnvExpansion bounds the characters a resolved env's expansion
	// produces in all: every expanded value, those it is built from too.
	MaxEnvExpansion = 4 << 20
)

// Ref is one reference in a value: ${NAME} (Scope "") names a var of the
// same resolved env, ${scope/path:NAME} a var of that scope's resolved
// env. Off and End are the byte offsets of its "${" and just after its
// "}" in the value.
type Ref struct {
	Scope string
	Name  string
	Off   int
	End   int
}

// String is the reference as written between the braces.
func (r Ref) String() string {
	if r.Scope == "" {
		return r.Name
	}
	return r.Scope + ":" + r.Name
}

// RefSyntaxError is a value's bad reference: where it starts (a byte
// offset) and why it is bad. It never holds the value.
type RefSyntaxError struct {
	Off int
	Why string
}

func (e *RefSyntaxError) Error() string {
	return fmt.Sprintf("invalid reference at byte offset %d: %s", e.Off, e.Why)
}

// ParseRefs returns the references of a value, in order. "$${" is a
// literal "${"; a "$" not followed by "{" is literal; anything else that
// starts with "${" and is not a valid reference is a *RefSyntaxError.
func ParseRefs(v string) ([]Ref, error) {
	var refs []Ref
	err := scanValue(v, func(lit string) {}, func(r Ref) { refs = append(refs, r) })
	return refs, err
}

// scanValue walks v, handing its literal pieces (escapes undone) to lit
// and its references to ref, in order.
func scanValue(v string, lit func(string), ref func(Ref)) error {
	start := 0
	for i := 0; i < len(v); {
		j := strings.IndexByte(v[i:], '$')
		if j < 0 {
			break
		}
		i += j
		switch {
		case strings.HasPrefix(v[i:], "$${"):
			lit(v[start:i])
			lit("${")
			i += 3
			start = i
		case strings.HasPrefix(v[i:], "${"):
			end := strings.IndexByte(v[i+2:], '}')
			if end < 0 {
				return &RefSyntaxError{Off: i, Why: `"${" without a closing "}" (write "$${" for a literal "${")`}
			}
			r, why := parseRef(v[i+2 : i+2+end])
			if why != "" {
				return &RefSyntaxError{Off: i, Why: why + ` (write "$${" for a literal "${")`}
			}
			r.Off, r.End = i, i+2+end+1
			lit(v[start:i])
			ref(r)
			i = r.End
			start = i
		default:
			i++
		}
	}
	lit(v[start:])
	return nil
}

// parseRef parses what is between "${" and "}": NAME or scope/path:NAME.
func parseRef(s string) (Ref, string) {
	var r Ref
	name := s
	if k := strings.IndexByte(s, ':'); k >= 0 {
		r.Scope, name = s[:k], s[k+1:]
		if f := ValidateScopePath("", r.Scope); f != nil {
			return Ref{}, "the scope of a reference must be a valid scope path: " + f.Msg
		}
	}
	if name == "" {
		return Ref{}, "a reference needs a var name"
	}
	if f := ValidateName("", name, nil); f != nil {
		return Ref{}, "the name of a reference must match ^[A-Za-z_][A-Za-z0-9_]*$"
	}
	r.Name = name
	return r, ""
}

// RefSource is what ResolveRefs reads beyond the scope's own tree.
type RefSource struct {
	// Tree returns the tree of a scope that is referred to
	// (Store.ScopeTree); an error of code ENotFound when it does not exist.
	Tree func(path string) (map[string]*ScopeVars, error)
	// Refs returns the references of a var's value (ParseRefs of it).
	Refs func(v *StoredVar) ([]Ref, error)
}

// ResolveRefs is Resolve for an env whose values may hold references: it
// resolves path over tree, then every scope that the env's vars refer
// to, directly or through other references (at most MaxRefScopes), and
// adds their deps to the resolution's, so that a change to a referenced
// var is a change to the env (its revision, caches, watchers). A scope
// referred to that does not exist joins Deps at revision 0, so that
// creating it is a change too. Only the references reachable from the
// env's vars are followed, each var once: linear in what is reached. The
// trees are read one after the other: when two of them disagree on a
// scope the resolution is Torn. Which vars a secret spreads to (Secret)
// is worked out then, in one more pass, for every read of it to look up.
func ResolveRefs(path string, tree map[string]*ScopeVars, src RefSource) (*Resolution, error) {
	root, err := Resolve(path, tree)
	if err != nil {
		return nil, err
	}
	type node struct {
		res  *Resolution
		name string
	}
	seen := map[node]bool{}
	var work []node
	for _, v := range root.Vars {
		n := node{root, v.Name}
		seen[n] = true
		work = append(work, n)
	}
	scopeOf := func(p string) (*Resolution, error) {
		if p == path {
			return root, nil
		}
		if r, ok := root.Referenced[p]; ok {
			return r, nil
		}
		if len(root.Referenced) >= MaxRefScopes {
			return nil, Invalid(Field("env", "too_many_scopes", "the env of %s refers to more than %d scopes through references", path, MaxRefScopes))
		}
		if root.Referenced == nil {
			root.Referenced = map[string]*Resolution{}
		}
		t, err := src.Tree(p)
		if ErrorCode(err) == ENotFound {
			root.Referenced[p] = nil
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		r, err := Resolve(p, t)
		if ErrorCode(err) == ENotFound {
			root.Referenced[p] = nil
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		root.Referenced[p] = r
		return r, nil
	}
	for len(work) > 0 {
		n := work[len(work)-1]
		work = work[:len(work)-1]
		v, ok := n.res.Winner(n.name)
		if !ok {
			continue
		}
		refs, err := src.Refs(v)
		if err != nil {
			return nil, err
		}
		if len(refs) == 0 {
			continue
		}
		if n.res.Refs == nil {
			n.res.Refs = map[string][]Ref{}
		}
		n.res.Refs[n.name] = refs
		for _, ref := range refs {
			target := n.res
			if ref.Scope != "" {
				if target, err = scopeOf(ref.Scope); err != nil {
					return nil, err
				}
				if target == nil {
					continue
				}
			}
			m := node{target, ref.Name}
			if !seen[m] {
				seen[m] = true
				work = append(work, m)
			}
		}
	}
	if len(root.Referenced) > 0 {
		deps := map[string]int64{}
		for _, d := range root.Deps {
			deps[d.Path] = d.Revision
		}
		for p, r := range root.Referenced {
			if r == nil {
				if rev, ok := deps[p]; !ok {
					deps[p] = 0
				} else if rev != 0 {
					root.Torn = true // there in one tree, gone from its own
				}
				continue
			}
			for _, d := range r.Deps {
				if rev, ok := deps[d.Path]; ok && rev != d.Revision {
					root.Torn = true // two trees read apart saw it at two revisions
				}
				deps[d.Path] = d.Revision
			}
			// A change to a value the env refers to is a change of the
			// env: its EnvRevision counts too (synced, watch events).
			root.EnvRevision = max(root.EnvRevision, r.EnvRevision)
		}
		root.Deps = root.Deps[:0:0]
		for p, rev := range deps {
			root.Deps = append(root.Deps, ScopeRev{Path: p, Revision: rev})
			root.Revision = max(root.Revision, rev)
		}
		slices.SortFunc(root.Deps, func(a, b ScopeRev) int { return strings.Compare(a.Path, b.Path) })
	}
	root.spreadSecrets()
	return root, nil
}

// RefScopes returns the scopes r's env refers to through references,
// directly or not, sorted (those that do not exist too).
func (r *Resolution) RefScopes() []string {
	out := make([]string, 0, len(r.Referenced))
	for p := range r.Referenced {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// scopeRes returns the resolution a reference of a var of res points
// into: res itself for ${NAME}, else the referenced scope's (nil when it
// does not exist).
func (r *Resolution) scopeRes(res *Resolution, ref Ref) *Resolution {
	switch {
	case ref.Scope == "":
		return res
	case ref.Scope == r.Scope:
		return r
	}
	return r.Referenced[ref.Scope]
}

// RefEdge is one reference met walking an env: From is the var whose
// value holds it, as "NAME" for a var of the env itself and
// "scope:NAME" for one of a referenced scope.
type RefEdge struct {
	From string
	Ref  Ref
}

// Text is how an error names the reference: "FROM refers to REF".
func (e RefEdge) Text() string {
	return e.From + " refers to " + e.Ref.String()
}

// Refused is the 403 of a reference the caller may not follow ("read",
// "reveal"): it names the reference, the var and the scope and name it
// refers to, never a value, and every API says so (Error.Names).
func (e RefEdge) Refused(verb string) *Error {
	return &Error{Code: EForbidden, Message: e.Text() + ", which this token may not " + verb, Names: true}
}

// refStepHook, when set, is called at every reference a walk of the
// reference graph follows (SetRefStepHook).
var refStepHook atomic.Pointer[func()]

// SetRefStepHook sets a function called at every reference that a walk
// of a reference graph follows (WalkRefs, a RefFinder, the secrecy worked
// out by ResolveRefs), for tests that bound the work of a read; nil
// removes it.
func SetRefStepHook(fn func()) {
	if fn == nil {
		refStepHook.Store(nil)
		return
	}
	refStepHook.Store(&fn)
}

func refStep() {
	if fn := refStepHook.Load(); fn != nil {
		(*fn)()
	}
}

// WalkRefs visits every reference reachable from the env's var name (or
// from every var of the env when name is ""), each once, depth first:
// references to other scopes included, as far as they exist. It stops at
// the first visit that returns false, and reports whether none did.
func (r *Resolution) WalkRefs(name string, visit func(e RefEdge) bool) bool {
	type node struct {
		res  *Resolution
		name string
	}
	seen := map[node]bool{}
	var walk func(res *Resolution, name string) bool
	walk = func(res *Resolution, name string) bool {
		n := node{res, name}
		if seen[n] {
			return true
		}
		seen[n] = true
		from := name
		if res != r {
			from = res.Scope + ":" + name
		}
		for _, ref := range res.Refs[name] {
			refStep()
			if !visit(RefEdge{From: from, Ref: ref}) {
				return false
			}
			if t := r.scopeRes(res, ref); t != nil {
				if !walk(t, ref.Name) {
					return false
				}
			}
		}
		return true
	}
	if name != "" {
		return walk(r, name)
	}
	for _, v := range r.Vars {
		if !walk(r, v.Name) {
			return false
		}
	}
	return true
}

// RefFinder answers, for vars of an env, which reference reachable from
// each is the first that a test holds for: the one a WalkRefs from the var
// would stop at. Each var of the reference graph is worked out once, its
// answer kept, however many vars ask: asking for every var of the env is
// linear in the graph, where a walk from each would be quadratic. In a
// graph without cycles (a write that would close one is refused) the
// answer is exactly the walk's: a walk that meets a var again has found
// nothing past it. A var met again on the current path (a cycle, read
// anyway) adds nothing there, so a cycle never loops.
type RefFinder struct {
	r     *Resolution
	ctx   context.Context
	bad   func(e RefEdge, to *Resolution) bool
	found map[refNode]*RefEdge // the vars worked out: the reference found, nil for none
	busy  map[refNode]bool     // the vars on the current path
	steps int
	err   error // ctx's, once it ended
}

// refNode is a var of the reference graph: a name in one resolution.
type refNode struct {
	res  *Resolution
	name string
}

// RefFinder returns a RefFinder of the references e that bad holds for.
// It gives up, with ctx's error, once ctx ends.
func (r *Resolution) RefFinder(ctx context.Context, bad func(e RefEdge) bool) *RefFinder {
	return r.refFinder(ctx, func(e RefEdge, _ *Resolution) bool { return bad(e) })
}

// refFinder is RefFinder with a test that is also given the resolution
// the reference points into (nil when its scope does not exist).
func (r *Resolution) refFinder(ctx context.Context, bad func(e RefEdge, to *Resolution) bool) *RefFinder {
	return &RefFinder{r: r, ctx: ctx, bad: bad, found: map[refNode]*RefEdge{}, busy: map[refNode]bool{}}
}

// First returns the first reference reachable from the env's var name,
// in the order WalkRefs(name, …) meets them, that the test holds for;
// false when there is none. Its error is ctx's, once ctx ended.
func (f *RefFinder) First(name string) (RefEdge, bool, error) {
	e, err := f.first(f.r, name)
	if err != nil || e == nil {
		return RefEdge{}, false, err
	}
	return *e, true, nil
}

func (f *RefFinder) first(res *Resolution, name string) (*RefEdge, error) {
	if f.err != nil {
		return nil, f.err
	}
	n := refNode{res, name}
	if e, ok := f.found[n]; ok {
		return e, nil
	}
	refs := res.Refs[name]
	if len(refs) == 0 || f.busy[n] {
		return nil, nil
	}
	f.busy[n] = true
	from := name
	if res != f.r {
		from = res.Scope + ":" + name
	}
	var found *RefEdge
	for _, ref := range refs {
		refStep()
		if f.steps++; f.steps%ctxEvery == 0 {
			if f.err = f.ctx.Err(); f.err != nil {
				return nil, f.err
			}
		}
		t := f.r.scopeRes(res, ref)
		if e := (RefEdge{From: from, Ref: ref}); f.bad(e, t) {
			found = &e
			break
		}
		if t == nil {
			continue
		}
		e, err := f.first(t, ref.Name)
		if err != nil {
			return nil, err
		}
		if e != nil {
			found = e
			break
		}
	}
	delete(f.busy, n)
	f.found[n] = found
	return found, nil
}

// Secret reports whether the env's var name is to be treated as a secret:
// it is one, or its value refers, directly or not, to one. Secrecy
// spreads through references. ResolveRefs works it out for every var of
// the env at once: asking is a lookup.
func (r *Resolution) Secret(name string) bool {
	v, ok := r.Winner(name)
	if !ok {
		return false
	}
	if v.Secret {
		return true
	}
	if len(r.Refs[name]) == 0 {
		return false
	}
	if r.secretRefs != nil {
		return r.secretRefs[name]
	}
	_, secret, _ := r.secretFinder().First(name)
	return secret
}

// secretFinder finds the references to a secret.
func (r *Resolution) secretFinder() *RefFinder {
	return r.refFinder(context.Background(), func(e RefEdge, to *Resolution) bool {
		if to == nil {
			return false
		}
		w, ok := to.Winner(e.Ref.Name)
		return ok && w.Secret
	})
}

// spreadSecrets works out, in one pass over the reference graph, which
// vars of the env that are not secrets refer, directly or not, to one
// (Secret): the resolution is kept and read by many, each asking for
// every var.
func (r *Resolution) spreadSecrets() {
	if len(r.Refs) == 0 {
		return
	}
	f := r.secretFinder()
	r.secretRefs = map[string]bool{}
	for name := range r.Refs {
		if v, ok := r.Winner(name); ok && !v.Secret {
			if _, secret, _ := f.First(name); secret {
				r.secretRefs[name] = true
			}
		}
	}
}

// unresolved returns the resolution that e, a reference of a var of res,
// points into, and the error a read fails with when it names a scope or
// a var that does not exist.
func (r *Resolution) unresolved(res *Resolution, e RefEdge) (*Resolution, error) {
	t := r.scopeRes(res, e.Ref)
	if t == nil {
		return nil, refError("broken_reference", "%s, whose scope does not exist", e.Text())
	}
	if _, ok := t.Winner(e.Ref.Name); !ok {
		return t, refError("broken_reference", "%s, which is not set", e.Text())
	}
	return t, nil
}

// BrokenRef returns the error a read of the env fails with on the first
// reference reachable from its vars that names a scope or a var that does
// not exist, or nil; it opens no value, so a caller that may not reveal
// the env can be told that a write left it unreadable.
func (r *Resolution) BrokenRef() error {
	var err error
	r.WalkRefs("", func(e RefEdge) bool {
		_, err = r.unresolved(r.resOf(e.From), e)
		return err == nil
	})
	return err
}

// resOf returns the resolution of a RefEdge's From.
func (r *Resolution) resOf(from string) *Resolution {
	if k := strings.LastIndexByte(from, ':'); k >= 0 {
		if res := r.Referenced[from[:k]]; res != nil {
			return res
		}
		if from[:k] == r.Scope {
			return r
		}
	}
	return r
}

// RefError is a reference that does not resolve: broken (its scope or
// var does not exist), a cycle, too deep or too large. It is a 422 on
// read that names the reference, never a value.
func refError(typ, format string, args ...any) error {
	return Invalid(Field("env", typ, format, args...))
}

// Expand returns the resolved values of the env's vars, in the order of
// r.Vars: each value with its references replaced by the values they
// name, expanded in turn. open returns a stored var's raw value. A
// reference to a var or scope that does not exist, a cycle, nesting
// deeper than MaxRefDepth, a value longer than MaxValueLen or an env
// longer than MaxEnvExpansion once expanded is a 422 naming the var and
// the reference. It takes time linear in what it opens and writes.
func (r *Resolution) Expand(open func(v *StoredVar) (string, error)) ([]string, error) {
	return r.ExpandContext(context.Background(), open)
}

// ExpandContext is Expand that gives up, with ctx's error, once ctx ends:
// a read whose caller went away stops expanding.
func (r *Resolution) ExpandContext(ctx context.Context, open func(v *StoredVar) (string, error)) ([]string, error) {
	x := r.ExpanderContext(ctx, open)
	out := make([]string, len(r.Vars))
	for i, v := range r.Vars {
		s, err := x.value(r, v, v.Name, 0, nil)
		if err != nil {
			return nil, err
		}
		out[i] = s.s
	}
	return out, nil
}

// Expander expands the env's vars one at a time (Value), sharing what it
// expanded between them; its bound on the env's expansion counts them all.
func (r *Resolution) Expander(open func(v *StoredVar) (string, error)) *Expander {
	return r.ExpanderContext(context.Background(), open)
}

// ExpanderContext is Expander whose Value gives up, with ctx's error,
// once ctx ends.
func (r *Resolution) ExpanderContext(ctx context.Context, open func(v *StoredVar) (string, error)) *Expander {
	return &Expander{r: r, ctx: ctx, open: open, memo: map[expandKey]expanded{}, busy: map[expandKey]bool{}}
}

// Value returns the resolved value of the env's var name, or Expand's
// errors for it.
func (x *Expander) Value(name string) (string, error) {
	v, ok := x.r.Winner(name)
	if !ok {
		return "", Errorf(ENotFound, "var %s is not in the env of %s", name, x.r.Scope)
	}
	s, err := x.value(x.r, v, name, 0, nil)
	return s.s, err
}

// Expander: see Resolution.Expander.
type Expander struct {
	r     *Resolution
	ctx   context.Context
	open  func(v *StoredVar) (string, error)
	memo  map[expandKey]expanded
	busy  map[expandKey]bool
	total int
	steps int   // vars and references met, for the look at ctx
	err   error // ctx's, once it ended
}

// expandKey is a var as expanded in one env: an inherited var's ${NAME}
// names a var of the env it is read in, so one var may expand
// differently in two envs.
type expandKey struct {
	res *Resolution
	v   *StoredVar
}

// expanded is a var's expanded value and its length in characters.
type expanded struct {
	s string
	n int
}

// ctxEvery is how many steps a walk or an expansion takes between two
// looks at its context (ctx.Err takes a lock).
const ctxEvery = 64

// step counts one step of x and reports ctx's error once it ended, and
// from then on.
func (x *Expander) step() error {
	if x.err == nil {
		x.steps++
		if x.steps%ctxEvery == 0 {
			x.err = x.ctx.Err()
		}
	}
	return x.err
}

// value expands v, the var label names in res, depth references deep;
// chain is the references followed to reach it, for a cycle's message.
// The characters of the value being built are counted as it grows, each
// piece once: recounting it at every reference would cost its length
// times its references.
func (x *Expander) value(res *Resolution, v *StoredVar, label string, depth int, chain []string) (expanded, error) {
	key := expandKey{res, v}
	if s, ok := x.memo[key]; ok {
		return s, nil
	}
	if err := x.step(); err != nil {
		return expanded{}, err
	}
	raw, err := x.open(v)
	if err != nil {
		return expanded{}, err
	}
	refs := res.Refs[v.Name]
	if len(refs) == 0 && !strings.Contains(raw, "$${") {
		s := expanded{raw, utf8.RuneCountInString(raw)}
		x.memo[key] = s
		return s, nil
	}
	if x.busy[key] {
		return expanded{}, refError("reference_cycle", "reference cycle: %s", strings.Join(append(chain, label), " -> "))
	}
	if depth > MaxRefDepth {
		return expanded{}, refError("reference_too_deep", "%s: references nest deeper than %d", chain[0], MaxRefDepth)
	}
	x.busy[key] = true
	defer delete(x.busy, key)
	chain = append(chain, label)
	var b strings.Builder
	n := 0 // the characters of b
	var ferr error
	err = scanValue(raw, func(s string) {
		b.WriteString(s)
		n += utf8.RuneCountInString(s)
	}, func(ref Ref) {
		if ferr != nil {
			return
		}
		if ferr = x.step(); ferr != nil {
			return
		}
		t, err := x.r.unresolved(res, RefEdge{From: label, Ref: ref})
		if err != nil {
			ferr = err
			return
		}
		w, _ := t.Winner(ref.Name)
		tl := ref.Name
		if t != x.r {
			tl = t.Scope + ":" + ref.Name
		}
		s, err := x.value(t, w, tl, depth+1, chain)
		if err != nil {
			ferr = err
			return
		}
		b.WriteString(s.s)
		n += s.n
		if b.Len() > MaxValueLen && n > MaxValueLen {
			ferr = tooLong(label)
		}
	})
	if err == nil {
		err = ferr
	}
	if err == nil && n > MaxValueLen {
		err = tooLong(label) // by the text after its last reference
	}
	if err != nil {
		return expanded{}, err
	}
	s := expanded{b.String(), n}
	x.total += len(s.s)
	if x.total > MaxEnvExpansion {
		return expanded{}, refError("env_too_large", "the env of %s is larger than %d bytes once its references are expanded", x.r.Scope, MaxEnvExpansion)
	}
	x.memo[key] = s
	return s, nil
}

// tooLong is the error of the var label's value, longer than MaxValueLen
// characters once expanded.
func tooLong(label string) error {
	return refError("reference_too_long", "%s: its value is longer than %d characters once its references are expanded", label, MaxValueLen)
}

// Cycle returns the first reference cycle reachable from the env's vars,
// as "A -> B -> A", or "" when there is none.
func (r *Resolution) Cycle() string {
	type node struct {
		res  *Resolution
		name string
	}
	state := map[node]int{} // 1: on the path, 2: done
	var path []string
	var found string
	var visit func(res *Resolution, name string) bool
	visit = func(res *Resolution, name string) bool {
		n := node{res, name}
		label := name
		if res != r {
			label = res.Scope + ":" + name
		}
		switch state[n] {
		case 1:
			i := slices.Index(path, label)
			found = strings.Join(append(slices.Clone(path[i:]), label), " -> ")
			return false
		case 2:
			return true
		}
		state[n] = 1
		path = append(path, label)
		for _, ref := range res.Refs[name] {
			if t := r.scopeRes(res, ref); t != nil {
				if _, ok := t.Winner(ref.Name); ok && !visit(t, ref.Name) {
					return false
				}
			}
		}
		path = path[:len(path)-1]
		state[n] = 2
		return true
	}
	for _, v := range r.Vars {
		if !visit(r, v.Name) {
			return found
		}
	}
	return ""
}
