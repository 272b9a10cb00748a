package postgres

import (
	"context"
	"crypto/rand"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/pgtest"
)

// Two servers claim a webhook's deliveries: B's claim reads the queue's
// head, then A leases the webhook, delivers that head and gives the
// lease back before B's claim reaches the webhook's row. B must not
// lease the webhook with the head A delivered (it would send it again
// and overwrite its outcome). B's claim is made slow by a row security
// policy that sleeps, applied to B's role only.
func TestAClaimNeverLeasesAHeadThatAnotherServerDelivered(t *testing.T) {
	ctx := context.Background()
	role := "envy_claim_" + strings.ToLower(rand.Text()[:10])
	admin, err := pgx.Connect(ctx, pgtest.ServerURL(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `CREATE ROLE `+role+` LOGIN`); err != nil {
		t.Fatal(err)
	}
	admin.Close(ctx)
	t.Cleanup(func() { // after the database is dropped (cleanups run last first)
		c, err := pgx.Connect(context.Background(), pgtest.ServerURL(t))
		if err != nil {
			t.Errorf("drop role %s: %v", role, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), `DROP ROLE IF EXISTS `+role); err != nil {
			t.Errorf("drop role %s: %v", role, err)
		}
	})
	dbURL := pgtest.NewDatabase(t)
	a, err := Open(ctx, dbURL, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	db, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	if _, err := db.Exec(ctx, `
		GRANT ALL ON ALL TABLES IN SCHEMA public TO `+role+`;
		GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO `+role+`;
		GRANT ALL ON SCHEMA public TO `+role+`;
		CREATE FUNCTION slow_claim() RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.3); RETURN true; END $$;
		ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;
		CREATE POLICY slow_claim ON webhook_deliveries TO `+role+` USING (slow_claim()) WITH CHECK (true);`); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(dbURL)
	u.User = url.User(role) // not a superuser: the policy holds
	b, err := Open(ctx, u.String(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	now := time.Now()
	w := envy.Webhook{ID: "wh_1", URL: "https://x.example/h", Scopes: "**", Events: []string{envy.EventVarsChanged}, Secret: []byte("sealed"), CreatedAt: now}
	if _, err := a.CreateWebhook(ctx, w, nil); err != nil {
		t.Fatal(err)
	}
	for i, m := range []string{"msg_1", "msg_2"} {
		d := envy.Delivery{WebhookID: w.ID, MessageID: m, Type: envy.EventVarsChanged, Scope: "a", Revision: int64(i + 1), Body: []byte("{}"), NextAt: now.Add(-time.Second)}
		if _, err := a.AddDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	type claim struct {
		cs  []envy.DeliveryClaim
		err error
	}
	bc := make(chan claim, 1)
	go func() {
		cs, err := b.ClaimDeliveries(ctx, "B/1", time.Now().Add(time.Second), time.Minute, 1)
		bc <- claim{cs, err}
	}()
	time.Sleep(150 * time.Millisecond) // B's claim has its snapshot (the webhook free, msg_1 its head)
	cs, err := a.ClaimDeliveries(ctx, "A/1", time.Now(), time.Minute, 1)
	if err != nil || len(cs) != 1 || cs[0].Delivery.MessageID != "msg_1" {
		t.Fatalf("A's claim: %+v, %v", cs, err)
	}
	if held, err := a.FinishDelivery(ctx, cs[0], envy.DeliveryOutcome{Status: envy.DeliveryDelivered, ResponseCode: 204, At: time.Now()}); err != nil || !held {
		t.Fatalf("A's finish: %v, %v", held, err)
	}
	r := <-bc
	if r.err != nil {
		t.Fatal(r.err)
	}
	for _, c := range r.cs {
		if c.Delivery.MessageID != "msg_2" || c.Delivery.Status != envy.DeliveryPending {
			t.Fatalf("B leased %s with delivery %s (%s): A delivered msg_1 already, msg_2 is the head", c.Webhook.ID, c.Delivery.MessageID, c.Delivery.Status)
		}
	}
}
