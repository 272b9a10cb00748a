package storetest

import (
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envy-dev/envy"
)

// testRollouts: the rollout capability keeps a scope's policy, never lets
// more than slots leases of a scope be live, even when many ask at once,
// frees a lease on release (for its revision or newer) and on expiry, and
// keeps a pause whose failed instances add up for one revision.
func testRollouts(t *testing.T, s envy.Store) {
	rs, ok := s.(envy.RolloutStore)
	if !ok {
		t.Skip("the store is no envy.RolloutStore")
	}
	ctx := t.Context()
	putScope(t, s, "acme/web")
	putScope(t, s, "acme/api")

	// Policies.
	if p, err := rs.RolloutPolicy(ctx, "acme/web"); err != nil || p != nil {
		t.Fatalf("RolloutPolicy(none) = %+v, %v; want nil", p, err)
	}
	pol := envy.RolloutPolicy{MaxUnavailable: 25, Percent: true, HealthTimeout: 30 * time.Second, Debounce: 5 * time.Second}
	if err := rs.PutRolloutPolicy(ctx, "acme/web", &pol); err != nil {
		t.Fatal(err)
	}
	if p, err := rs.RolloutPolicy(ctx, "acme/web"); err != nil || p == nil || *p != pol {
		t.Fatalf("RolloutPolicy = %+v, %v; want %+v", p, err, pol)
	}
	pol2 := envy.RolloutPolicy{MaxUnavailable: 2, HealthTimeout: time.Second}
	if err := rs.PutRolloutPolicy(ctx, "acme/web", &pol2); err != nil {
		t.Fatal(err)
	}
	if p, err := rs.RolloutPolicy(ctx, "acme/web"); err != nil || p == nil || *p != pol2 {
		t.Fatalf("RolloutPolicy(replaced) = %+v, %v; want %+v", p, err, pol2)
	}
	if err := rs.PutRolloutPolicy(ctx, "acme/nope", &pol); envy.ErrorCode(err) != envy.ENotFound {
		t.Fatalf("PutRolloutPolicy(missing scope) = %v; want not_found", err)
	}
	if err := rs.PutRolloutPolicy(ctx, "acme/api", &pol); err != nil {
		t.Fatal(err)
	}
	if err := rs.PutRolloutPolicy(ctx, "acme/api", nil); err != nil {
		t.Fatal(err)
	}
	if p, err := rs.RolloutPolicy(ctx, "acme/api"); err != nil || p != nil {
		t.Fatalf("RolloutPolicy(cleared) = %+v, %v; want nil", p, err)
	}

	// Leases: 16 instances ask at once for 3 slots.
	now := t0
	lease := func(id string, rev int64, at time.Time) envy.RolloutLease {
		return envy.RolloutLease{Scope: "acme/web", Consumer: id, Revision: rev, GrantedAt: at, ExpiresAt: at.Add(time.Minute)}
	}
	var granted atomic.Int32
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := rs.AcquireRolloutLease(ctx, lease(fmt.Sprintf("i%02d", i), 7, now), 3)
			if err != nil {
				t.Error(err)
			}
			if ok {
				granted.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := granted.Load(); n != 3 {
		t.Fatalf("%d of 16 concurrent acquires got a slot; want exactly 3", n)
	}
	live, err := rs.RolloutLeases(ctx, "acme/web", now)
	if err != nil || len(live) != 3 {
		t.Fatalf("RolloutLeases = %+v, %v; want 3", live, err)
	}
	holder := live[0]
	if holder.Revision != 7 || !holder.GrantedAt.Equal(now) || !holder.ExpiresAt.Equal(now.Add(time.Minute)) {
		t.Fatalf("lease = %+v", holder)
	}
	// A holder asking again keeps its slot; a fourth instance gets none.
	if ok, err := rs.AcquireRolloutLease(ctx, lease(holder.Consumer, 8, now), 3); err != nil || !ok {
		t.Fatalf("Acquire(holder again) = %v, %v; want true", ok, err)
	}
	if ok, err := rs.AcquireRolloutLease(ctx, lease("late", 7, now), 3); err != nil || ok {
		t.Fatalf("Acquire(no slot left) = %v, %v; want false", ok, err)
	}
	// The holder was granted revision 8 meanwhile: its report of 7 does
	// not free the slot it still uses.
	if ok, err := rs.ReleaseRolloutLease(ctx, "acme/web", holder.Consumer, 7); err != nil || ok {
		t.Fatalf("Release(the older revision of a moved lease) = %v, %v; want false", ok, err)
	}
	// Release frees only for the lease's revision or newer.
	if ok, err := rs.ReleaseRolloutLease(ctx, "acme/web", holder.Consumer, 5); err != nil || ok {
		t.Fatalf("Release(older revision) = %v, %v; want false", ok, err)
	}
	if ok, err := rs.ReleaseRolloutLease(ctx, "acme/web", holder.Consumer, 9); err != nil || !ok {
		t.Fatalf("Release = %v, %v; want true", ok, err)
	}
	if ok, err := rs.AcquireRolloutLease(ctx, lease("late", 7, now), 3); err != nil || !ok {
		t.Fatalf("Acquire(after a release) = %v, %v; want true", ok, err)
	}
	// Expiry frees every slot.
	later := now.Add(time.Minute)
	if live, err := rs.RolloutLeases(ctx, "acme/web", later); err != nil || len(live) != 0 {
		t.Fatalf("RolloutLeases(after expiry) = %+v, %v; want none", live, err)
	}
	if ok, err := rs.AcquireRolloutLease(ctx, lease("after", 7, later), 1); err != nil || !ok {
		t.Fatalf("Acquire(after expiry) = %v, %v; want true", ok, err)
	}
	if live, err := rs.RolloutLeases(ctx, "acme/web", later); err != nil || len(live) != 1 || live[0].Consumer != "after" {
		t.Fatalf("RolloutLeases = %+v, %v; want only the new one", live, err)
	}

	// Pauses.
	if p, err := rs.RolloutPaused(ctx, "acme/web"); err != nil || p != nil {
		t.Fatalf("RolloutPaused(none) = %+v, %v", p, err)
	}
	if err := rs.PauseRollout(ctx, envy.RolloutPause{Scope: "acme/web", Revision: 7, Reason: "i03 was not healthy within 1s", Failed: []string{"i03"}, At: now}); err != nil {
		t.Fatal(err)
	}
	if err := rs.PauseRollout(ctx, envy.RolloutPause{Scope: "acme/web", Revision: 7, Reason: "i01 was not healthy within 1s", Failed: []string{"i01"}, At: later}); err != nil {
		t.Fatal(err)
	}
	want := &envy.RolloutPause{Scope: "acme/web", Revision: 7, Reason: "i01 was not healthy within 1s", Failed: []string{"i01", "i03"}, At: later}
	if p, err := rs.RolloutPaused(ctx, "acme/web"); err != nil || !reflect.DeepEqual(p, want) {
		t.Fatalf("RolloutPaused = %+v, %v; want %+v", p, err, want)
	}
	// A pause of a newer revision starts its list anew.
	if err := rs.PauseRollout(ctx, envy.RolloutPause{Scope: "acme/web", Revision: 9, Reason: "r", Failed: []string{"i05"}, At: later}); err != nil {
		t.Fatal(err)
	}
	if p, err := rs.RolloutPaused(ctx, "acme/web"); err != nil || p == nil || !reflect.DeepEqual(p.Failed, []string{"i05"}) || p.Revision != 9 {
		t.Fatalf("RolloutPaused(newer) = %+v, %v", p, err)
	}
	// A pause of an older revision (a failure reported late) never lowers
	// a newer one.
	if err := rs.PauseRollout(ctx, envy.RolloutPause{Scope: "acme/web", Revision: 8, Reason: "late", Failed: []string{"i06"}, At: later}); err != nil {
		t.Fatal(err)
	}
	if p, err := rs.RolloutPaused(ctx, "acme/web"); err != nil || p == nil || !reflect.DeepEqual(p.Failed, []string{"i05"}) || p.Revision != 9 {
		t.Fatalf("RolloutPaused after an older pause = %+v, %v; want revision 9's, i05 failed", p, err)
	}
	if ok, err := rs.ResumeRollout(ctx, "acme/web"); err != nil || !ok {
		t.Fatalf("ResumeRollout = %v, %v; want true", ok, err)
	}
	if ok, err := rs.ResumeRollout(ctx, "acme/web"); err != nil || ok {
		t.Fatalf("ResumeRollout(again) = %v, %v; want false", ok, err)
	}
	if p, err := rs.RolloutPaused(ctx, "acme/web"); err != nil || p != nil {
		t.Fatalf("RolloutPaused(resumed) = %+v, %v", p, err)
	}
}

// testRolloutWithScope checks that a scope write carries its rollout
// policy in its own transaction: written with the scope, cleared with it,
// and not written at all when the scope's write is refused.
func testRolloutWithScope(t *testing.T, s envy.Store) {
	rs, ok := s.(envy.RolloutStore)
	if !ok {
		t.Skip("the store is no envy.RolloutStore")
	}
	ctx := t.Context()
	pol := envy.RolloutPolicy{MaxUnavailable: 2, HealthTimeout: 30 * time.Second, Debounce: time.Second}
	put := func(w envy.ScopeWrite) (envy.Scope, error) {
		w.Path, w.Actor = "acme/web", "tester"
		w.Plan = func(cur *envy.Scope, _ func(string) (envy.Scope, error)) (string, []string, error) {
			return "web", nil, nil
		}
		sc, _, err := s.PutScope(ctx, w)
		return sc, err
	}
	policy := func() *envy.RolloutPolicy {
		t.Helper()
		p, err := rs.RolloutPolicy(ctx, "acme/web")
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	sc, err := put(envy.ScopeWrite{Rollout: &pol})
	if err != nil {
		t.Fatal(err)
	}
	if p := policy(); p == nil || *p != pol {
		t.Fatalf("after a scope written with a policy, the policy is %+v, want %+v", p, pol)
	}
	other := pol
	other.MaxUnavailable = 5
	if _, err := put(envy.ScopeWrite{Rollout: &other, IfRevision: sc.Revision + 100}); envy.ErrorCode(err) != envy.EPrecondition {
		t.Fatalf("a scope write from an old revision: %v, want a precondition failure", err)
	}
	if p := policy(); p == nil || *p != pol {
		t.Fatalf("after a refused scope write, the policy is %+v, want it unchanged (%+v)", p, pol)
	}
	if _, err := put(envy.ScopeWrite{ClearRollout: true}); err != nil {
		t.Fatal(err)
	}
	if p := policy(); p != nil {
		t.Fatalf("after a scope written clearing its policy, the policy is %+v, want none", p)
	}
}
