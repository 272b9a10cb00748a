package service_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/postgres"
	"github.com/envy-dev/envy/service"
)

func envOf(t *testing.T, svc *service.Service, ctx context.Context, scope string) (map[string]string, map[string]bool) {
	t.Helper()
	env, err := svc.Env(ctx, scope)
	if err != nil {
		t.Fatal(err)
	}
	vals, secret := map[string]string{}, map[string]bool{}
	for _, v := range env.Vars {
		vals[v.Name], secret[v.Name] = v.Value.Reveal(), v.Secret
	}
	return vals, secret
}

func setErr(svc *service.Service, ctx context.Context, scope, name, value string) error {
	v := envy.NewSensitive(value)
	_, _, err := svc.SetVar(ctx, scope, name, envy.VarInput{Value: &v}, envy.SetOptions{})
	return err
}

// refWorld: acme/shared holds a secret and a host; acme holds a URL built
// from them and from DB_USER, which only acme/web (inheriting acme) sets.
func refWorld(t *testing.T, svc *service.Service, ctx context.Context) {
	t.Helper()
	set(t, svc, ctx, "acme/shared", "DB_PASSWORD", "s3cret-password", true)
	set(t, svc, ctx, "acme/shared", "HOST", "db.internal", false)
	set(t, svc, ctx, "acme", "DATABASE_URL", "postgres://${DB_USER}:${acme/shared:DB_PASSWORD}@${acme/shared:HOST}/app", false)
	set(t, svc, ctx, "acme", "LITERAL", "$${NOT_A_REF}", false)
	set(t, svc, ctx, "acme/web", "DB_USER", "web", false)
	inherit(t, svc, ctx, "acme/web", "acme")
}

func TestReferencesResolveInEnvAndStayRawInReads(t *testing.T) {
	svc, ctx := newSQLiteService(t)
	refWorld(t, svc, ctx)
	vals, secret := envOf(t, svc, ctx, "acme/web")
	if got, want := vals["DATABASE_URL"], "postgres://web:s3cret-password@db.internal/app"; got != want {
		t.Errorf("DATABASE_URL = %q, want %q", got, want)
	}
	if vals["LITERAL"] != "${NOT_A_REF}" {
		t.Errorf("LITERAL = %q, want ${NOT_A_REF}", vals["LITERAL"])
	}
	if !secret["DATABASE_URL"] || secret["DB_USER"] {
		t.Errorf("secret: DATABASE_URL %v (it refers to a secret), DB_USER %v", secret["DATABASE_URL"], secret["DB_USER"])
	}
	// Raw: the env as stored.
	reply, err := svc.EnvReplyRaw(ctx, "acme/web", "test", true, nil, func(b []byte, env envy.Env) ([]byte, error) {
		for _, v := range env.Vars {
			b = append(b, v.Name+"="+v.Value.Reveal()+"\n"...)
		}
		return b, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(reply.Body), "DATABASE_URL=postgres://${DB_USER}:${acme/shared:DB_PASSWORD}@") {
		t.Errorf("raw env:\n%s", reply.Body)
	}
	// A var read shows the raw value, masked without reveal as it refers to a secret.
	v, err := svc.GetVar(ctx, "acme", "DATABASE_URL", false)
	if err != nil {
		t.Fatal(err)
	}
	if v.Value != nil || v.MaskedValue == nil || v.Secret {
		t.Errorf("var read without reveal: value %v, masked %v, secret %v: want masked, its own flag false", v.Value, v.MaskedValue, v.Secret)
	}
	v, err = svc.GetVar(ctx, "acme", "DATABASE_URL", true)
	if err != nil {
		t.Fatal(err)
	}
	if v.Value == nil || !strings.Contains(v.Value.Reveal(), "${acme/shared:DB_PASSWORD}") {
		t.Errorf("var read with reveal: %v, want the raw value", v.Value)
	}
	list, err := svc.ListVars(ctx, "acme", false)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range list.Items {
		if it.Name == "DATABASE_URL" && it.Value != nil {
			t.Error("the list shows DATABASE_URL, which refers to a secret, unmasked")
		}
		if it.Name == "LITERAL" && (it.Value == nil || it.Value.Reveal() != "$${NOT_A_REF}") {
			t.Errorf("the list shows LITERAL as %v, want the raw $${NOT_A_REF}", it.Value)
		}
	}
	rv, err := svc.Resolved(ctx, "acme/web", true)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, l := range rv.Layers {
		for _, v := range l.Vars {
			if v.Name == "DATABASE_URL" {
				found = true
				if strings.Join(v.References, ",") != "DB_USER,acme/shared:DB_PASSWORD,acme/shared:HOST" {
					t.Errorf("references %v", v.References)
				}
				if v.ResolvedValue == nil || v.ResolvedValue.Reveal() != "postgres://web:s3cret-password@db.internal/app" {
					t.Errorf("resolved_value %v (error %q)", v.ResolvedValue, v.RefError)
				}
			}
		}
	}
	if !found {
		t.Error("no DATABASE_URL in /-/resolved")
	}
}

func TestReferencesNeedTheReadersRights(t *testing.T) {
	svc, admin := newSQLiteService(t)
	refWorld(t, svc, admin)
	// May reveal acme/web and acme, not acme/shared.
	web := service.WithCaller(admin, &service.Caller{Token: &envy.Token{ID: "web", Name: "web", Permissions: []envy.Grant{
		{Scopes: "acme/web", Actions: []envy.Action{envy.ActReveal}}, {Scopes: "acme", Actions: []envy.Action{envy.ActReveal}}}}})
	_, err := svc.Env(web, "acme/web")
	if envy.ErrorCode(err) != envy.EForbidden || !strings.Contains(err.Error(), "DATABASE_URL refers to acme/shared:DB_PASSWORD, which this token may not read") {
		t.Fatalf("env without read on the referenced scope: %v, want a 403 naming the reference", err)
	}
	// A reference to a scope that does not exist reads the same for a
	// caller who may not read it: nothing tells it apart.
	set(t, svc, admin, "acme/web", "GHOST", "${acme/nowhere:X}", false)
	set(t, svc, admin, "acme/web", "DATABASE_URL", "plain", false)
	_, err = svc.Env(web, "acme/web")
	if envy.ErrorCode(err) != envy.EForbidden || !strings.Contains(err.Error(), "GHOST refers to acme/nowhere:X, which this token may not read") {
		t.Fatalf("env with a reference to a missing scope the token may not read: %v", err)
	}
	// For the admin it is a 422 naming it.
	_, err = svc.Env(admin, "acme/web")
	if envy.ErrorCode(err) != envy.EInvalid || !strings.Contains(err.Error(), "GHOST refers to acme/nowhere:X, whose scope does not exist") {
		t.Fatalf("env with a broken reference: %v, want a 422 naming it", err)
	}
	// Read, not reveal, on the referenced scope: a secret is not revealed through a reference.
	set(t, svc, admin, "acme/web", "GHOST", "${acme/shared:DB_PASSWORD}", false)
	reader := service.WithCaller(admin, &service.Caller{Token: &envy.Token{ID: "r", Name: "r", Permissions: []envy.Grant{
		{Scopes: "acme/web", Actions: []envy.Action{envy.ActReveal}}, {Scopes: "acme", Actions: []envy.Action{envy.ActReveal}},
		{Scopes: "acme/shared", Actions: []envy.Action{envy.ActRead}}}}})
	_, err = svc.Env(reader, "acme/web")
	if envy.ErrorCode(err) != envy.EForbidden || !strings.Contains(err.Error(), "GHOST refers to acme/shared:DB_PASSWORD, which this token may not reveal") {
		t.Fatalf("env with read only on the referenced scope: %v", err)
	}
	// A list of a scope whose var refers to one the caller may not read masks it.
	list, err := svc.ListVars(web, "acme/web", false)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range list.Items {
		if it.Name == "GHOST" && it.Value != nil {
			t.Error("GHOST, which refers to a secret, is shown unmasked")
		}
	}
}

func TestReferencesRefuseBadSyntaxAndCyclesAtWrite(t *testing.T) {
	svc, ctx := newSQLiteService(t)
	err := setErr(svc, ctx, "app", "BAD", "abc ${NOPE")
	if envy.ErrorCode(err) != envy.EInvalid || !strings.Contains(err.Error(), "BAD") || !strings.Contains(err.Error(), "offset 4") {
		t.Fatalf("bad syntax: %v, want a 422 naming the var and the offset", err)
	}
	if strings.Contains(err.Error(), "NOPE") {
		t.Errorf("the error %q holds the value", err)
	}
	// A reference to what does not exist yet is accepted.
	if err := setErr(svc, ctx, "app", "A", "${B}"); err != nil {
		t.Fatalf("a reference to a var not set yet: %v", err)
	}
	err = setErr(svc, ctx, "app", "B", "x${A}")
	if envy.ErrorCode(err) != envy.EInvalid || !strings.Contains(err.Error(), "reference cycle") || !strings.Contains(err.Error(), "A -> B -> A") && !strings.Contains(err.Error(), "B -> A -> B") {
		t.Fatalf("direct cycle: %v", err)
	}
	// Across scopes.
	set(t, svc, ctx, "app", "B", "${other:C}", false)
	err = setErr(svc, ctx, "other", "C", "${app:A}")
	if envy.ErrorCode(err) != envy.EInvalid || !strings.Contains(err.Error(), "reference cycle") || !strings.Contains(err.Error(), "app:A") {
		t.Fatalf("cycle across scopes: %v", err)
	}
	// In a bulk write.
	a, b := envy.NewSensitive("${Y}"), envy.NewSensitive("${X}")
	_, err = svc.MergeVars(ctx, "bulk", map[string]*envy.VarInput{"X": {Value: &a}, "Y": {Value: &b}}, envy.SetOptions{})
	if envy.ErrorCode(err) != envy.EInvalid || !strings.Contains(err.Error(), "reference cycle") {
		t.Fatalf("cycle in one bulk write: %v", err)
	}
	// Through a rollback: R=${S} at one revision, S=plain; then R plain, S=${R}; rolling back to the first would close R → S → R.
	set(t, svc, ctx, "rb", "S", "plain", false)
	set(t, svc, ctx, "rb", "R", "${S}", false)
	rev := revisionOf(t, svc, ctx, "rb")
	set(t, svc, ctx, "rb", "R", "plain", false)
	set(t, svc, ctx, "rb", "S", "${R}", false)
	if _, err := svc.Rollback(ctx, "rb", rev, envy.Cond{}); err != nil {
		t.Fatalf("a rollback that makes no cycle: %v", err)
	}
	set(t, svc, ctx, "rb2", "P", "${Q}", false)
	set(t, svc, ctx, "rb2", "Q", "${other2:Z}", false)
	rev2 := revisionOf(t, svc, ctx, "rb2")
	set(t, svc, ctx, "rb2", "P", "p", false)
	set(t, svc, ctx, "other2", "Z", "${rb2:P}", false) // no cycle now: P is plain
	_, err = svc.Rollback(ctx, "rb2", rev2, envy.Cond{})
	if envy.ErrorCode(err) != envy.EInvalid || !strings.Contains(err.Error(), "reference cycle") {
		t.Fatalf("a rollback that closes a cycle across scopes: %v", err)
	}
}

func TestAReferencedChangeMovesTheETagAndWakesWatchers(t *testing.T) {
	svc, ctx := newSQLiteService(t)
	referencedChange(t, svc, ctx)
}

func TestAReferencedChangeMovesTheETagAndWakesWatchersOnPostgreSQL(t *testing.T) {
	svc, _, _, ctx := pgService(t, func(db *postgres.Store) envy.Store { return db })
	referencedChange(t, svc, ctx)
}

func referencedChange(t *testing.T, svc *service.Service, ctx context.Context) {
	t.Helper()
	set(t, svc, ctx, "acme/shared", "HOST", "db1", false)
	set(t, svc, ctx, "acme/web", "URL", "http://${acme/shared:HOST}/", false)
	env, err := svc.Env(ctx, "acme/web")
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ch, err := svc.Watch(wctx, "acme/web", env.Revision)
	if err != nil {
		t.Fatal(err)
	}
	set(t, svc, ctx, "acme/shared", "HOST", "db2", false)
	ev := recv(t, ch, 20*time.Second, "an event for a change to a referenced var")
	if ev.Revision <= env.Revision {
		t.Fatalf("event at revision %d, not after %d", ev.Revision, env.Revision)
	}
	vals, _ := envOf(t, svc, ctx, "acme/web")
	if vals["URL"] != "http://db2/" {
		t.Fatalf("URL = %q after the referenced change, want http://db2/", vals["URL"])
	}
	again, err := svc.Env(ctx, "acme/web")
	if err != nil {
		t.Fatal(err)
	}
	if again.Revision <= env.Revision {
		t.Fatalf("revision (the ETag) %d after the referenced change, was %d", again.Revision, env.Revision)
	}
	// A reference added by a value change: the watcher follows the new scope too.
	set(t, svc, ctx, "acme/web", "URL", "http://${acme/other:HOST}/", false)
	recv(t, ch, 20*time.Second, "an event for the change of URL")
	// Its scope is created after: an event, and the env resolves.
	set(t, svc, ctx, "acme/other", "HOST", "db3", false)
	deadline := time.Now().Add(20 * time.Second)
	for {
		ev := recv(t, ch, time.Until(deadline), "an event for the creation of the referenced scope")
		vals, _ := envOf(t, svc, ctx, "acme/web")
		if vals["URL"] == "http://db3/" && ev.Revision >= again.Revision {
			break
		}
	}
}

func revisionOf(t *testing.T, svc *service.Service, ctx context.Context, scope string) int64 {
	t.Helper()
	vl, err := svc.ListVars(ctx, scope, false)
	if err != nil {
		t.Fatal(err)
	}
	return vl.Revision
}

// A change to a referenced var, written through one server, wakes the
// watchers of the referring scope on another, and the other's reads and
// ETag follow at once.
func TestAReferencedChangeReachesWatchersOnAnotherServer(t *testing.T) {
	first, second, ctx := serversWith(t, nil)
	set(t, first, ctx, "acme/shared", "HOST", "db1", false)
	set(t, first, ctx, "acme/web", "URL", "http://${acme/shared:HOST}/", false)
	env, err := second.Env(ctx, "acme/web")
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ch, err := second.Watch(wctx, "acme/web", env.Revision)
	if err != nil {
		t.Fatal(err)
	}
	set(t, first, ctx, "acme/shared", "HOST", "db2", false)
	if vals, _ := envOf(t, second, ctx, "acme/web"); vals["URL"] != "http://db2/" {
		t.Fatalf("the other server reads URL = %q after the referenced change, want http://db2/", vals["URL"])
	}
	ev := recv(t, ch, 20*time.Second, "an event on the other server for a change to a referenced var")
	if ev.Revision <= env.Revision {
		t.Fatalf("event at revision %d, not after %d", ev.Revision, env.Revision)
	}
}

// The dialects' reads give resolved values, masked when they refer to a
// secret, and refuse a reference the caller may not follow.
func TestDialectReadsGiveResolvedValues(t *testing.T) {
	svc, admin := newSQLiteService(t)
	set(t, svc, admin, "shared", "HOST", "db1", false)
	set(t, svc, admin, "shared", "KEY", "k-123456789012", true)
	set(t, svc, admin, "app", "URL", "http://${shared:HOST}/", false)
	set(t, svc, admin, "app", "AUTH", "Bearer ${shared:KEY}", false)
	set(t, svc, admin, "app", "LIT", "$${x}", false)
	vl, err := svc.ListVarsResolved(admin, "app", false)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, it := range vl.Items {
		if it.Value != nil {
			got[it.Name] = it.Value.Reveal()
		} else {
			got[it.Name] = "(masked)"
		}
	}
	if got["URL"] != "http://db1/" || got["AUTH"] != "(masked)" || got["LIT"] != "${x}" {
		t.Errorf("dialect list: %v", got)
	}
	v, err := svc.GetVarResolved(admin, "app", "AUTH", true)
	if err != nil || v.Value == nil || v.Value.Reveal() != "Bearer k-123456789012" {
		t.Errorf("dialect get with reveal: %v, %v", v.Value, err)
	}
	appOnly := as(admin, "app", "app", envy.ActReveal)
	if _, err := svc.ListVarsResolved(appOnly, "app", false); envy.ErrorCode(err) != envy.EForbidden || !strings.Contains(err.Error(), "refers to shared:") {
		t.Errorf("dialect list without read on the referenced scope: %v, want a 403 naming the reference", err)
	}
}

// A consumer of the referring scope is out of sync once a referenced var
// changes, and in sync again once it runs the new revision.
func TestAReferencedChangeMakesTheReferringScopeUnsynced(t *testing.T) {
	svc, ctx := newSQLiteService(t)
	set(t, svc, ctx, "shared", "HOST", "db1", false)
	set(t, svc, ctx, "app", "URL", "http://${shared:HOST}/", false)
	env, err := svc.Env(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ReportConsumer(ctx, "app", "c1", envy.ConsumerInput{Revision: env.Revision}); err != nil {
		t.Fatal(err)
	}
	if st, err := svc.Status(ctx, "app"); err != nil || !st.Synced {
		t.Fatalf("status before the change: %+v, %v", st, err)
	}
	set(t, svc, ctx, "shared", "HOST", "db2", false)
	st, err := svc.Status(ctx, "app")
	if err != nil || st.Synced {
		t.Fatalf("status after a change to a referenced var: synced %v, %v; want false", st.Synced, err)
	}
	if _, err := svc.ReportConsumer(ctx, "app", "c1", envy.ConsumerInput{Revision: st.Revision}); err != nil {
		t.Fatal(err)
	}
	if st, err := svc.Status(ctx, "app"); err != nil || !st.Synced {
		t.Fatalf("status once the consumer runs the new revision: %+v, %v", st, err)
	}
}

func TestCyclesClosedThroughInheritsAreRefusedAtWrite(t *testing.T) {
	svc, ctx := newSQLiteService(t)
	cyclesThroughInherits(t, svc, ctx)
}

func TestCyclesClosedThroughInheritsAreRefusedAtWriteOnPostgreSQL(t *testing.T) {
	svc, _, _, ctx := pgService(t, func(db *postgres.Store) envy.Store { return db })
	cyclesThroughInherits(t, svc, ctx)
}

// cyclesThroughInherits: a write that closes a reference cycle only in
// the env of another scope, one that inherits the written scope, is
// refused like one that closes it in its own, naming the cycle, and
// leaves nothing written.
func cyclesThroughInherits(t *testing.T, svc *service.Service, ctx context.Context) {
	t.Helper()
	refused := func(what string, err error, want ...string) {
		t.Helper()
		if envy.ErrorCode(err) != envy.EInvalid || !strings.Contains(err.Error(), "reference cycle") {
			t.Fatalf("%s: %v, want a 422 naming a reference cycle", what, err)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not name %q", what, err, w)
			}
		}
	}
	rawOf := func(scope, name string) string {
		t.Helper()
		v, err := svc.GetVar(ctx, scope, name, true)
		if err != nil {
			t.Fatal(err)
		}
		return v.Value.Reveal()
	}

	// A reference into a scope that inherits back: other inherits app and
	// its X refers to A, which app is about to make refer to other:X.
	set(t, svc, ctx, "app", "A", "plain", false)
	set(t, svc, ctx, "other", "X", "${A}", false)
	inherit(t, svc, ctx, "other", "app")
	refused("a reference into a scope that inherits back", setErr(svc, ctx, "app", "A", "${other:X}"), "other:X", "other:A")
	if got := rawOf("app", "A"); got != "plain" {
		t.Errorf("app A = %q after the refused write, want it as it was", got)
	}

	// A chain that comes back through an inherits edge: child inherits
	// base and its B refers to A; base's A is about to refer to B, which
	// base does not hold: only child's env has the cycle.
	set(t, svc, ctx, "base", "A", "plain", false)
	set(t, svc, ctx, "child", "B", "${A}", false)
	inherit(t, svc, ctx, "child", "base")
	refused("a chain back through an inherits edge", setErr(svc, ctx, "base", "A", "x${B}"), "child", "A -> B")
	// Two levels down, in a bulk write.
	inherit(t, svc, ctx, "grandchild", "child")
	set(t, svc, ctx, "child", "B", "b", false)
	set(t, svc, ctx, "grandchild", "B", "${A}", false)
	a := envy.NewSensitive("${B}")
	_, err := svc.MergeVars(ctx, "base", map[string]*envy.VarInput{"A": {Value: &a}}, envy.SetOptions{})
	refused("a cycle two inherits edges down", err, "grandchild")
	if got := rawOf("base", "A"); got != "plain" {
		t.Errorf("base A = %q after the refused writes, want it as it was", got)
	}

	// A delete that uncovers an inherited reference: lower's N shadows
	// upper's N=${M}; lower's M refers to N.
	set(t, svc, ctx, "upper", "N", "${M}", false)
	set(t, svc, ctx, "lower", "N", "plain", false)
	set(t, svc, ctx, "lower", "M", "${N}", false)
	inherit(t, svc, ctx, "lower", "upper")
	_, err = svc.DeleteVar(ctx, "lower", "N", envy.Cond{})
	refused("a delete that uncovers an inherited reference", err, "N -> M")
	if got := rawOf("lower", "N"); got != "plain" {
		t.Errorf("lower N = %q after the refused delete, want it as it was", got)
	}

	// Inherits that close a cycle: left's P refers to Q, which right's
	// refers back to P; left inheriting right would close it.
	set(t, svc, ctx, "left", "P", "${Q}", false)
	set(t, svc, ctx, "right", "Q", "${P}", false)
	inherits := []string{"right"}
	_, _, err = svc.PutScope(ctx, "left", envy.ScopeInput{Inherits: &inherits}, envy.Cond{})
	refused("inherits that close a cycle", err, "P -> Q")
	if sc, err := svc.GetScope(ctx, "left"); err != nil || len(sc.Inherits) != 0 {
		t.Errorf("left = %+v, %v after the refused inherits, want no inherits", sc, err)
	}
	// And a scope inheriting left, when right is given to an heir.
	set(t, svc, ctx, "right", "Q", "q", false)
	inherit(t, svc, ctx, "heir", "left")
	set(t, svc, ctx, "right", "Q", "${P}", false)
	inherits = []string{"left", "right"}
	if _, _, err := svc.PutScope(ctx, "heir", envy.ScopeInput{Inherits: &inherits}, envy.Cond{}); err == nil {
		t.Fatal("heir inheriting left and right (P -> Q -> P) was accepted")
	} else {
		refused("an heir's inherits that close a cycle", err)
	}

	// A write that closes no cycle is still taken, through inherits too.
	if err := setErr(svc, ctx, "base", "A", "${C}"); err != nil {
		t.Fatalf("a reference that closes no cycle: %v", err)
	}
}

func TestACycleThroughAnUnreadableHeirIsRefusedWithoutNamingIt(t *testing.T) {
	svc, ctx := newSQLiteService(t)
	set(t, svc, ctx, "team/base", "A", "plain", false)
	set(t, svc, ctx, "secret/child", "B", "${A}", false)
	inherit(t, svc, ctx, "secret/child", "team/base")
	err := setErr(svc, as(ctx, "w", "team/**", envy.ActRead, envy.ActWrite), "team/base", "A", "${B}")
	if envy.ErrorCode(err) != envy.EInvalid || !strings.Contains(err.Error(), "reference cycle") {
		t.Fatalf("a cycle in the env of a scope the writer may not read: %v, want a 422", err)
	}
	if strings.Contains(err.Error(), "secret/child") {
		t.Errorf("the refusal %q names a scope the writer may not read", err)
	}
}

// TestResolvedShowsTheReferencesOfShadowedVarsToo: /-/resolved lists the
// references of every var that has some, a var that a later layer
// shadows too (with no resolved value: it is in no env), as the
// resolution's layers hold it.
func TestResolvedShowsTheReferencesOfShadowedVarsToo(t *testing.T) {
	svc, ctx := newSQLiteService(t)
	set(t, svc, ctx, "shared", "HOST", "db1", false)
	set(t, svc, ctx, "base", "URL", "http://${shared:HOST}:${PORT}/", false)
	set(t, svc, ctx, "base", "PORT", "80", false)
	set(t, svc, ctx, "app", "URL", "http://${HOST2}/", false)
	set(t, svc, ctx, "app", "HOST2", "db2", false)
	inherit(t, svc, ctx, "app", "base")
	for _, reveal := range []bool{false, true} {
		rv, err := svc.Resolved(ctx, "app", reveal)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]envy.ResolvedVarView{}
		for _, l := range rv.Layers {
			for _, v := range l.Vars {
				got[l.Scope+":"+v.Name] = v
			}
		}
		base, app := got["base:URL"], got["app:URL"]
		if base.ShadowedBy != "app" || strings.Join(base.References, ",") != "shared:HOST,PORT" {
			t.Errorf("reveal %v: base's shadowed URL: shadowed_by %q, references %v, want app and [shared:HOST PORT]", reveal, base.ShadowedBy, base.References)
		}
		if base.ResolvedValue != nil || base.RefError != "" {
			t.Errorf("reveal %v: base's shadowed URL has resolved_value %v, reference_error %q: it is in no env", reveal, base.ResolvedValue, base.RefError)
		}
		if strings.Join(app.References, ",") != "HOST2" || app.ResolvedValue == nil || app.ResolvedValue.Reveal() != "http://db2/" {
			t.Errorf("reveal %v: app's URL: references %v, resolved_value %v (%q)", reveal, app.References, app.ResolvedValue, app.RefError)
		}
		if p := got["base:PORT"]; len(p.References) != 0 {
			t.Errorf("reveal %v: PORT has references %v", reveal, p.References)
		}
	}
}

// A dialect's read that a reference refuses (one that does not resolve)
// reveals nothing, so it leaves no reveal in the audit log: the values
// are resolved before the reveal is recorded.
func TestADialectReadARefusedReferenceFailsIsNoReveal(t *testing.T) {
	svc, admin := newSQLiteService(t)
	set(t, svc, admin, "app", "S", "topsecret-123456", true)
	set(t, svc, admin, "app", "A", "x${MISSING}", false)
	if _, err := svc.ListVarsResolved(admin, "app", true); envy.ErrorCode(err) != envy.EInvalid {
		t.Fatalf("a list with a reference that does not resolve: %v, want a 422", err)
	}
	if _, err := svc.GetVarResolved(admin, "app", "A", true); envy.ErrorCode(err) != envy.EInvalid {
		t.Fatalf("a get of a reference that does not resolve: %v, want a 422", err)
	}
	page, err := svc.Audit(admin, envy.AuditListQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range page.Items {
		if e.Action == envy.AuditReveal {
			t.Fatalf("a refused read is recorded as a reveal of %v (status %v)", e.Names, e.Status)
		}
	}
}
