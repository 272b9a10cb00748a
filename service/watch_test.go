package service_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/service"
)

// watchedApp is a service with acme/app and acme/base, not inheriting it
// yet, and one watcher of acme/app for the test's time.
func watchedApp(t *testing.T) (*service.Service, context.Context, <-chan envy.Event) {
	t.Helper()
	svc, ctx := newSQLiteService(t)
	set(t, svc, ctx, "acme/base", "A", "1", false)
	set(t, svc, ctx, "acme/app", "B", "1", false)
	wctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	ch, err := svc.Watch(wctx, "acme/app", 0)
	if err != nil {
		t.Fatal(err)
	}
	return svc, ctx, ch
}

func TestARefreshDoesNotPutBackAWatcherStoppedMeanwhile(t *testing.T) {
	svc, _, ch := watchedApp(t)
	// The watcher stops while its refresh reads its new dependencies.
	svc.SetBeforeRelink(func(stop func()) { stop() })
	svc.RefreshWatchers()
	if n := svc.Watching(); n != 0 {
		t.Fatalf("%d watchers left in the hub after the only one stopped during its refresh", n)
	}
	for range ch { // a pending event may come first; then the channel must be closed
	}
}

func TestRefreshesOfManyWatchersRunOnOneGoroutine(t *testing.T) {
	svc, ctx := newSQLiteService(t)
	set(t, svc, ctx, "acme/base", "A", "1", false)
	set(t, svc, ctx, "acme/app", "B", "1", false)
	const watchers = 200
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range watchers {
		if _, err := svc.Watch(wctx, "acme/app", 0); err != nil {
			t.Fatal(err)
		}
	}
	// Each refresh blocks until released: a refresh per goroutine would
	// hold one goroutine per watcher here.
	release := make(chan struct{})
	started := make(chan struct{}, watchers)
	svc.SetBeforeRelink(func(func()) {
		started <- struct{}{}
		<-release
	})
	defer close(release)
	base := runtime.NumGoroutine()
	inh := []string{"acme/base"}
	if _, _, err := svc.PutScope(ctx, "acme/app", envy.ScopeInput{Inherits: &inh}, envy.Cond{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("no refresh started within 10 s of a change of inherits")
	}
	if extra := runtime.NumGoroutine() - base; extra > 10 {
		t.Fatalf("%d goroutines more while the refreshes of %d watchers wait: refreshes must be queued, not one goroutine each", extra, watchers)
	}
}

func TestAWatcherFollowsAChangeOfInherits(t *testing.T) {
	svc, ctx, ch := watchedApp(t)
	inh := []string{"acme/base"}
	if _, _, err := svc.PutScope(ctx, "acme/app", envy.ScopeInput{Inherits: &inh}, envy.Cond{}); err != nil {
		t.Fatal(err)
	}
	next := func(what string) envy.Event {
		t.Helper()
		select {
		case e := <-ch:
			return e
		case <-time.After(10 * time.Second):
			t.Fatalf("no event within 10 s of %s", what)
		}
		return envy.Event{}
	}
	next("the change of inherits")
	// Once the refresh linked acme/base, a write there is an event. The
	// refresh runs in the background: write until one comes.
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		set(t, svc, ctx, "acme/base", "A", fmt.Sprint(i+2), false)
		select {
		case e := <-ch:
			if e.Scope != "acme/app" {
				t.Fatalf("event %+v", e)
			}
			return
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("a write to a newly inherited scope never reached the watcher")
		}
	}
}

// TestADescriptionOnlyChangeIsNoChangeOfTheEnv: a var's or a scope's
// description changed takes a revision but tells no watcher (on SQLite
// the notice is handled before the write returns, so an event would be
// in the channel already), leaves a consumer of the unchanged env synced
// (its revision older than the write's, its env the same), and keeps the
// write's reply synced; a change of the value does all three.
func TestADescriptionOnlyChangeIsNoChangeOfTheEnv(t *testing.T) {
	svc, ctx, ch := watchedApp(t)
	inherits := []string{"acme/base"}
	if _, _, err := svc.PutScope(ctx, "acme/app", envy.ScopeInput{Inherits: &inherits}, envy.Cond{}); err != nil {
		t.Fatal(err)
	}
	var ev envy.Event
	select {
	case ev = <-ch: // the change of inherits
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10 s of a change of inherits")
	}
	if _, err := svc.ReportConsumer(ctx, "acme/app", "c1", envy.ConsumerInput{Revision: ev.Revision}); err != nil {
		t.Fatal(err)
	}
	desc := "the base's A"
	for _, w := range []struct {
		scope string
		in    envy.VarInput
	}{{"acme/base", envy.VarInput{Description: &desc}}, {"acme/app", envy.VarInput{Description: &desc}}} {
		_, info, err := svc.SetVar(ctx, w.scope, map[string]string{"acme/base": "A", "acme/app": "B"}[w.scope], w.in, envy.SetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !info.Synced {
			t.Errorf("a description-only write to %s (revision %d) says unsynced: %+v", w.scope, info.Revision, info.Behind)
		}
		select {
		case ev := <-ch:
			t.Fatalf("a description-only write to %s told the watcher of revision %d", w.scope, ev.Revision)
		default:
		}
	}
	sdesc := "base scope"
	if _, _, err := svc.PutScope(ctx, "acme/base", envy.ScopeInput{Description: &sdesc}, envy.Cond{}); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-ch:
		t.Fatalf("a scope description change told the watcher of revision %d", ev.Revision)
	default:
	}
	st, err := svc.Status(ctx, "acme/app")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Synced || st.Consumers[0].Behind {
		t.Errorf("status after description changes only: %+v; want c1 synced", st)
	}

	two := envy.NewSensitive("2")
	_, info, err := svc.SetVar(ctx, "acme/base", "A", envy.VarInput{Value: &two}, envy.SetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Synced || len(info.Behind) != 1 || info.Behind[0].Scope != "acme/app" {
		t.Errorf("a value change with c1 behind: synced %v, behind %+v", info.Synced, info.Behind)
	}
	select {
	case ev := <-ch:
		if ev.Revision != info.Revision {
			t.Errorf("event of revision %d, want %d", ev.Revision, info.Revision)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10 s of a change of the value")
	}
}

func TestARefreshTellsNoWatcherOfADescriptionOnlyChange(t *testing.T) {
	svc, ctx := newSQLiteService(t)
	set(t, svc, ctx, "acme/app", "B", "1", false)
	env, err := svc.Env(ctx, "acme/app")
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := svc.Watch(wctx, "acme/app", env.Revision)
	if err != nil {
		t.Fatal(err)
	}
	desc := "the port"
	if _, _, err := svc.SetVar(ctx, "acme/app", "B", envy.VarInput{Description: &desc}, envy.SetOptions{}); err != nil {
		t.Fatal(err)
	}
	// A refresh (as after lost notices) reads the scope again: its env is
	// the same, so the watcher must hear nothing.
	svc.RefreshWatchers()
	select {
	case e := <-ch:
		t.Fatalf("a refresh after a change of descriptions only sent %+v: envy run --watch would restart for nothing", e)
	default:
	}
}
