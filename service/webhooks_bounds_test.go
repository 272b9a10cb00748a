package service_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/pgtest"
	"github.com/envy-dev/envy/service"
)

// listCounting is a store that counts the reads of every webhook
// (ListWebhooks): what an idle server and a metrics scrape must not do.
type listCounting struct {
	hookStore
	lists atomic.Int64
}

func (c *listCounting) ListWebhooks(ctx context.Context) ([]envy.Webhook, error) {
	c.lists.Add(1)
	return c.hookStore.ListWebhooks(ctx)
}

// newBoundsService returns a Service over store (its keyring over under)
// that delivers webhooks with o, and an admin's context.
func newBoundsService(t *testing.T, store, under envy.Store, keyFile string, o service.WebhookOptions) (*service.Service, context.Context) {
	t.Helper()
	keys := openKeyring(t, under, keyFile)
	svc := service.New(store, keys, service.Options{Webhooks: o})
	t.Cleanup(svc.Close)
	admin := &envy.Token{ID: "tok_admin", Name: "admin", Permissions: []envy.Grant{{Scopes: "**", Actions: []envy.Action{envy.ActAdmin}}}}
	return svc, service.WithCaller(context.Background(), &service.Caller{Token: admin})
}

// teamCaller is ctx's caller replaced by a token holding admin on
// team/** only.
func teamCaller(id string) context.Context {
	tok := &envy.Token{ID: id, Name: id, Permissions: []envy.Grant{{Scopes: "team/**", Actions: []envy.Action{envy.ActAdmin}}}}
	return service.WithCaller(context.Background(), &service.Caller{Token: tok})
}

func newHook(ctx context.Context, svc *service.Service, scopes string) (envy.WebhookSecret, error) {
	return svc.CreateWebhook(ctx, envy.WebhookInput{URL: "https://hooks.example/envy", Scopes: scopes, Events: []string{envy.EventVarsChanged}})
}

// A store keeps at most WebhookOptions.Max webhooks, and a token without
// admin on ** defines at most a tenth of them: a creation beyond is 409
// naming the limit and its flag, and nothing is created. Deleting one
// makes room. On PostgreSQL, two servers creating at once do not count
// past each other.
func TestWebhookCreationBeyondTheLimitIsRefused(t *testing.T) {
	for _, store := range []string{"sqlite", "postgres"} {
		t.Run(store, func(t *testing.T) {
			keyFile := filepath.Join(t.TempDir(), "master.key")
			o := service.WebhookOptions{Max: 20}
			var svc, other *service.Service
			var ctx context.Context
			if store == "sqlite" {
				st := openSQLite(t)
				svc, ctx = newBoundsService(t, st, st, keyFile, o)
				other = svc
			} else {
				url := pgtest.NewDatabase(t)
				a, b := openShared(t, url), openShared(t, url)
				svc, ctx = newBoundsService(t, a, a, keyFile, o)
				other, _ = newBoundsService(t, b, b, keyFile, o)
			}
			// A team's token: 2 (a tenth of 20), then refused.
			team := teamCaller("tok_team")
			for i := range 2 {
				if _, err := newHook(team, svc, "team/**"); err != nil {
					t.Fatalf("the team's webhook %d: %v", i+1, err)
				}
			}
			_, err := newHook(team, other, "team/**")
			if e := envy.AsError(err); e == nil || e.Code != envy.EConflict || !strings.Contains(e.Message, "2 webhooks") || !strings.Contains(e.Message, "--max-webhooks") ||
				len(e.Fields) != 1 || e.Fields[0].Type != envy.WebhookLimitCreator {
				t.Fatalf("the team token's 3rd webhook of at most 2: %v, want 409 naming the per-token limit", err)
			}
			// Another team token has places of its own.
			if _, err := newHook(teamCaller("tok_team2"), svc, "team/**"); err != nil {
				t.Fatalf("another token's webhook: %v", err)
			}
			// The store's 20, created at once through two servers: exactly
			// 17 more go through.
			var wg sync.WaitGroup
			var ok, refused atomic.Int64
			for i := range 24 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s := svc
					if i%2 == 1 {
						s = other
					}
					_, err := newHook(ctx, s, "**")
					switch e := envy.AsError(err); {
					case err == nil:
						ok.Add(1)
					case e != nil && e.Code == envy.EConflict && len(e.Fields) == 1 && e.Fields[0].Type == envy.WebhookLimitStore &&
						strings.Contains(e.Message, "20 webhooks") && strings.Contains(e.Message, "--max-webhooks"):
						refused.Add(1)
					default:
						t.Errorf("a creation: %v", err)
					}
				}()
			}
			wg.Wait()
			if ok.Load() != 17 || refused.Load() != 7 {
				t.Fatalf("24 creations at once with room for 17: %d created, %d refused", ok.Load(), refused.Load())
			}
			all, err := svc.ListWebhooks(ctx)
			if err != nil || len(all) != 20 {
				t.Fatalf("the store keeps %d webhooks (%v), want 20", len(all), err)
			}
			if st := svc.WebhookStats(ctx); st.Webhooks != 20 {
				t.Fatalf("WebhookStats counts %d webhooks, want 20", st.Webhooks)
			}
			// Deleting one makes room for one.
			if err := svc.DeleteWebhook(ctx, all[0].ID); err != nil {
				t.Fatal(err)
			}
			if _, err := newHook(ctx, other, "**"); err != nil {
				t.Fatalf("a creation after a deletion: %v", err)
			}
			if _, err := newHook(ctx, svc, "**"); envy.ErrorCode(err) != envy.EConflict {
				t.Fatalf("the 21st: %v, want 409", err)
			}
		})
	}
}

// An idle server does not read every webhook at each tick of its loop, nor
// does a metrics scrape (WebhookStats, on the public /metrics): the first
// asks whether any webhook is left, the second counts them by state in
// the store. Only a batch of events to fan out reads them all.
func TestAnIdleLoopAndAMetricsScrapeReadNoWebhook(t *testing.T) {
	rc := newReceiver(t)
	st := openSQLite(t)
	counting := &listCounting{hookStore: st}
	o := fastHooks(nil)
	o.Poll = 10 * time.Millisecond
	svc, ctx := newBoundsService(t, counting, st, filepath.Join(t.TempDir(), "master.key"), o)
	var ids []string
	for i := range 5 {
		h := createHook(t, svc, ctx, fmt.Sprintf("%s/%d", rc.srv.URL, i), "acme/**", envy.EventVarsChanged)
		ids = append(ids, h.Webhook.ID)
	}
	paused := true
	if _, err := svc.UpdateWebhook(ctx, ids[0], envy.WebhookUpdate{Paused: &paused}); err != nil {
		t.Fatal(err)
	}
	// A change's events are fanned out: that reads the webhooks.
	setv(t, svc, ctx, "acme/web", "PORT", "1", false)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if page, err := svc.Deliveries(ctx, ids[4], "", 10); err == nil && len(page.Items) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the change was never fanned out")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Then nothing happens for 30 ticks or more, but 20 scrapes.
	before := counting.lists.Load()
	for range 20 {
		st := svc.WebhookStats(ctx)
		if st.Webhooks != 5 || st.Paused != 1 || st.Disabled != 0 {
			t.Fatalf("WebhookStats = %+v, want 5 webhooks, 1 paused", st)
		}
		time.Sleep(15 * time.Millisecond)
	}
	if n := counting.lists.Load() - before; n != 0 {
		t.Fatalf("an idle server read every webhook %d times in 300 ms (its loop's ticks, its metrics scrapes), want none", n)
	}
	// It still hears of a change at once.
	setv(t, svc, ctx, "acme/web", "PORT", "2", false)
	deadline = time.Now().Add(10 * time.Second)
	for {
		if page, err := svc.Deliveries(ctx, ids[4], "", 10); err == nil && len(page.Items) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second change was never fanned out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ListWebhooksPage pages the webhooks the caller administers, by id: every
// one exactly once across the pages, the last without a next cursor, and
// a caller who administers some sees only those.
func TestWebhooksAreListedByPagesEachOnce(t *testing.T) {
	svc, ctx := newHookService(t, fastHooks(nil))
	want := map[string]string{} // id → scopes
	for i := range 7 {
		scopes := "team/**"
		if i%2 == 1 {
			scopes = "other/**"
		}
		h, err := newHook(ctx, svc, scopes)
		if err != nil {
			t.Fatal(err)
		}
		want[h.Webhook.ID] = scopes
	}
	for _, c := range []struct {
		name  string
		ctx   context.Context
		limit int
		n     int
	}{{"admin", ctx, 3, 7}, {"admin", ctx, 7, 7}, {"admin", ctx, 1, 7}, {"team", teamCaller("tok_team"), 2, 4}, {"team", teamCaller("tok_team"), 1, 4}} {
		seen := map[string]bool{}
		pages := 0
		for cursor := ""; ; {
			page, err := svc.ListWebhooksPage(c.ctx, cursor, c.limit)
			if err != nil {
				t.Fatalf("%s, limit %d: %v", c.name, c.limit, err)
			}
			if pages++; len(page.Items) > c.limit || pages > 10 {
				t.Fatalf("%s: a page of limit %d holds %d webhooks (page %d)", c.name, c.limit, len(page.Items), pages)
			}
			last := cursor
			for _, w := range page.Items {
				if seen[w.ID] || w.ID <= last {
					t.Fatalf("%s, limit %d: webhook %s listed twice or out of order", c.name, c.limit, w.ID)
				}
				if c.name == "team" && want[w.ID] != "team/**" {
					t.Fatalf("the team's token was listed webhook %s of %s", w.ID, want[w.ID])
				}
				seen[w.ID], last = true, w.ID
			}
			if page.NextCursor == "" {
				break
			}
			cursor = page.NextCursor
		}
		if len(seen) != c.n {
			t.Fatalf("%s, limit %d: %d webhooks across the pages, want %d", c.name, c.limit, len(seen), c.n)
		}
	}
	if _, err := svc.ListWebhooksPage(ctx, "", 1001); envy.ErrorCode(err) != envy.EInvalid {
		t.Fatalf("limit 1001: %v, want invalid", err)
	}
}

// The tenth of a token without admin on ** is its lineage's: the tokens
// it mints share it (as they share its rate limit), so a team can't fill
// the store by defining its webhooks through children, and another team
// still finds room.
func TestATeamsChildTokensShareItsShareOfWebhooks(t *testing.T) {
	st := openSQLite(t)
	svc, admin := newBoundsService(t, st, st, filepath.Join(t.TempDir(), "master.key"), service.WebhookOptions{Max: 20})
	root := envy.Token{ID: "tok_admin", Name: "admin", Owner: "admin", Hash: envy.HashToken(envy.NewTokenValue()),
		Permissions: []envy.Grant{{Scopes: "**", Actions: []envy.Action{envy.ActAdmin}}}, CreatedAt: time.Now()}
	if _, err := st.CreateToken(admin, root, false, nil); err != nil {
		t.Fatal(err)
	}
	grant := []envy.Grant{{Scopes: "team/**", Actions: []envy.Action{envy.ActAdmin}}}
	team, _, err := svc.CreateToken(admin, envy.TokenInput{Name: "team", Permissions: grant})
	if err != nil {
		t.Fatal(err)
	}
	teamCtx := service.WithCaller(admin, &service.Caller{Token: &team})
	created := 0
	for i := range 10 {
		child, _, err := svc.CreateToken(teamCtx, envy.TokenInput{Name: fmt.Sprintf("child%d", i), Permissions: grant})
		if err != nil {
			t.Fatal(err)
		}
		ctx := service.WithCaller(admin, &service.Caller{Token: &child})
		for range 2 {
			if _, err := newHook(ctx, svc, "team/**"); err == nil {
				created++
			} else if envy.ErrorCode(err) != envy.EConflict || !strings.Contains(err.Error(), "lineage") {
				t.Fatalf("a child's webhook beyond its lineage's share: %v, want 409 naming the lineage", err)
			}
		}
	}
	if created != 2 {
		t.Fatalf("one team's lineage defined %d webhooks through its children; its share is 2 of 20", created)
	}
	if _, err := newHook(teamCaller("tok_other_team"), svc, "team/**"); err != nil {
		t.Fatalf("another team's token finds no room: %v", err)
	}
}
