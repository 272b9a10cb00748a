package storetest

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/envy-dev/envy"
)

// testOutbox checks that every change of an env writes its event in its
// own transaction, and nothing else does.
func testOutbox(t *testing.T, s envy.Store) {
	ws, ok := s.(envy.WebhookStore)
	if !ok {
		t.Skip("the store is no envy.WebhookStore")
	}
	ctx := t.Context()
	start, err := ws.EventCursor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	describe := func(e envy.OutboxEvent) string {
		var vs []string
		for _, v := range e.Vars {
			vs = append(vs, fmt.Sprintf("%s:%s:%v", v.Name, v.Change, v.Secret))
		}
		return fmt.Sprintf("%d %s %s [%s]", e.Revision, e.Type, e.Scope, strings.Join(vs, " "))
	}
	expect := func(rev int64, typ, scope string, vars ...string) {
		want = append(want, fmt.Sprintf("%d %s %s [%s]", rev, typ, scope, strings.Join(vars, " ")))
	}

	// Without a webhook, changes write no event: none would go anywhere.
	putScope(t, s, "early")
	write(t, s, "early", set("A", "1"))
	if evs, err := ws.Events(ctx, start, 100); err != nil || len(evs) != 0 {
		t.Fatalf("without a webhook, changes wrote events: %+v, %v", evs, err)
	}
	if _, err := ws.CreateWebhook(ctx, envy.Webhook{ID: "outbox", URL: "https://hooks.example/x", Scopes: "**", Events: []string{envy.EventVarsChanged}, Secret: []byte("sealed"), CreatedAt: t0}, nil); err != nil {
		t.Fatal(err)
	}
	base := putScope(t, s, "base")
	expect(base.Revision, envy.EventScopeChanged, "base")
	r := write(t, s, "base", set("A", "1"), set("B", "2"))
	expect(r.Revision, envy.EventVarsChanged, "base", "A:added:false", "B:added:false")

	// A secret set, a change and a removal in one write.
	ch := changes(t, s, "base", set("A", "one"), del("B"), set("S", "s"))
	ch[2].Secret = true
	r, err = s.Write(ctx, envy.Write{Scope: "base", Actor: "tester", ActorToken: "tok1", Changes: ch})
	if err != nil {
		t.Fatal(err)
	}
	expect(r.Revision, envy.EventVarsChanged, "base", "A:changed:false", "B:removed:false", "S:added:true")

	// A description only: no env changed, no event.
	ch = changes(t, s, "base", set("A", "one"))
	ch[0].Description, ch[0].MetaOnly = "the A", true
	if _, err := s.Write(ctx, envy.Write{Scope: "base", Actor: "tester", Changes: ch}); err != nil {
		t.Fatal(err)
	}
	// A stale write rolls back: no event.
	stale := changes(t, s, "base", set("A", "two"))
	three := write(t, s, "base", set("A", "three"))
	expect(three.Revision, envy.EventVarsChanged, "base", "A:changed:false")
	if _, err := s.Write(ctx, envy.Write{Scope: "base", Actor: "tester", Changes: stale}); envy.ErrorCode(err) != envy.EConflict {
		t.Fatalf("stale write: %v, want a conflict", err)
	}
	// A scope that inherits, then is deleted.
	app := putScope(t, s, "app", "base")
	expect(app.Revision, envy.EventScopeChanged, "app")
	if again := putScope(t, s, "app", "base"); again.Revision == app.Revision {
		t.Fatal("a PutScope took no revision")
	}
	ch = changes(t, s, "app", set("K", "k"), set("Z", "z"))
	ch[1].Secret = true
	r, err = s.Write(ctx, envy.Write{Scope: "app", Actor: "tester", Changes: ch})
	if err != nil {
		t.Fatal(err)
	}
	expect(r.Revision, envy.EventVarsChanged, "app", "K:added:false", "Z:added:true")
	// A deletion's event names the vars it removed: the envs of the scopes
	// whose values refer to it lose them.
	byAnn := func(scope string) []envy.AuditEntry {
		return []envy.AuditEntry{{Actor: "ann", Action: envy.AuditScopeDelete, Scope: scope, TokenID: "tok2", Status: envy.OutcomeDeleted}}
	}
	_, delRev, err := s.DeleteScope(ctx, "app", 0, byAnn("app"))
	if err != nil {
		t.Fatal(err)
	}
	expect(delRev, envy.EventScopeDeleted, "app", "K:removed:false", "Z:removed:true")
	// A scope without vars removes none.
	empty := putScope(t, s, "empty")
	expect(empty.Revision, envy.EventScopeChanged, "empty")
	_, delRev, err = s.DeleteScope(ctx, "empty", 0, byAnn("empty"))
	if err != nil {
		t.Fatal(err)
	}
	expect(delRev, envy.EventScopeDeleted, "empty")
	if _, _, err := s.DeleteScope(ctx, "base", app.Revision, nil); err == nil {
		t.Fatal("a DeleteScope with a stale IfRevision succeeded")
	}
	added, err := ws.AddEvent(ctx, envy.OutboxEvent{Type: envy.EventRolloutPaused, Scope: "base", Actor: "server"})
	if err != nil {
		t.Fatal(err)
	}
	expect(added, envy.EventRolloutPaused, "base")

	evs, err := ws.Events(ctx, start, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range evs {
		got = append(got, describe(e))
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("outbox:\n got %q\nwant %q", got, want)
	}
	for _, e := range evs {
		if e.At.IsZero() {
			t.Fatalf("event %d has no time", e.Revision)
		}
		if e.Type == envy.EventScopeDeleted && (e.Actor != "ann" || e.ActorToken != "tok2") {
			t.Fatalf("scope.deleted actor = %q %q, want the audit entry's", e.Actor, e.ActorToken)
		}
		if e.Revision == evs[2].Revision && e.ActorToken != "tok1" {
			t.Fatalf("write's actor token = %q", e.ActorToken)
		}
	}
	if page, _ := ws.Events(ctx, evs[1].Revision, 2); len(page) != 2 || page[0].Revision != evs[2].Revision {
		t.Fatalf("Events after %d limit 2 = %v", evs[1].Revision, page)
	}

	// Enqueue moves the cursor once: a second server's try finds it moved.
	hook := envy.Webhook{ID: "wh1", URL: "https://example.com/h", Scopes: "**", Events: []string{envy.EventVarsChanged}, Secret: []byte("sealed"), CreatedAt: t0}
	if _, err := ws.CreateWebhook(ctx, hook, nil); err != nil {
		t.Fatal(err)
	}
	last := evs[len(evs)-1].Revision
	d := envy.Delivery{WebhookID: "wh1", MessageID: "msg_1", Type: envy.EventVarsChanged, Scope: "base", Revision: evs[1].Revision, Body: []byte(`{}`), NextAt: t0}
	ok, err = ws.Enqueue(ctx, start, last, []envy.Delivery{d, {WebhookID: "gone", MessageID: "msg_x", Body: []byte(`{}`), NextAt: t0}})
	if err != nil || !ok {
		t.Fatalf("Enqueue: %v, %v", ok, err)
	}
	if ok, err := ws.Enqueue(ctx, start, last, []envy.Delivery{d}); err != nil || ok {
		t.Fatalf("Enqueue from a moved cursor: %v, %v; want false", ok, err)
	}
	if cur, err := ws.EventCursor(ctx); err != nil || cur != last {
		t.Fatalf("cursor = %d, %v; want %d", cur, err, last)
	}
	if left, _ := ws.Events(ctx, 0, 0); len(left) != 0 {
		t.Fatalf("the outbox keeps %d events it fanned out", len(left))
	}
	ds, err := ws.Deliveries(ctx, "wh1", 0, 0)
	if err != nil || len(ds) != 1 || ds[0].MessageID != "msg_1" || ds[0].Status != envy.DeliveryPending || string(ds[0].Body) != `{}` {
		t.Fatalf("deliveries = %+v, %v; want the one queued once", ds, err)
	}
}

// testWebhooks checks webhooks' life and the leases of their deliveries.
func testWebhooks(t *testing.T, s envy.Store) {
	ws, ok := s.(envy.WebhookStore)
	if !ok {
		t.Skip("the store is no envy.WebhookStore")
	}
	ctx := t.Context()
	hook := envy.Webhook{ID: "wh1", URL: "https://example.com/h", Scopes: "acme/**", Events: []string{envy.EventVarsChanged, envy.EventScopeDeleted},
		Description: "deploys", Secret: []byte("s1"), CreatedAt: t0, CreatedBy: "ann", CreatorID: "tok1"}
	rev, err := s.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	since, err := ws.CreateWebhook(ctx, hook, []envy.AuditEntry{{Actor: "ann", Action: "webhook.create", Status: envy.OutcomeCreated}})
	if err != nil {
		t.Fatal(err)
	}
	if since != rev {
		t.Errorf("CreateWebhook's since = %d, want the store's revision %d", since, rev)
	}
	hook.Since = since
	if _, err := ws.CreateWebhook(ctx, hook, nil); err == nil {
		t.Fatal("a second webhook with the same id was created")
	}
	got, err := ws.GetWebhook(ctx, "wh1")
	if err != nil {
		t.Fatal(err)
	}
	if got.OldSecret == nil {
		got.OldSecret = nil
	}
	if !reflect.DeepEqual(got, hook) {
		t.Fatalf("GetWebhook = %+v, want %+v", got, hook)
	}
	if _, err := ws.GetWebhook(ctx, "nope"); envy.ErrorCode(err) != envy.ENotFound {
		t.Fatalf("GetWebhook(nope) = %v, want not found", err)
	}
	paused, until := true, t0.Add(time.Hour)
	up, err := ws.UpdateWebhook(ctx, "wh1", envy.WebhookPatch{Paused: &paused, Rotate: true, Secret: []byte("s2"), OldSecret: []byte("s1"), OldUntil: until, RotateFrom: []byte("s1")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := ws.GetWebhook(ctx, "wh1"); !got.Paused || string(got.Secret) != "s2" || string(got.OldSecret) != "s1" || !got.OldUntil.Equal(until) || !reflect.DeepEqual(got, up) {
		t.Fatalf("after the update: %+v (returned %+v)", got, up)
	}
	// A rotation planned from the secret just replaced would drop the
	// new one: refused, and nothing of the patch is written.
	unpaused := false
	if _, err := ws.UpdateWebhook(ctx, "wh1", envy.WebhookPatch{Paused: &unpaused, Rotate: true, Secret: []byte("s3"), OldSecret: []byte("s1"), RotateFrom: []byte("s1")}, nil); envy.ErrorCode(err) != envy.EConflict {
		t.Fatalf("a rotation planned from a replaced secret: %v, want a conflict", err)
	}
	if got, _ := ws.GetWebhook(ctx, "wh1"); !reflect.DeepEqual(got, up) {
		t.Fatalf("after a refused rotation: %+v, want %+v", got, up)
	}
	if _, err := ws.UpdateWebhook(ctx, "nope", envy.WebhookPatch{Paused: &paused}, nil); envy.ErrorCode(err) != envy.ENotFound {
		t.Fatalf("UpdateWebhook(nope) = %v, want not found", err)
	}
	if _, err := ws.CreateWebhook(ctx, envy.Webhook{ID: "wh2", URL: "https://example.com/2", Scopes: "**", Events: []string{envy.EventVarsChanged}, Secret: []byte("x"), CreatedAt: t0}, nil); err != nil {
		t.Fatal(err)
	}
	if l, err := ws.ListWebhooks(ctx); err != nil || len(l) != 2 || l[0].ID != "wh1" || l[1].ID != "wh2" {
		t.Fatalf("ListWebhooks = %v, %v", l, err)
	}

	// Deliveries go one at a time per webhook, to one lease holder.
	add := func(hook, msg string, at time.Time) int64 {
		t.Helper()
		id, err := ws.AddDelivery(ctx, envy.Delivery{WebhookID: hook, MessageID: msg, Type: envy.EventVarsChanged, Scope: "acme/web", Revision: 7, Body: []byte(`{"m":"` + msg + `"}`), NextAt: at})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	if _, err := ws.AddDelivery(ctx, envy.Delivery{WebhookID: "nope", MessageID: "m", Body: []byte("{}"), NextAt: t0}); envy.ErrorCode(err) != envy.ENotFound {
		t.Fatalf("AddDelivery to a missing webhook = %v, want not found", err)
	}
	d1, d2 := add("wh1", "m1", t0), add("wh1", "m2", t0)
	now := t0.Add(time.Minute)
	claim := func(owner string, at time.Time) []envy.DeliveryClaim {
		t.Helper()
		cs, err := ws.ClaimDeliveries(ctx, owner, at, 30*time.Second, 10)
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	if cs := claim("a", now); len(cs) != 0 {
		t.Fatalf("a paused webhook's delivery was claimed: %+v", cs)
	}
	resume := false
	if _, err := ws.UpdateWebhook(ctx, "wh1", envy.WebhookPatch{Paused: &resume}, nil); err != nil {
		t.Fatal(err)
	}
	cs := claim("a", now)
	if len(cs) != 1 || cs[0].Delivery.ID != d1 || cs[0].Webhook.ID != "wh1" || cs[0].Owner != "a" || string(cs[0].Webhook.Secret) != "s2" {
		t.Fatalf("claim = %+v, want wh1's first delivery", cs)
	}
	if cs := claim("b", now); len(cs) != 0 {
		t.Fatalf("a leased webhook was claimed again: %+v", cs)
	}
	retryAt := now.Add(10 * time.Second)
	if held, err := ws.FinishDelivery(ctx, cs[0], envy.DeliveryOutcome{Status: envy.DeliveryPending, NextAt: retryAt, Error: "HTTP 500", ResponseCode: 500, Latency: 3 * time.Millisecond, At: now}); err != nil || !held {
		t.Fatalf("FinishDelivery: %v, %v", held, err)
	}
	if cs := claim("b", now.Add(time.Second)); len(cs) != 0 {
		t.Fatalf("a delivery was claimed before its retry was due, or one behind it was: %+v", cs)
	}
	cs = claim("b", retryAt)
	if len(cs) != 1 || cs[0].Delivery.ID != d1 || cs[0].Delivery.Attempts != 1 || cs[0].Delivery.ResponseCode != 500 || cs[0].Delivery.LastError != "HTTP 500" {
		t.Fatalf("the retry's claim = %+v", cs)
	}
	// The lease runs out: another server takes it, and the first one's
	// outcome no longer counts.
	late := retryAt.Add(time.Minute)
	cs2 := claim("c", late)
	if len(cs2) != 1 || cs2[0].Delivery.ID != d1 {
		t.Fatalf("claim after the lease ran out = %+v", cs2)
	}
	if held, err := ws.FinishDelivery(ctx, cs[0], envy.DeliveryOutcome{Status: envy.DeliveryDelivered, At: late}); err != nil || held {
		t.Fatalf("FinishDelivery by a lost lease: %v, %v; want not held", held, err)
	}
	if held, err := ws.FinishDelivery(ctx, cs2[0], envy.DeliveryOutcome{Status: envy.DeliveryDelivered, ResponseCode: 204, At: late}); err != nil || !held {
		t.Fatalf("FinishDelivery: %v, %v", held, err)
	}
	cs = claim("a", late)
	if len(cs) != 1 || cs[0].Delivery.ID != d2 {
		t.Fatalf("after the first was delivered, claim = %+v, want the second", cs)
	}
	// Failures in a row disable the webhook; resuming enables it.
	fail := envy.DeliveryOutcome{Status: envy.DeliveryFailed, Error: "gave up", At: late, MaxFailures: 2}
	if held, err := ws.FinishDelivery(ctx, cs[0], fail); err != nil || !held {
		t.Fatal(held, err)
	}
	d3 := add("wh1", "m3", t0)
	cs = claim("a", late)
	if len(cs) != 1 || cs[0].Delivery.ID != d3 {
		t.Fatalf("claim = %+v, want the third", cs)
	}
	if _, err := ws.FinishDelivery(ctx, cs[0], fail); err != nil {
		t.Fatal(err)
	}
	h, _ := ws.GetWebhook(ctx, "wh1")
	if h.DisabledAt.IsZero() || h.Failures != 2 {
		t.Fatalf("after 2 failures in a row: disabled at %v, failures %d", h.DisabledAt, h.Failures)
	}
	add("wh1", "m4", t0)
	if cs := claim("a", late); len(cs) != 0 {
		t.Fatalf("a disabled webhook's delivery was claimed: %+v", cs)
	}
	if h, err := ws.UpdateWebhook(ctx, "wh1", envy.WebhookPatch{Paused: &resume}, nil); err != nil || !h.DisabledAt.IsZero() || h.Failures != 0 {
		t.Fatalf("resume: %+v, %v", h, err)
	}
	if cs := claim("a", late); len(cs) != 1 {
		t.Fatalf("after resuming, claim = %+v", cs)
	}
	ds, err := ws.Deliveries(ctx, "wh1", 0, 0)
	if err != nil || len(ds) != 4 || ds[0].MessageID != "m4" || ds[3].ID != d1 {
		t.Fatalf("Deliveries = %+v, %v; want 4, newest first", ds, err)
	}
	if d := ds[3]; d.Status != envy.DeliveryDelivered || d.Attempts != 2 || d.ResponseCode != 204 || d.DoneAt.IsZero() {
		t.Fatalf("the delivered one: %+v", d)
	}
	if d := ds[2]; d.Status != envy.DeliveryFailed || d.LastError != "gave up" {
		t.Fatalf("the failed one: %+v", d)
	}
	if page, _ := ws.Deliveries(ctx, "wh1", ds[1].ID, 1); len(page) != 1 || page[0].ID != ds[2].ID {
		t.Fatalf("Deliveries before %d limit 1 = %+v", ds[1].ID, page)
	}
	if d, err := ws.GetDelivery(ctx, "wh1", d1); err != nil || d.MessageID != "m1" {
		t.Fatalf("GetDelivery = %+v, %v", d, err)
	}
	if _, err := ws.GetDelivery(ctx, "wh2", d1); envy.ErrorCode(err) != envy.ENotFound {
		t.Fatalf("GetDelivery of another webhook's = %v, want not found", err)
	}
	// Pruning deletes the deliveries done before the time, never a pending one.
	if n, err := ws.PruneDeliveries(ctx, late.Add(-time.Second)); err != nil || n != 0 {
		t.Fatalf("PruneDeliveries before any was done = %d, %v", n, err)
	}
	if n, err := ws.PruneDeliveries(ctx, late.Add(time.Second)); err != nil || n != 3 {
		t.Fatalf("PruneDeliveries = %d, %v; want the delivered one and the two failed", n, err)
	}
	if ds, _ := ws.Deliveries(ctx, "wh1", 0, 0); len(ds) != 1 || ds[0].Status != envy.DeliveryPending {
		t.Fatalf("after pruning: %+v", ds)
	}
	if existed, err := ws.DeleteWebhook(ctx, "wh1", nil); err != nil || !existed {
		t.Fatalf("DeleteWebhook: %v, %v", existed, err)
	}
	if existed, err := ws.DeleteWebhook(ctx, "wh1", nil); err != nil || existed {
		t.Fatalf("DeleteWebhook again: %v, %v", existed, err)
	}
	if ds, _ := ws.Deliveries(ctx, "wh1", 0, 0); len(ds) != 0 {
		t.Fatalf("a deleted webhook keeps %d deliveries", len(ds))
	}
}
