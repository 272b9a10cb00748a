package storetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/envy-dev/envy"
)

// noticeWait bounds each wait for a notice. On SQLite a notice is
// published before the change's caller is answered; on PostgreSQL it comes
// through LISTEN/NOTIFY a moment after the commit, never seconds later.
const noticeWait = 5 * time.Second

// NoticeCheck is one of the notice cases of Run: it runs on a new, empty
// store and returns the first promise of envy.Notifier the store breaks,
// as an error naming the notice that is missing, extra or out of order.
// They are exported so that a store's tests can also prove that they fail
// against a store that forgets a notice (see sqlite's
// storetest_forget_test.go).
type NoticeCheck struct {
	Name  string
	Check func(ctx context.Context, s envy.Store) error
}

// NoticeChecks returns the notice cases that Run runs.
func NoticeChecks() []NoticeCheck {
	return []NoticeCheck{
		{"every write that takes a revision sends one scope notice with it; one that changes nothing or fails sends none", noticesOfWrites},
		{"a scope change or delete sends one meta notice with its revision; a refused or absent one sends none", noticesOfScopes},
		{"creating or revoking a token sends one notice per token, revoked descendants included; a refused or repeated one sends none", noticesOfTokens},
		{"a data key added sends its notice; a refused one sends none", noticesOfDataKeys},
		{"a consumer report, new or known, sends its notice; a refused one sends none", noticesOfConsumers},
		{"concurrent writes send one notice each, in commit order", noticesOfConcurrentWrites},
		{"every subscriber hears every notice, and cancel stops the delivery", noticesOfSubscribers},
	}
}

// checkFailed carries a notice check's failure out of it (see runNotices).
type checkFailed struct{ err error }

// noticeRun is a notice check under way: what the store sent since the
// check subscribed, and what the check expects of it.
type noticeRun struct {
	ctx context.Context
	s   envy.Store

	mu      sync.Mutex
	got     []envy.Notice
	arrived chan struct{} // signalled after each notice

	checked int           // the notices of got compared so far
	want    []envy.Notice // what the current step expects
	seq     int           // sentinels written so far
	sync    bool          // the next settle only skips what came before it
}

// runNotices subscribes to s, runs f, and returns f's first failure. A
// failure stops f as t.Fatal stops a test (a panic that runNotices
// recovers), so that a check reads as a test does.
func runNotices(ctx context.Context, s envy.Store, f func(r *noticeRun)) (err error) {
	r := &noticeRun{ctx: ctx, s: s, arrived: make(chan struct{}, 1)}
	cancel := s.Subscribe(r.hear)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			f, ok := p.(checkFailed)
			if !ok {
				panic(p)
			}
			err = f.err
		}
	}()
	// Notices of what committed before the subscription may still come
	// after it (on PostgreSQL): the check starts after the first
	// sentinel's.
	r.sync = true
	r.settle("subscribing", false)
	r.sync = false
	f(r)
	r.settle("the last step", false) // nothing may come after the last step
	return nil
}

func (r *noticeRun) hear(n envy.Notice) {
	r.mu.Lock()
	r.got = append(r.got, n)
	r.mu.Unlock()
	select {
	case r.arrived <- struct{}{}:
	default:
	}
}

func (r *noticeRun) fatalf(format string, args ...any) {
	panic(checkFailed{fmt.Errorf(format, args...)})
}

// must fails the check on err, naming what failed.
func (r *noticeRun) must(what string, err error) {
	if err != nil {
		r.fatalf("%s: %v", what, err)
	}
}

// wantCode fails the check unless err has code.
func (r *noticeRun) wantCode(what string, err error, code envy.Code) {
	if envy.ErrorCode(err) != code {
		r.fatalf("%s: error = %v, want code %q", what, err, code)
	}
}

// expect adds notices that the current step must send.
func (r *noticeRun) expect(ns ...envy.Notice) { r.want = append(r.want, ns...) }

// scopeNotice and metaNotice are the notices of a write and of a scope
// change or delete.
func scopeNotice(scope string, rev int64) envy.Notice {
	return envy.Notice{Kind: envy.NoticeScope, Scope: scope, Revision: rev}
}

func metaNotice(scope string, rev int64) envy.Notice {
	return envy.Notice{Kind: envy.NoticeScopeMeta, Scope: scope, Revision: rev}
}

// metaOnly marks a scope notice as one of descriptions only.
func metaOnly(n envy.Notice) envy.Notice {
	n.MetaOnly = true
	return n
}

func tokenNotice(id string) envy.Notice { return envy.Notice{Kind: envy.NoticeToken, TokenID: id} }

// settle ends a step: it makes a sentinel write, waits (noticeWait at
// most) for the sentinel's notice, which comes after every notice of the
// step since notices come in commit order, and then checks that the step
// sent exactly what it expects (in any order, when anyOrder) followed by
// the sentinel's: none missing, none extra, none twice.
func (r *noticeRun) settle(step string, anyOrder bool) {
	r.seq++
	sentinel := fmt.Sprintf("sentinel/%d", r.seq)
	res, err := r.s.Write(r.ctx, envy.Write{Scope: sentinel, Actor: "tester", CreateScope: true,
		Changes: plan(envy.ScopeVars{}, set("S", "1"))})
	r.must("the sentinel write after "+step, err)
	want := append(r.want, scopeNotice(sentinel, res.Revision))
	r.want = nil

	deadline := time.NewTimer(noticeWait)
	defer deadline.Stop()
	var seg []envy.Notice
	resync := false
	for {
		r.mu.Lock()
		seg, resync = nil, false
		end := -1
		for i, n := range r.got[r.checked:] {
			if n.Kind == envy.NoticeResync {
				resync = true
				continue
			}
			seg = append(seg, noticeKey(n))
			if noticeKey(n) == want[len(want)-1] {
				end = r.checked + i + 1
				break
			}
		}
		r.mu.Unlock()
		if end >= 0 {
			r.checked = end
			break
		}
		select {
		case <-r.arrived:
			continue
		case <-deadline.C:
		case <-r.ctx.Done():
		}
		r.fatalf("after %s: the notice of the sentinel write (%s) did not come within %v%s; heard %s, want %s",
			step, fmtNotice(want[len(want)-1]), noticeWait, resyncNote(resync), fmtNotices(seg), fmtNotices(want))
	}
	got := seg
	if r.sync {
		return
	}
	if anyOrder { // all but the sentinel
		r.sortNotices(got[:len(got)-1])
		r.sortNotices(want[:len(want)-1])
	}
	if slices.Equal(got, want) {
		return
	}
	missing, extra := diffNotices(got, want)
	var why []string
	if len(missing) > 0 {
		why = append(why, "missing "+fmtNotices(missing))
	}
	if len(extra) > 0 {
		why = append(why, "extra "+fmtNotices(extra))
	}
	if len(why) == 0 {
		why = append(why, "out of order")
	}
	r.fatalf("after %s: %s%s: heard %s, want %s", step, strings.Join(why, ", "), resyncNote(resync), fmtNotices(got), fmtNotices(want))
}

func resyncNote(resync bool) string {
	if resync {
		return " (a resync came meanwhile: the store's notification connection broke)"
	}
	return ""
}

// noticeKey keeps the fields of a notice that its kind defines.
func noticeKey(n envy.Notice) envy.Notice {
	switch n.Kind {
	case envy.NoticeScope, envy.NoticeScopeMeta:
		return envy.Notice{Kind: n.Kind, Scope: n.Scope, Revision: n.Revision, MetaOnly: n.MetaOnly}
	case envy.NoticeConsumer:
		return envy.Notice{Kind: n.Kind, Scope: n.Scope}
	case envy.NoticeToken:
		return envy.Notice{Kind: n.Kind, TokenID: n.TokenID}
	case envy.NoticeDataKey:
		return envy.Notice{Kind: n.Kind, KeyID: n.KeyID}
	}
	return n
}

func (r *noticeRun) sortNotices(ns []envy.Notice) {
	slices.SortFunc(ns, func(a, b envy.Notice) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Scope, b.Scope), cmp.Compare(a.Revision, b.Revision),
			cmp.Compare(a.TokenID, b.TokenID), cmp.Compare(a.KeyID, b.KeyID))
	})
}

// diffNotices returns the notices of want that got lacks and those of got
// that want lacks, counting repeats.
func diffNotices(got, want []envy.Notice) (missing, extra []envy.Notice) {
	left := map[envy.Notice]int{}
	for _, n := range got {
		left[n]++
	}
	for _, n := range want {
		if left[n] > 0 {
			left[n]--
		} else {
			missing = append(missing, n)
		}
	}
	for _, n := range got {
		if left[n] > 0 {
			left[n]--
			extra = append(extra, n)
		}
	}
	return missing, extra
}

func fmtNotice(n envy.Notice) string {
	only := ""
	if n.MetaOnly {
		only = " (descriptions only)"
	}
	switch n.Kind {
	case envy.NoticeScope:
		return fmt.Sprintf("scope %s@%d%s", n.Scope, n.Revision, only)
	case envy.NoticeScopeMeta:
		return fmt.Sprintf("scope-meta %s@%d%s", n.Scope, n.Revision, only)
	case envy.NoticeToken:
		return "token " + n.TokenID
	case envy.NoticeDataKey:
		return fmt.Sprintf("data-key %d", n.KeyID)
	case envy.NoticeConsumer:
		return "consumer " + n.Scope
	case envy.NoticeResync:
		return "resync"
	}
	return fmt.Sprintf("%+v", n)
}

func fmtNotices(ns []envy.Notice) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = fmtNotice(n)
	}
	return "[" + strings.Join(s, ", ") + "]"
}

// write applies edits to scope as the service plans them, creating it.
func (r *noticeRun) write(scope string, edits ...edit) envy.WriteResult {
	res, err := r.s.Write(r.ctx, envy.Write{Scope: scope, Actor: "tester", CreateScope: true, Changes: r.plan(scope, edits...)})
	r.must("write to "+scope, err)
	return res
}

// plan plans edits from the scope's current vars.
func (r *noticeRun) plan(scope string, edits ...edit) []envy.VarChange {
	return plan(r.current(scope), edits...)
}

func (r *noticeRun) current(scope string) envy.ScopeVars {
	tree, err := r.s.ScopeTree(r.ctx, scope)
	if envy.ErrorCode(err) == envy.ENotFound {
		return envy.ScopeVars{Scope: envy.Scope{Path: scope}}
	}
	r.must("ScopeTree("+scope+")", err)
	return *tree[scope]
}

func (r *noticeRun) putScope(path string, inherits ...string) envy.Scope {
	sc, _, err := r.s.PutScope(r.ctx, envy.ScopeWrite{Path: path, Actor: "tester",
		Plan: func(*envy.Scope, func(string) (envy.Scope, error)) (string, []string, error) {
			return "scope " + path, inherits, nil
		}})
	r.must("PutScope("+path+")", err)
	return sc
}

func noticesOfWrites(ctx context.Context, s envy.Store) error {
	return runNotices(ctx, s, func(r *noticeRun) {
		res := r.write("app", set("A", "1"), set("B", "1"))
		r.expect(scopeNotice("app", res.Revision))
		r.settle("a write that creates its scope", false)

		res = r.write("app", set("A", "2"), del("B"), del("ABSENT"))
		r.expect(scopeNotice("app", res.Revision))
		r.settle("a bulk write", false)

		if res := r.write("app", del("ABSENT")); res.Changed {
			r.fatalf("deleting an absent var took revision %d", res.Revision)
		}
		r.settle("a write that deletes an absent var", false)

		_, err := s.Write(ctx, envy.Write{Scope: "app", Actor: "tester"})
		r.must("a write without changes", err)
		r.settle("a write without changes", false)

		if res := r.write("new", del("ABSENT")); res.Changed || res.ScopeCreated {
			r.fatalf("a write of nothing to a new scope = %+v, want nothing done", res)
		}
		r.settle("a write of nothing to a scope it may create", false)

		stale := plan(envy.ScopeVars{Scope: envy.Scope{Path: "app"}}, set("A", "3"))
		_, err = s.Write(ctx, envy.Write{Scope: "app", Actor: "tester", Changes: stale})
		if !errors.Is(err, envy.ErrStale) {
			r.fatalf("a stale write: error = %v, want ErrStale", err)
		}
		r.settle("a stale write", false)

		_, err = s.Write(ctx, envy.Write{Scope: "app", Actor: "tester", IfRevision: 1, Changes: r.plan("app", set("A", "3"))})
		r.wantCode("a write with a stale IfRevision", err, envy.EPrecondition)
		r.settle("a write with a stale IfRevision", false)

		_, err = s.Write(ctx, envy.Write{Scope: "missing", Actor: "tester", Changes: r.plan("missing", set("A", "1"))})
		r.wantCode("a write to a missing scope", err, envy.ENotFound)
		r.settle("a write to a missing scope without CreateScope", false)

		res, err = s.Write(ctx, envy.Write{Scope: "app", Actor: "tester", Touch: true})
		r.must("a Touch write", err)
		if !res.Changed {
			r.fatalf("a Touch write took no revision")
		}
		r.expect(metaOnly(scopeNotice("app", res.Revision))) // no var changed: no env either
		r.settle("a Touch write", false)

		// A change of a var's description only takes a revision, but is
		// no change of the envs resolved over the scope.
		cur := r.current("app")
		ch := plan(cur, set("A", "x"))
		old := findVar(cur.Vars, "A")
		ch[0].Sealed, ch[0].Description, ch[0].MetaOnly = old.Sealed, "the A", true
		res, err = s.Write(ctx, envy.Write{Scope: "app", Actor: "tester", Changes: ch})
		r.must("a description-only write", err)
		if res.EnvRevision != cur.Scope.EnvRevision || res.Revision <= cur.Scope.Revision {
			r.fatalf("a description-only write: revision %d, env revision %d; want a new revision and env revision %d", res.Revision, res.EnvRevision, cur.Scope.EnvRevision)
		}
		r.expect(metaOnly(scopeNotice("app", res.Revision)))
		r.settle("a description-only write", false)
		if now := r.current("app").Scope; now.EnvRevision != cur.Scope.EnvRevision || now.Revision != res.Revision {
			r.fatalf("after a description-only write the scope is at %d, env revision %d; want %d, %d", now.Revision, now.EnvRevision, res.Revision, cur.Scope.EnvRevision)
		}

		cur = r.current("app")
		res, err = s.Write(ctx, envy.Write{Scope: "app", Actor: "tester", WholeScope: true, BaseRevision: cur.Scope.Revision,
			IfRevision: cur.Scope.Revision, Changes: plan(cur, set("A", "4"), set("C", "1"))})
		r.must("a whole-scope write", err)
		r.expect(scopeNotice("app", res.Revision))
		r.settle("a whole-scope write", false)

		// Writes to two scopes, then to the first again: each its own
		// notice, in order.
		r1 := r.write("one", set("X", "1")).Revision
		r2 := r.write("two", set("X", "1")).Revision
		r3 := r.write("one", set("X", "2")).Revision
		r.expect(scopeNotice("one", r1), scopeNotice("two", r2), scopeNotice("one", r3))
		r.settle("writes to two scopes", false)
	})
}

func noticesOfScopes(ctx context.Context, s envy.Store) error {
	return runNotices(ctx, s, func(r *noticeRun) {
		base := r.putScope("base")
		r.expect(metaNotice("base", base.Revision))
		app := r.putScope("app", "base")
		r.expect(metaNotice("app", app.Revision))
		r.settle("creating two scopes", false)

		app = r.putScope("app") // inherits nothing now
		r.expect(metaNotice("app", app.Revision))
		app = r.putScope("app", "base")
		r.expect(metaNotice("app", app.Revision))
		r.settle("changing a scope's inherits twice", false)

		_, _, err := s.PutScope(ctx, envy.ScopeWrite{Path: "app", Actor: "tester", IfRevision: base.Revision,
			Plan: func(*envy.Scope, func(string) (envy.Scope, error)) (string, []string, error) { return "x", nil, nil }})
		r.wantCode("PutScope with a stale IfRevision", err, envy.EPrecondition)
		_, _, err = s.PutScope(ctx, envy.ScopeWrite{Path: "app", Actor: "tester",
			Plan: func(*envy.Scope, func(string) (envy.Scope, error)) (string, []string, error) {
				return "", nil, envy.Errorf(envy.EInvalid, "refused by the plan")
			}})
		r.wantCode("PutScope refused by its plan", err, envy.EInvalid)
		_, _, err = s.PutScope(ctx, envy.ScopeWrite{Path: "other", Actor: "tester",
			Plan: func(*envy.Scope, func(string) (envy.Scope, error)) (string, []string, error) {
				return "", []string{"missing"}, nil
			}})
		if err == nil {
			r.fatalf("PutScope inheriting a missing scope succeeded")
		}
		r.settle("scope changes that were refused", false)

		_, _, err = s.DeleteScope(ctx, "base", 0, nil)
		r.wantCode("DeleteScope of an inherited scope", err, envy.EConflict)
		_, _, err = s.DeleteScope(ctx, "app", base.Revision, nil)
		r.wantCode("DeleteScope with a stale ifRevision", err, envy.EPrecondition)
		r.settle("scope deletes that were refused", false)

		w := r.write("app", set("A", "1"))
		r.expect(scopeNotice("app", w.Revision))
		existed, rev, err := s.DeleteScope(ctx, "app", w.Revision, nil)
		r.must("DeleteScope(app)", err)
		if !existed {
			r.fatalf("DeleteScope(app) says it did not exist")
		}
		r.expect(metaNotice("app", rev))
		r.settle("deleting a scope", false)

		existed, _, err = s.DeleteScope(ctx, "app", 0, nil)
		r.must("DeleteScope(app) again", err)
		if existed {
			r.fatalf("DeleteScope(app) again says it existed")
		}
		r.settle("deleting a scope that is gone", false)

		_, rev, err = s.DeleteScope(ctx, "base", 0, nil)
		r.must("DeleteScope(base)", err)
		r.expect(metaNotice("base", rev))
		r.settle("deleting a scope no longer inherited", false)
	})
}

// noticeToken is a token for the notice checks, minted by parent.
func noticeToken(id, parent string) envy.Token {
	return envy.Token{ID: id, Name: "name-" + id, Owner: "owner", Hash: envy.HashToken("secret-" + id),
		Permissions: []envy.Grant{{Scopes: "**", Actions: []envy.Action{envy.ActAdmin}}}, CreatedAt: t0, CreatedBy: "admin", ParentID: parent}
}

func noticesOfTokens(ctx context.Context, s envy.Store) error {
	return runNotices(ctx, s, func(r *noticeRun) {
		create := func(tok envy.Token, onlyIfNone bool) bool {
			created, err := s.CreateToken(ctx, tok, onlyIfNone, []envy.AuditEntry{{Actor: "admin", Action: "token.create"}})
			r.must("CreateToken("+tok.ID+")", err)
			return created
		}
		if !create(noticeToken("root", ""), true) {
			r.fatalf("CreateToken(root, onlyIfNone) created nothing in an empty store")
		}
		r.expect(tokenNotice("root"))
		r.settle("creating the first token", false)

		if create(noticeToken("second", ""), true) {
			r.fatalf("CreateToken(second, onlyIfNone) created a second token")
		}
		r.settle("CreateToken with onlyIfNone when a token exists", false)

		for _, tok := range []envy.Token{noticeToken("child", "root"), noticeToken("grandchild", "child"), noticeToken("sibling", "root")} {
			create(tok, false)
			r.expect(tokenNotice(tok.ID))
		}
		r.settle("minting three tokens", false)

		r.must("RevokeToken(sibling)", s.RevokeToken(ctx, "sibling", t0, nil))
		r.expect(tokenNotice("sibling"))
		r.settle("revoking a token without descendants", false)

		dup := noticeToken("dup", "root")
		dup.Name = "name-child" // a live token of the owner has it
		_, err := s.CreateToken(ctx, dup, false, nil)
		r.wantCode("CreateToken of a taken name", err, envy.EConflict)
		_, err = s.CreateToken(ctx, noticeToken("orphan", "sibling"), false, nil)
		r.wantCode("CreateToken minted by a revoked token", err, envy.EUnauthenticated)
		r.settle("token creations that were refused", false)

		r.must("RevokeToken(root)", s.RevokeToken(ctx, "root", t0, []envy.AuditEntry{{Actor: "admin", Action: "token.revoke"}}))
		r.expect(tokenNotice("root"), tokenNotice("child"), tokenNotice("grandchild")) // sibling was revoked already
		r.settle("revoking a token with descendants", true)

		r.must("RevokeToken(root) again", s.RevokeToken(ctx, "root", t0.Add(time.Hour), nil))
		r.wantCode("RevokeToken of an unknown token", s.RevokeToken(ctx, "unknown", t0, nil), envy.ENotFound)
		r.settle("revoking a revoked token again, and an unknown one", false)
	})
}

func noticesOfDataKeys(ctx context.Context, s envy.Store) error {
	return runNotices(ctx, s, func(r *noticeRun) {
		for _, id := range []uint32{1, 7} {
			r.must(fmt.Sprint("AddDataKey ", id), s.AddDataKey(ctx, envy.DataKey{ID: id, Wrapped: []byte("wrapped"), CreatedAt: t0}))
			r.expect(envy.Notice{Kind: envy.NoticeDataKey, KeyID: id})
		}
		r.settle("adding two data keys", false)
		r.wantCode("AddDataKey of a taken id", s.AddDataKey(ctx, envy.DataKey{ID: 1, Wrapped: []byte("other"), CreatedAt: t0}), envy.EConflict)
		r.settle("adding a data key whose id is taken", false)
	})
}

func noticesOfConsumers(ctx context.Context, s envy.Store) error {
	return runNotices(ctx, s, func(r *noticeRun) {
		w := r.write("app", set("A", "1"))
		r.expect(scopeNotice("app", w.Revision))
		r.settle("creating the scope", false)

		lim := envy.ConsumerLimit{Max: 2, StaleBefore: t0.Add(-time.Hour)}
		report := func(id string) error {
			_, err := s.PutConsumer(ctx, envy.Consumer{Scope: "app", ID: id, Hostname: "h", PID: 1, Revision: w.Revision, SeenAt: t0}, lim)
			return err
		}
		consumer := envy.Notice{Kind: envy.NoticeConsumer, Scope: "app"}
		r.must("PutConsumer(c1)", report("c1"))
		r.expect(consumer)
		r.settle("a new consumer's report", false)
		r.must("PutConsumer(c1) again", report("c1"))
		r.expect(consumer)
		r.must("PutConsumer(c2)", report("c2"))
		r.expect(consumer)
		r.settle("a known consumer's report and a second one's", false)

		r.wantCode("PutConsumer beyond the limit", report("c3"), envy.EConflict)
		_, err := s.PutConsumer(ctx, envy.Consumer{Scope: "missing", ID: "c1", SeenAt: t0}, envy.ConsumerLimit{})
		r.wantCode("PutConsumer of a missing scope", err, envy.ENotFound)
		r.settle("consumer reports that were refused", false)
	})
}

func noticesOfConcurrentWrites(ctx context.Context, s envy.Store) error {
	return runNotices(ctx, s, func(r *noticeRun) {
		const (
			writers = 8
			each    = 25
		)
		var (
			mu   sync.Mutex
			revs = map[int64]string{} // revision → scope
			errs []error
			wg   sync.WaitGroup
		)
		for w := range writers {
			wg.Go(func() {
				scope := fmt.Sprintf("c/%d", w%3) // writers share scopes
				name := fmt.Sprintf("V%d", w)
				for range each {
					for {
						cur := envy.ScopeVars{Scope: envy.Scope{Path: scope}}
						if tree, err := s.ScopeTree(ctx, scope); err == nil {
							cur = *tree[scope]
						}
						res, err := s.Write(ctx, envy.Write{Scope: scope, Actor: name, CreateScope: true, Changes: plan(cur, set(name, "x"))})
						if errors.Is(err, envy.ErrStale) {
							continue // a writer of another var created the scope meanwhile
						}
						mu.Lock()
						if err != nil {
							errs = append(errs, err)
						} else {
							revs[res.Revision] = scope
						}
						mu.Unlock()
						if err != nil {
							return
						}
						// One that is always stale, which must send nothing.
						_, err = s.Write(ctx, envy.Write{Scope: scope, Actor: name, Changes: []envy.VarChange{{Name: name, Delete: true, Base: -1}}})
						if !errors.Is(err, envy.ErrStale) {
							mu.Lock()
							errs = append(errs, fmt.Errorf("a stale write: %v", err))
							mu.Unlock()
							return
						}
						break
					}
				}
			})
		}
		wg.Wait()
		if len(errs) > 0 {
			r.fatalf("concurrent writes: %v", errs[0])
		}
		if len(revs) != writers*each {
			r.fatalf("%d distinct revisions for %d writes", len(revs), writers*each)
		}
		order := make([]int64, 0, len(revs))
		for rev := range revs {
			order = append(order, rev)
		}
		slices.Sort(order) // commit order is revision order
		for _, rev := range order {
			r.expect(scopeNotice(revs[rev], rev))
		}
		r.settle(fmt.Sprintf("%d concurrent writes", writers*each), false)
	})
}

// collector is a second subscriber of a notice check.
type collector struct {
	mu      sync.Mutex
	ns      []envy.Notice
	arrived chan struct{}
}

func newCollector() *collector { return &collector{arrived: make(chan struct{}, 1)} }

func (c *collector) hear(n envy.Notice) {
	c.mu.Lock()
	c.ns = append(c.ns, noticeKey(n))
	c.mu.Unlock()
	select {
	case c.arrived <- struct{}{}:
	default:
	}
}

func (c *collector) heard() []envy.Notice {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.ns)
}

// waitFor fails the check unless c hears want within noticeWait.
func (c *collector) waitFor(r *noticeRun, who string, want envy.Notice) {
	deadline := time.NewTimer(noticeWait)
	defer deadline.Stop()
	for !slices.Contains(c.heard(), want) {
		select {
		case <-c.arrived:
			continue
		case <-deadline.C:
		}
		r.fatalf("%s did not hear %s within %v (heard %s)", who, fmtNotice(want), noticeWait, fmtNotices(c.heard()))
	}
}

func noticesOfSubscribers(ctx context.Context, s envy.Store) error {
	return runNotices(ctx, s, func(r *noticeRun) {
		other := newCollector()
		cancelOther := s.Subscribe(other.hear)
		res := r.write("app", set("A", "1"))
		r.expect(scopeNotice("app", res.Revision))
		r.settle("a write heard by two subscribers", false)
		other.waitFor(r, "a second subscriber", scopeNotice("app", res.Revision))

		cancelOther()
		atCancel, err := s.Revision(ctx)
		r.must("Revision", err)
		later := newCollector()
		cancelLater := s.Subscribe(later.hear)
		defer cancelLater()
		res = r.write("app", set("A", "2"))
		r.expect(scopeNotice("app", res.Revision))
		r.settle("a write after one subscriber cancelled and another subscribed", false)
		later.waitFor(r, "a subscriber added before the write", scopeNotice("app", res.Revision))
		for _, n := range other.heard() {
			if n.Revision > atCancel {
				r.fatalf("a cancelled subscriber heard %s, of a write made after its cancel", fmtNotice(n))
			}
		}
	})
}
