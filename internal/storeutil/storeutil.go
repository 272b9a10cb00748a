// Package storeutil is what every envy.Store implementation shares: the
// rules of a write (which planned changes take effect, revision
// preconditions), the encoding of times and lists, and the migrations
// runner's loader. It is written once so that the stores can't drift.
//
// It imports the domain package and the standard library only: never a
// database driver, net/http or envy's http package.
package storeutil

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/envy-dev/envy"
)

// NotFound is the error for a scope that does not exist.
func NotFound(path string) error {
	return envy.Errorf(envy.ENotFound, "scope %s not found", path)
}

// ErrClosed is what every call answers once a store's Close has begun.
func ErrClosed() error {
	return envy.Errorf(envy.EUnavailable, "the store is closed")
}

// CheckRevision implements IfRevision: when > 0, the scope must exist
// (cur != nil) and be at that revision.
func CheckRevision(path string, cur *envy.Scope, ifRevision int64) error {
	if ifRevision <= 0 {
		return nil
	}
	if cur == nil {
		return envy.Errorf(envy.EPrecondition, "scope %s does not exist, so it is not at revision %d", path, ifRevision)
	}
	if cur.Revision != ifRevision {
		return envy.Errorf(envy.EPrecondition, "scope %s is at revision %d, not %d", path, cur.Revision, ifRevision)
	}
	return nil
}

// Prepare checks a write against the scope's current state cur (nil when
// the scope does not exist): IfRevision, a missing scope that the write
// may not create, and a stale plan (see Effective). It returns the
// effects; with none, the result the write answers as is.
func Prepare(w envy.Write, cur *envy.ScopeVars) ([]Effect, envy.WriteResult, error) {
	var curScope *envy.Scope
	if cur != nil {
		curScope = &cur.Scope
	}
	if err := CheckRevision(w.Scope, curScope, w.IfRevision); err != nil {
		return nil, envy.WriteResult{}, err
	}
	if cur == nil && !w.CreateScope {
		return nil, envy.WriteResult{}, NotFound(w.Scope)
	}
	eff, err := Effective(w, cur)
	if err != nil {
		return nil, envy.WriteResult{}, err // ErrStale as is: the service plans again
	}
	switch {
	case len(eff) > 0:
		return eff, envy.WriteResult{}, nil
	case cur == nil:
		return nil, envy.WriteResult{}, nil
	case w.Touch:
		return []Effect{}, envy.WriteResult{}, nil // a revision with no var changed
	}
	return nil, envy.WriteResult{Revision: cur.Scope.Revision, EnvRevision: cur.Scope.EnvRevision}, nil
}

// ScopeEnvRevision is a scope's EnvRevision once a scope write at rev
// gives it inherits (cur nil: the write creates it), and whether it
// changed: a change of the description only leaves it.
func ScopeEnvRevision(cur *envy.Scope, inherits []string, rev int64) (int64, bool) {
	if cur == nil || !slices.Equal(cur.Inherits, inherits) {
		return rev, true
	}
	return cur.EnvRevision, false
}

// EnvRevision is the scope's EnvRevision once effects take revision rev
// (cur nil: the write creates the scope), and whether it changed: unless
// every effect only sets an existing var's description (MetaOnly), or
// there is none (a Touch), the envs resolved over the scope change.
func EnvRevision(cur *envy.ScopeVars, eff []Effect, rev int64) (int64, bool) {
	if cur == nil {
		return rev, true
	}
	for _, e := range eff {
		if e.Delete || e.Old == nil || !e.MetaOnly {
			return rev, true
		}
	}
	return cur.Scope.EnvRevision, false
}

// ChangeColumns are the history columns that ScanChange reads, in order.
const ChangeColumns = `revision, name, op, var_id, version, secret, description, sealed, actor, at, actor_token`

// ScanChange reads one history row of ChangeColumns with scan.
func ScanChange(scan func(dest ...any) error, scope string) (envy.Change, error) {
	c := envy.Change{Scope: scope}
	var (
		op string
		at int64
	)
	if err := scan(&c.Revision, &c.Name, &op, &c.VarID, &c.Version, &c.Secret, &c.Description, &c.Sealed, &c.Actor, &at, &c.ActorToken); err != nil {
		return envy.Change{}, err
	}
	c.Op, c.At = envy.Op(op), FromNanos(at)
	return c, nil
}

// Effect is a planned change that changes something, with the var's state
// before it (nil when the var is new).
type Effect struct {
	envy.VarChange
	Old *envy.StoredVar
}

// Effective checks a write against the scope's current state (nil when
// the scope does not exist; vars sorted by name) and returns the changes
// that change something: deleting an absent var does not, and must leave
// no trace in the history. It answers envy.ErrStale when the write was
// planned from another state than the current one. A write that names a
// var twice, or sets one without an id, a version or a sealed value, is a
// bug in the caller, reported as an internal error.
func Effective(w envy.Write, cur *envy.ScopeVars) ([]Effect, error) {
	var vars []envy.StoredVar
	var rev int64
	if cur != nil {
		vars, rev = cur.Vars, cur.Scope.Revision
	}
	if w.WholeScope && rev != w.BaseRevision {
		return nil, envy.ErrStale
	}
	seen := make(map[string]bool, len(w.Changes))
	eff := make([]Effect, 0, len(w.Changes))
	for _, c := range w.Changes {
		switch {
		case c.Name == "":
			return nil, fmt.Errorf("write to %s: a change without a name", w.Scope)
		case seen[c.Name]:
			return nil, fmt.Errorf("write to %s: %s is changed twice", w.Scope, c.Name)
		case !c.Delete && (c.ID == "" || c.Version < 1 || c.Sealed == nil):
			return nil, fmt.Errorf("write to %s: %s is set without an id, a version or a sealed value", w.Scope, c.Name)
		case !c.Delete && c.Version != c.Base+1:
			return nil, fmt.Errorf("write to %s: %s is set at version %d from version %d", w.Scope, c.Name, c.Version, c.Base)
		}
		seen[c.Name] = true
		old := Find(vars, c.Name)
		var have int64
		if old != nil {
			have = old.Version
		}
		// The version says how often a var changed, not which var it is:
		// one deleted and set again starts at version 1 again. A change
		// that names the id it was planned from is stale for another.
		if have != c.Base || old != nil && c.ID != "" && c.ID != old.ID {
			return nil, envy.ErrStale
		}
		if c.Delete && old == nil {
			continue
		}
		eff = append(eff, Effect{VarChange: c, Old: old})
	}
	return eff, nil
}

// Find returns the var with the given name in vars sorted by name, nil
// when there is none.
func Find(vars []envy.StoredVar, name string) *envy.StoredVar {
	i, ok := slices.BinarySearchFunc(vars, name, func(v envy.StoredVar, n string) int { return strings.Compare(v.Name, n) })
	if !ok {
		return nil
	}
	return &vars[i]
}

// NewVar is the stored state of a var that a change sets at revision rev.
func NewVar(scope, actor, actorToken string, e Effect, rev int64, now time.Time) envy.StoredVar {
	v := envy.StoredVar{
		ID:             e.ID,
		Scope:          scope,
		Name:           e.Name,
		Sealed:         slices.Clone(e.Sealed), // a cache may outlive the caller's buffer
		Secret:         e.Secret,
		Description:    e.Description,
		Version:        e.Version,
		Revision:       rev,
		CreatedAt:      now,
		UpdatedAt:      now,
		UpdatedBy:      actor,
		UpdatedByToken: actorToken,
	}
	if e.Old != nil {
		v.CreatedAt = e.Old.CreatedAt
	}
	return v
}

// Merge returns cur (sorted by name) with the new states applied, still
// sorted: a nil state deletes the var. cur is not changed.
func Merge(cur []envy.StoredVar, next map[string]*envy.StoredVar) []envy.StoredVar {
	// The common write, a var or a few set anew, is a copy with those
	// replaced in place: no map, no sort (this runs on every write).
	if vars, ok := replaceOnly(cur, next); ok {
		return vars
	}
	vars := make([]envy.StoredVar, 0, len(cur)+len(next))
	seen := make(map[string]bool, len(next))
	for _, v := range cur {
		nv, changed := next[v.Name]
		switch {
		case !changed:
			vars = append(vars, v)
		case nv != nil:
			vars = append(vars, *nv)
			seen[v.Name] = true
		default:
			seen[v.Name] = true
		}
	}
	added := false
	for name, nv := range next {
		if nv != nil && !seen[name] {
			vars = append(vars, *nv)
			added = true
		}
	}
	if added {
		slices.SortFunc(vars, func(a, b envy.StoredVar) int { return strings.Compare(a.Name, b.Name) })
	}
	return vars
}

// replaceOnly is Merge when every new state replaces a var of cur; ok is
// false, and nothing is copied, when a change adds or deletes one.
func replaceOnly(cur []envy.StoredVar, next map[string]*envy.StoredVar) ([]envy.StoredVar, bool) {
	for name, nv := range next {
		if nv == nil || Find(cur, name) == nil {
			return nil, false
		}
	}
	vars := slices.Clone(cur)
	for name, nv := range next {
		*Find(vars, name) = *nv
	}
	return vars, true
}

// CloneScope copies a scope so that the caller may change it without
// touching a shared one.
func CloneScope(sc envy.Scope) envy.Scope {
	sc.Inherits = slices.Clone(sc.Inherits)
	return sc
}

// Times are stored as UTC nanoseconds since the epoch, 0 for the zero
// time, by every store: a move between stores keeps them exactly.

// Nanos is t in the stored form.
func Nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// OptNanos stores a time that may be absent: 0 for the zero time.
func OptNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// FromOptNanos reads what OptNanos stored: the zero time for 0.
func FromOptNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return FromNanos(n)
}

// FromNanos reads a stored time.
func FromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// NullNanos is an optional time in the stored form.
func NullNanos(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: Nanos(*t), Valid: true}
}

// FromNullNanos reads an optional stored time.
func FromNullNanos(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := FromNanos(n.Int64)
	return &t
}

// Now returns the current time as it will read back from a store: UTC,
// without a monotonic reading.
func Now() time.Time {
	return FromNanos(time.Now().UnixNano())
}

// OrNow returns t as a store keeps it, or now when t is zero.
func OrNow(t, now time.Time) time.Time {
	if t.IsZero() {
		return now
	}
	return FromNanos(t.UnixNano())
}

// JSONList encodes a list as a JSON array, [] for none.
func JSONList[T any](v []T) (string, error) {
	if len(v) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// ParseList decodes a JSON array; an empty one gives nil.
func ParseList[T any](s string) ([]T, error) {
	var v []T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, err
	}
	if len(v) == 0 {
		return nil, nil
	}
	return v, nil
}

// Migration is one schema change, from a file named NNNN_name.sql.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// LoadMigrations reads the migrations in dir of fsys, in order, and checks
// that they are numbered 1, 2, 3, … without a gap.
func LoadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var ms []Migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 || !strings.HasSuffix(name, ".sql") {
			return nil, fmt.Errorf("migration %s is not named NNNN_name.sql", name)
		}
		b, err := fs.ReadFile(fsys, dir+"/"+name)
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", name, err)
		}
		ms = append(ms, Migration{Version: v, Name: name, SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	// Versions only grow, each used once; a number may be missing (a
	// migration of a branch not merged yet: 0005 came with another
	// change than 0006), as a migration is applied when its own version
	// is not recorded, whatever the others'.
	for i := range ms {
		if i > 0 && ms[i].Version == ms[i-1].Version {
			return nil, fmt.Errorf("migrations %s and %s have the same number", ms[i-1].Name, ms[i].Name)
		}
	}
	return ms, nil
}

// Safely runs fn, turning a panic (a plan is the caller's code) into an
// error rather than taking down a store's writer and with it every write.
func Safely(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("a write panicked: %v", r)
		}
	}()
	return fn()
}

// ListBatch is how many scopes ListScopes reads per query when it has to
// filter: enough to make few round trips, few enough not to read the whole
// table for one page.
const ListBatch = 256

// ListScopes pages through scopes in path order with fetch, which reads up
// to n scopes after the cursor from the first path not below prefix and
// tells whether the page was full, and applies the query's prefix, Allow
// and Limit.
func ListScopes(q envy.ScopeQuery, fetch func(prefix, after string, n int) ([]envy.Scope, bool, error)) ([]envy.Scope, error) {
	n := ListBatch
	if q.Allow == nil && q.Limit > 0 {
		n = q.Limit // every row counts: one query reads the page
	}
	var out []envy.Scope
	after := q.After
	for {
		page, more, err := fetch(q.Prefix, after, n)
		if err != nil {
			return nil, err
		}
		for _, sc := range page {
			after = sc.Path
			if !strings.HasPrefix(sc.Path, q.Prefix) {
				return out, nil // past the prefix's range, in path order
			}
			if q.Allow != nil && !q.Allow(sc.Path) {
				continue
			}
			out = append(out, sc)
			if q.Limit > 0 && len(out) == q.Limit {
				return out, nil
			}
		}
		if !more {
			return out, nil
		}
	}
}

// MoveTables are the tables that a move between stores (`envy migrate`,
// `envy backup` and `envy restore`) copies, each a parent before its
// children, with the columns that order its rows (its primary key). Every
// table of the migrations is here but those a move starts without:
// schema_migrations (the destination's own), sessions (the dashboard's:
// a restored server signs everyone in again), rollout_leases (the slots of
// running servers, freed by expiry), and the webhooks' outbox,
// webhook_deliveries and webhook_cursor (the queue of events not yet
// delivered). Both stores have the same tables and columns, holding the
// same encodings.
var MoveTables = []struct {
	Name    string
	OrderBy string
}{
	{"meta", "id"},
	{"data_keys", "id"},
	// The checks of the master keys that rotations retired, so that a
	// server started on the copy with an old key says it was rotated.
	{"retired_master_keys", "id"},
	{"scopes", "path"},
	{"scope_parents", "child, position"},
	{"vars", "scope, name"},
	{"history", "scope, revision, name"},
	{"tokens", "id"},
	{"audit", "id"},
	{"consumers", "scope, id"},
	{"jwt_trusts", "name"},
	// The OIDC providers, their client secrets sealed inside their specs.
	{"oidc_providers", "name"},
	{"rollout_policies", "scope"},
	{"rollout_pauses", "scope"},
	// The webhooks, their secrets sealed as values are; not their
	// deliveries nor the outbox, which a move starts without.
	{"webhooks", "id"},
}

// Rows is a chunk of one table's rows, as a move carries them: the column
// names, and values that are nil, int64, bool, string or []byte (a store
// may give other integer types; Normalize makes them int64).
type Rows struct {
	Table   string
	Columns []string
	Values  [][]any
}

// MoveChunk is how many rows a move carries at a time.
const MoveChunk = 1000

// Mover is what a store offers to move its data to another store: a dump
// of every table in one snapshot, and a load into an empty store in one
// transaction. It moves sealed values as they are, never opening one.
type Mover interface {
	// Dump calls put with the rows of each of MoveTables in turn, in
	// order, in chunks, all read from one snapshot.
	Dump(ctx context.Context, put func(Rows) error) error
	// Load fills an empty store with what fill puts, all or nothing; it
	// refuses a store that holds anything.
	Load(ctx context.Context, fill func(put func(Rows) error) error) error
}

// Normalize turns a value as a driver returns it into the moved form:
// integers become int64, booleans stay bool.
func Normalize(v any) any {
	switch x := v.(type) {
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case int16:
		return int64(x)
	case int8:
		return int64(x)
	case uint32:
		return int64(x)
	}
	return v
}

// NotEmptySQL is the query of Load's check that a store is empty: its one
// integer is 0 only when the revision is 0 and no moved table but meta
// holds a row, as in a store that was opened and never written.
func NotEmptySQL() string {
	parts := []string{"COALESCE((SELECT revision FROM meta WHERE id = 1), 0)"}
	for _, t := range MoveTables {
		if t.Name != "meta" {
			parts = append(parts, "(CASE WHEN EXISTS (SELECT 1 FROM "+t.Name+") THEN 1 ELSE 0 END)")
		}
	}
	return "SELECT " + strings.Join(parts, " + ")
}

// ErrNotEmpty is Load's refusal of a store that holds data.
var ErrNotEmpty = errors.New("the destination is not empty: a move only fills an empty database (a new one, with no scopes, tokens, audit entries, data keys or anything else a move carries)")

// DumpRows reads a table's rows with next (which returns false when there
// are no more) and hands them to put in chunks of MoveChunk, normalized.
func DumpRows(table string, cols []string, next func() ([]any, bool, error), put func(Rows) error) error {
	chunk := Rows{Table: table, Columns: cols}
	for {
		vals, ok, err := next()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		for i, v := range vals {
			vals[i] = Normalize(v)
		}
		chunk.Values = append(chunk.Values, vals)
		if len(chunk.Values) == MoveChunk {
			if err := put(chunk); err != nil {
				return err
			}
			chunk.Values = nil
		}
	}
	if len(chunk.Values) > 0 {
		return put(chunk)
	}
	return nil
}

// ScopeVarsColumns are what ScanScopeVars reads: a scope, and one of its
// vars or NULLs (the LEFT JOIN's row of a scope without vars).
const ScopeVarsColumns = `s.path, s.description, s.inherits, s.revision, s.env_revision, s.created_at, s.updated_at,
	v.id, v.name, v.sealed, v.secret, v.description, v.version, v.revision, v.created_at, v.updated_at, v.updated_by, v.updated_by_token`

// ScanScopeVars reads rows of ScopeVarsColumns, ordered by path then name,
// into one ScopeVars per scope, and closes rows. Both drivers scan a NULL
// into a nil pointer.
func ScanScopeVars(rows RowSet) (map[string]*envy.ScopeVars, error) {
	defer rows.Close()
	out := make(map[string]*envy.ScopeVars)
	actors := map[string]string{} // one copy of each updated_by string
	for rows.Next() {
		var (
			sc                 envy.Scope
			inherits           string
			sc0, sc1           int64
			id, name, desc, by *string
			byToken            *string
			sealed             []byte
			secret             *bool
			ver, rev, vc0, vc1 *int64
		)
		if err := rows.Scan(&sc.Path, &sc.Description, &inherits, &sc.Revision, &sc.EnvRevision, &sc0, &sc1,
			&id, &name, &sealed, &secret, &desc, &ver, &rev, &vc0, &vc1, &by, &byToken); err != nil {
			return nil, err
		}
		sv := out[sc.Path]
		if sv == nil {
			sc.CreatedAt, sc.UpdatedAt = FromNanos(sc0), FromNanos(sc1)
			var err error
			if sc.Inherits, err = ParseList[string](inherits); err != nil {
				return nil, err
			}
			sv = &envy.ScopeVars{Scope: sc}
			out[sc.Path] = sv
		}
		if name == nil {
			continue
		}
		actor, ok := actors[*by]
		if !ok {
			actor = *by
			actors[actor] = actor
		}
		sv.Vars = append(sv.Vars, envy.StoredVar{
			ID: *id, Scope: sv.Scope.Path, Name: *name, Sealed: sealed, Secret: *secret, Description: *desc,
			Version: *ver, Revision: *rev, CreatedAt: FromNanos(*vc0), UpdatedAt: FromNanos(*vc1), UpdatedBy: actor,
			UpdatedByToken: *byToken,
		})
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, sv := range out {
		sv.Scope.VarCount = len(sv.Vars)
	}
	return out, nil
}

// PlanScope runs w's plan on a copy of cur (nil: the scope is new), with
// lookup for the scopes it names, and checks with exists that each scope
// it inherits, other than w.Path, exists (a store may lock it there). It
// returns the description and a copy of the inherits to store.
func PlanScope(w envy.ScopeWrite, cur *envy.Scope, lookup func(path string) (envy.Scope, error), exists func(path string) (bool, error)) (string, []string, error) {
	var curCopy *envy.Scope
	if cur != nil {
		c := CloneScope(*cur)
		curCopy = &c
	}
	var (
		desc     string
		inherits []string
	)
	err := Safely(func() error {
		var err error
		desc, inherits, err = w.Plan(curCopy, lookup)
		return err
	})
	if err != nil {
		return "", nil, err
	}
	inherits = slices.Clone(inherits)
	for _, p := range inherits {
		if p == w.Path {
			continue // exists once the row is in; refusing cycles is the plan's job
		}
		ok, err := exists(p)
		if err != nil {
			return "", nil, err
		}
		if !ok {
			return "", nil, envy.Invalid(envy.Field("body.inherits", "not_found", "inherited scope %s does not exist", p))
		}
	}
	return desc, inherits, nil
}
