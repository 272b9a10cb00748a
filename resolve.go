package envy

import (
	"fmt"
	"slices"
	"strings"
)

// MaxTreeScopes bounds the distinct scopes of a scope's tree: the scope
// and every scope it inherits from, directly or not. A write of inherits
// that would make a tree larger is refused (CheckInherits).
const MaxTreeScopes = 256

// Layer is one scope of a resolved tree, as of one revision, with its own
// vars sorted by name. Vars is the store's snapshot: read-only.
type Layer struct {
	Path        string
	Revision    int64
	EnvRevision int64 // the scope's (Scope.EnvRevision)
	Vars        []StoredVar
}

// Resolution is what a scope's env is and what it depends on: the one
// definition that every read, ETag, cache, watcher, the dashboard and the
// CLI take it from.
type Resolution struct {
	Scope string
	// Layers are the scopes merged, in order: each scope of the tree once,
	// at its last place in the depth-first order of inherits (a parent's
	// inherits before the parent, in the order listed), so that the scope
	// itself is last. A later layer's var wins over an earlier one's.
	Layers []Layer
	// Vars is the env: for each name, the var of the last layer that has
	// it, sorted by name. Its Scope field is the layer it comes from. The
	// pointers are into the layers' snapshots: read-only.
	Vars []*StoredVar
	// Revision is the newest revision of any layer: the env's revision,
	// and its ETag.
	Revision int64
	// EnvRevision is the newest EnvRevision of any layer: the newest
	// revision that changed what the env holds (a value, a secret flag, a
	// var's presence, the layers), which descriptions don't. It is the
	// env's identity: a consumer that runs EnvRevision or newer runs this
	// env (synced), and watchers hear of a new EnvRevision only.
	EnvRevision int64
	// Deps are the scopes whose change changes the result, each as of the
	// revision it was read at, sorted by path. Every change to a scope
	// takes a new revision, so a cached result stays good exactly while
	// every dep is at its revision (Current), and a change to any dep
	// concerns whoever keeps or watches it.
	Deps []ScopeRev
	// Refs are the references of the values that ResolveRefs followed,
	// by var name (refs.go); nil for a plain Resolve.
	Refs map[string][]Ref
	// Referenced are the resolutions of the scopes reached through
	// references, by path, nil for one that does not exist (its dep is at
	// revision 0); set on the resolution ResolveRefs returns only.
	Referenced map[string]*Resolution
	// Torn is set by ResolveRefs when the trees it was given and read
	// disagree on a scope (read at different moments, a change between
	// them): the resolution then describes no one state, its Deps not what
	// each part was built from. Read again rather than use or keep it.
	Torn bool
	// secretRefs are the vars of the env, not secrets themselves, whose
	// values refer to a secret, directly or not (Secret), worked out by
	// ResolveRefs in one pass; nil when it did not.
	secretRefs map[string]bool
}

// ScopeRev names a scope as of one revision.
type ScopeRev struct {
	Path     string
	Revision int64
}

// Current reports whether tree, a scope's tree as Store.ScopeTree reads
// it now (with the trees of the scopes it refers to, RefScopes), still
// gives r: the same scopes, each at the revision r was resolved from, and
// a dep at revision 0 (a referenced scope that did not exist) still
// missing.
func (r *Resolution) Current(tree map[string]*ScopeVars) bool {
	n := 0
	for _, d := range r.Deps {
		sv := tree[d.Path]
		if d.Revision == 0 && sv == nil {
			continue
		}
		if sv == nil || sv.Scope.Revision != d.Revision {
			return false
		}
		n++
	}
	return len(tree) == n
}

// Resolve resolves the scope at path over tree, the scope and every scope
// it inherits from (Store.ScopeTree). It takes time linear in the size of
// the tree: each scope is visited once, whatever the shape of the graph.
// A scope missing from tree is left out (a read between two commits);
// the scope itself missing is ENotFound.
func Resolve(path string, tree map[string]*ScopeVars) (*Resolution, error) {
	root := tree[path]
	if root == nil {
		return nil, Errorf(ENotFound, "scope %s not found", path)
	}
	order := layerOrder(path, tree)
	r := &Resolution{Scope: path, Layers: make([]Layer, len(order)), Deps: make([]ScopeRev, len(order))}
	for i, sv := range order {
		r.Layers[i] = Layer{Path: sv.Scope.Path, Revision: sv.Scope.Revision, EnvRevision: sv.Scope.EnvRevision, Vars: sv.Vars}
		r.Deps[i] = ScopeRev{Path: sv.Scope.Path, Revision: sv.Scope.Revision}
		r.Revision = max(r.Revision, sv.Scope.Revision)
		r.EnvRevision = max(r.EnvRevision, sv.Scope.EnvRevision)
	}
	slices.SortFunc(r.Deps, func(a, b ScopeRev) int { return strings.Compare(a.Path, b.Path) })
	r.Vars = mergeLayers(r.Layers)
	return r, nil
}

// layerOrder returns the scopes of path's tree in merge order, each once
// at its last place in the full depth-first post-order. The last places in
// a sequence are the first places in its reverse, and the reverse of a
// post-order is a pre-order that takes the children last to first: walked
// with a visited set, that pre-order meets each scope first exactly where
// the full walk would (a scope met again has had its whole subtree met
// already), so the walk is linear.
func layerOrder(path string, tree map[string]*ScopeVars) []*ScopeVars {
	seen := make(map[string]bool, len(tree))
	rev := make([]*ScopeVars, 0, len(tree))
	stack := []string{path}
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		sv := tree[p]
		if seen[p] || sv == nil {
			continue
		}
		seen[p] = true
		rev = append(rev, sv)
		// Pushed first to last, so popped last to first.
		stack = append(stack, sv.Scope.Inherits...)
	}
	slices.Reverse(rev)
	return rev
}

// mergeLayers merges the layers' vars, later layers winning, into one
// list sorted by name. Each layer is sorted by name: a few layers (the
// common case) merge as sorted lists; many merge through a map, so that
// the cost stays linear in the vars however many layers there are.
func mergeLayers(layers []Layer) []*StoredVar {
	if len(layers) > 8 {
		last := map[string]*StoredVar{}
		for _, l := range layers {
			for i := range l.Vars {
				last[l.Vars[i].Name] = &l.Vars[i]
			}
		}
		out := make([]*StoredVar, 0, len(last))
		for _, v := range last {
			out = append(out, v)
		}
		slices.SortFunc(out, func(a, b *StoredVar) int { return strings.Compare(a.Name, b.Name) })
		return out
	}
	var vars []*StoredVar
	for _, l := range layers {
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
	return vars
}

// Winner returns the var in effect for name: the one of the env.
func (r *Resolution) Winner(name string) (*StoredVar, bool) {
	i, ok := slices.BinarySearchFunc(r.Vars, name, func(v *StoredVar, n string) int { return strings.Compare(v.Name, n) })
	if !ok {
		return nil, false
	}
	return r.Vars[i], true
}

// ShadowedBy returns the scope whose value wins over layer's var name,
// or "" when layer's is the one in effect.
func (r *Resolution) ShadowedBy(layer, name string) string {
	if w, ok := r.Winner(name); ok && w.Scope != layer {
		return w.Scope
	}
	return ""
}

// CheckInherits checks, in time linear in the size of the tree, that path
// may inherit the scopes listed: each exists (lookup answers ENotFound
// when not), none leads back to path, the tree the scope would have holds
// at most MaxTreeScopes distinct scopes, and no chain in it is deeper than
// MaxInheritDepth. Its errors are validation errors on body.inherits,
// naming the bound. A scope the caller may not read is never named:
// lookup must answer ENotFound for it, and a cycle or a bound is reported
// without naming the scope where it was met.
func CheckInherits(path string, inherits []string, lookup func(path string) (Scope, error)) error {
	// height is the longest chain below a scope, memoized: each scope is
	// looked up and its inherits walked once. onPath detects a cycle that
	// slipped past validation among other scopes.
	height := map[string]int{}
	onPath := map[string]bool{}
	var visit func(p string, depth int) (int, error)
	visit = func(p string, depth int) (int, error) {
		if p == path {
			return 0, Invalid(Field("body.inherits", "cycle", "the inherits chain leads back to %s: that makes a cycle", path))
		}
		if h, ok := height[p]; ok {
			return h, nil
		}
		if onPath[p] {
			return 0, Invalid(Field("body.inherits", "cycle", "an inherited scope's inherits chain makes a cycle"))
		}
		if depth > MaxInheritDepth {
			return 0, Invalid(Field("body.inherits", "too_deep", "the inherits chain is deeper than %d", MaxInheritDepth))
		}
		if 1+len(height)+len(onPath) >= MaxTreeScopes {
			return 0, Invalid(Field("body.inherits", "too_many_scopes",
				"the scope's tree would hold more than %d distinct scopes (the scope and every scope it inherits from, directly or not)", MaxTreeScopes))
		}
		sc, err := lookup(p)
		if err != nil {
			return 0, err
		}
		onPath[p] = true
		h := 0
		for _, q := range sc.Inherits {
			d, err := visit(q, depth+1)
			if err != nil {
				return 0, err
			}
			h = max(h, d+1)
		}
		delete(onPath, p)
		height[p] = h
		return h, nil
	}
	for i, p := range inherits {
		loc := fmt.Sprintf("body.inherits[%d]", i)
		h, err := visit(p, 1)
		if ErrorCode(err) == ENotFound {
			return Invalid(Field(loc, "not_found", "scope %s does not exist", p))
		}
		if err != nil {
			return err
		}
		if h+1 > MaxInheritDepth {
			return Invalid(Field(loc, "too_deep", "the inherits chain is deeper than %d", MaxInheritDepth))
		}
	}
	return nil
}

// ResolvedView is a scope's resolution as a caller may see it: its layers
// in merge order, each scope once, the scope itself last. A layer the
// caller may not read shows as HiddenScope, without its vars.
type ResolvedView struct {
	Scope    string
	Revision int64
	Layers   []LayerView
}

// LayerView is one layer of a ResolvedView.
type LayerView struct {
	Scope    string // HiddenScope when Hidden
	Hidden   bool
	Revision int64 // 0 when Hidden
	Vars     []ResolvedVarView
}

// ResolvedVarView is a layer's var: From is the layer, and ShadowedBy,
// on a var not in effect, the scope whose value wins (HiddenScope when
// the caller may not read it).
type ResolvedVarView struct {
	VarView
	From       string
	ShadowedBy string
	// References are the references of the value, as written between the
	// braces ("NAME", "scope/path:NAME"), on a var in effect (refs.go).
	References []string
	// ResolvedValue is the value with its references expanded, on a var in
	// effect that has references and that the caller may see resolved;
	// RefError, instead, why it does not resolve or may not be shown.
	ResolvedValue *Sensitive
	RefError      string
}
