// Package storetest is the contract that every envy.Store meets: one suite
// of tests, run by each store's own tests against a real database. A store
// is done when it passes, not when it compiles.
//
// The suite speaks only through the envy.Store interface, so that it holds
// every implementation to the same behaviour. Values are never encrypted
// here: a store keeps whatever sealed bytes it is given, so the suite
// stands in readable fakes for ciphertexts. It must never import a store
// implementation, net/http or envy's http package.
package storetest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envy-dev/envy"
)

// Run runs the contract against stores made by open. Each subtest calls
// open once (the Mover's case three times) and needs a new, empty store from
// it; Run closes that store when the subtest ends (Close must tolerate a
// second call). The cases of an optional capability (envy.Checker,
// storeutil.Mover, the reseal methods of crypto.Resealer,
// crypto.RetiredKeyStore) run on a store that has it and are skipped on
// one that has not.
func Run(t *testing.T, open func(t *testing.T) envy.Store) {
	tests := []struct {
		name string
		test func(t *testing.T, s envy.Store)
	}{
		{"an empty store is at revision 0 and answers ping", testEmpty},
		{"revisions strictly increase and are shared by all scopes", testRevisions},
		{"a bulk write with several changes is one revision", testBulkWrite},
		{"a write planned from a state that changed since is stale, changes nothing and takes no revision", testStale},
		{"a write planned from a var that was deleted and created again since is stale, though the version is the same", testStaleRecreated},
		{"a stale IfRevision is a precondition failure", testIfRevision},
		{"a write to a missing scope without CreateScope is not found", testMissingScope},
		{"deleting an absent var is a no-op that leaves no history", testDeleteAbsent},
		{"a write without changes takes no revision", testNoChanges},
		{"a Touch write without changes takes a revision, changes no var and is audited", testTouch},
		{"plans see vars by name and vars keep id and creation time", testVarState},
		{"history is newest first and pages with before and limit", testHistory},
		{"VarsAt reproduces an earlier state after sets and deletes", testVarsAt},
		{"LastSecret gives each name's newest revision set secret, in its scope only", testLastSecret},
		{"PutScope creates and updates a scope, sees others through lookup and takes a revision", testPutScope},
		{"DeleteScope is refused while inherited, deletes after, and is idempotent", testDeleteScope},
		{"ScopeTree returns the scope and every scope it inherits transitively", testScopeTree},
		{"reads see a write as soon as it returns", testReadYourWrites},
		{"tokens are created once with onlyIfNone, found by hash, listed and revoked", testTokens},
		{"revoking a token revokes its descendants; names are unique per owner among live tokens", testTokenLineage},
		{"RevokeTokenKeepingAdmin refuses to end the last live admin on **, also when two race", testKeepAdmin},
		{"audit entries are written in the write's transaction and filtered", testAudit},
		{"audit entries keep the token id and count; aggregated ones add up per minute", testAuditAggregate},
		{"reveals of one token, client, scope and names in a second add up in one row per append at most, with a count, a first and last time and the first request ids", testAuditCoalesce},
		{"withdrawals of reveals add up per key and second of their reveals, across appends, beside the reveals' rows", testAuditWithdrawals},
		{"consumers are upserted and listed by last sighting", testConsumers},
		{"a consumer belongs to the token that first reported it; another token's report changes nothing", testConsumerToken},
		{"BehindConsumers finds the live consumers behind a revision of a scope and of every scope inheriting it", testBehindConsumers},
		{"a write's LiveToken must exist and not be revoked: otherwise ErrTokenNotLive and nothing written, each write of a batch on its own", testLiveToken},
		{"a write's Behind, when the store answers it, is what BehindConsumers answers for the write's EnvRevision", testWriteBehind},
		{"a StaleError, when the store answers one, holds the scope as committed", testStaleCurrent},
		{"Inheritors lists every scope inheriting a scope, directly or not, each once", testInheritors},
		{"a scope keeps at most Max consumers, stale ones making room; pruning deletes old consumers and audit entries", testConsumerLimitAndPrune},
		{"data keys are added once and listed", testDataKeys},
		{"sessions are created once, found by id hash, touched forward, deleted and pruned", testSessions},
		{"ListScopes honours prefix, after, limit and Allow", testListScopes},
		{"a cancelled context writes nothing", testCancelled},
		{"concurrent writes each take a unique revision and none is lost", testConcurrentWrites},
		{"a notice's committed state, when it carries one, is the scope as a read returns it", testCommittedState},
	}
	for _, c := range NoticeChecks() {
		tests = append(tests, struct {
			name string
			test func(t *testing.T, s envy.Store)
		}{"notices: " + c.Name, func(t *testing.T, s envy.Store) {
			if err := c.Check(t.Context(), s); err != nil {
				t.Fatal(err)
			}
		}})
	}
	// The optional capabilities, on every store that has them.
	tests = append(tests, []struct {
		name string
		test func(t *testing.T, s envy.Store)
	}{
		{"Checker: scopes at their revisions and live tokens check, anything changed, gone or revoked does not", testChecker},
		{"Mover: a dump loaded into an empty store gives the same store, from one snapshot, all or nothing", func(t *testing.T, s envy.Store) { testMover(t, s, open) }},
		{"Resealer: values under older keys are listed, replaced where unchanged, and the keys retired once none is left", testResealer},
		{"Resealer: a webhook's secret or previous secret, or an OIDC provider's client secret, under an older key holds the keys back; each is replaced only where unchanged, a deleted one staying deleted", testResealSecrets},
		{"RetiredKeyStore: the checks of retired master keys are kept, oldest first", testRetiredKeys},
		{"TrustStore: JWT trusts are put, read, listed and deleted; minted tokens keep their trust and subject", testTrusts},
		{"RolloutStore: policies are put, read and cleared; at most slots leases are live, however many ask at once; leases free on release and expiry; pauses join their failed instances", testRollouts},
		{"RolloutStore: a scope write carries its rollout policy in its own transaction", testRolloutWithScope},
		{"OIDCStore: OIDC providers are put, read, listed and deleted, the sealed secret kept; sign-ins' tokens found by provider", testOIDC},
		{"WebhookStore: every change of an env writes its event in its own transaction, nothing else does; Enqueue moves the cursor once", testOutbox},
		{"WebhookStore: webhooks are created, updated, listed and deleted; one lease holder delivers a webhook's queue in order, failures disable it", testWebhooks},
	}...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { s.Close() })
			tt.test(t, s)
		})
	}
}

// t0 is a fixed time at microsecond precision, which every database keeps.
var t0 = time.Date(2025, 3, 14, 15, 9, 26, 535897000, time.UTC)

// sealed stands in for a ciphertext: the store must keep it as given.
func sealed(value string) []byte { return []byte("sealed:" + value) }

func unseal(t *testing.T, b []byte) string {
	t.Helper()
	v, ok := strings.CutPrefix(string(b), "sealed:")
	if !ok {
		t.Fatalf("sealed bytes %q were not kept as given", b)
	}
	return v
}

// edit is one change a test asks for: set name to value, or delete it.
type edit struct {
	name, value string
	del         bool
}

func set(name, value string) edit { return edit{name: name, value: value} }
func del(name string) edit        { return edit{name: name, del: true} }

// plan turns edits into changes from the scope's vars cur the way the
// service does: a var keeps its id and gets the next version; a new var
// gets a new id and version 1; each change names the version it was
// planned from (Base).
func plan(cur envy.ScopeVars, edits ...edit) []envy.VarChange {
	var out []envy.VarChange
	for _, e := range edits {
		c := envy.VarChange{Name: e.name, ID: rand.Text(), Version: 1, Sealed: sealed(e.value), Delete: e.del}
		if e.del {
			c = envy.VarChange{Name: e.name, Delete: true}
		}
		if old := findVar(cur.Vars, e.name); old != nil {
			c.Base, c.ID = old.Version, old.ID
			if !e.del {
				c.ID, c.Version, c.Secret, c.Description = old.ID, old.Version+1, old.Secret, old.Description
			}
		}
		out = append(out, c)
	}
	return out
}

// current returns a scope's vars as a plan starts from them: an empty
// ScopeVars when the scope does not exist.
func current(t *testing.T, s envy.Store, scope string) envy.ScopeVars {
	t.Helper()
	tree, err := s.ScopeTree(t.Context(), scope)
	if envy.ErrorCode(err) == envy.ENotFound {
		return envy.ScopeVars{Scope: envy.Scope{Path: scope}}
	}
	if err != nil {
		t.Fatalf("ScopeTree(%s): %v", scope, err)
	}
	return *tree[scope]
}

// changes plans edits from the scope's current vars.
func changes(t *testing.T, s envy.Store, scope string, edits ...edit) []envy.VarChange {
	t.Helper()
	return plan(current(t, s, scope), edits...)
}

func findVar(vars []envy.StoredVar, name string) *envy.StoredVar {
	for i := range vars {
		if vars[i].Name == name {
			return &vars[i]
		}
	}
	return nil
}

// write applies edits to scope, creating it when needed, and fails the
// test on error.
func write(t *testing.T, s envy.Store, scope string, edits ...edit) envy.WriteResult {
	t.Helper()
	res, err := s.Write(t.Context(), envy.Write{Scope: scope, Actor: "tester", CreateScope: true, Changes: changes(t, s, scope, edits...)})
	if err != nil {
		t.Fatalf("write to %s: %v", scope, err)
	}
	return res
}

// putScope creates or updates a scope with the given inherits.
func putScope(t *testing.T, s envy.Store, path string, inherits ...string) envy.Scope {
	t.Helper()
	sc, _, err := s.PutScope(t.Context(), envy.ScopeWrite{
		Path:  path,
		Actor: "tester",
		Plan: func(cur *envy.Scope, _ func(string) (envy.Scope, error)) (string, []string, error) {
			return "scope " + path, inherits, nil
		},
	})
	if err != nil {
		t.Fatalf("put scope %s: %v", path, err)
	}
	return sc
}

// values reads a scope's own vars, name to value, through ScopeTree.
func values(t *testing.T, s envy.Store, scope string) map[string]string {
	t.Helper()
	tree, err := s.ScopeTree(t.Context(), scope)
	if err != nil {
		t.Fatalf("ScopeTree(%s): %v", scope, err)
	}
	sv := tree[scope]
	if sv == nil {
		t.Fatalf("ScopeTree(%s) lacks the scope itself", scope)
	}
	out := make(map[string]string, len(sv.Vars))
	for _, v := range sv.Vars {
		out[v.Name] = unseal(t, v.Sealed)
	}
	return out
}

func revision(t *testing.T, s envy.Store) int64 {
	t.Helper()
	rev, err := s.Revision(t.Context())
	if err != nil {
		t.Fatalf("Revision: %v", err)
	}
	return rev
}

func wantCode(t *testing.T, err error, code envy.Code) {
	t.Helper()
	if got := envy.ErrorCode(err); got != code {
		t.Fatalf("error = %v (code %q), want code %q", err, got, code)
	}
}

func wantMap(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) { // fmt prints maps sorted by key
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

func testEmpty(t *testing.T, s envy.Store) {
	ctx := t.Context()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if rev := revision(t, s); rev != 0 {
		t.Fatalf("Revision = %d, want 0", rev)
	}
	_, err := s.GetScope(ctx, "nope")
	wantCode(t, err, envy.ENotFound)
	_, err = s.ScopeTree(ctx, "nope")
	wantCode(t, err, envy.ENotFound)
	_, err = s.History(ctx, "nope", envy.HistoryCursor{}, 10)
	wantCode(t, err, envy.ENotFound)
	_, err = s.VarsAt(ctx, "nope", 1)
	wantCode(t, err, envy.ENotFound)
	scopes, err := s.ListScopes(ctx, envy.ScopeQuery{})
	if err != nil || len(scopes) != 0 {
		t.Fatalf("ListScopes = %v, %v; want none", scopes, err)
	}
}

func testRevisions(t *testing.T, s envy.Store) {
	var revs []int64
	revs = append(revs, write(t, s, "a", set("X", "1")).Revision)
	revs = append(revs, write(t, s, "b", set("X", "1")).Revision)
	revs = append(revs, write(t, s, "a", set("X", "2")).Revision)
	revs = append(revs, putScope(t, s, "c").Revision)
	revs = append(revs, write(t, s, "c", set("Y", "1")).Revision)
	for i := 1; i < len(revs); i++ {
		if revs[i] <= revs[i-1] {
			t.Fatalf("revisions %v do not strictly increase", revs)
		}
	}
	if revs[0] < 1 {
		t.Fatalf("first revision = %d, want ≥ 1", revs[0])
	}
	if got := revision(t, s); got != revs[len(revs)-1] {
		t.Fatalf("Revision = %d, want the last write's %d", got, revs[len(revs)-1])
	}
	for scope, want := range map[string]int64{"a": revs[2], "b": revs[1], "c": revs[4]} {
		sc, err := s.GetScope(t.Context(), scope)
		if err != nil {
			t.Fatal(err)
		}
		if sc.Revision != want {
			t.Errorf("scope %s is at revision %d, want %d", scope, sc.Revision, want)
		}
	}
}

func testBulkWrite(t *testing.T, s envy.Store) {
	write(t, s, "app", set("KEEP", "k"), set("GONE", "g"))
	before := revision(t, s)
	res := write(t, s, "app", set("A", "1"), set("B", "2"), del("GONE"), set("KEEP", "k2"))
	if res.Revision <= before {
		t.Fatalf("bulk write revision %d, want > %d", res.Revision, before)
	}
	if got := revision(t, s); got != res.Revision {
		t.Fatalf("Revision = %d after one bulk write, want %d", got, res.Revision)
	}
	if len(res.Vars) != 3 {
		t.Fatalf("WriteResult.Vars has %d vars, want the 3 set", len(res.Vars))
	}
	for _, v := range res.Vars {
		if v.Revision != res.Revision {
			t.Errorf("var %s has revision %d, want %d", v.Name, v.Revision, res.Revision)
		}
	}
	hist, err := s.History(t.Context(), "app", envy.HistoryCursor{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range hist {
		if c.Revision == res.Revision {
			n++
		}
	}
	if n != 4 {
		t.Fatalf("history has %d changes at revision %d, want 4", n, res.Revision)
	}
	wantMap(t, "vars", values(t, s, "app"), map[string]string{"A": "1", "B": "2", "KEEP": "k2"})
}

func testStaleRecreated(t *testing.T, s envy.Store) {
	ctx := t.Context()
	write(t, s, "app", set("R", "1"))
	before := current(t, s, "app") // R at version 1
	write(t, s, "app", del("R"))
	write(t, s, "app", set("R", "2")) // another var R, at version 1 again
	rev := revision(t, s)
	for _, tt := range []struct {
		name string
		c    []envy.VarChange
	}{
		{"a set", plan(before, set("R", "3"))},
		{"a delete", plan(before, del("R"))},
	} {
		_, err := s.Write(ctx, envy.Write{Scope: "app", Actor: "tester", Changes: tt.c})
		if !errors.Is(err, envy.ErrStale) {
			t.Errorf("%s planned from the var deleted since: error = %v, want ErrStale", tt.name, err)
		}
	}
	if got := revision(t, s); got != rev {
		t.Fatalf("Revision = %d after stale writes, want %d", got, rev)
	}
	wantMap(t, "vars", values(t, s, "app"), map[string]string{"R": "2"})
}

func testStale(t *testing.T, s envy.Store) {
	ctx := t.Context()
	write(t, s, "app", set("A", "1"), set("OTHER", "1"))
	before := current(t, s, "app")
	write(t, s, "app", set("A", "2")) // after the plans below were made
	rev := revision(t, s)
	empty := envy.ScopeVars{Scope: envy.Scope{Path: "app"}}
	for _, tt := range []struct {
		name string
		w    envy.Write
	}{
		{"a set planned from an older version", envy.Write{Changes: plan(before, set("A", "3"))}},
		{"a delete planned from an older version", envy.Write{Changes: plan(before, del("A"))}},
		{"a create of a var that exists now", envy.Write{Changes: plan(empty, set("A", "3"))}},
		{"a stale change among good ones", envy.Write{Changes: append(plan(current(t, s, "app"), set("B", "1")), plan(before, set("A", "3"))...)}},
		{"a whole-scope write from an older revision", envy.Write{WholeScope: true, BaseRevision: before.Scope.Revision, Changes: plan(current(t, s, "app"), set("OTHER", "2"))}},
		{"a whole-scope write to a scope that did not exist", envy.Write{WholeScope: true, BaseRevision: 0, Changes: plan(current(t, s, "app"), set("OTHER", "2"))}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := tt.w
			w.Scope, w.Actor, w.CreateScope = "app", "tester", true
			w.Audit = []envy.AuditEntry{{Actor: "tester", Action: "vars.merge", Scope: "app"}}
			_, err := s.Write(ctx, w)
			if !errors.Is(err, envy.ErrStale) {
				t.Fatalf("error = %v, want ErrStale", err)
			}
			if got := revision(t, s); got != rev {
				t.Fatalf("Revision = %d after a stale write, want %d", got, rev)
			}
		})
	}
	wantMap(t, "vars", values(t, s, "app"), map[string]string{"A": "2", "OTHER": "1"})
	audit, err := s.ListAudit(ctx, envy.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(audit) != 0 {
		t.Fatalf("stale writes left %d audit entries, want none", len(audit))
	}
	// The next write takes the very next revision: none was used up.
	if res := write(t, s, "app", set("A", "3")); res.Revision != rev+1 {
		t.Fatalf("next revision = %d, want %d", res.Revision, rev+1)
	}
	// A whole-scope write from the current revision, and one to change
	// another var than a concurrent write did, go through.
	cur := current(t, s, "app")
	if _, err := s.Write(ctx, envy.Write{Scope: "app", Actor: "tester", WholeScope: true, BaseRevision: cur.Scope.Revision, Changes: plan(cur, set("OTHER", "2"))}); err != nil {
		t.Fatalf("a whole-scope write from the current revision: %v", err)
	}
	planned := current(t, s, "app")
	write(t, s, "app", set("A", "4"))
	if _, err := s.Write(ctx, envy.Write{Scope: "app", Actor: "tester", Changes: plan(planned, set("OTHER", "3"))}); err != nil {
		t.Fatalf("a write to another var than a concurrent one: %v", err)
	}
	wantMap(t, "vars", values(t, s, "app"), map[string]string{"A": "4", "OTHER": "3"})
}

func testIfRevision(t *testing.T, s envy.Store) {
	ctx := t.Context()
	r1 := write(t, s, "app", set("A", "1")).Revision
	r2 := write(t, s, "app", set("A", "2")).Revision
	for _, tt := range []struct {
		name       string
		scope      string
		ifRevision int64
		wantCode   envy.Code
	}{
		{"an older revision is refused", "app", r1, envy.EPrecondition},
		{"a future revision is refused", "app", r2 + 10, envy.EPrecondition},
		{"any revision of a missing scope is refused", "missing", r1, envy.EPrecondition},
		{"the current revision is accepted", "app", r2, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Write(ctx, envy.Write{Scope: tt.scope, Actor: "tester", IfRevision: tt.ifRevision, CreateScope: true, Changes: changes(t, s, tt.scope, set("A", tt.name))})
			wantCode(t, err, tt.wantCode)
		})
	}
	wantMap(t, "vars", values(t, s, "app"), map[string]string{"A": "the current revision is accepted"})
	if _, err := s.GetScope(ctx, "missing"); envy.ErrorCode(err) != envy.ENotFound {
		t.Fatalf("GetScope(missing) = %v, want not found", err)
	}
}

func testMissingScope(t *testing.T, s envy.Store) {
	ctx := t.Context()
	_, err := s.Write(ctx, envy.Write{Scope: "nope", Actor: "tester", Changes: changes(t, s, "nope", set("A", "1"))})
	wantCode(t, err, envy.ENotFound)
	if rev := revision(t, s); rev != 0 {
		t.Fatalf("Revision = %d, want 0", rev)
	}
	// With CreateScope it is created.
	res, err := s.Write(ctx, envy.Write{Scope: "nope", Actor: "tester", CreateScope: true, Changes: changes(t, s, "nope", set("A", "1"))})
	if err != nil {
		t.Fatal(err)
	}
	if !res.ScopeCreated {
		t.Error("ScopeCreated = false for a new scope")
	}
	sc, err := s.GetScope(ctx, "nope")
	if err != nil {
		t.Fatal(err)
	}
	if sc.Revision != res.Revision || sc.VarCount != 1 {
		t.Fatalf("created scope = revision %d with %d vars, want %d with 1", sc.Revision, sc.VarCount, res.Revision)
	}
	if res := write(t, s, "nope", set("B", "1")); res.ScopeCreated {
		t.Error("ScopeCreated = true for an existing scope")
	}
}

func testDeleteAbsent(t *testing.T, s envy.Store) {
	ctx := t.Context()
	r := write(t, s, "app", set("A", "1")).Revision
	res := write(t, s, "app", del("NOPE"))
	if res.Revision != r || res.Changed {
		t.Fatalf("deleting an absent var returned revision %d (changed %v), want the scope's %d, unchanged", res.Revision, res.Changed, r)
	}
	if got := revision(t, s); got != r {
		t.Fatalf("Revision = %d, want %d: no revision may be taken", got, r)
	}
	// Mixed with a real change, only the real change is recorded.
	res = write(t, s, "app", del("NOPE"), set("B", "1"))
	hist, err := s.History(ctx, "app", envy.HistoryCursor{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range hist {
		if c.Name == "NOPE" {
			t.Fatalf("history records the delete of an absent var: %+v", c)
		}
	}
	if len(hist) != 2 {
		t.Fatalf("history has %d changes, want 2", len(hist))
	}
	if res.Revision != r+1 {
		t.Fatalf("revision = %d, want %d", res.Revision, r+1)
	}
}

func testTouch(t *testing.T, s envy.Store) {
	ctx := t.Context()
	r := write(t, s, "app", set("A", "1")).Revision
	w := envy.Write{Scope: "app", Actor: "tester", Touch: true, Changes: changes(t, s, "app", del("NOPE")),
		Audit: []envy.AuditEntry{{At: t0, Actor: "tester", Action: "var.delete", Scope: "app", Names: []string{"NOPE"}, Status: 204, RequestID: "touch"}}}
	res, err := s.Write(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	if res.Revision != r+1 || !res.Changed || len(res.Vars) != 0 {
		t.Fatalf("touch: revision %d (changed %v, %d vars), want %d, changed, no var", res.Revision, res.Changed, len(res.Vars), r+1)
	}
	if got := revision(t, s); got != r+1 {
		t.Fatalf("Revision = %d, want %d", got, r+1)
	}
	tree, err := s.ScopeTree(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	if sc := tree["app"]; sc.Scope.Revision != r+1 || len(sc.Vars) != 1 || sc.Vars[0].Name != "A" {
		t.Fatalf("after a touch the scope is %+v, want revision %d and its one var A", sc, r+1)
	}
	hist, err := s.History(ctx, "app", envy.HistoryCursor{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 1 {
		t.Fatalf("history has %d changes, want the one set: a touch changes no var", len(hist))
	}
	entries, err := s.ListAudit(ctx, envy.AuditQuery{Scope: "app"})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].RequestID != "touch" || entries[0].Revision != r+1 {
		t.Fatalf("audit: %+v, want the touch's entry at revision %d", entries, r+1)
	}
	// Touch does not create a missing scope: nothing is there to hide.
	if res, err := s.Write(ctx, envy.Write{Scope: "other", Actor: "tester", Touch: true, CreateScope: true}); err != nil || res.Changed || res.Revision != 0 {
		t.Fatalf("touch of a missing scope: %+v, %v; want nothing done", res, err)
	}
}

func testNoChanges(t *testing.T, s envy.Store) {
	ctx := t.Context()
	r := write(t, s, "app", set("A", "1")).Revision
	res, err := s.Write(ctx, envy.Write{Scope: "app", Actor: "tester"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Revision != r || len(res.Vars) != 0 || res.Changed {
		t.Fatalf("result = %+v, want revision %d, no vars, unchanged", res, r)
	}
	// Nothing to write means nothing to create either: creating a scope
	// takes a revision.
	res, err = s.Write(ctx, envy.Write{Scope: "other", Actor: "tester", CreateScope: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Revision != 0 || res.ScopeCreated {
		t.Fatalf("result = %+v for an empty write to a missing scope, want revision 0, not created", res)
	}
	if _, err := s.GetScope(ctx, "other"); envy.ErrorCode(err) != envy.ENotFound {
		t.Fatalf("GetScope(other) = %v, want not found", err)
	}
	if got := revision(t, s); got != r {
		t.Fatalf("Revision = %d, want %d", got, r)
	}
	// A write of deletes alone is a change like any other.
	write(t, s, "gone", set("GONE", "1"))
	if res := write(t, s, "gone", del("GONE")); !res.Changed || len(res.Vars) != 0 || res.Revision != revision(t, s) {
		t.Fatalf("deleting a var: %+v, want changed, the newest revision, no vars set", res)
	}
}

func testVarState(t *testing.T, s envy.Store) {
	ctx := t.Context()
	first := write(t, s, "app", set("Z", "1"), set("A", "1"), set("M", "1"))
	if names := varNames(first.Vars); !slices.Equal(names, []string{"Z", "A", "M"}) {
		t.Fatalf("WriteResult.Vars in order %v, want the plan's order Z A M", names)
	}
	cur := current(t, s, "app")
	if seen := varNames(cur.Vars); !slices.Equal(seen, []string{"A", "M", "Z"}) {
		t.Fatalf("a plan would see vars %v, want them by name: A M Z", seen)
	}
	ch := plan(cur, set("M", "2"))
	ch[0].Secret, ch[0].Description = true, "the M"
	if _, err := s.Write(ctx, envy.Write{Scope: "app", Actor: "alice", ActorToken: "tok-alice", Changes: ch}); err != nil {
		t.Fatal(err)
	}
	tree, err := s.ScopeTree(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	vars := tree["app"].Vars
	if names := varNames(vars); !slices.Equal(names, []string{"A", "M", "Z"}) {
		t.Fatalf("ScopeTree vars %v, want them by name", names)
	}
	old := first.Vars[2]
	m := *findVar(vars, "M")
	if m.ID != old.ID || m.Version != 2 || !m.CreatedAt.Equal(old.CreatedAt) {
		t.Errorf("updated M = id %s v%d created %v; want id %s v2 created %v", m.ID, m.Version, m.CreatedAt, old.ID, old.CreatedAt)
	}
	if m.UpdatedBy != "alice" || m.UpdatedByToken != "tok-alice" || !m.Secret || m.Description != "the M" || m.Scope != "app" {
		t.Errorf("updated M = %+v, want updated by alice, secret, described, in app", m)
	}
	if m.UpdatedAt.Before(m.CreatedAt) || m.CreatedAt.IsZero() {
		t.Errorf("M created %v, updated %v", m.CreatedAt, m.UpdatedAt)
	}
	if m.CreatedAt.Location() != time.UTC || m.UpdatedAt.Location() != time.UTC {
		t.Errorf("times are not in UTC: %v, %v", m.CreatedAt, m.UpdatedAt)
	}
	// The acting token is kept in the history too.
	if hist, err := s.History(ctx, "app", envy.HistoryCursor{}, 10); err != nil || len(hist) == 0 || hist[0].Name != "M" || hist[0].ActorToken != "tok-alice" || hist[0].Actor != "alice" {
		t.Errorf("the history's newest change: %+v, %v; want M by alice with token tok-alice", hist, err)
	}
	if a := findVar(vars, "A"); a.Revision != first.Revision || a.UpdatedBy != "tester" {
		t.Errorf("untouched A = revision %d by %s, want %d by tester", a.Revision, a.UpdatedBy, first.Revision)
	}
	if m.Revision != tree["app"].Scope.Revision {
		t.Errorf("M revision %d, scope revision %d: want equal", m.Revision, tree["app"].Scope.Revision)
	}
}

func varNames(vars []envy.StoredVar) []string {
	var out []string
	for _, v := range vars {
		out = append(out, v.Name)
	}
	return out
}

func testHistory(t *testing.T, s envy.Store) {
	ctx := t.Context()
	r1 := write(t, s, "app", set("A", "1")).Revision
	r2 := write(t, s, "app", set("B", "1"), set("C", "1")).Revision
	write(t, s, "other", set("A", "x")) // another scope's history stays apart
	r3 := write(t, s, "app", set("A", "2")).Revision
	bID := findVar(ownVars(t, s, "app"), "B").ID
	r4 := write(t, s, "app", del("B")).Revision
	r5 := write(t, s, "app", set("D", "1")).Revision

	all, err := s.History(ctx, "app", envy.HistoryCursor{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		rev  int64
		name string
		op   envy.Op
	}{{r5, "D", envy.OpSet}, {r4, "B", envy.OpDelete}, {r3, "A", envy.OpSet}, {r2, "B", envy.OpSet}, {r2, "C", envy.OpSet}, {r1, "A", envy.OpSet}}
	if len(all) != len(want) {
		t.Fatalf("history has %d changes, want %d: %+v", len(all), len(want), all)
	}
	// Within a revision the order is the store's choice: compare sorted.
	slices.SortStableFunc(all, func(a, b envy.Change) int {
		return cmp.Or(cmp.Compare(b.Revision, a.Revision), strings.Compare(a.Name, b.Name))
	})
	for i, w := range want {
		c := all[i]
		if c.Revision != w.rev || c.Name != w.name || c.Op != w.op || c.Scope != "app" {
			t.Fatalf("change %d = %d %s %s in %s, want %d %s %s in app", i, c.Revision, c.Op, c.Name, c.Scope, w.rev, w.op, w.name)
		}
		if c.Actor != "tester" || c.At.IsZero() {
			t.Errorf("change %d has actor %q at %v", i, c.Actor, c.At)
		}
	}
	if d := all[1]; d.Sealed != nil || d.VarID != bID || d.Version != 1 {
		t.Errorf("the delete of B = %+v, want no value, B's id %s and version 1", d, bID)
	}
	if a := all[2]; unseal(t, a.Sealed) != "2" || a.Version != 2 {
		t.Errorf("the set of A = value %q v%d, want 2 v2", a.Sealed, a.Version)
	}

	// all is [r5, r4, r3, r2, r2, r1]: revision r2 changed two names.
	at := func(i int) envy.HistoryCursor {
		return envy.HistoryCursor{Revision: all[i].Revision, Name: all[i].Name}
	}
	for _, tt := range []struct {
		name          string
		after         envy.HistoryCursor
		limit         int
		wantRevisions []int64
	}{
		{"a limit takes the newest", envy.HistoryCursor{}, 2, []int64{r5, r4}},
		{"a cursor pages back", at(1), 2, []int64{r3, r2}},
		{"a cursor without limit takes the rest", at(2), 0, []int64{r2, r2, r1}},
		{"a cursor inside a bulk revision resumes at its next name", at(3), 10, []int64{r2, r1}},
		{"after the first is empty", at(5), 10, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			page, err := s.History(ctx, "app", tt.after, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			var revs []int64
			for _, c := range page {
				revs = append(revs, c.Revision)
			}
			if !slices.Equal(revs, tt.wantRevisions) {
				t.Fatalf("revisions %v, want %v", revs, tt.wantRevisions)
			}
		})
	}
	if len(all) != 6 || all[3].Revision != all[4].Revision || all[3].Name >= all[4].Name {
		t.Fatalf("history %v is not ordered by revision, then name", all)
	}
}

// values2 returns a scope's own vars through ScopeTree.
func ownVars(t *testing.T, s envy.Store, scope string) []envy.StoredVar {
	t.Helper()
	tree, err := s.ScopeTree(t.Context(), scope)
	if err != nil {
		t.Fatal(err)
	}
	return tree[scope].Vars
}

func testLastSecret(t *testing.T, s envy.Store) {
	ctx := t.Context()
	writeSecret := func(scope string, secret bool, edits ...edit) int64 {
		t.Helper()
		cs := changes(t, s, scope, edits...)
		for i := range cs {
			cs[i].Secret = secret
		}
		res, err := s.Write(ctx, envy.Write{Scope: scope, Actor: "tester", CreateScope: true, Changes: cs})
		if err != nil {
			t.Fatal(err)
		}
		return res.Revision
	}
	writeSecret("app", false, set("A", "1"), set("B", "1"))
	rA := writeSecret("app", true, set("A", "2"))
	writeSecret("app", false, set("A", "3"))
	writeSecret("other", true, set("B", "x")) // another scope's secret stays apart
	rC := writeSecret("app", true, set("C", "1"))
	writeSecret("app", false, del("C"))
	got, err := s.LastSecret(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int64{"A": rA, "C": rC}; !maps.Equal(got, want) {
		t.Fatalf("LastSecret = %v, want %v", got, want)
	}
}

func testVarsAt(t *testing.T, s envy.Store) {
	ctx := t.Context()
	r1 := write(t, s, "app", set("A", "1"), set("B", "1")).Revision
	r2 := write(t, s, "app", set("A", "2"), del("B"), set("C", "1")).Revision
	r3 := write(t, s, "app", del("A")).Revision
	r4 := write(t, s, "app", set("B", "2")).Revision

	at := func(rev int64) map[string]string {
		t.Helper()
		changes, err := s.VarsAt(ctx, "app", rev)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		var names []string
		for _, c := range changes {
			if c.Op != envy.OpSet {
				t.Fatalf("VarsAt returned a %s change", c.Op)
			}
			names = append(names, c.Name)
			out[c.Name] = unseal(t, c.Sealed)
		}
		if !slices.IsSorted(names) {
			t.Fatalf("VarsAt names %v are not sorted", names)
		}
		return out
	}
	for _, tt := range []struct {
		rev  int64
		want map[string]string
	}{
		{0, map[string]string{}},
		{r1, map[string]string{"A": "1", "B": "1"}},
		{r2, map[string]string{"A": "2", "C": "1"}},
		{r3, map[string]string{"C": "1"}},
		{r4, map[string]string{"B": "2", "C": "1"}},
		{r4 + 100, map[string]string{"B": "2", "C": "1"}},
	} {
		wantMap(t, fmt.Sprintf("VarsAt(%d)", tt.rev), at(tt.rev), tt.want)
	}

	// Roll back to r1 the way the service does: a new revision whose vars
	// equal those at r1.
	target, err := s.VarsAt(ctx, "app", r1)
	if err != nil {
		t.Fatal(err)
	}
	cur := current(t, s, "app")
	var out []envy.VarChange
	keep := map[string]bool{}
	for _, c := range target {
		keep[c.Name] = true
		ch := envy.VarChange{Name: c.Name, ID: c.VarID, Sealed: c.Sealed, Secret: c.Secret, Description: c.Description, Version: 1}
		if old := findVar(cur.Vars, c.Name); old != nil {
			ch.ID, ch.Version, ch.Base = old.ID, old.Version+1, old.Version
		}
		out = append(out, ch)
	}
	for _, v := range cur.Vars {
		if !keep[v.Name] {
			out = append(out, envy.VarChange{Name: v.Name, Delete: true, Base: v.Version})
		}
	}
	res, err := s.Write(ctx, envy.Write{Scope: "app", Actor: "tester", WholeScope: true, BaseRevision: cur.Scope.Revision, Changes: out})
	if err != nil {
		t.Fatal(err)
	}
	if res.Revision <= r4 {
		t.Fatalf("rollback revision %d, want a new one after %d", res.Revision, r4)
	}
	wantMap(t, "vars after rollback", values(t, s, "app"), map[string]string{"A": "1", "B": "1"})
	wantMap(t, "VarsAt(rollback)", at(res.Revision), map[string]string{"A": "1", "B": "1"})
	wantMap(t, "VarsAt(r2) after rollback", at(r2), map[string]string{"A": "2", "C": "1"})
}

func testPutScope(t *testing.T, s envy.Store) {
	ctx := t.Context()
	base, created, err := s.PutScope(ctx, envy.ScopeWrite{Path: "base", Actor: "tester",
		Plan: func(cur *envy.Scope, _ func(string) (envy.Scope, error)) (string, []string, error) {
			if cur != nil {
				return "", nil, fmt.Errorf("cur = %+v for a new scope, want nil", cur)
			}
			return "the base", nil, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if !created || base.Revision < 1 || base.Description != "the base" || base.Path != "base" {
		t.Fatalf("PutScope(base) = %+v, created %v", base, created)
	}
	if got := revision(t, s); got != base.Revision {
		t.Fatalf("Revision = %d, want %d", got, base.Revision)
	}
	write(t, s, "base", set("A", "1"))

	var lookedUp envy.Scope
	var missingErr error
	child, created, err := s.PutScope(ctx, envy.ScopeWrite{Path: "child", Actor: "tester",
		Plan: func(cur *envy.Scope, lookup func(string) (envy.Scope, error)) (string, []string, error) {
			var err error
			if lookedUp, err = lookup("base"); err != nil {
				return "", nil, err
			}
			_, missingErr = lookup("nope")
			return "a child", []string{"base"}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if !created || !slices.Equal(child.Inherits, []string{"base"}) {
		t.Fatalf("PutScope(child) = %+v, created %v", child, created)
	}
	if lookedUp.Path != "base" || lookedUp.Description != "the base" || lookedUp.Revision <= base.Revision {
		t.Errorf("lookup(base) = %+v, want base as it is now", lookedUp)
	}
	wantCode(t, missingErr, envy.ENotFound)

	// An update sees the current scope, keeps the creation time and the
	// vars, and takes a revision.
	write(t, s, "child", set("C", "1"))
	var seen *envy.Scope
	updated, created, err := s.PutScope(ctx, envy.ScopeWrite{Path: "child", Actor: "tester",
		Plan: func(cur *envy.Scope, _ func(string) (envy.Scope, error)) (string, []string, error) {
			seen = cur
			return "still a child", nil, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if created {
		t.Error("created = true for an update")
	}
	if seen == nil || seen.Description != "a child" || !slices.Equal(seen.Inherits, []string{"base"}) {
		t.Fatalf("the plan saw %+v, want the child as it was", seen)
	}
	if updated.Revision <= child.Revision || updated.Revision != revision(t, s) {
		t.Errorf("update revision %d, want a new one (was %d)", updated.Revision, child.Revision)
	}
	if !updated.CreatedAt.Equal(child.CreatedAt) || len(updated.Inherits) != 0 {
		t.Errorf("updated = %+v, want the creation time kept and no inherits", updated)
	}
	got, err := s.GetScope(ctx, "child")
	if err != nil {
		t.Fatal(err)
	}
	if got.Description != "still a child" || got.Revision != updated.Revision || got.VarCount != 1 || len(got.Inherits) != 0 {
		t.Errorf("GetScope(child) = %+v", got)
	}

	for _, tt := range []struct {
		name     string
		w        envy.ScopeWrite
		wantCode envy.Code
	}{
		{"a stale IfRevision is refused", envy.ScopeWrite{Path: "child", IfRevision: child.Revision}, envy.EPrecondition},
		{"an IfRevision on a missing scope is refused", envy.ScopeWrite{Path: "nope", IfRevision: 1}, envy.EPrecondition},
		{"a plan error is returned as is", envy.ScopeWrite{Path: "child", Plan: func(*envy.Scope, func(string) (envy.Scope, error)) (string, []string, error) {
			return "", nil, envy.Errorf(envy.EInvalid, "inherits form a cycle")
		}}, envy.EInvalid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rev := revision(t, s)
			if tt.w.Plan == nil {
				tt.w.Plan = func(*envy.Scope, func(string) (envy.Scope, error)) (string, []string, error) {
					return "changed", nil, nil
				}
			}
			_, _, err := s.PutScope(ctx, tt.w)
			wantCode(t, err, tt.wantCode)
			if got := revision(t, s); got != rev {
				t.Errorf("Revision = %d, want %d", got, rev)
			}
		})
	}
	if got, _ := s.GetScope(ctx, "child"); got.Description != "still a child" {
		t.Errorf("a refused PutScope changed the scope: %+v", got)
	}
}

func testDeleteScope(t *testing.T, s envy.Store) {
	ctx := t.Context()
	write(t, s, "base", set("A", "1"), set("B", "1"))
	putScope(t, s, "child", "base")
	write(t, s, "child", set("C", "1"))

	_, _, err := s.DeleteScope(ctx, "base", 0, nil)
	wantCode(t, err, envy.EConflict)
	var ie *envy.InheritedError
	if !errors.As(err, &ie) || !slices.Equal(ie.By, []string{"child"}) {
		t.Errorf("DeleteScope of an inherited scope: %v, want an *envy.InheritedError naming child", err)
	}
	sc, _ := s.GetScope(ctx, "child")
	_, _, err = s.DeleteScope(ctx, "child", sc.Revision-1, nil)
	wantCode(t, err, envy.EPrecondition)

	rev := revision(t, s)
	existed, r, err := s.DeleteScope(ctx, "child", sc.Revision, []envy.AuditEntry{{Actor: "tester", Action: "scope.delete", Scope: "child"}})
	if err != nil {
		t.Fatal(err)
	}
	if !existed || r <= rev || revision(t, s) != r {
		t.Fatalf("DeleteScope(child) = %v, %d; want true and a new revision after %d", existed, r, rev)
	}
	for _, f := range []func() error{
		func() error { _, err := s.GetScope(ctx, "child"); return err },
		func() error { _, err := s.ScopeTree(ctx, "child"); return err },
		func() error { _, err := s.History(ctx, "child", envy.HistoryCursor{}, 0); return err },
		func() error { _, err := s.VarsAt(ctx, "child", r); return err },
	} {
		wantCode(t, f(), envy.ENotFound)
	}
	audit, err := s.ListAudit(ctx, envy.AuditQuery{Scope: "child"})
	if err != nil || len(audit) != 1 || audit[0].Revision != r {
		t.Fatalf("audit of the delete = %+v, %v; want one entry at revision %d", audit, err, r)
	}

	// Nothing inherits base any more.
	if existed, _, err := s.DeleteScope(ctx, "base", 0, nil); err != nil || !existed {
		t.Fatalf("DeleteScope(base) = %v, %v", existed, err)
	}
	rev = revision(t, s)
	existed, r, err = s.DeleteScope(ctx, "base", 0, nil)
	if err != nil || existed {
		t.Fatalf("DeleteScope of an absent scope = %v, %v; want false, nil", existed, err)
	}
	if got := revision(t, s); got != rev {
		t.Fatalf("deleting an absent scope took a revision: %d → %d", rev, got)
	}
	_, _, err = s.DeleteScope(ctx, "base", rev, nil)
	wantCode(t, err, envy.EPrecondition)

	// A scope made again under the same path starts afresh.
	res := write(t, s, "base", set("Z", "1"))
	if !res.ScopeCreated {
		t.Error("writing to a deleted scope did not create it")
	}
	hist, err := s.History(ctx, "base", envy.HistoryCursor{}, 0)
	if err != nil || len(hist) != 1 {
		t.Fatalf("history of the new base = %+v, %v; want only its one change", hist, err)
	}
	wantMap(t, "vars of the new base", values(t, s, "base"), map[string]string{"Z": "1"})
	if sc, _ := s.GetScope(ctx, "base"); sc.VarCount != 1 || len(sc.Inherits) != 0 {
		t.Errorf("new base = %+v", sc)
	}
}

func testScopeTree(t *testing.T, s envy.Store) {
	ctx := t.Context()
	write(t, s, "org", set("ORG", "1"))
	putScope(t, s, "team", "org")
	write(t, s, "team", set("TEAM", "1"))
	write(t, s, "shared", set("SHARED", "1"))
	putScope(t, s, "app", "team", "shared")
	write(t, s, "app", set("APP", "1"))
	putScope(t, s, "diamond", "app", "org") // org is reached twice
	write(t, s, "unrelated", set("U", "1"))

	for _, tt := range []struct {
		path string
		want []string
	}{
		{"org", []string{"org"}},
		{"app", []string{"app", "org", "shared", "team"}},
		{"diamond", []string{"app", "diamond", "org", "shared", "team"}},
	} {
		t.Run(tt.path, func(t *testing.T) {
			// Twice: once from the database, once from any cache.
			for range 2 {
				tree, err := s.ScopeTree(ctx, tt.path)
				if err != nil {
					t.Fatal(err)
				}
				var keys []string
				for k, sv := range tree {
					keys = append(keys, k)
					if sv.Scope.Path != k {
						t.Errorf("tree[%s] holds scope %s", k, sv.Scope.Path)
					}
				}
				slices.Sort(keys)
				if !slices.Equal(keys, tt.want) {
					t.Fatalf("ScopeTree(%s) has %v, want %v", tt.path, keys, tt.want)
				}
			}
		})
	}
	tree, _ := s.ScopeTree(ctx, "app")
	if v := tree["team"].Vars; len(v) != 1 || v[0].Name != "TEAM" || unseal(t, v[0].Sealed) != "1" {
		t.Errorf("tree[team].Vars = %+v", v)
	}
	if in := tree["app"].Scope.Inherits; !slices.Equal(in, []string{"team", "shared"}) {
		t.Errorf("app inherits %v, want team shared in that order", in)
	}
	_, err := s.ScopeTree(ctx, "nope")
	wantCode(t, err, envy.ENotFound)
}

func testReadYourWrites(t *testing.T, s envy.Store) {
	ctx := t.Context()
	write(t, s, "app", set("A", "1"))
	write(t, s, "parent", set("P", "1"))
	// Warm whatever a store keeps in memory.
	values(t, s, "app")
	values(t, s, "parent")
	if _, err := s.GetScope(ctx, "app"); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name  string
		do    func() int64 // returns the revision it took
		check func(tree map[string]*envy.ScopeVars, rev int64)
	}{
		{"a set", func() int64 { return write(t, s, "app", set("A", "2"), set("B", "1")).Revision },
			func(tree map[string]*envy.ScopeVars, rev int64) {
				wantVals(t, tree["app"], map[string]string{"A": "2", "B": "1"})
			}},
		{"a delete", func() int64 { return write(t, s, "app", del("B")).Revision },
			func(tree map[string]*envy.ScopeVars, rev int64) {
				wantVals(t, tree["app"], map[string]string{"A": "2"})
			}},
		{"a new inherit", func() int64 { return putScope(t, s, "app", "parent").Revision },
			func(tree map[string]*envy.ScopeVars, rev int64) {
				wantVals(t, tree["app"], map[string]string{"A": "2"})
				if tree["parent"] == nil {
					t.Fatal("the tree lacks the new parent")
				}
			}},
		{"a write to the parent", func() int64 { return write(t, s, "parent", set("P", "2")).Revision },
			func(tree map[string]*envy.ScopeVars, rev int64) {
				wantVals(t, tree["parent"], map[string]string{"P": "2"})
				if tree["parent"].Scope.Revision != rev {
					t.Errorf("parent revision %d, want %d", tree["parent"].Scope.Revision, rev)
				}
			}},
		{"an inherit removed", func() int64 { return putScope(t, s, "app").Revision },
			func(tree map[string]*envy.ScopeVars, rev int64) {
				if tree["parent"] != nil {
					t.Fatal("the tree still has the removed parent")
				}
			}},
	}
	for _, st := range steps {
		rev := st.do()
		tree, err := s.ScopeTree(ctx, "app")
		if err != nil {
			t.Fatalf("after %s: %v", st.name, err)
		}
		st.check(tree, rev)
		if st.name != "a write to the parent" {
			if got := tree["app"].Scope.Revision; got != rev {
				t.Fatalf("after %s: ScopeTree shows revision %d, want %d", st.name, got, rev)
			}
			sc, err := s.GetScope(ctx, "app")
			if err != nil {
				t.Fatal(err)
			}
			if sc.Revision != rev || sc.VarCount != len(tree["app"].Vars) {
				t.Fatalf("after %s: GetScope = revision %d, %d vars; want %d, %d", st.name, sc.Revision, sc.VarCount, rev, len(tree["app"].Vars))
			}
		}
	}
	if _, _, err := s.DeleteScope(ctx, "app", 0, nil); err != nil {
		t.Fatal(err)
	}
	_, err := s.ScopeTree(ctx, "app")
	wantCode(t, err, envy.ENotFound)
	_, err = s.GetScope(ctx, "app")
	wantCode(t, err, envy.ENotFound)
}

func wantVals(t *testing.T, sv *envy.ScopeVars, want map[string]string) {
	t.Helper()
	if sv == nil {
		t.Fatal("scope missing from the tree")
	}
	got := map[string]string{}
	for _, v := range sv.Vars {
		got[v.Name] = unseal(t, v.Sealed)
	}
	wantMap(t, "vars of "+sv.Scope.Path, got, want)
	if sv.Scope.VarCount != 0 && sv.Scope.VarCount != len(sv.Vars) {
		t.Errorf("VarCount = %d with %d vars", sv.Scope.VarCount, len(sv.Vars))
	}
}

func testTokens(t *testing.T, s envy.Store) {
	ctx := t.Context()
	exp := t0.Add(24 * time.Hour)
	token := func(id string) envy.Token {
		return envy.Token{
			ID: id, Name: "name-" + id, Owner: "owner-" + id, Hash: []byte("hash-" + id),
			Permissions: []envy.Grant{{Scopes: "acme/**", Actions: []envy.Action{envy.ActRead, envy.ActWrite}}},
			CreatedAt:   t0, CreatedBy: "admin", ExpiresAt: &exp,
		}
	}
	create := func(tok envy.Token, onlyIfNone bool) bool {
		t.Helper()
		created, err := s.CreateToken(ctx, tok, onlyIfNone, []envy.AuditEntry{{Actor: "admin", Action: "token.create", Names: []string{tok.ID}}})
		if err != nil {
			t.Fatalf("CreateToken(%s): %v", tok.ID, err)
		}
		return created
	}
	if !create(token("t2"), true) {
		t.Fatal("onlyIfNone did not create the first token")
	}
	if create(token("t9"), true) {
		t.Fatal("onlyIfNone created a second token")
	}
	if _, err := s.GetToken(ctx, "t9"); envy.ErrorCode(err) != envy.ENotFound {
		t.Fatalf("GetToken(t9) = %v, want not found", err)
	}
	if !create(token("t1"), false) || !create(token("t3"), false) {
		t.Fatal("CreateToken did not create")
	}
	dup := token("t4")
	dup.Hash = []byte("hash-t1")
	_, err := s.CreateToken(ctx, dup, false, nil)
	wantCode(t, err, envy.EConflict)

	got, err := s.TokenByHash(ctx, []byte("hash-t2"))
	if err != nil {
		t.Fatal(err)
	}
	want := token("t2")
	if got.ID != want.ID || got.Name != want.Name || got.Owner != want.Owner || string(got.Hash) != string(want.Hash) ||
		!got.CreatedAt.Equal(t0) || got.CreatedBy != "admin" || got.ExpiresAt == nil || !got.ExpiresAt.Equal(exp) || got.RevokedAt != nil ||
		fmt.Sprint(got.Permissions) != fmt.Sprint(want.Permissions) {
		t.Fatalf("TokenByHash = %+v, want %+v", got, want)
	}
	// A caller changing what it got must not change what the store has.
	got.Permissions[0].Actions[0] = envy.ActAdmin
	if again, _ := s.TokenByHash(ctx, []byte("hash-t2")); again.Permissions[0].Actions[0] != envy.ActRead {
		t.Fatal("changing a returned token changed the stored one")
	}
	_, err = s.TokenByHash(ctx, []byte("hash-unknown"))
	wantCode(t, err, envy.ENotFound)

	var ids []string
	for after := ""; ; {
		page, err := s.ListTokens(ctx, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		if len(page) > 2 {
			t.Fatalf("ListTokens returned %d tokens, limit 2", len(page))
		}
		for _, tok := range page {
			ids = append(ids, tok.ID)
		}
		after = page[len(page)-1].ID
	}
	if !slices.Equal(ids, []string{"t1", "t2", "t3"}) {
		t.Fatalf("ListTokens pages gave %v, want t1 t2 t3", ids)
	}

	revokedAt := t0.Add(time.Hour)
	if err := s.RevokeToken(ctx, "t2", revokedAt, []envy.AuditEntry{{Actor: "admin", Action: "token.revoke", Names: []string{"t2"}}}); err != nil {
		t.Fatal(err)
	}
	// Right after revoking, every way to read the token shows it.
	byHash, err := s.TokenByHash(ctx, []byte("hash-t2"))
	if err != nil || byHash.RevokedAt == nil || !byHash.RevokedAt.Equal(revokedAt) {
		t.Fatalf("TokenByHash after revoke = %+v, %v; want revoked at %v", byHash.RevokedAt, err, revokedAt)
	}
	byID, err := s.GetToken(ctx, "t2")
	if err != nil || byID.RevokedAt == nil {
		t.Fatalf("GetToken after revoke = %+v, %v", byID, err)
	}
	err = s.RevokeToken(ctx, "nope", revokedAt, []envy.AuditEntry{{Actor: "admin", Action: "token.revoke"}})
	wantCode(t, err, envy.ENotFound)

	audit, err := s.ListAudit(ctx, envy.AuditQuery{Actor: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range audit {
		actions = append(actions, string(e.Action)+":"+strings.Join(e.Names, ","))
	}
	if !slices.Equal(actions, []string{"token.revoke:t2", "token.create:t3", "token.create:t1", "token.create:t2"}) {
		t.Fatalf("audit = %v, want the revoke and the three creations, newest first", actions)
	}
}

func testTokenLineage(t *testing.T, s envy.Store) {
	ctx := t.Context()
	createNamed := func(id, name, owner, parent string) error {
		_, err := s.CreateToken(ctx, envy.Token{ID: id, Name: name, Owner: owner, Hash: []byte("hash-" + id), ParentID: parent,
			Permissions: []envy.Grant{{Scopes: "**", Actions: []envy.Action{envy.ActAdmin}}}, CreatedAt: t0, CreatedBy: "x"}, false, nil)
		return err
	}
	create := func(id, parent, owner string) error { return createNamed(id, "n-"+id, owner, parent) }
	for _, tk := range [][2]string{{"root", ""}, {"a", "root"}, {"b", "a"}, {"c", "b"}, {"d", "root"}, {"other", ""}} {
		if err := create(tk[0], tk[1], "o-"+tk[0]); err != nil {
			t.Fatalf("CreateToken(%s): %v", tk[0], err)
		}
	}
	if got, err := s.GetToken(ctx, "b"); err != nil || got.ParentID != "a" {
		t.Fatalf("GetToken(b) = %+v, %v; want parent a", got, err)
	}
	// The lineage's root is kept as given (the rate limit's key).
	if _, err := s.CreateToken(ctx, envy.Token{ID: "rooted", Name: "n-rooted", Owner: "o", Hash: []byte("hash-rooted"), ParentID: "d", RootID: "root",
		Permissions: []envy.Grant{{Scopes: "x/**", Actions: []envy.Action{envy.ActRead}}}, CreatedAt: t0, CreatedBy: "x"}, false, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetToken(ctx, "rooted"); err != nil || got.RootID != "root" || got.Root() != "root" {
		t.Fatalf("GetToken(rooted) = %+v, %v; want root_id root", got, err)
	}
	if got, err := s.TokenByHash(ctx, []byte("hash-rooted")); err != nil || got.RootID != "root" {
		t.Fatalf("TokenByHash(rooted) = %+v, %v; want root_id root", got, err)
	}
	at := t0.Add(time.Hour)
	if err := s.RevokeToken(ctx, "a", at, nil); err != nil {
		t.Fatal(err)
	}
	for id, revoked := range map[string]bool{"root": false, "a": true, "b": true, "c": true, "d": false, "other": false} {
		got, err := s.TokenByHash(ctx, []byte("hash-"+id))
		if err != nil {
			t.Fatal(err)
		}
		if (got.RevokedAt != nil) != revoked || revoked && !got.RevokedAt.Equal(at) {
			t.Errorf("token %s: revoked at %v, want revoked %v at %v", id, got.RevokedAt, revoked, at)
		}
	}
	// A revoked token mints nothing, even when the minting raced the
	// revocation past the service's checks.
	wantCode(t, create("e", "b", "o-e"), envy.EUnauthenticated)
	wantCode(t, create("f", "missing", "o-f"), envy.EUnauthenticated)

	// Names are unique per owner among tokens that are not revoked.
	wantCode(t, createNamed("dup1", "n-root", "o-root", ""), envy.EConflict)
	if err := createNamed("dup2", "n-root", "o-someone-else", ""); err != nil {
		t.Fatalf("the same name for another owner: %v", err)
	}
	if err := createNamed("dup3", "n-a", "o-a", ""); err != nil {
		t.Fatalf("the name of a revoked token: %v", err)
	}
}

func testAudit(t *testing.T, s envy.Store) {
	ctx := t.Context()
	entry := func(actor, scope string, at time.Time) envy.AuditEntry {
		return envy.AuditEntry{At: at, Actor: actor, Action: "vars.merge", Scope: scope, Names: []string{"A", "B"},
			Status: 200, RequestID: "req-" + actor, Client: "127.0.0.1"}
	}
	res, err := s.Write(ctx, envy.Write{Scope: "app", Actor: "alice", CreateScope: true, Changes: changes(t, s, "app", set("A", "1"), set("B", "1")),
		Audit: []envy.AuditEntry{entry("alice", "app", t0)}})
	if err != nil {
		t.Fatal(err)
	}
	// A refused write leaves no audit entry of its own.
	_, err = s.Write(ctx, envy.Write{Scope: "app", Actor: "mallory", IfRevision: res.Revision + 1, Changes: changes(t, s, "app", set("A", "2")),
		Audit: []envy.AuditEntry{entry("mallory", "app", t0)}})
	wantCode(t, err, envy.EPrecondition)

	got, err := s.ListAudit(ctx, envy.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("audit has %d entries, want the write's one", len(got))
	}
	e := got[0]
	want := entry("alice", "app", t0)
	if e.ID <= 0 || e.Revision != res.Revision || !e.At.Equal(t0) || e.Actor != want.Actor || e.Action != want.Action ||
		e.Scope != want.Scope || !slices.Equal(e.Names, want.Names) || e.Status != 200 || e.RequestID != want.RequestID || e.Client != want.Client {
		t.Fatalf("audit entry = %+v, want %+v at revision %d", e, want, res.Revision)
	}

	if err := s.AppendAudit(ctx,
		entry("bob", "app", t0.Add(time.Hour)),
		entry("bob", "other", t0.Add(2*time.Hour)),
		entry("carol", "app", t0.Add(3*time.Hour)),
		envy.AuditEntry{Actor: "anonymous", Action: "auth.failed", Status: 401},
	); err != nil {
		t.Fatal(err)
	}
	all, err := s.ListAudit(ctx, envy.AuditQuery{})
	if err != nil || len(all) != 5 {
		t.Fatalf("ListAudit = %d entries, %v; want 5", len(all), err)
	}
	for i := 1; i < len(all); i++ {
		if all[i].ID >= all[i-1].ID {
			t.Fatalf("audit ids %d, %d are not newest first", all[i-1].ID, all[i].ID)
		}
	}
	if all[0].At.IsZero() {
		t.Error("an entry without a time was stored without one")
	}
	third := all[2].ID
	who := func(es []envy.AuditEntry) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Actor+"@"+e.Scope)
		}
		return out
	}
	for _, tt := range []struct {
		name string
		q    envy.AuditQuery
		want []string
	}{
		{"by scope", envy.AuditQuery{Scope: "app"}, []string{"carol@app", "bob@app", "alice@app"}},
		{"by actor", envy.AuditQuery{Actor: "bob"}, []string{"bob@other", "bob@app"}},
		{"since", envy.AuditQuery{Since: t0.Add(2 * time.Hour)}, []string{"anonymous@", "carol@app", "bob@other"}},
		{"before", envy.AuditQuery{Before: third}, []string{"bob@app", "alice@app"}},
		{"limit", envy.AuditQuery{Limit: 2}, []string{"anonymous@", "carol@app"}},
		{"all filters", envy.AuditQuery{Scope: "app", Actor: "bob", Since: t0, Before: all[0].ID, Limit: 5}, []string{"bob@app"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ListAudit(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(who(got), tt.want) {
				t.Fatalf("ListAudit(%+v) = %v, want %v", tt.q, who(got), tt.want)
			}
		})
	}
}

func testAuditAggregate(t *testing.T, s envy.Store) {
	ctx := t.Context()
	refusal := func(client string, at time.Time, count int64) envy.AuditEntry {
		return envy.AuditEntry{At: at, Action: "auth", Scope: "app", Status: 401, Client: client, Count: count, Aggregate: true}
	}
	minute := t0.Truncate(time.Minute)
	if err := s.AppendAudit(ctx,
		envy.AuditEntry{At: t0, Actor: "alice", Action: "reveal", Scope: "app", Status: 200, TokenID: "tok-1"},
		refusal("10.0.0.1", minute.Add(time.Second), 3),
		refusal("10.0.0.1", minute.Add(59*time.Second), 2),
		refusal("10.0.0.2", minute.Add(2*time.Second), 1),
	); err != nil {
		t.Fatal(err)
	}
	byToken := refusal("10.0.0.1", minute.Add(40*time.Second), 1)
	byToken.TokenID = "tok-2" // another key: a row of its own
	if err := s.AppendAudit(ctx, refusal("10.0.0.1", minute.Add(30*time.Second), 4), byToken, refusal("10.0.0.1", minute.Add(time.Minute), 1)); err != nil {
		t.Fatal(err)
	}
	got, err := s.ListAudit(ctx, envy.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, e := range got {
		rows = append(rows, fmt.Sprintf("%s/%s/%s/%d", e.Action, e.Client, e.TokenID, e.Count))
	}
	// Newest first: the next minute's row, the token's row, the second
	// client, then the first client's minute with 3+2+4, then the reveal.
	want := []string{"auth/10.0.0.1//1", "auth/10.0.0.1/tok-2/1", "auth/10.0.0.2//1", "auth/10.0.0.1//9", "reveal//tok-1/1"}
	if !slices.Equal(rows, want) {
		t.Fatalf("audit rows = %v, want %v", rows, want)
	}
}

func testAuditCoalesce(t *testing.T, s envy.Store) {
	ctx := t.Context()
	sec := t0.Truncate(time.Second)
	n := 0
	reveal := func(at time.Time, mod func(e *envy.AuditEntry)) envy.AuditEntry {
		n++
		e := envy.AuditEntry{At: at, Actor: "ci", Action: envy.AuditReveal, Scope: "app", Names: []string{"A", "B"}, Status: envy.OutcomeOK,
			RequestID: fmt.Sprintf("req-%02d", n), Client: "10.0.0.1", TokenID: "tok-1", Count: 1, Aggregate: true}
		if mod != nil {
			mod(&e)
		}
		return e
	}
	// 20 reveals in one second, over three appends (three commits): the
	// first append makes the row, the others add to it.
	var first []envy.AuditEntry
	for i := range 5 {
		first = append(first, reveal(sec.Add(time.Duration(i)*time.Millisecond), nil))
	}
	// Each of these differs from them in one part of the key: rows of
	// their own.
	others := []envy.AuditEntry{
		reveal(sec.Add(time.Millisecond), func(e *envy.AuditEntry) { e.TokenID, e.Actor = "tok-2", "other" }),
		reveal(sec.Add(time.Millisecond), func(e *envy.AuditEntry) { e.Client = "10.0.0.2" }),
		reveal(sec.Add(time.Millisecond), func(e *envy.AuditEntry) { e.Scope = "app/other" }),
		reveal(sec.Add(time.Millisecond), func(e *envy.AuditEntry) { e.Names = []string{"A"} }),
		reveal(sec.Add(time.Second), nil), // the next second
	}
	if err := s.AppendAudit(ctx, append(first, others...)...); err != nil {
		t.Fatal(err)
	}
	for _, batch := range [][2]int{{5, 12}, {12, 20}} {
		var es []envy.AuditEntry
		for i := batch[0]; i < batch[1]; i++ {
			es = append(es, reveal(sec.Add(time.Duration(i)*time.Millisecond), nil))
		}
		if err := s.AppendAudit(ctx, es...); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ListAudit(ctx, envy.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	// The 20 reveals of one key: one row per append at most (a store may
	// add a later append's to the window's row, SQLite does, or write a
	// row of its own, PostgreSQL does); the others one row each.
	var rows []envy.AuditEntry
	for _, e := range slices.Backward(got) { // oldest first
		if e.TokenID == "tok-1" && e.Client == "10.0.0.1" && e.Scope == "app" && len(e.Names) == 2 && e.At.Before(sec.Add(time.Second)) {
			rows = append(rows, e)
		} else if e.Count != 1 || !slices.Equal(e.RequestIDs, []string{e.RequestID}) {
			t.Fatalf("a reveal with another key added up, or does not list its request id: %+v", e)
		}
	}
	if len(got)-len(rows) != len(others) || len(rows) == 0 || len(rows) > 3 {
		t.Fatalf("%d rows for the 20 reveals of one key, %d for the %d others: %+v", len(rows), len(got)-len(rows), len(others), got)
	}
	var count int64
	listed := map[string]bool{}
	for _, r := range rows {
		count += r.Count
		if int64(len(r.RequestIDs)) != min(r.Count, envy.MaxAuditRequestIDs) || r.RequestIDs[0] != r.RequestID || r.LastAt.Before(r.At) {
			t.Fatalf("row %+v: want its first request ids, the first of them its request_id, last_at not before at", r)
		}
		for _, id := range r.RequestIDs {
			var k int
			fmt.Sscanf(id, "req-%d", &k)
			if listed[id] || k < 1 || k > 25 || k >= 6 && k <= 10 {
				t.Fatalf("row %+v lists %s, not one of its reveals or twice", r, id)
			}
			listed[id] = true
		}
	}
	oldest := rows[0]
	if count != 20 || !oldest.At.Equal(sec) || oldest.RequestID != "req-01" || !slices.Equal(oldest.RequestIDs[:5], []string{"req-01", "req-02", "req-03", "req-04", "req-05"}) ||
		!rows[len(rows)-1].LastAt.Equal(sec.Add(19*time.Millisecond)) {
		t.Fatalf("rows %+v: want 20 reveals in all, the first at %v with req-01…05, the last until %v", rows, sec, sec.Add(19*time.Millisecond))
	}
	if len(rows) == 1 {
		// One row: the ids go 01–05, then 11 on (the first append's
		// other reveals took 06–10), up to the bound.
		var want []string
		for i := 1; len(want) < envy.MaxAuditRequestIDs; i++ {
			if i < 6 || i > 10 {
				want = append(want, fmt.Sprintf("req-%02d", i))
			}
		}
		if !slices.Equal(oldest.RequestIDs, want) {
			t.Fatalf("the row's request ids %v, want %v", oldest.RequestIDs, want)
		}
	}
}

// testAuditWithdrawals: the withdrawals of reveals (envy.AuditRevealWithdrawn,
// whose At is their reveal's) add up in the second of their reveals, as
// the reveals do, so that each second's withdrawal row stands beside the
// reveal row it corrects; across appends too, on every store.
func testAuditWithdrawals(t *testing.T, s envy.Store) {
	ctx := t.Context()
	sec := t0.Truncate(time.Minute).Add(10 * time.Second)
	entry := func(action envy.AuditAction, status envy.Outcome, at time.Time, id string) envy.AuditEntry {
		return envy.AuditEntry{At: at, Actor: "ci", Action: action, Scope: "app", Names: []string{"A"}, Status: status,
			RequestID: id, Client: "10.0.0.1", TokenID: "tok-1", Count: 1, Aggregate: true}
	}
	reveal := func(at time.Time, id string) envy.AuditEntry { return entry(envy.AuditReveal, envy.OutcomeOK, at, id) }
	withdrawal := func(at time.Time, id string) envy.AuditEntry {
		return entry(envy.AuditRevealWithdrawn, envy.OutcomeUnavailable, at, id)
	}
	if err := s.AppendAudit(ctx, reveal(sec, "req-1"), reveal(sec.Add(time.Millisecond), "req-2"), reveal(sec.Add(time.Second), "req-3")); err != nil {
		t.Fatal(err)
	}
	// Withdrawn later, each in an append of its own, as reveals refused
	// one by one are.
	for _, w := range []envy.AuditEntry{withdrawal(sec, "req-1"), withdrawal(sec.Add(time.Second), "req-3"), withdrawal(sec.Add(time.Millisecond), "req-2")} {
		if err := s.AppendAudit(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ListAudit(ctx, envy.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, e := range slices.Backward(got) { // oldest first
		rows = append(rows, fmt.Sprintf("%s %s %d %d %v", e.At.Sub(sec), e.Action, e.Status, e.Count, e.RequestIDs))
	}
	want := []string{"0s reveal 200 2 [req-1 req-2]", "1s reveal 200 1 [req-3]", "0s reveal.withdrawn 503 2 [req-1 req-2]", "1s reveal.withdrawn 503 1 [req-3]"}
	if !slices.Equal(rows, want) {
		t.Fatalf("audit rows, oldest first:\n%s\nwant\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
	}
}

func testBehindConsumers(t *testing.T, s envy.Store) {
	ctx := t.Context()
	inheritsWorld(t, s)
	for _, c := range []envy.Consumer{
		{Scope: "base", ID: "b1", Revision: 5}, {Scope: "left", ID: "l1", Revision: 3}, {Scope: "right", ID: "r1", Revision: 9},
		{Scope: "diamond", ID: "d1", Revision: 2}, {Scope: "diamond", ID: "d2", Revision: 4, SeenAt: t0.Add(-time.Hour)},
		{Scope: "other", ID: "o1", Revision: 1},
	} {
		if c.SeenAt.IsZero() {
			c.SeenAt = t0
		}
		if _, err := s.PutConsumer(ctx, c, envy.ConsumerLimit{}); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(scope string, rev int64, limit int) []string {
		t.Helper()
		cs, err := s.BehindConsumers(ctx, scope, t0.Add(-time.Minute), rev, limit)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range cs {
			out = append(out, c.Scope+"/"+c.ID)
		}
		return out
	}
	cases := []struct {
		scope string
		rev   int64
		limit int
		want  []string
	}{
		{"base", 6, 0, []string{"base/b1", "diamond/d1", "left/l1"}}, // r1 runs 9; d2 is not live; o1 does not depend on base
		{"base", 6, 2, []string{"base/b1", "diamond/d1"}},
		{"base", 10, 0, []string{"base/b1", "diamond/d1", "left/l1", "right/r1"}},
		{"other", 10, 0, []string{"diamond/d1", "other/o1", "right/r1"}},
		{"left", 3, 0, []string{"diamond/d1"}},
		{"nope", 10, 0, nil},
	}
	for _, c := range cases {
		if got := ids(c.scope, c.rev, c.limit); !slices.Equal(got, c.want) {
			t.Errorf("BehindConsumers(%s, %d, limit %d) = %v, want %v", c.scope, c.rev, c.limit, got, c.want)
		}
	}
	// All at once, several times over: a store that answers many callers
	// with one query must give each its own answer.
	var wg sync.WaitGroup
	errs := make(chan string, 8*len(cases))
	for range 8 {
		for _, c := range cases {
			wg.Go(func() {
				cs, err := s.BehindConsumers(ctx, c.scope, t0.Add(-time.Minute), c.rev, c.limit)
				var got []string
				for _, x := range cs {
					got = append(got, x.Scope+"/"+x.ID)
				}
				if err != nil || !slices.Equal(got, c.want) {
					errs <- fmt.Sprintf("concurrent BehindConsumers(%s, %d, limit %d) = %v, %v; want %v", c.scope, c.rev, c.limit, got, err, c.want)
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// inheritsWorld: mid inherits base; left mid; right mid and other;
// diamond left and right.
func inheritsWorld(t *testing.T, s envy.Store) {
	t.Helper()
	write(t, s, "base", set("A", "1"))
	write(t, s, "other", set("A", "1"))
	putScope(t, s, "mid", "base")
	putScope(t, s, "left", "mid")
	putScope(t, s, "right", "mid", "other")
	putScope(t, s, "diamond", "left", "right")
}

func testInheritors(t *testing.T, s envy.Store) {
	ctx := t.Context()
	inheritsWorld(t, s)
	for _, c := range []struct {
		scope string
		want  []string
	}{
		{"base", []string{"diamond", "left", "mid", "right"}},
		{"other", []string{"diamond", "right"}},
		{"left", []string{"diamond"}},
		{"diamond", nil},
		{"nope", nil},
	} {
		got, err := s.Inheritors(ctx, c.scope)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("Inheritors(%s) = %v, want %v", c.scope, got, c.want)
		}
	}
}

func testConsumers(t *testing.T, s envy.Store) {
	ctx := t.Context()
	write(t, s, "app", set("A", "1"))
	put := func(c envy.Consumer) bool {
		t.Helper()
		created, err := s.PutConsumer(ctx, c, envy.ConsumerLimit{})
		if err != nil {
			t.Fatalf("PutConsumer(%s): %v", c.ID, err)
		}
		return created
	}
	if !put(envy.Consumer{Scope: "app", ID: "c2", Hostname: "h1", PID: 10, Revision: 1, SeenAt: t0}) {
		t.Fatal("the first report did not create the consumer")
	}
	if put(envy.Consumer{Scope: "app", ID: "c2", Hostname: "h2", PID: 11, Revision: 2, SeenAt: t0.Add(30 * time.Second)}) {
		t.Fatal("a second report created the consumer again")
	}
	put(envy.Consumer{Scope: "app", ID: "c1", Hostname: "h3", PID: 12, Revision: 1, SeenAt: t0.Add(-2 * time.Minute)})

	got, err := s.Consumers(ctx, "app", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "c1" || got[1].ID != "c2" {
		t.Fatalf("Consumers = %+v, want c1 and c2 by id", got)
	}
	c := got[1]
	if c.Scope != "app" || c.Hostname != "h2" || c.PID != 11 || c.Revision != 2 || !c.FirstSeen.Equal(t0) || !c.SeenAt.Equal(t0.Add(30*time.Second)) {
		t.Fatalf("c2 = %+v, want the last report with the first sighting kept", c)
	}
	recent, err := s.Consumers(ctx, "app", t0.Add(-time.Minute))
	if err != nil || len(recent) != 1 || recent[0].ID != "c2" {
		t.Fatalf("Consumers since a minute before = %+v, %v; want c2 only", recent, err)
	}
	if !c.FallbackSince.IsZero() {
		t.Fatalf("c2 = %+v: a consumer that reported no fallback has one", c)
	}
	// A report on the fallback copy keeps since when; the next report
	// without it clears it.
	fb := t0.Add(-time.Hour).Add(123 * time.Nanosecond)
	put(envy.Consumer{Scope: "app", ID: "c2", Hostname: "h2", PID: 11, Revision: 2, SeenAt: t0.Add(40 * time.Second), FallbackSince: fb})
	if got, err := s.Consumers(ctx, "app", t0.Add(-time.Minute)); err != nil || len(got) != 1 || !got[0].FallbackSince.Equal(fb) {
		t.Fatalf("Consumers after a report on the fallback = %+v, %v; want c2 with FallbackSince %s", got, err, fb)
	}
	put(envy.Consumer{Scope: "app", ID: "c2", Hostname: "h2", PID: 11, Revision: 2, SeenAt: t0.Add(50 * time.Second)})
	if got, err := s.Consumers(ctx, "app", t0.Add(-time.Minute)); err != nil || len(got) != 1 || !got[0].FallbackSince.IsZero() {
		t.Fatalf("Consumers after a report off the fallback = %+v, %v; want c2 without FallbackSince", got, err)
	}
	// A goodbye deletes the one consumer; an absent one is no error.
	if err := s.DeleteConsumer(ctx, "app", "c1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteConsumer(ctx, "app", "c1"); err != nil {
		t.Fatalf("deleting an absent consumer: %v", err)
	}
	if left, err := s.Consumers(ctx, "app", time.Time{}); err != nil || len(left) != 1 || left[0].ID != "c2" {
		t.Fatalf("Consumers after deleting c1 = %+v, %v; want c2 only", left, err)
	}
	_, err = s.PutConsumer(ctx, envy.Consumer{Scope: "nope", ID: "c1", SeenAt: t0}, envy.ConsumerLimit{})
	wantCode(t, err, envy.ENotFound)
	_, err = s.Consumers(ctx, "nope", time.Time{})
	wantCode(t, err, envy.ENotFound)
	// Consumers go with their scope.
	if _, _, err := s.DeleteScope(ctx, "app", 0, nil); err != nil {
		t.Fatal(err)
	}
	write(t, s, "app", set("A", "1"))
	if got, err := s.Consumers(ctx, "app", time.Time{}); err != nil || len(got) != 0 {
		t.Fatalf("consumers of a re-created scope = %+v, %v; want none", got, err)
	}
}

func testConsumerToken(t *testing.T, s envy.Store) {
	ctx := t.Context()
	write(t, s, "app", set("A", "1"))
	put := func(tok string, rev int64, at time.Time) (bool, error) {
		return s.PutConsumer(ctx, envy.Consumer{Scope: "app", ID: "web-1", Hostname: "h-" + tok, Revision: rev, SeenAt: at, TokenID: tok}, envy.ConsumerLimit{Max: 10, StaleBefore: t0.Add(-time.Hour)})
	}
	if created, err := put("tok-a", 1, t0); err != nil || !created {
		t.Fatalf("first report: %v, %v", created, err)
	}
	if created, err := put("tok-a", 1, t0.Add(time.Second)); err != nil || created {
		t.Fatalf("the same token's next report: created %v, %v", created, err)
	}
	_, err := put("tok-b", 2, t0.Add(2*time.Second))
	wantCode(t, err, envy.EConflict)
	if e := envy.AsError(err); e == nil || len(e.Fields) != 1 || e.Fields[0].Type != "consumer_taken" {
		t.Fatalf("another token's report: %v; want ErrConsumerTaken", err)
	}
	got, err := s.Consumers(ctx, "app", time.Time{})
	if err != nil || len(got) != 1 || got[0].TokenID != "tok-a" || got[0].Revision != 1 || got[0].Hostname != "h-tok-a" || !got[0].SeenAt.Equal(t0.Add(time.Second)) {
		t.Fatalf("after another token's report: %+v, %v; want tok-a's report as it was", got, err)
	}
}

func testConsumerLimitAndPrune(t *testing.T, s envy.Store) {
	ctx := t.Context()
	write(t, s, "app", set("A", "1"))
	lim := envy.ConsumerLimit{Max: 2, StaleBefore: t0.Add(-time.Minute)}
	put := func(id string, seen time.Time) error {
		_, err := s.PutConsumer(ctx, envy.Consumer{Scope: "app", ID: id, Revision: 1, SeenAt: seen}, lim)
		return err
	}
	for _, c := range []struct {
		id   string
		seen time.Time
	}{{"old", t0.Add(-2 * time.Minute)}, {"live", t0}} {
		if err := put(c.id, c.seen); err != nil {
			t.Fatalf("PutConsumer(%s): %v", c.id, err)
		}
	}
	// Full: the stale one makes room for a new one.
	if err := put("new", t0); err != nil {
		t.Fatalf("a new consumer with a stale one to replace: %v", err)
	}
	// Full of live ones: a new one is refused, a known one still reports.
	wantCode(t, put("more", t0), envy.EConflict)
	if err := put("live", t0.Add(time.Second)); err != nil {
		t.Fatalf("a known consumer of a full scope: %v", err)
	}
	got, err := s.Consumers(ctx, "app", time.Time{})
	if err != nil || len(got) != 2 || got[0].ID != "live" || got[1].ID != "new" {
		t.Fatalf("Consumers = %+v, %v; want live and new", got, err)
	}

	n, err := s.PruneConsumers(ctx, t0.Add(time.Millisecond))
	if err != nil || n != 1 {
		t.Fatalf("PruneConsumers = %d, %v; want the one not seen since", n, err)
	}
	if got, _ := s.Consumers(ctx, "app", time.Time{}); len(got) != 1 || got[0].ID != "live" {
		t.Fatalf("after pruning: %+v", got)
	}

	if err := s.AppendAudit(ctx, envy.AuditEntry{At: t0, Action: "old"}, envy.AuditEntry{At: t0.Add(time.Hour), Action: "new"}); err != nil {
		t.Fatal(err)
	}
	n, err = s.PruneAudit(ctx, t0.Add(time.Minute))
	if err != nil || n < 1 {
		t.Fatalf("PruneAudit = %d, %v", n, err)
	}
	left, err := s.ListAudit(ctx, envy.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range left {
		if e.At.Before(t0.Add(time.Minute)) {
			t.Errorf("audit entry %s at %v survived the prune", e.Action, e.At)
		}
	}
	if len(left) == 0 || left[0].Action != "new" {
		t.Fatalf("the newer entry went too: %+v", left)
	}
}

func testSessions(t *testing.T, s envy.Store) {
	ctx := t.Context()
	t0 := time.Unix(1_700_000_000, 0).UTC()
	hash := envy.HashToken
	put := func(id string, created, used time.Time) error {
		return s.CreateSession(ctx, envy.Session{IDHash: hash(id), Sealed: []byte("sealed " + id), CSRF: "csrf " + id, CreatedAt: created, UsedAt: used})
	}
	get := func(id string) envy.Session {
		t.Helper()
		got, err := s.GetSession(ctx, hash(id))
		if err != nil {
			t.Fatalf("GetSession(%s): %v", id, err)
		}
		return got
	}
	if err := put("a", t0, t0); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	wantCode(t, put("a", t0, t0), envy.EConflict)
	got := get("a")
	if !bytes.Equal(got.IDHash, hash("a")) || string(got.Sealed) != "sealed a" || got.CSRF != "csrf a" ||
		!got.CreatedAt.Equal(t0) || !got.UsedAt.Equal(t0) {
		t.Fatalf("GetSession = %+v", got)
	}
	_, err := s.GetSession(ctx, hash("unknown"))
	wantCode(t, err, envy.ENotFound)

	// Touch moves UsedAt forward only, and a missing session is no error.
	if err := s.TouchSession(ctx, hash("a"), t0.Add(time.Minute)); err != nil {
		t.Fatalf("TouchSession: %v", err)
	}
	if err := s.TouchSession(ctx, hash("a"), t0.Add(time.Second)); err != nil {
		t.Fatalf("TouchSession backwards: %v", err)
	}
	if got := get("a"); !got.UsedAt.Equal(t0.Add(time.Minute)) || !got.CreatedAt.Equal(t0) {
		t.Fatalf("after touches: created %v, used %v; want used a minute after creation", got.CreatedAt, got.UsedAt)
	}
	if err := s.TouchSession(ctx, hash("unknown"), t0); err != nil {
		t.Fatalf("TouchSession of a missing session: %v", err)
	}

	if err := s.DeleteSession(ctx, hash("a")); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	_, err = s.GetSession(ctx, hash("a"))
	wantCode(t, err, envy.ENotFound)
	if err := s.DeleteSession(ctx, hash("a")); err != nil {
		t.Fatalf("DeleteSession again: %v", err)
	}

	// Pruned: unused since the idle bound, or created before the maximum.
	for _, c := range []struct {
		id            string
		created, used time.Time
	}{
		{"idle", t0, t0},
		{"old", t0.Add(-time.Hour), t0.Add(10 * time.Minute)},
		{"live", t0, t0.Add(10 * time.Minute)},
	} {
		if err := put(c.id, c.created, c.used); err != nil {
			t.Fatalf("CreateSession(%s): %v", c.id, err)
		}
	}
	n, err := s.PruneSessions(ctx, t0.Add(5*time.Minute), t0.Add(-time.Minute))
	if err != nil || n != 2 {
		t.Fatalf("PruneSessions = %d, %v; want the idle and the old one", n, err)
	}
	get("live")
	for _, id := range []string{"idle", "old"} {
		_, err := s.GetSession(ctx, hash(id))
		wantCode(t, err, envy.ENotFound)
	}
}

func testDataKeys(t *testing.T, s envy.Store) {
	ctx := t.Context()
	keys, err := s.DataKeys(ctx)
	if err != nil || len(keys) != 0 {
		t.Fatalf("DataKeys = %v, %v; want none", keys, err)
	}
	for _, k := range []envy.DataKey{{ID: 2, Wrapped: []byte("wrapped-2"), CreatedAt: t0}, {ID: 1, Wrapped: []byte("wrapped-1"), CreatedAt: t0}} {
		if err := s.AddDataKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	err = s.AddDataKey(ctx, envy.DataKey{ID: 1, Wrapped: []byte("other"), CreatedAt: t0})
	wantCode(t, err, envy.EConflict)
	keys, err = s.DataKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0].ID != 1 || keys[1].ID != 2 || string(keys[0].Wrapped) != "wrapped-1" || !keys[1].CreatedAt.Equal(t0) {
		t.Fatalf("DataKeys = %+v, want keys 1 and 2 as added", keys)
	}
}

func testListScopes(t *testing.T, s envy.Store) {
	ctx := t.Context()
	for _, p := range []string{"a/1", "a/2", "a/3", "ab/1", "b/1"} {
		putScope(t, s, p)
	}
	write(t, s, "a/2", set("X", "1"), set("Y", "1"))
	// Enough scopes that a filtered page spans several of a store's
	// internal batches; written concurrently so group commit keeps it fast.
	const many = 600
	runConcurrently(t, 16, many, func(i int) error {
		_, err := s.Write(ctx, envy.Write{Scope: fmt.Sprintf("m/%04d", i), Actor: "tester", CreateScope: true, Changes: plan(envy.ScopeVars{}, set("V", "1"))})
		return err
	})

	paths := func(q envy.ScopeQuery) []string {
		t.Helper()
		scopes, err := s.ListScopes(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, sc := range scopes {
			out = append(out, sc.Path)
		}
		return out
	}
	allowed := func(ps ...string) func(string) bool {
		return func(p string) bool { return slices.Contains(ps, p) }
	}
	for _, tt := range []struct {
		name string
		q    envy.ScopeQuery
		want []string
	}{
		{"a prefix is matched as a string", envy.ScopeQuery{Prefix: "a"}, []string{"a/1", "a/2", "a/3", "ab/1"}},
		{"a prefix with its slash", envy.ScopeQuery{Prefix: "a/"}, []string{"a/1", "a/2", "a/3"}},
		{"after is exclusive", envy.ScopeQuery{Prefix: "a/", After: "a/1"}, []string{"a/2", "a/3"}},
		{"limit", envy.ScopeQuery{Limit: 3}, []string{"a/1", "a/2", "a/3"}},
		{"after and limit page on", envy.ScopeQuery{After: "a/3", Limit: 2}, []string{"ab/1", "b/1"}},
		{"a prefix nothing has", envy.ScopeQuery{Prefix: "zzz"}, nil},
		{"only allowed paths count toward the limit", envy.ScopeQuery{Limit: 2, Allow: allowed("a/1", "b/1", "m/0599")}, []string{"a/1", "b/1"}},
		{"allowed paths far apart are found", envy.ScopeQuery{Prefix: "m/", Limit: 3, Allow: allowed("m/0000", "m/0300", "m/0599", "a/1")},
			[]string{"m/0000", "m/0300", "m/0599"}},
		{"Allow with a cursor", envy.ScopeQuery{After: "m/0000", Limit: 1, Allow: allowed("m/0000", "m/0599")}, []string{"m/0599"}},
		{"nothing allowed", envy.ScopeQuery{Allow: func(string) bool { return false }}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := paths(tt.q); !slices.Equal(got, tt.want) {
				t.Fatalf("ListScopes = %v, want %v", got, tt.want)
			}
		})
	}
	all, err := s.ListScopes(ctx, envy.ScopeQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 5+many {
		t.Fatalf("ListScopes without a limit = %d scopes, want %d", len(all), 5+many)
	}
	for _, sc := range all {
		want := 0
		switch {
		case sc.Path == "a/2":
			want = 2
		case strings.HasPrefix(sc.Path, "m/"):
			want = 1
		}
		if sc.VarCount != want {
			t.Fatalf("%s has VarCount %d, want %d", sc.Path, sc.VarCount, want)
		}
		if sc.Revision < 1 || sc.CreatedAt.IsZero() {
			t.Fatalf("%s = %+v", sc.Path, sc)
		}
	}
}

func testCancelled(t *testing.T, s envy.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.Write(ctx, envy.Write{Scope: "app", Actor: "tester", CreateScope: true, Changes: plan(envy.ScopeVars{}, set("A", "1"))})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Write with a cancelled context = %v, want context.Canceled", err)
	}
	if _, err := s.GetScope(t.Context(), "app"); envy.ErrorCode(err) != envy.ENotFound {
		t.Fatalf("GetScope = %v, want not found", err)
	}
	if rev := revision(t, s); rev != 0 {
		t.Fatalf("Revision = %d, want 0", rev)
	}
}

// runConcurrently runs n calls of f on g goroutines, released at once, and
// fails the test on the first error.
func runConcurrently(t *testing.T, g, n int, f func(i int) error) {
	t.Helper()
	start := make(chan struct{})
	errs := make(chan error, n)
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	done := make(chan struct{})
	for range g {
		go func() {
			defer func() { done <- struct{}{} }()
			<-start
			for i := range next {
				if err := f(i); err != nil {
					errs <- err
				}
			}
		}()
	}
	close(start)
	for range g {
		<-done
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func testConcurrentWrites(t *testing.T, s envy.Store) {
	ctx := t.Context()
	const (
		writers = 8
		each    = 50
		shared  = "shared"
	)
	// Half the writers share a scope, each with its own var plus a COUNT
	// that all of them bump: a lost update would show as a low version.
	// The others write to a scope of their own. Meanwhile a ninth
	// goroutine keeps making stale writes, which must take no revision, and
	// readers check that what they see is whole and never goes back.
	scopeOf := func(w int) string {
		if w%2 == 0 {
			return shared
		}
		return fmt.Sprintf("solo/%d", w)
	}
	revs := make(chan int64, writers*each)
	start := make(chan struct{})
	errs := make(chan error, writers+4)
	stop := make(chan struct{})
	var wg, bg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			<-start
			name := fmt.Sprintf("G%d", w)
			for range each {
				edits := []edit{set(name, "x")}
				if scopeOf(w) == shared {
					edits = append(edits, set("COUNT", "x"))
				}
				// Plan from what the scope holds now, and again when
				// another writer changed COUNT meanwhile.
				var res envy.WriteResult
				for {
					cur := envy.ScopeVars{Scope: envy.Scope{Path: scopeOf(w)}}
					tree, err := s.ScopeTree(ctx, scopeOf(w))
					if err == nil {
						cur = *tree[scopeOf(w)]
					} else if envy.ErrorCode(err) != envy.ENotFound {
						errs <- err
						return
					}
					res, err = s.Write(ctx, envy.Write{Scope: scopeOf(w), Actor: name, CreateScope: true, Changes: plan(cur, edits...)})
					if errors.Is(err, envy.ErrStale) {
						continue
					}
					if err != nil {
						errs <- err
						return
					}
					break
				}
				revs <- res.Revision
			}
		})
	}
	bg.Go(func() {
		<-start
		for {
			select {
			case <-stop:
				return
			default:
			}
			// Planned from a version COUNT never has: always stale.
			_, err := s.Write(ctx, envy.Write{Scope: shared, Actor: "failing", CreateScope: true,
				Changes: []envy.VarChange{{Name: "COUNT", Delete: true, Base: -1}}})
			if !errors.Is(err, envy.ErrStale) {
				errs <- fmt.Errorf("stale write: %v", err)
				return
			}
		}
	})
	for range 2 {
		bg.Go(func() {
			<-start
			var last int64
			for {
				select {
				case <-stop:
					return
				default:
				}
				tree, err := s.ScopeTree(ctx, shared)
				if envy.ErrorCode(err) == envy.ENotFound {
					continue // not written yet
				}
				if err != nil {
					errs <- err
					return
				}
				sv := tree[shared]
				if sv.Scope.Revision < last {
					errs <- fmt.Errorf("a reader saw revision %d after %d", sv.Scope.Revision, last)
					return
				}
				last = sv.Scope.Revision
				// Every write to shared bumps COUNT, so COUNT's revision
				// is the scope's: anything else is a torn read.
				if c := findVar(sv.Vars, "COUNT"); c == nil || c.Revision != sv.Scope.Revision {
					errs <- fmt.Errorf("a reader saw scope revision %d with COUNT %+v", sv.Scope.Revision, c)
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	close(stop)
	bg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	close(revs)

	seen := map[int64]bool{}
	var maxRev int64
	for r := range revs {
		if seen[r] {
			t.Fatalf("revision %d was returned twice", r)
		}
		seen[r] = true
		maxRev = max(maxRev, r)
	}
	if len(seen) != writers*each {
		t.Fatalf("%d revisions, want %d", len(seen), writers*each)
	}
	// The store was empty and the stale writes took nothing: the
	// revisions are exactly 1..400, none lost.
	for r := int64(1); r <= writers*each; r++ {
		if !seen[r] {
			t.Fatalf("revision %d is missing: revisions were lost", r)
		}
	}
	if got := revision(t, s); got != maxRev {
		t.Fatalf("Revision = %d, want %d", got, maxRev)
	}

	want := map[string]map[string]int64{shared: {"COUNT": writers / 2 * each}}
	for w := range writers {
		if want[scopeOf(w)] == nil {
			want[scopeOf(w)] = map[string]int64{}
		}
		want[scopeOf(w)][fmt.Sprintf("G%d", w)] = each
	}
	for scope, vars := range want {
		hist, err := s.History(ctx, scope, envy.HistoryCursor{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		var changes int64
		for _, v := range vars {
			changes += v
		}
		if int64(len(hist)) != changes {
			t.Errorf("%s has %d history rows, want %d", scope, len(hist), changes)
		}
		tree, err := s.ScopeTree(ctx, scope)
		if err != nil {
			t.Fatal(err)
		}
		for name, version := range vars {
			v := findVar(tree[scope].Vars, name)
			if v == nil || v.Version != version {
				t.Errorf("%s/%s = %+v, want version %d", scope, name, v, version)
			}
		}
	}
}

func testLiveToken(t *testing.T, s envy.Store) {
	ctx := t.Context()
	for _, id := range []string{"live", "revoked"} {
		tok := envy.Token{ID: id, Name: id, Owner: id, Hash: []byte("hash-" + id), CreatedAt: t0, CreatedBy: "admin",
			Permissions: []envy.Grant{{Scopes: "**", Actions: []envy.Action{envy.ActWrite}}}}
		if _, err := s.CreateToken(ctx, tok, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RevokeToken(ctx, "revoked", t0, nil); err != nil {
		t.Fatal(err)
	}
	write(t, s, "app", set("A", "0"))
	as := func(token, value string) error {
		_, err := s.Write(ctx, envy.Write{Scope: "app", Actor: token, ActorToken: token, CreateScope: true, LiveToken: token,
			Changes: changes(t, s, "app", set("A", value)),
			Audit:   []envy.AuditEntry{{Actor: token, Action: envy.AuditVarSet, Scope: "app", Names: []string{"A"}, TokenID: token}}})
		return err
	}
	if err := as("live", "1"); err != nil {
		t.Fatalf("a write with a live LiveToken: %v", err)
	}
	rev := revision(t, s)
	for _, token := range []string{"revoked", "unknown"} {
		if err := as(token, "2"); !errors.Is(err, envy.ErrTokenNotLive) {
			t.Errorf("a write whose LiveToken is %s: %v, want ErrTokenNotLive", token, err)
		}
	}
	// A write that would change nothing is refused too.
	if _, err := s.Write(ctx, envy.Write{Scope: "app", Actor: "revoked", LiveToken: "revoked"}); !errors.Is(err, envy.ErrTokenNotLive) {
		t.Errorf("a write without changes whose LiveToken is revoked: %v, want ErrTokenNotLive", err)
	}
	if got := revision(t, s); got != rev {
		t.Errorf("the refused writes took revisions: %d, want %d", got, rev)
	}
	wantMap(t, "app after the refused writes", values(t, s, "app"), map[string]string{"A": "1"})
	entries, err := s.ListAudit(ctx, envy.AuditQuery{Scope: "app"})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.TokenID == "revoked" || e.TokenID == "unknown" {
			t.Errorf("a refused write left an audit entry: %+v", e)
		}
	}
	// Many at once, as one batch may hold them: each its own answer.
	var wg sync.WaitGroup
	for i := range 24 {
		token := []string{"live", "revoked", "unknown"}[i%3]
		scope := fmt.Sprintf("many/s%d", i%4)
		wg.Go(func() {
			_, err := s.Write(ctx, envy.Write{Scope: scope, Actor: token, CreateScope: true, LiveToken: token,
				Changes: []envy.VarChange{{Name: fmt.Sprintf("V%d", i), ID: rand.Text(), Version: 1, Sealed: sealed("x")}}})
			if live := token == "live"; live != (err == nil) || !live && !errors.Is(err, envy.ErrTokenNotLive) {
				t.Errorf("write %d with LiveToken %s at once with others: %v", i, token, err)
			}
		})
	}
	wg.Wait()
	for i := range 4 {
		got := values(t, s, fmt.Sprintf("many/s%d", i))
		for name := range got {
			var n int
			fmt.Sscanf(name, "V%d", &n)
			if n%3 != 0 {
				t.Errorf("many/s%d holds %s, written with a token that is not live", i, name)
			}
		}
	}
}

func testWriteBehind(t *testing.T, s envy.Store) {
	ctx := t.Context()
	inheritsWorld(t, s)
	first := write(t, s, "base", set("A", "1"))
	for _, c := range []envy.Consumer{
		{Scope: "left", ID: "l1", Revision: first.Revision}, {Scope: "diamond", ID: "d1", Revision: first.Revision - 1},
		{Scope: "right", ID: "r1", Revision: first.Revision, SeenAt: t0.Add(-time.Hour)}, {Scope: "other", ID: "o1", Revision: 0},
	} {
		if c.SeenAt.IsZero() {
			c.SeenAt = t0
		}
		if _, err := s.PutConsumer(ctx, c, envy.ConsumerLimit{}); err != nil {
			t.Fatal(err)
		}
	}
	since := t0.Add(-time.Minute)
	ids := func(cs []envy.Consumer) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.Scope+"/"+c.ID)
		}
		return out
	}
	check := func(what string, w envy.Write) {
		t.Helper()
		res, err := s.Write(ctx, w)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if !res.BehindAnswered {
			return // the caller asks BehindConsumers itself
		}
		want, err := s.BehindConsumers(ctx, w.Scope, since, res.EnvRevision, w.Behind.Limit)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids(res.Behind), ids(want)) {
			t.Errorf("%s: Behind = %v, want %v (BehindConsumers at EnvRevision %d)", what, ids(res.Behind), ids(want), res.EnvRevision)
		}
	}
	check("a write of base", envy.Write{Scope: "base", Actor: "tester", Changes: changes(t, s, "base", set("A", "2")), Behind: &envy.BehindQuery{Since: since}})
	check("a write of base, limit 1", envy.Write{Scope: "base", Actor: "tester", Changes: changes(t, s, "base", set("A", "3")), Behind: &envy.BehindQuery{Since: since, Limit: 1}})
	// A change of a description only keeps the EnvRevision: a consumer
	// that runs it is not behind, one older is.
	write(t, s, "left", set("A", "x"))
	cur := current(t, s, "left")
	for id, rev := range map[string]int64{"l1": cur.Scope.EnvRevision, "l2": cur.Scope.EnvRevision - 1} {
		if _, err := s.PutConsumer(ctx, envy.Consumer{Scope: "left", ID: id, Revision: rev, SeenAt: t0}, envy.ConsumerLimit{}); err != nil {
			t.Fatal(err)
		}
	}
	meta := plan(cur, set("A", "x"))
	old := findVar(cur.Vars, "A")
	meta[0].Sealed, meta[0].Description, meta[0].MetaOnly = old.Sealed, "described", true
	check("a change of a description only", envy.Write{Scope: "left", Actor: "tester", Changes: meta, Behind: &envy.BehindQuery{Since: since}})
	// At once: each write its own answer.
	var wg sync.WaitGroup
	for i, scope := range []string{"base", "mid", "left", "right", "diamond", "other", "base", "mid"} {
		wg.Go(func() {
			res, err := s.Write(ctx, envy.Write{Scope: scope, Actor: "tester", CreateScope: true, Behind: &envy.BehindQuery{Since: since},
				Changes: []envy.VarChange{{Name: fmt.Sprintf("AT_ONCE_%d", i), ID: rand.Text(), Version: 1, Sealed: sealed("x")}}})
			if err != nil {
				t.Errorf("write %d to %s at once: %v", i, scope, err)
				return
			}
			if !res.BehindAnswered {
				return
			}
			want, err := s.BehindConsumers(ctx, scope, since, res.EnvRevision, 0)
			if err != nil {
				t.Error(err)
				return
			}
			if !slices.Equal(ids(res.Behind), ids(want)) {
				t.Errorf("write %d to %s at once: Behind = %v, want %v", i, scope, ids(res.Behind), ids(want))
			}
		})
	}
	wg.Wait()
}

func testStaleCurrent(t *testing.T, s envy.Store) {
	ctx := t.Context()
	write(t, s, "app", set("V", "0"), set("W", "0"))
	base := current(t, s, "app")
	// Writes of V planned from one state, at once: one lands, the others
	// are stale, some perhaps in the winner's own batch.
	const n = 16
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		won    []int64
		stales []*envy.StaleError
	)
	for i := range n {
		wg.Go(func() {
			res, err := s.Write(ctx, envy.Write{Scope: "app", Actor: "tester", Changes: plan(base, set("V", fmt.Sprint(i)))})
			mu.Lock()
			defer mu.Unlock()
			var se *envy.StaleError
			switch {
			case err == nil:
				won = append(won, res.Revision)
			case errors.As(err, &se):
				stales = append(stales, se)
			case !errors.Is(err, envy.ErrStale):
				t.Errorf("write %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if len(won) != 1 {
		t.Fatalf("%d of %d writes planned from one state landed, want 1", len(won), n)
	}
	for _, se := range stales {
		cur := se.Current
		if cur == nil {
			t.Fatal("a StaleError of an existing scope holds no scope")
		}
		v := findVar(cur.Vars, "V")
		if cur.Scope.Revision != won[0] || v == nil || v.Version != 2 || v.Revision != won[0] || findVar(cur.Vars, "W") == nil {
			t.Errorf("a StaleError holds app at revision %d with V %+v; want app as the landed write committed it, at revision %d, V at version 2, W kept", cur.Scope.Revision, v, won[0])
		}
	}
}
