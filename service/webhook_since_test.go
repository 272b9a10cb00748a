package service_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/pgtest"
	"github.com/envy-dev/envy/webhook"
)

// A change in flight when a webhook is created on PostgreSQL: its event
// was skipped (no webhook when its outbox row was written), but it may
// commit after the webhook. The webhook hears of every change after its
// Since, so either the change is within Since (it committed first) or its
// event is delivered; before Since was read in the webhook's own
// transaction, it was neither.
func TestAChangeInFlightWhenAWebhookIsCreatedIsNotLostOnPostgreSQL(t *testing.T) {
	url := pgtest.NewDatabase(t)
	store := openShared(t, url)
	rc := newReceiver(t)
	svc, ctx := newHookServiceOn(t, store, fastHooks(webhook.NewSender(webhook.Options{AllowPrivate: true})))
	setv(t, svc, ctx, "acme/web", "A", "0", false)

	conn := pgConn(t, url)
	// The change's transaction waits a second between its (skipped)
	// outbox row and its COMMIT.
	if _, err := conn.Exec(context.Background(), `
		CREATE FUNCTION slow_outbox() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(1); RETURN NULL; END $$;
		CREATE TRIGGER slow_outbox AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION slow_outbox();`); err != nil {
		t.Fatal(err)
	}
	type result struct {
		info envy.WriteInfo
		err  error
	}
	done := make(chan result, 1)
	go func() {
		v := envy.NewSensitive("1")
		_, info, err := svc.SetVar(ctx, "acme/web", "A", envy.VarInput{Value: &v}, envy.SetOptions{})
		done <- result{info, err}
	}()
	time.Sleep(400 * time.Millisecond) // the change is past its outbox row, not committed
	h := createHook(t, svc, ctx, rc.srv.URL, "acme/**", envy.EventVarsChanged)
	rc.setSecrets(h.Secret.Reveal())
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if _, err := conn.Exec(context.Background(), `DROP TRIGGER slow_outbox ON outbox`); err != nil {
		t.Fatal(err)
	}
	last := setv(t, svc, ctx, "acme/web", "B", "2", false)
	want := []int64{last.Revision}
	if r.info.Revision > h.Webhook.Since {
		want = []int64{r.info.Revision, last.Revision}
	}
	var revs []int64
	for _, m := range rc.wait(len(want)) {
		revs = append(revs, m.Msg.Data.Revision)
	}
	if !slices.Equal(revs, want) {
		t.Fatalf("the webhook (since %d) got revisions %v, want %v: the change at %d, in flight when it was created, is lost", h.Webhook.Since, revs, want, r.info.Revision)
	}
}
