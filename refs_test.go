package envy_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/envy-dev/envy"
)

func TestParseRefs(t *testing.T) {
	good := []struct {
		in   string
		refs []string
	}{
		{"plain", nil},
		{"$HOME and $ alone", nil},
		{"${A}", []string{"A"}},
		{"postgres://${USER}:${acme/shared:DB_PASSWORD}@db/${DB_NAME}", []string{"USER", "acme/shared:DB_PASSWORD", "DB_NAME"}},
		{"$${A} is literal", nil},
		{"$${A} ${B}", []string{"B"}},
		{"x$", nil},
		{"${_x9}", []string{"_x9"}},
		{"${a.b~c-d/e_f:N}", []string{"a.b~c-d/e_f:N"}},
	}
	for _, c := range good {
		refs, err := envy.ParseRefs(c.in)
		if err != nil {
			t.Errorf("ParseRefs(%q): %v", c.in, err)
			continue
		}
		var got []string
		for _, r := range refs {
			got = append(got, r.String())
			if c.in[r.Off:r.End] != "${"+r.String()+"}" {
				t.Errorf("ParseRefs(%q): ref %s at [%d:%d] is %q", c.in, r, r.Off, r.End, c.in[r.Off:r.End])
			}
		}
		if !slices.Equal(got, c.refs) {
			t.Errorf("ParseRefs(%q) = %v, want %v", c.in, got, c.refs)
		}
	}
	bad := []struct {
		in  string
		off int
	}{
		{"${", 0},
		{"abc ${A", 4},
		{"${}", 0},
		{"x ${1A}", 2},
		{"${A B}", 0},
		{"${scope:}", 0},
		{"${:A}", 0},
		{"${/bad:A}", 0},
		{"${a//b:A}", 0},
		{"ok ${A} then ${-}", 13},
		{"${a:b:C}", 0},
	}
	for _, c := range bad {
		_, err := envy.ParseRefs(c.in)
		var se *envy.RefSyntaxError
		if !errors.As(err, &se) {
			t.Errorf("ParseRefs(%q): %v, want a RefSyntaxError", c.in, err)
			continue
		}
		if se.Off != c.off {
			t.Errorf("ParseRefs(%q): offset %d, want %d", c.in, se.Off, c.off)
		}
		if !strings.Contains(se.Error(), fmt.Sprintf("offset %d", c.off)) {
			t.Errorf("ParseRefs(%q): error %q does not name the offset", c.in, se.Error())
		}
	}
}

// world is a store for ResolveRefs: scope → inherits, and scope → var →
// value ("!" before a value makes it a secret). A value is "sealed" as
// itself.
type world struct {
	inherits map[string][]string
	vars     map[string]map[string]string
	rev      map[string]int64
	trees    int // how many trees were read
}

func (w *world) tree(root string) (map[string]*envy.ScopeVars, error) {
	w.trees++
	if w.vars[root] == nil && w.inherits[root] == nil {
		return nil, envy.Errorf(envy.ENotFound, "scope %s not found", root)
	}
	out := map[string]*envy.ScopeVars{}
	queue := []string{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if out[p] != nil || w.vars[p] == nil && w.inherits[p] == nil {
			continue
		}
		sv := &envy.ScopeVars{Scope: envy.Scope{Path: p, Inherits: w.inherits[p], Revision: 1 + w.rev[p]}}
		names := slices.Sorted(mapKeys(w.vars[p]))
		for _, n := range names {
			val := w.vars[p][n]
			secret := strings.HasPrefix(val, "!")
			sv.Vars = append(sv.Vars, envy.StoredVar{Scope: p, Name: n, Sealed: []byte(strings.TrimPrefix(val, "!")), Secret: secret, Version: 1, Revision: 1})
		}
		out[p] = sv
		queue = append(queue, w.inherits[p]...)
	}
	return out, nil
}

func mapKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func (w *world) resolve(t *testing.T, path string) (*envy.Resolution, error) {
	t.Helper()
	tree, err := w.tree(path)
	if err != nil {
		t.Fatal(err)
	}
	return envy.ResolveRefs(path, tree, envy.RefSource{Tree: w.tree, Refs: func(v *envy.StoredVar) ([]envy.Ref, error) {
		refs, _ := envy.ParseRefs(string(v.Sealed))
		return refs, nil
	}})
}

func openRaw(v *envy.StoredVar) (string, error) { return string(v.Sealed), nil }

func (w *world) env(t *testing.T, path string) (map[string]string, error) {
	t.Helper()
	r, err := w.resolve(t, path)
	if err != nil {
		return nil, err
	}
	vals, err := r.Expand(openRaw)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for i, v := range r.Vars {
		out[v.Name] = vals[i]
	}
	return out, nil
}

func TestResolveRefsAcrossInheritsAndScopes(t *testing.T) {
	w := &world{
		inherits: map[string][]string{"acme/web": {"acme"}},
		vars: map[string]map[string]string{
			"acme": {"DATABASE_URL": "postgres://${DB_USER}:${acme/shared:DB_PASSWORD}@${acme/shared:HOST}/x", "LIT": "$${NOT_A_REF} costs $5"},
			// The inherited value refers to DB_USER, which the inheriting scope defines.
			"acme/web":    {"DB_USER": "web"},
			"acme/shared": {"DB_PASSWORD": "!s3cret", "HOST": "${DOMAIN}", "DOMAIN": "db.internal"},
		},
		rev: map[string]int64{"acme": 10, "acme/web": 20, "acme/shared": 30},
	}
	r, err := w.resolve(t, "acme/web")
	if err != nil {
		t.Fatal(err)
	}
	env, err := w.env(t, "acme/web")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := env["DATABASE_URL"], "postgres://web:s3cret@db.internal/x"; got != want {
		t.Errorf("DATABASE_URL = %q, want %q", got, want)
	}
	if got, want := env["LIT"], "${NOT_A_REF} costs $5"; got != want {
		t.Errorf("LIT = %q, want %q", got, want)
	}
	// The referenced scope joins the deps, and the revision is the max.
	var deps []string
	for _, d := range r.Deps {
		deps = append(deps, fmt.Sprintf("%s@%d", d.Path, d.Revision))
	}
	if want := []string{"acme@11", "acme/shared@31", "acme/web@21"}; !slices.Equal(deps, want) {
		t.Errorf("deps = %v, want %v", deps, want)
	}
	if r.Revision != 31 {
		t.Errorf("revision = %d, want 31 (the referenced scope's)", r.Revision)
	}
	// Secrecy spreads: DATABASE_URL refers to a secret.
	if !r.Secret("DATABASE_URL") || r.Secret("DB_USER") || r.Secret("LIT") {
		t.Errorf("Secret: DATABASE_URL %v (want true), DB_USER %v, LIT %v (want false)", r.Secret("DATABASE_URL"), r.Secret("DB_USER"), r.Secret("LIT"))
	}
	// In acme itself, DB_USER is not set: a 422 naming the reference.
	_, err = w.env(t, "acme")
	if envy.ErrorCode(err) != envy.EInvalid || !strings.Contains(err.Error(), "DATABASE_URL refers to DB_USER, which is not set") {
		t.Errorf("env of acme: %v, want a 422 naming DATABASE_URL refers to DB_USER", err)
	}
	// A tree as read again, with the referenced scope, keeps the resolution current; a change to it does not.
	full := map[string]*envy.ScopeVars{}
	for _, p := range []string{"acme/web", "acme/shared"} {
		tr, _ := w.tree(p)
		for k, v := range tr {
			full[k] = v
		}
	}
	if !r.Current(full) {
		t.Error("the resolution is not current over the trees it was resolved from")
	}
	w.rev["acme/shared"]++
	tr, _ := w.tree("acme/shared")
	full["acme/shared"] = tr["acme/shared"]
	if r.Current(full) {
		t.Error("the resolution is still current after a change to a scope it refers to")
	}
}

func TestResolveRefsToAMissingScopeIsADepAtRevisionZero(t *testing.T) {
	w := &world{vars: map[string]map[string]string{"app": {"A": "${later/scope:X}"}}, rev: map[string]int64{}}
	r, err := w.resolve(t, "app")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(r.Deps, envy.ScopeRev{Path: "later/scope", Revision: 0}) {
		t.Fatalf("deps %v lack later/scope at revision 0", r.Deps)
	}
	tr, _ := w.tree("app")
	if !r.Current(tr) {
		t.Error("not current while the referenced scope is still missing")
	}
	_, err = w.env(t, "app")
	if envy.ErrorCode(err) != envy.EInvalid || !strings.Contains(err.Error(), "A refers to later/scope:X, whose scope does not exist") {
		t.Errorf("env: %v, want a 422 naming the reference", err)
	}
	w.vars["later/scope"] = map[string]string{"X": "x"}
	created, _ := w.tree("later/scope")
	tr["later/scope"] = created["later/scope"]
	if r.Current(tr) {
		t.Error("still current once the referenced scope exists")
	}
}

func TestExpandRefusesCyclesDepthAndSize(t *testing.T) {
	w := &world{vars: map[string]map[string]string{
		"a": {"A": "${B}", "B": "${b:C}"},
		"b": {"C": "${a:A}"},
	}, rev: map[string]int64{}}
	r, err := w.resolve(t, "a")
	if err != nil {
		t.Fatal(err)
	}
	if c := r.Cycle(); c != "A -> B -> b:C -> A" {
		t.Errorf("Cycle() = %q, want A -> B -> b:C -> A", c)
	}
	if _, err := w.env(t, "a"); envy.ErrorCode(err) != envy.EInvalid || !strings.Contains(err.Error(), "reference cycle") {
		t.Errorf("env of a cycle: %v, want a 422 naming the cycle", err)
	}

	// Depth: V0 → V1 → … → V9.
	deep := map[string]string{}
	for i := range 10 {
		deep[fmt.Sprintf("V%d", i)] = fmt.Sprintf("${V%d}", i+1)
	}
	deep["V10"] = "end"
	w = &world{vars: map[string]map[string]string{"d": deep}, rev: map[string]int64{}}
	if _, err := w.env(t, "d"); envy.ErrorCode(err) != envy.EInvalid || !strings.Contains(err.Error(), fmt.Sprintf("deeper than %d", envy.MaxRefDepth)) {
		t.Errorf("env 10 references deep: %v, want a 422 on the depth", err)
	}
	delete(deep, "V0")
	delete(deep, "V1")
	if env, err := w.env(t, "d"); err != nil || env["V2"] != "end" {
		t.Errorf("env 8 references deep: %v, %q", err, env["V2"])
	}

	// Size: each level doubles the value.
	big := map[string]string{"L0": strings.Repeat("x", 1000)}
	for i := 1; i <= 7; i++ {
		big[fmt.Sprintf("L%d", i)] = fmt.Sprintf("${L%d}${L%d}", i-1, i-1)
	}
	w = &world{vars: map[string]map[string]string{"s": big}, rev: map[string]int64{}}
	if _, err := w.env(t, "s"); envy.ErrorCode(err) != envy.EInvalid || !strings.Contains(err.Error(), "longer than 65536") {
		t.Errorf("env of a 128,000-character expansion: %v, want a 422 on the value limit", err)
	}

	// The env's total: 100 values of 60,000 characters each.
	total := map[string]string{"BASE": strings.Repeat("y", 60000)}
	for i := range 100 {
		total[fmt.Sprintf("C%03d", i)] = "${BASE}-" + fmt.Sprint(i)
	}
	w = &world{vars: map[string]map[string]string{"t": total}, rev: map[string]int64{}}
	if _, err := w.env(t, "t"); envy.ErrorCode(err) != envy.EInvalid || !strings.Contains(err.Error(), "once its references are expanded") {
		t.Errorf("env of a 6 MB expansion: %v, want a 422 on the env's bound", err)
	}
}

func TestResolveRefsBoundsTheScopesItReads(t *testing.T) {
	vars := map[string]map[string]string{}
	// A chain of 40 scopes, each referring to the next.
	for i := range 40 {
		vars[fmt.Sprintf("s%d", i)] = map[string]string{"X": fmt.Sprintf("${s%d:X}", i+1)}
	}
	w := &world{vars: vars, rev: map[string]int64{}}
	_, err := w.resolve(t, "s0")
	if envy.ErrorCode(err) != envy.EInvalid || !strings.Contains(err.Error(), "more than 32 scopes") {
		t.Fatalf("resolve: %v, want a 422 on the bound of scopes", err)
	}
	if w.trees > envy.MaxRefScopes+2 {
		t.Errorf("read %d trees for a bound of %d", w.trees, envy.MaxRefScopes)
	}
}

// TestResolveRefsOfTreesReadApartIsTornWhenTheyDisagree: app and db both
// inherit base, and app refers to db. When base changes between the read
// of app's tree and that of db's, the two trees disagree on base: the
// resolution is Torn (its Deps would name base's new revision beside
// app's layers built from the old). Trees that agree, or scopes that only
// one of them holds, are not.
func TestResolveRefsOfTreesReadApartIsTornWhenTheyDisagree(t *testing.T) {
	w := &world{
		inherits: map[string][]string{"app": {"base"}, "db": {"base"}},
		vars: map[string]map[string]string{
			"base": {"B": "b1"},
			"app":  {"R": "${db:D}"},
			"db":   {"D": "d1"},
			"solo": {"R": "${db:D}"},
		},
		rev: map[string]int64{},
	}
	src := envy.RefSource{Refs: func(v *envy.StoredVar) ([]envy.Ref, error) {
		refs, _ := envy.ParseRefs(string(v.Sealed))
		return refs, nil
	}}
	for _, c := range []struct {
		path   string
		change bool // base changes between the reads
		want   bool
	}{
		{"app", false, false},
		{"app", true, true},
		{"solo", true, false}, // solo does not inherit base: nothing to disagree on
	} {
		tree, err := w.tree(c.path)
		if err != nil {
			t.Fatal(err)
		}
		src.Tree = func(p string) (map[string]*envy.ScopeVars, error) {
			if c.change {
				w.rev["base"]++
			}
			return w.tree(p)
		}
		r, err := envy.ResolveRefs(c.path, tree, src)
		if err != nil {
			t.Fatal(err)
		}
		if r.Torn != c.want {
			t.Errorf("%s, base changed between the reads %v: Torn %v, want %v (deps %v)", c.path, c.change, r.Torn, c.want, r.Deps)
		}
	}
}

// BrokenRef names, without opening a value, the reference that a read of
// the env fails on: the same error as Expand's, for a reference of the
// env's own vars and for one of a var of a referenced scope (whose own
// references resolve in that scope's env, not this one's).
func TestBrokenRefIsTheErrorAReadFailsOn(t *testing.T) {
	w := &world{
		vars: map[string]map[string]string{
			"acme/web":    {"URL": "pg://${acme/shared:HOST}/x", "HOST": "web.internal"},
			"acme/shared": {"HOST": "${DOMAIN}"},
		},
	}
	r, err := w.resolve(t, "acme/web")
	if err != nil {
		t.Fatal(err)
	}
	_, readErr := r.Expand(openRaw)
	if readErr == nil {
		t.Fatal("the env reads, though acme/shared:HOST refers to DOMAIN, which acme/shared does not set")
	}
	if err := r.BrokenRef(); err == nil || err.Error() != readErr.Error() {
		t.Fatalf("BrokenRef = %v, want the read's %v", err, readErr)
	}
	w.vars["acme/shared"]["DOMAIN"] = "db.internal"
	if r, err = w.resolve(t, "acme/web"); err != nil {
		t.Fatal(err)
	}
	if err := r.BrokenRef(); err != nil {
		t.Fatalf("BrokenRef of an env that reads = %v", err)
	}
}
