package service_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/service"
	"github.com/envy-dev/envy/sqlite"
)

// flakyTokens fails every token lookup while fail is set, as a store that
// does not answer for a moment does.
type flakyTokens struct {
	*sqlite.Store
	fail atomic.Bool
}

func (s *flakyTokens) GetToken(ctx context.Context, id string) (envy.Token, error) {
	if s.fail.Load() {
		return envy.Token{}, errors.New("connection reset by peer")
	}
	return s.Store.GetToken(ctx, id)
}

// A token lookup that fails is no revocation: the watch streams of a live
// token stay open through a blip of the store (which the resync after an
// outage makes likely), rather than every watcher being cut at once.
func TestAFailedTokenLookupDoesNotEndLiveWatches(t *testing.T) {
	var store *flakyTokens
	svc, ctx := newServiceOver(t, service.Options{}, func(db *sqlite.Store) envy.Store {
		store = &flakyTokens{Store: db}
		return store
	})
	set(t, svc, ctx, "app", "A", "1", false)
	tok, ch := watchAsDeploy(t, svc, ctx)
	store.fail.Store(true)
	// A token notice makes the hub look at every watching token.
	if _, _, err := svc.CreateToken(ctx, envy.TokenInput{Name: "other", Permissions: []envy.Grant{{Scopes: "x", Actions: []envy.Action{envy.ActRead}}}}); err != nil {
		t.Fatal(err)
	}
	ended := ended(ch, 500*time.Millisecond)
	store.fail.Store(false)
	if ended {
		t.Fatalf("the watch of live token %s ended: its lookup failed once, and the hub took that for a revocation", tok.ID)
	}
}

// A watcher that connects without a revision has the current one: it is
// told of the next change, not of the revision it connected at (which a
// resync's refresh, after lost notices, would send for no change).
func TestAWatcherWithoutARevisionIsToldOfChangesOnly(t *testing.T) {
	var ls *lossyStore
	svc, ctx := newServiceOver(t, service.Options{}, func(db *sqlite.Store) envy.Store {
		ls = &lossyStore{Store: db}
		return ls
	})
	set(t, svc, ctx, "app", "A", "1", false)
	_, ch := watchAsDeploy(t, svc, ctx)
	ls.resync() // as after lost notices: every watcher refreshed
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("the watch ended at the resync")
		}
		t.Fatalf("a watcher that connected at the current revision was told of revision %d, with no change since", ev.Revision)
	case <-time.After(300 * time.Millisecond):
	}
	set(t, svc, ctx, "app", "A", "2", false)
	select {
	case ev, ok := <-ch:
		if !ok || ev.Revision == 0 {
			t.Fatalf("event %+v (open %v)", ev, ok)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event for a change within 5 s")
	}
}

// A resumed watch that names its consumer, of a scope with no rollout
// policy, is not sent again the revision it resumes from: the consumer's
// last report, older, only matters to a rollout's "wait".
func TestAResumedConsumerWatchWithoutAPolicyGetsNoRevisionTwice(t *testing.T) {
	svc, ctx := newSQLiteService(t)
	set(t, svc, ctx, "app", "A", "1", false)
	env, err := svc.Env(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ReportConsumer(ctx, "app", "c9", envy.ConsumerInput{Revision: env.Revision}); err != nil {
		t.Fatal(err)
	}
	set(t, svc, ctx, "app", "A", "2", false)
	env, err = svc.Env(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := svc.WatchAs(wctx, "app", env.Revision, "c9")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-ch:
		t.Fatalf("a watch resumed from revision %d was sent revision %d again", env.Revision, ev.Revision)
	case <-time.After(300 * time.Millisecond):
	}
}

// A consumer may report the revision its watch was told, even once the
// scope's own revision is lower: deleting a scope it referred to told
// its watchers of the deletion's revision, and took that scope out of
// the scope's revision.
func TestAConsumerMayReportTheRevisionOfAReferencedScopesDeletion(t *testing.T) {
	svc, ctx := newSQLiteService(t)
	set(t, svc, ctx, "r2", "V", "v", false)
	set(t, svc, ctx, "app2", "U", "x${r2:V}", false)
	set(t, svc, ctx, "other", "O", "o", false)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := svc.Watch(wctx, "app2", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.DeleteScope(ctx, "r2", envy.Cond{}); err != nil {
		t.Fatal(err)
	}
	var told int64
	select {
	case ev := <-ch:
		told = ev.Revision
	case <-time.After(5 * time.Second):
		t.Fatal("no event for the referenced scope's deletion within 5 s")
	}
	if _, err := svc.ReportConsumer(ctx, "app2", "z1", envy.ConsumerInput{Revision: told}); err != nil {
		t.Fatalf("a report of revision %d, the one the watch told: %v", told, err)
	}
	if _, err := svc.ReportConsumer(ctx, "app2", "z1", envy.ConsumerInput{Revision: told + 100}); envy.ErrorCode(err) != envy.EInvalid {
		t.Fatalf("a report of a revision no write made: %v, want a 422", err)
	}
}

// watchAsDeploy watches app (from its current revision) as a token of
// its own, which the store holds, that may read app: a watch whose
// token a revocation check finds live. The watch ends with the test.
func watchAsDeploy(t *testing.T, svc *service.Service, ctx context.Context) (envy.Token, <-chan envy.Event) {
	t.Helper()
	tok, _, err := svc.CreateToken(ctx, envy.TokenInput{Name: "deploy", Permissions: []envy.Grant{{Scopes: "app", Actions: []envy.Action{envy.ActRead}}}})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(service.WithCaller(context.Background(), &service.Caller{Token: &tok}))
	t.Cleanup(cancel)
	ch, err := svc.Watch(wctx, "app", 0)
	if err != nil {
		t.Fatal(err)
	}
	return tok, ch
}

// revisionless is a store whose revision can't be read (the database
// not answering): a report it can't check is worth trying again.
type revisionless struct{ *sqlite.Store }

func (revisionless) Revision(context.Context) (int64, error) {
	return 0, envy.Errorf(envy.EUnavailable, "the database is unavailable")
}

// A consumer's report above the scope's revision, which only the store's
// revision can check, is a 503 while the store does not answer, not a
// 422 that tells the instance its report is wrong.
func TestAReportTheStoreCantCheckIsUnavailableNotInvalid(t *testing.T) {
	svc, ctx := newServiceOver(t, service.Options{}, func(db *sqlite.Store) envy.Store { return revisionless{db} })
	set(t, svc, ctx, "app", "A", "1", false)
	env, err := svc.Env(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ReportConsumer(ctx, "app", "c1", envy.ConsumerInput{Revision: env.Revision + 1}); envy.ErrorCode(err) != envy.EUnavailable {
		t.Fatalf("a report the store can't check: %v, want EUnavailable", err)
	}
}
