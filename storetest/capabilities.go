package storetest

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/storeutil"
)

// The optional capabilities of a store, each run on the stores that have
// it (a type assertion) and skipped on the others.

func testChecker(t *testing.T, s envy.Store) {
	ck, ok := s.(envy.Checker)
	if !ok {
		t.Skip("the store is no envy.Checker")
	}
	ctx := t.Context()
	check := func(paths []string, revs []int64, token string) (bool, bool) {
		t.Helper()
		scopesOK, live, err := ck.Check(ctx, paths, revs, token)
		if err != nil {
			t.Fatalf("Check(%v, %v, %q): %v", paths, revs, token, err)
		}
		return scopesOK, live
	}
	wantScopes := func(what string, paths []string, revs []int64, want bool) {
		t.Helper()
		if got, _ := check(paths, revs, ""); got != want {
			t.Fatalf("%s: Check(%v, %v) scopesOK = %v, want %v", what, paths, revs, got, want)
		}
	}
	wantScopes("no scopes", nil, nil, true)
	base := putScope(t, s, "base")
	a := write(t, s, "a", set("A", "1")).Revision
	app := putScope(t, s, "app", "base")
	wantScopes("scopes at their revisions", []string{"a", "app", "base"}, []int64{a, app.Revision, base.Revision}, true)
	wantScopes("one scope at its revision", []string{"a"}, []int64{a}, true)
	wantScopes("a scope at an older revision", []string{"a"}, []int64{a - 1}, false)
	wantScopes("a scope at a revision it never had", []string{"a"}, []int64{a + 100}, false)
	wantScopes("a scope that never existed", []string{"nope"}, []int64{0}, false)

	a2 := write(t, s, "a", set("A", "2")).Revision
	wantScopes("after a write to a var", []string{"a", "base"}, []int64{a, base.Revision}, false)
	wantScopes("at the write's revision", []string{"a", "base"}, []int64{a2, base.Revision}, true)
	if _, err := s.Write(ctx, envy.Write{Scope: "a", Actor: "tester", Touch: true}); err != nil {
		t.Fatal(err)
	}
	wantScopes("after a Touch write", []string{"a"}, []int64{a2}, false)

	app2 := putScope(t, s, "app") // inherits nothing now
	wantScopes("after a change of inherits", []string{"app"}, []int64{app.Revision}, false)
	wantScopes("at the change's revision", []string{"app", "base"}, []int64{app2.Revision, base.Revision}, true)

	_, gone, err := s.DeleteScope(ctx, "base", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantScopes("a deleted scope, at its last revision", []string{"base"}, []int64{base.Revision}, false)
	wantScopes("a deleted scope, at its delete's revision", []string{"base"}, []int64{gone}, false)
	wantScopes("a deleted scope among live ones", []string{"app", "base"}, []int64{app2.Revision, base.Revision}, false)
	again := putScope(t, s, "base")
	wantScopes("a deleted scope created again, at the old revision", []string{"base"}, []int64{base.Revision}, false)
	wantScopes("a deleted scope created again, at the new revision", []string{"base"}, []int64{again.Revision}, true)

	for _, tok := range []envy.Token{noticeToken("root", ""), noticeToken("child", "root"), noticeToken("other", "")} {
		if _, err := s.CreateToken(ctx, tok, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	wantToken := func(what, id string, want bool) {
		t.Helper()
		if _, live := check(nil, nil, id); live != want {
			t.Fatalf("%s: Check(token %s) tokenLive = %v, want %v", what, id, live, want)
		}
	}
	wantToken("a live token", "root", true)
	wantToken("a token that does not exist", "nope", false)
	if err := s.RevokeToken(ctx, "root", time.Time{}, nil); err != nil {
		t.Fatal(err)
	}
	wantToken("a revoked token", "root", false)
	wantToken("a token whose parent was revoked", "child", false)
	wantToken("another token", "other", true)
	if ok, live := check([]string{"app"}, []int64{app2.Revision}, "root"); !ok || live {
		t.Fatalf("Check(live scope, revoked token) = %v, %v; want true, false", ok, live)
	}
	if ok, live := check([]string{"app"}, []int64{app.Revision}, "other"); ok || !live {
		t.Fatalf("Check(changed scope, live token) = %v, %v; want false, true", ok, live)
	}

	// Checks that run at once are each answered for themselves.
	runConcurrently(t, 8, 64, func(i int) error {
		paths, revs, token, want := []string{"app"}, []int64{app2.Revision}, "other", true
		if i%2 == 1 {
			revs, token, want = []int64{app.Revision}, "root", false
		}
		ok, live, err := ck.Check(ctx, paths, revs, token)
		if err != nil {
			return err
		}
		if ok != want || live != want {
			return fmt.Errorf("concurrent Check %d = %v, %v; want %v, %v", i, ok, live, want, want)
		}
		return nil
	})
}

// dump is what a Mover's Dump gave: the chunks as they came, and each
// table's columns and rows.
type dump struct {
	chunks []storeutil.Rows
	cols   map[string][]string
	rows   map[string][][]any
}

func dumpOf(t *testing.T, m storeutil.Mover, during func(storeutil.Rows)) dump {
	t.Helper()
	d := dump{cols: map[string][]string{}, rows: map[string][][]any{}}
	err := m.Dump(t.Context(), func(r storeutil.Rows) error {
		if during != nil {
			during(r)
		}
		d.chunks = append(d.chunks, r)
		if c, ok := d.cols[r.Table]; ok && !slices.Equal(c, r.Columns) {
			return fmt.Errorf("table %s has columns %v, then %v", r.Table, c, r.Columns)
		}
		d.cols[r.Table] = r.Columns
		d.rows[r.Table] = append(d.rows[r.Table], r.Values...)
		return nil
	})
	if err != nil {
		t.Fatalf("Dump: %v", err)
	}
	return d
}

// column returns the values of column col of table's rows.
func (d dump) column(t *testing.T, table, col string) []any {
	t.Helper()
	i := slices.Index(d.cols[table], col)
	if i < 0 {
		t.Fatalf("the dump's table %s has no column %s (it has %v)", table, col, d.cols[table])
	}
	var out []any
	for _, row := range d.rows[table] {
		out = append(out, row[i])
	}
	return out
}

func (d dump) fill(put func(storeutil.Rows) error) error {
	for _, c := range d.chunks {
		if err := put(c); err != nil {
			return err
		}
	}
	return nil
}

// storeState is everything a store holds, read through envy.Store.
type storeState struct {
	Revision  int64
	Scopes    []envy.Scope
	Trees     map[string]map[string]string // scope → its own vars, name → value
	History   map[string][]envy.Change
	Tokens    []envy.Token
	Audit     []envy.AuditEntry
	Consumers map[string][]envy.Consumer
	DataKeys  []envy.DataKey
}

func stateOf(t *testing.T, s envy.Store) storeState {
	t.Helper()
	ctx := t.Context()
	st := storeState{Revision: revision(t, s), Trees: map[string]map[string]string{},
		History: map[string][]envy.Change{}, Consumers: map[string][]envy.Consumer{}}
	var err error
	if st.Scopes, err = s.ListScopes(ctx, envy.ScopeQuery{}); err != nil {
		t.Fatal(err)
	}
	for _, sc := range st.Scopes {
		st.Trees[sc.Path] = values(t, s, sc.Path)
		if st.History[sc.Path], err = s.History(ctx, sc.Path, envy.HistoryCursor{}, 0); err != nil {
			t.Fatal(err)
		}
		if st.Consumers[sc.Path], err = s.Consumers(ctx, sc.Path, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if st.Tokens, err = s.ListTokens(ctx, "", 0); err != nil {
		t.Fatal(err)
	}
	if st.Audit, err = s.ListAudit(ctx, envy.AuditQuery{}); err != nil {
		t.Fatal(err)
	}
	if st.DataKeys, err = s.DataKeys(ctx); err != nil {
		t.Fatal(err)
	}
	return st
}

func testMover(t *testing.T, s envy.Store, open func(t *testing.T) envy.Store) {
	src, ok := s.(storeutil.Mover)
	if !ok {
		t.Skip("the store is no storeutil.Mover")
	}
	ctx := t.Context()
	// A store with something in every table.
	putScope(t, s, "base")
	write(t, s, "base", set("SHARED", "1"), set("GONE", "x"))
	putScope(t, s, "app", "base")
	write(t, s, "app", set("A", "1"), set("B", "2"))
	write(t, s, "app", set("A", "2"), del("B"))
	write(t, s, "base", del("GONE"))
	if _, err := s.Write(ctx, envy.Write{Scope: "app", Actor: "tester", Touch: true,
		Audit: []envy.AuditEntry{{At: t0, Actor: "tester", Action: "vars.touch", Scope: "app", Names: []string{"A"}, Status: 200, TokenID: "root"}}}); err != nil {
		t.Fatal(err)
	}
	exp := t0.Add(time.Hour)
	child := noticeToken("child", "root")
	child.ExpiresAt = &exp
	for _, tok := range []envy.Token{noticeToken("root", ""), child, noticeToken("gone", "root")} {
		if _, err := s.CreateToken(ctx, tok, false, []envy.AuditEntry{{At: t0, Actor: "admin", Action: "token.create", Names: []string{tok.ID}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RevokeToken(ctx, "gone", t0.Add(time.Minute), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAudit(ctx, envy.AuditEntry{At: t0, Client: "10.0.0.1", Action: "auth", Status: 401, Count: 3, Aggregate: true}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"c1", "c2"} {
		if _, err := s.PutConsumer(ctx, envy.Consumer{Scope: "app", ID: id, Hostname: "h-" + id, PID: 7, Revision: 3, SeenAt: t0}, envy.ConsumerLimit{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []uint32{1, 2} {
		if err := s.AddDataKey(ctx, envy.DataKey{ID: id, Wrapped: []byte(fmt.Sprint("wrapped-", id)), CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	if ts, ok := s.(envy.TrustStore); ok {
		if _, err := ts.PutTrust(ctx, envy.JWTTrust{Name: "ci", Issuer: "https://issuer.example", Audience: "envy", TTL: time.Minute, CreatedAt: t0}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if rs, ok := s.(envy.RolloutStore); ok {
		if err := rs.PutRolloutPolicy(ctx, "app", &envy.RolloutPolicy{MaxUnavailable: 2, HealthTimeout: time.Minute}); err != nil {
			t.Fatal(err)
		}
		if err := rs.PauseRollout(ctx, envy.RolloutPause{Scope: "app", Revision: 3, Reason: "r", Failed: []string{"c1"}, At: t0}); err != nil {
			t.Fatal(err)
		}
	}
	if ws, ok := s.(envy.WebhookStore); ok {
		if _, err := ws.CreateWebhook(ctx, envy.Webhook{ID: "wh1", URL: "https://hooks.example/x", Scopes: "**", Events: []string{envy.EventVarsChanged}, Secret: []byte("sealed"), CreatedAt: t0}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if ostore, ok := s.(envy.OIDCStore); ok {
		if _, err := ostore.PutOIDC(ctx, envy.OIDCProvider{Name: "corp", Issuer: "https://idp.example", ClientID: "envy",
			SealedSecret: []byte("sealed"), SessionTTL: time.Hour, CreatedAt: t0, CreatedBy: "admin"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if rk, ok := s.(interface {
		AddRetiredMasterKey(context.Context, envy.RetiredMasterKey) error
	}); ok {
		if err := rk.AddRetiredMasterKey(ctx, envy.RetiredMasterKey{Check: []byte("check"), RetiredAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	want := stateOf(t, s)

	// The dump: the tables in MoveTables' order, each whole, in chunks
	// of at most MoveChunk rows; and one snapshot, although a write
	// commits while it runs.
	var wrote bool
	d := dumpOf(t, src, func(storeutil.Rows) {
		if !wrote {
			wrote = true
			write(t, s, "during", set("D", "1"))
		}
	})
	var order []string
	for _, c := range d.chunks {
		if len(c.Values) == 0 || len(c.Values) > storeutil.MoveChunk {
			t.Fatalf("a chunk of %s has %d rows", c.Table, len(c.Values))
		}
		if len(order) == 0 || order[len(order)-1] != c.Table {
			order = append(order, c.Table)
		}
	}
	var tables []string
	for _, mt := range storeutil.MoveTables {
		tables = append(tables, mt.Name)
	}
	if !slices.Equal(order, tables) {
		t.Fatalf("the dump's tables came in the order %v, want %v (every table holds rows)", order, tables)
	}
	if got := d.column(t, "meta", "revision"); len(got) != 1 || got[0] != any(want.Revision) {
		t.Fatalf("the dump's meta revision = %v, want [%d]: the write made during the dump is in it", got, want.Revision)
	}
	if slices.Contains(d.column(t, "scopes", "path"), any("during")) || slices.Contains(d.column(t, "vars", "scope"), any("during")) {
		t.Fatal("the dump holds a scope written while it ran: it read more than one snapshot")
	}

	dst := open(t)
	t.Cleanup(func() { dst.Close() })
	to, ok := dst.(storeutil.Mover)
	if !ok {
		t.Fatal("open gave a store that is no Mover")
	}
	// All or nothing: a load that fails halfway leaves the store empty.
	stop := errors.New("the source broke")
	if err := to.Load(ctx, func(put func(storeutil.Rows) error) error {
		if err := d.fill(put); err != nil {
			return err
		}
		return stop
	}); !errors.Is(err, stop) {
		t.Fatalf("a Load whose source fails = %v, want its error", err)
	}
	empty := open(t)
	t.Cleanup(func() { empty.Close() })
	if got := stateOf(t, dst); !reflect.DeepEqual(got, stateOf(t, empty)) {
		t.Fatalf("a failed Load left %+v in the store", got)
	}
	if err := to.Load(ctx, d.fill); err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := stateOf(t, dst); !reflect.DeepEqual(got, want) {
		t.Fatalf("the store loaded from a dump holds\n%+v\nwant\n%+v", got, want)
	}
	if got := dumpOf(t, to, nil); !reflect.DeepEqual(got.rows, d.rows) {
		t.Fatalf("the loaded store dumps\n%v\nwant\n%v", got.rows, d.rows)
	}
	if err := to.Load(ctx, d.fill); !errors.Is(err, storeutil.ErrNotEmpty) {
		t.Fatalf("a Load into a store that holds data = %v, want ErrNotEmpty", err)
	}
	if err := src.Load(ctx, func(func(storeutil.Rows) error) error { return nil }); !errors.Is(err, storeutil.ErrNotEmpty) {
		t.Fatalf("a Load of nothing into a store that holds data = %v, want ErrNotEmpty", err)
	}

	// The loaded store counts on from what it loaded.
	if res := write(t, dst, "app", set("A", "3")); res.Revision != want.Revision+1 {
		t.Fatalf("the first write after a load took revision %d, want %d", res.Revision, want.Revision+1)
	}
	if err := dst.AppendAudit(ctx, envy.AuditEntry{At: t0.Add(time.Hour), Actor: "tester", Action: "after"}); err != nil {
		t.Fatal(err)
	}
	audit, err := dst.ListAudit(ctx, envy.AuditQuery{Limit: 1})
	if err != nil || len(audit) != 1 || audit[0].Action != "after" {
		t.Fatalf("ListAudit after the load = %+v, %v", audit, err)
	}
	for _, e := range want.Audit {
		if audit[0].ID <= e.ID {
			t.Fatalf("an audit entry added after the load has id %d, not above the loaded %d", audit[0].ID, e.ID)
		}
	}
	if rk, ok := dst.(interface {
		AddRetiredMasterKey(context.Context, envy.RetiredMasterKey) error
	}); ok {
		if err := rk.AddRetiredMasterKey(ctx, envy.RetiredMasterKey{Check: []byte("check 2"), RetiredAt: t0.Add(time.Hour)}); err != nil {
			t.Fatalf("a retired master key kept after the load: %v (do its ids go on from those loaded?)", err)
		}
	}
	if tok, err := dst.TokenByHash(ctx, envy.HashToken("secret-child")); err != nil || tok.ID != "child" {
		t.Fatalf("TokenByHash of a loaded token = %+v, %v", tok, err)
	}
}

// resealer is crypto.Resealer's method set, declared again here: the
// crypto package would bring its KMS drivers into every store's tests.
type resealer interface {
	SealedNotUnder(ctx context.Context, keep uint32, limit int) ([]envy.SealedValue, error)
	ReplaceSealed(ctx context.Context, vs []envy.SealedValue) (int, error)
	RetireDataKeys(ctx context.Context, keep uint32) ([]uint32, error)
}

// sealedUnder stands in for a value sealed under data key id: the key id
// in bytes 1 to 4, as the keyring writes it, and the value readable after.
func sealedUnder(id uint32, value string) []byte {
	return append([]byte{1, byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}, value...)
}

func testResealer(t *testing.T, s envy.Store) {
	rs, ok := s.(resealer)
	if !ok {
		t.Skip("the store has no reseal methods (crypto.Resealer)")
	}
	ctx := t.Context()
	for _, id := range []uint32{1, 2, 3} {
		if err := s.AddDataKey(ctx, envy.DataKey{ID: id, Wrapped: []byte("wrapped"), CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	put := func(scope string, vals map[string][]byte, dels ...string) int64 {
		t.Helper()
		var edits []edit
		for _, name := range slices.Sorted(maps.Keys(vals)) {
			edits = append(edits, set(name, ""))
		}
		for _, name := range dels {
			edits = append(edits, del(name))
		}
		cs := changes(t, s, scope, edits...)
		for i := range cs {
			if !cs[i].Delete {
				cs[i].Sealed = vals[cs[i].Name]
			}
		}
		res, err := s.Write(ctx, envy.Write{Scope: scope, Actor: "tester", CreateScope: true, Changes: cs})
		if err != nil {
			t.Fatalf("write to %s: %v", scope, err)
		}
		return res.Revision
	}
	r1 := put("app", map[string][]byte{"A": sealedUnder(1, "a1"), "B": sealedUnder(2, "b1"), "C": sealedUnder(3, "c1")})
	r2 := put("app", map[string][]byte{"A": sealedUnder(1, "a2")})
	put("app", nil, "B") // its delete holds no value
	put("other", map[string][]byte{"X": sealedUnder(3, "x1")})

	key := func(v envy.SealedValue) string {
		return fmt.Sprintf("%s/%s v%d r%d %q", v.Scope, v.Name, v.Version, v.Revision, v.Sealed)
	}
	keys := func(vs []envy.SealedValue) []string {
		var out []string
		for _, v := range vs {
			out = append(out, key(v))
		}
		slices.Sort(out)
		return out
	}
	want := keys([]envy.SealedValue{
		{Scope: "app", Name: "A", Version: 2, Revision: 0, Sealed: sealedUnder(1, "a2")}, // the var's current value
		{Scope: "app", Name: "A", Version: 1, Revision: r1, Sealed: sealedUnder(1, "a1")},
		{Scope: "app", Name: "A", Version: 2, Revision: r2, Sealed: sealedUnder(1, "a2")},
		{Scope: "app", Name: "B", Version: 1, Revision: r1, Sealed: sealedUnder(2, "b1")},
	})
	old, err := rs.SealedNotUnder(ctx, 3, 100)
	if err != nil {
		t.Fatal(err)
	}
	if got := keys(old); !slices.Equal(got, want) {
		t.Fatalf("SealedNotUnder(3) =\n%v\nwant\n%v", got, want)
	}
	if some, err := rs.SealedNotUnder(ctx, 3, 2); err != nil || len(some) != 2 {
		t.Fatalf("SealedNotUnder with a limit of 2 = %d values, %v", len(some), err)
	} else {
		for _, k := range keys(some) {
			if !slices.Contains(want, k) {
				t.Fatalf("SealedNotUnder with a limit gave %s, which is not under an older key", k)
			}
		}
	}
	if _, err := rs.RetireDataKeys(ctx, 3); envy.ErrorCode(err) != envy.EConflict {
		t.Fatalf("RetireDataKeys while values are under older keys = %v, want a conflict", err)
	}
	if keys, err := s.DataKeys(ctx); err != nil || len(keys) != 3 {
		t.Fatalf("DataKeys after a refused retirement = %d keys, %v; want all 3", len(keys), err)
	}

	// A is written anew meanwhile: its current value is left alone, its
	// history is not.
	r4 := put("app", map[string][]byte{"A": sealedUnder(2, "a3")})
	resealed := func(vs []envy.SealedValue) []envy.SealedValue {
		out := slices.Clone(vs)
		for i := range out {
			out[i].New = sealedUnder(3, string(out[i].Sealed[5:]))
		}
		return out
	}
	var n int
	if err := runNotices(ctx, s, func(r *noticeRun) {
		rev := revision(t, s)
		n, err = rs.ReplaceSealed(ctx, resealed(old))
		r.must("ReplaceSealed", err)
		if got := revision(t, s); got != rev {
			r.fatalf("ReplaceSealed took revision %d (was %d): a reseal changes no value", got, rev)
		}
		r.settle("ReplaceSealed", false) // no notice
	}); err != nil {
		t.Fatal(err)
	}
	// The notice check's sentinel writes hold values of no data key.
	sentinels, err := s.ListScopes(ctx, envy.ScopeQuery{Prefix: "sentinel/"})
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range sentinels {
		if _, _, err := s.DeleteScope(ctx, sc.Path, 0, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n != 3 {
		t.Fatalf("ReplaceSealed = %d, want 3 (the three history entries; the var was written meanwhile)", n)
	}
	hist, err := s.History(ctx, "app", envy.HistoryCursor{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	wantHist := map[[2]any][]byte{
		{r1, "A"}: sealedUnder(3, "a1"), {r1, "B"}: sealedUnder(3, "b1"), {r1, "C"}: sealedUnder(3, "c1"),
		{r2, "A"}: sealedUnder(3, "a2"), {r4, "A"}: sealedUnder(2, "a3"),
	}
	for _, c := range hist {
		if c.Op != envy.OpSet {
			continue
		}
		w, ok := wantHist[[2]any{c.Revision, c.Name}]
		if !ok || !bytes.Equal(c.Sealed, w) {
			t.Errorf("history %s@%d (version %d) holds %q, want %q", c.Name, c.Revision, c.Version, c.Sealed, w)
		}
	}
	// ScopeTree may still give a value's bytes from before a reseal (the
	// servers keep the older keys they hold until they restart; see
	// crypto.Keyring.Reseal), but never other plaintext.
	tree, err := s.ScopeTree(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range tree["app"].Vars {
		if len(v.Sealed) < 5 || !slices.Contains([]string{"a3", "c1"}, string(v.Sealed[5:])) {
			t.Errorf("ScopeTree's %s holds %q after the reseal", v.Name, v.Sealed)
		}
	}

	if n, err := rs.ReplaceSealed(ctx, resealed(old)); err != nil || n != 0 {
		t.Fatalf("ReplaceSealed of values replaced already = %d, %v; want 0", n, err)
	}
	left, err := rs.SealedNotUnder(ctx, 3, 100)
	if err != nil {
		t.Fatal(err)
	}
	want = keys([]envy.SealedValue{
		{Scope: "app", Name: "A", Version: 3, Revision: 0, Sealed: sealedUnder(2, "a3")},
		{Scope: "app", Name: "A", Version: 3, Revision: r4, Sealed: sealedUnder(2, "a3")},
	})
	if got := keys(left); !slices.Equal(got, want) {
		t.Fatalf("SealedNotUnder(3) after a pass =\n%v\nwant\n%v", got, want)
	}
	if n, err := rs.ReplaceSealed(ctx, resealed(left)); err != nil || n != 2 {
		t.Fatalf("ReplaceSealed of the rest = %d, %v; want 2", n, err)
	}
	if left, err := rs.SealedNotUnder(ctx, 3, 100); err != nil || len(left) != 0 {
		t.Fatalf("SealedNotUnder(3) once all are resealed = %v, %v; want none", keys(left), err)
	}
	retired, err := rs.RetireDataKeys(ctx, 3)
	if err != nil {
		t.Fatalf("RetireDataKeys: %v", err)
	}
	slices.Sort(retired)
	if !slices.Equal(retired, []uint32{1, 2}) {
		t.Fatalf("RetireDataKeys = %v, want [1 2]", retired)
	}
	dks, err := s.DataKeys(ctx)
	if err != nil || len(dks) != 1 || dks[0].ID != 3 {
		t.Fatalf("DataKeys after the retirement = %+v, %v; want key 3 only", dks, err)
	}
	if retired, err := rs.RetireDataKeys(ctx, 3); err != nil || len(retired) != 0 {
		t.Fatalf("RetireDataKeys again = %v, %v; want nothing", retired, err)
	}
	// The values read back as written: same versions, same plaintext.
	cur := current(t, s, "app")
	slices.SortFunc(cur.Vars, func(a, b envy.StoredVar) int { return cmp.Compare(a.Name, b.Name) })
	if len(cur.Vars) != 2 || cur.Vars[0].Name != "A" || cur.Vars[0].Version != 3 || cur.Vars[1].Name != "C" || cur.Vars[1].Version != 1 {
		t.Fatalf("app's vars after the reseal = %+v", cur.Vars)
	}

	// A value sealed under a retired key (by a server that had not heard
	// of key 3 yet) would open nowhere: its write is refused, retryably,
	// and takes no revision.
	rev := revision(t, s)
	late := changes(t, s, "app", set("LATE", ""))
	late[0].Sealed = sealedUnder(1, "late")
	if _, err := s.Write(ctx, envy.Write{Scope: "app", Actor: "tester", Changes: late}); envy.ErrorCode(err) != envy.EUnavailable || envy.AsError(err).RetryAfter <= 0 {
		t.Fatalf("a write of a value under retired data key 1 = %v, want EUnavailable with a Retry-After", err)
	}
	if got := revision(t, s); got != rev {
		t.Fatalf("the refused write took a revision (%d, was %d)", got, rev)
	}
	late[0].Sealed = sealedUnder(3, "late")
	if _, err := s.Write(ctx, envy.Write{Scope: "app", Actor: "tester", Changes: late}); err != nil {
		t.Fatalf("a write of a value under the kept data key: %v", err)
	}
}

// retiredKeys is crypto.RetiredKeyStore's method set, declared again here
// (storetest does not import crypto).
type retiredKeys interface {
	AddRetiredMasterKey(ctx context.Context, k envy.RetiredMasterKey) error
	RetiredMasterKeys(ctx context.Context) ([]envy.RetiredMasterKey, error)
}

func testRetiredKeys(t *testing.T, s envy.Store) {
	rk, ok := s.(retiredKeys)
	if !ok {
		t.Skip("the store keeps no retired master keys (crypto.RetiredKeyStore)")
	}
	ctx := t.Context()
	if got, err := rk.RetiredMasterKeys(ctx); err != nil || len(got) != 0 {
		t.Fatalf("RetiredMasterKeys of a new store: %v, %v", got, err)
	}
	want := []envy.RetiredMasterKey{{Check: []byte("check-1"), RetiredAt: t0}, {Check: []byte("check-2"), RetiredAt: t0.Add(time.Hour)}}
	for _, k := range want {
		if err := rk.AddRetiredMasterKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	got, err := rk.RetiredMasterKeys(ctx)
	if err != nil || len(got) != len(want) {
		t.Fatalf("RetiredMasterKeys: %v, %v; want %d", got, err, len(want))
	}
	for i := range want {
		if string(got[i].Check) != string(want[i].Check) || !got[i].RetiredAt.Equal(want[i].RetiredAt) {
			t.Errorf("retired key %d: %+v, want %+v (oldest first)", i, got[i], want[i])
		}
	}
}

// testResealSecrets: the secrets kept besides the values (a webhook's
// secret and previous secret, an OIDC provider's client secret) hold the
// older data keys back as values do (RetireDataKeys refuses while one
// names an older key: deleting it would leave the secret unreadable for
// good), and their reseals replace them only where they are still the
// bytes read: a webhook or provider deleted meanwhile stays deleted, one
// given another secret keeps it, and nothing else changes.
func testResealSecrets(t *testing.T, s envy.Store) {
	rs, ok := s.(resealer)
	ws, wok := s.(envy.WebhookStore)
	ost, ook := s.(envy.OIDCStore)
	if !ok || !wok || !ook {
		t.Skip("the store has no reseal methods, webhooks or OIDC providers")
	}
	ctx := t.Context()
	for _, id := range []uint32{1, 2} {
		if err := s.AddDataKey(ctx, envy.DataKey{ID: id, Wrapped: []byte("wrapped"), CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	refused := func(what string) {
		t.Helper()
		if retired, err := rs.RetireDataKeys(ctx, 2); envy.ErrorCode(err) != envy.EConflict {
			t.Fatalf("RetireDataKeys while %s is sealed under an older key = %v, %v; want a conflict", what, retired, err)
		}
		if keys, err := s.DataKeys(ctx); err != nil || len(keys) != 2 {
			t.Fatalf("DataKeys after a refused retirement = %d keys, %v; want both", len(keys), err)
		}
	}
	replace := func(what string, ok bool, err error, want bool) {
		t.Helper()
		if err != nil || ok != want {
			t.Fatalf("%s = %v, %v; want %v", what, ok, err, want)
		}
	}

	// A webhook whose secret is under key 1, then rotated with an overlap:
	// its secret under key 2, its previous one under key 1.
	w := envy.Webhook{ID: "wh_reseal", URL: "https://hooks.example/x", Scopes: "**", Events: []string{envy.EventVarsChanged},
		CreatedAt: t0, CreatedBy: "tester", CreatorID: "tok1", Secret: sealedUnder(1, "s1")}
	if _, err := ws.CreateWebhook(ctx, w, nil); err != nil {
		t.Fatal(err)
	}
	refused("a webhook's secret")
	until := t0.Add(time.Hour)
	if _, err := ws.UpdateWebhook(ctx, w.ID, envy.WebhookPatch{Rotate: true, RotateFrom: w.Secret,
		Secret: sealedUnder(2, "s2"), OldSecret: sealedUnder(1, "old-s1"), OldUntil: until}, nil); err != nil {
		t.Fatal(err)
	}
	refused("a webhook's previous secret")
	ok, err := ws.ReplaceWebhookSecret(ctx, w.ID, true, sealedUnder(1, "other"), sealedUnder(2, "old-s1"))
	replace("ReplaceWebhookSecret of bytes the previous secret no longer holds", ok, err, false)
	ok, err = ws.ReplaceWebhookSecret(ctx, w.ID, false, sealedUnder(1, "s1"), sealedUnder(2, "s1"))
	replace("ReplaceWebhookSecret of a secret rotated since", ok, err, false)
	refused("a webhook's previous secret")
	ok, err = ws.ReplaceWebhookSecret(ctx, w.ID, true, sealedUnder(1, "old-s1"), sealedUnder(2, "old-s1"))
	replace("ReplaceWebhookSecret of the previous secret", ok, err, true)
	got, err := ws.GetWebhook(ctx, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Secret, sealedUnder(2, "s2")) || !bytes.Equal(got.OldSecret, sealedUnder(2, "old-s1")) || !got.OldUntil.Equal(until) ||
		got.URL != w.URL || got.Scopes != w.Scopes || !slices.Equal(got.Events, w.Events) {
		t.Fatalf("the webhook after its reseal = %+v", got)
	}
	// A webhook deleted meanwhile stays deleted.
	gone := envy.Webhook{ID: "wh_gone", URL: "https://hooks.example/y", Scopes: "**", Events: []string{envy.EventVarsChanged},
		CreatedAt: t0, CreatedBy: "tester", CreatorID: "tok1", Secret: sealedUnder(1, "g")}
	if _, err := ws.CreateWebhook(ctx, gone, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ws.DeleteWebhook(ctx, gone.ID, nil); err != nil {
		t.Fatal(err)
	}
	ok, err = ws.ReplaceWebhookSecret(ctx, gone.ID, false, gone.Secret, sealedUnder(2, "g"))
	replace("ReplaceWebhookSecret of a deleted webhook", ok, err, false)
	if _, err := ws.GetWebhook(ctx, gone.ID); envy.ErrorCode(err) != envy.ENotFound {
		t.Fatalf("GetWebhook of a webhook deleted before its reseal = %v, want not found", err)
	}

	// An OIDC provider's client secret under key 1.
	corp := envy.OIDCProvider{Name: "corp", Issuer: "https://login.acme.example", ClientID: "envy", SealedSecret: sealedUnder(1, "cs"),
		RedirectURIs: []string{"http://127.0.0.1/callback"}, Scopes: []string{"openid"},
		Roles:      []envy.OIDCRole{{Claim: "groups", Value: "platform", Permissions: []envy.Grant{{Scopes: "**", Actions: []envy.Action{envy.ActRead}}}}},
		SessionTTL: time.Hour, CreatedAt: t0, CreatedBy: "admin", CreatorID: "a1"}
	if _, err := ost.PutOIDC(ctx, corp, nil); err != nil {
		t.Fatal(err)
	}
	refused("an OIDC provider's client secret")
	ok, err = ost.ReplaceOIDCSecret(ctx, "corp", sealedUnder(1, "other"), sealedUnder(2, "cs"))
	replace("ReplaceOIDCSecret of bytes the provider no longer holds", ok, err, false)
	refused("an OIDC provider's client secret")
	ok, err = ost.ReplaceOIDCSecret(ctx, "corp", sealedUnder(1, "cs"), sealedUnder(2, "cs"))
	replace("ReplaceOIDCSecret", ok, err, true)
	p, err := ost.GetOIDC(ctx, "corp")
	if err != nil {
		t.Fatal(err)
	}
	want := corp
	want.SealedSecret = sealedUnder(2, "cs")
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("the provider after its reseal = %+v, want %+v", p, want)
	}
	// A provider deleted meanwhile stays deleted.
	other := corp
	other.Name = "gone"
	if _, err := ost.PutOIDC(ctx, other, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ost.DeleteOIDC(ctx, "gone", nil); err != nil {
		t.Fatal(err)
	}
	ok, err = ost.ReplaceOIDCSecret(ctx, "gone", other.SealedSecret, sealedUnder(2, "cs"))
	replace("ReplaceOIDCSecret of a deleted provider", ok, err, false)
	if _, err := ost.GetOIDC(ctx, "gone"); envy.ErrorCode(err) != envy.ENotFound {
		t.Fatalf("GetOIDC of a provider deleted before its reseal = %v, want not found", err)
	}

	// Nothing is left under key 1: it is retired.
	retired, err := rs.RetireDataKeys(ctx, 2)
	if err != nil || !slices.Equal(retired, []uint32{1}) {
		t.Fatalf("RetireDataKeys once every secret is resealed = %v, %v; want [1]", retired, err)
	}
}
