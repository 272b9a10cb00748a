package storeutil

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/envy-dev/envy"
)

// WebhookStatements are the statements of webhooks and the outbox
// (envy.WebhookStore), the same on both stores but for their placeholders.
type WebhookStatements struct {
	AddEvent, Events, Cursor, MoveCursor, PruneEvents, AddDelivery  string
	Create, Get, List, Delete, DeleteDeliveries, Update             string
	Deliveries, GetDelivery, Heads, Lease, FinishDelivery, Finished string
	Head, Unlease, PruneDeliveries                                  string
	ListAfter, Count                                                string
	// ReplaceSecret and ReplaceOldSecret put a reseal's bytes ($3) in
	// place of the webhook's ($1) secret or previous secret where it is
	// still the one the reseal read ($2).
	ReplaceSecret, ReplaceOldSecret string
}

// WebhookColumns are the columns ScanWebhook reads, in order.
const WebhookColumns = `id, spec, secret, old_secret, old_until, paused, disabled_at, failures`

// DeliveryColumns are the columns ScanDelivery reads, in order.
const DeliveryColumns = `id, webhook_id, message_id, type, scope, revision, body, status, attempts, next_at, last_error, response_code, latency_ns, created_at, done_at`

// WebhookSQL returns the statements with the store's placeholders.
func WebhookSQL(mark func(int) string) WebhookStatements {
	m := func(s string) string {
		for i := 15; i >= 1; i-- {
			s = strings.ReplaceAll(s, "$"+strconv.Itoa(i), mark(i))
		}
		return s
	}
	return WebhookStatements{
		// Only while some webhook exists: without one no event goes anywhere,
		// and a webhook created later takes only changes after it.
		AddEvent: m(`INSERT INTO outbox (revision, type, scope, vars, actor, actor_token, at)
			SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 FROM webhooks)`),
		Events:      m(`SELECT revision, type, scope, vars, actor, actor_token, at FROM outbox WHERE revision > $1 ORDER BY revision LIMIT $2`),
		Cursor:      m(`SELECT revision FROM webhook_cursor WHERE id = 1`),
		MoveCursor:  m(`UPDATE webhook_cursor SET revision = $2 WHERE id = 1 AND revision = $1`),
		PruneEvents: m(`DELETE FROM outbox WHERE revision <= $1`),
		AddDelivery: m(`INSERT INTO webhook_deliveries (webhook_id, message_id, type, scope, revision, body, status, next_at, created_at)
			SELECT $1, $2, $3, $4, $5, $6, 'pending', $7, $7 WHERE EXISTS (SELECT 1 FROM webhooks WHERE id = $1)`),
		Create: m(`INSERT INTO webhooks (id, spec, secret) VALUES ($1, $2, $3)`),
		Get:    m(`SELECT ` + WebhookColumns + ` FROM webhooks WHERE id = $1`),
		List:   m(`SELECT ` + WebhookColumns + ` FROM webhooks ORDER BY id`),
		// One page of List: the webhooks after an id.
		ListAfter: m(`SELECT ` + WebhookColumns + ` FROM webhooks WHERE id > $1 ORDER BY id LIMIT $2`),
		// The webhooks by state, each under its one (envy.Webhook.State):
		// all of them, paused (and not disabled), disabled.
		Count: m(`SELECT COUNT(*),
			COALESCE(SUM(CASE WHEN disabled_at = 0 AND paused THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN disabled_at <> 0 THEN 1 ELSE 0 END), 0) FROM webhooks`),
		Delete: m(`DELETE FROM webhooks WHERE id = $1`),
		// A reseal's, where the secret is still the one it read.
		ReplaceSecret:    m(`UPDATE webhooks SET secret = $3 WHERE id = $1 AND secret = $2`),
		ReplaceOldSecret: m(`UPDATE webhooks SET old_secret = $3 WHERE id = $1 AND old_secret = $2`),
		// Deleted before the webhook, on a store that does not cascade.
		DeleteDeliveries: m(`DELETE FROM webhook_deliveries WHERE webhook_id = $1`),
		Update: m(`UPDATE webhooks SET spec = $2, secret = $3, old_secret = $4, old_until = $5, paused = $6, disabled_at = $7, failures = $8
			WHERE id = $1`),
		Deliveries:  m(`SELECT ` + DeliveryColumns + ` FROM webhook_deliveries WHERE webhook_id = $1 AND ($2 <= 0 OR id < $2) ORDER BY id DESC LIMIT $3`),
		GetDelivery: m(`SELECT ` + DeliveryColumns + ` FROM webhook_deliveries WHERE webhook_id = $1 AND id = $2`),
		// The webhooks that may be leased now, with the head of their
		// queues: the oldest pending delivery, when it is due.
		Heads: m(`SELECT w.id, d.id FROM webhooks w
			JOIN webhook_deliveries d ON d.id = (SELECT MIN(x.id) FROM webhook_deliveries x WHERE x.webhook_id = w.id AND x.status = 'pending')
			WHERE NOT w.paused AND w.disabled_at = 0 AND w.lease_until < $1 AND d.next_at <= $1
			ORDER BY d.next_at LIMIT $2`),
		Lease: m(`UPDATE webhooks SET lease_owner = $2, lease_until = $3 WHERE id = $1 AND lease_until < $4`),
		// A webhook's queue's head as it is now (Heads' may be older than
		// the lease, on a store where another server delivers), and the
		// lease given back when that head is done or not due.
		Head:    m(`SELECT ` + DeliveryColumns + ` FROM webhook_deliveries WHERE webhook_id = $1 AND status = 'pending' ORDER BY id LIMIT 1`),
		Unlease: m(`UPDATE webhooks SET lease_owner = '', lease_until = 0 WHERE id = $1 AND lease_owner = $2`),
		FinishDelivery: m(`UPDATE webhook_deliveries SET status = $2, attempts = attempts + 1, next_at = $3, last_error = $4,
			response_code = $5, latency_ns = $6, done_at = $7 WHERE id = $1`),
		// The webhook's failures in a row: reset by a delivery, counted by
		// a failed one, which disables it at the bound ($4 > 0).
		PruneDeliveries: m(`DELETE FROM webhook_deliveries WHERE status <> 'pending' AND done_at > 0 AND done_at < $1`),
		Finished: m(`UPDATE webhooks SET lease_owner = '', lease_until = 0,
			failures = CASE WHEN $3 = 'delivered' THEN 0 WHEN $3 = 'failed' THEN failures + 1 ELSE failures END,
			disabled_at = CASE WHEN $3 = 'failed' AND $4 > 0 AND failures + 1 >= $4 THEN $5 ELSE disabled_at END
			WHERE id = $1 AND lease_owner = $2`),
	}
}

// WriteEvent is the outbox event of a write that changed an env: the
// vars it added, changed or removed, description-only changes left out.
func WriteEvent(w *envy.Write, eff []Effect, rev int64, at time.Time) envy.OutboxEvent {
	e := envy.OutboxEvent{Revision: rev, Type: envy.EventVarsChanged, Scope: w.Scope, Actor: w.Actor, ActorToken: w.ActorToken, At: at}
	for _, c := range eff {
		switch {
		case c.Delete:
			e.Vars = append(e.Vars, envy.EventVar{Name: c.Name, Change: envy.VarRemoved, Secret: c.Old.Secret})
		case c.Old == nil:
			e.Vars = append(e.Vars, envy.EventVar{Name: c.Name, Change: envy.VarAdded, Secret: c.Secret})
		case !c.MetaOnly:
			e.Vars = append(e.Vars, envy.EventVar{Name: c.Name, Change: envy.VarChanged, Secret: c.Secret})
		}
	}
	return e
}

// ScopeEvent is the outbox event of a scope's change or deletion; its
// actor is that of the change's audit entry (a scope write names none
// itself).
func ScopeEvent(typ, scope string, rev int64, at time.Time, audit []envy.AuditEntry) envy.OutboxEvent {
	e := envy.OutboxEvent{Revision: rev, Type: typ, Scope: scope, At: at}
	if len(audit) > 0 {
		e.Actor, e.ActorToken = audit[0].Actor, audit[0].TokenID
	}
	return e
}

// DeleteEvent is the outbox event of a scope's deletion: ScopeEvent's,
// with the vars the deletion removed (removed, sorted by name). The
// scopes whose values refer to the deleted one lose those vars from their
// resolved envs, and their webhooks hear of it as of a removal
// (service.FanOut); none inherits it, or it could not be deleted.
func DeleteEvent(scope string, removed []envy.EventVar, rev int64, at time.Time, audit []envy.AuditEntry) envy.OutboxEvent {
	e := ScopeEvent(envy.EventScopeDeleted, scope, rev, at, audit)
	e.Vars = removed
	return e
}

// Removed is vars, a scope's stored vars, as removed in an event.
func Removed(vars []envy.StoredVar) []envy.EventVar {
	out := make([]envy.EventVar, len(vars))
	for i, v := range vars {
		out[i] = envy.EventVar{Name: v.Name, Change: envy.VarRemoved, Secret: v.Secret}
	}
	return out
}

// EncodeEventVars is the stored form of an event's vars.
func EncodeEventVars(vs []envy.EventVar) string {
	if len(vs) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(vs) // strings and bools only
	return string(b)
}

// ScanEvent reads one outbox row.
func ScanEvent(scan func(dest ...any) error) (envy.OutboxEvent, error) {
	var (
		e    envy.OutboxEvent
		vars string
		at   int64
	)
	if err := scan(&e.Revision, &e.Type, &e.Scope, &vars, &e.Actor, &e.ActorToken, &at); err != nil {
		return envy.OutboxEvent{}, err
	}
	e.At = FromNanos(at)
	if err := json.Unmarshal([]byte(vars), &e.Vars); err != nil {
		return envy.OutboxEvent{}, err
	}
	return e, nil
}

// webhookSpec is the stored form of what a webhook's owner set.
type webhookSpec struct {
	URL         string    `json:"url"`
	Scopes      string    `json:"scopes"`
	Events      []string  `json:"events"`
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	CreatedBy   string    `json:"created_by"`
	CreatorID   string    `json:"creator_id"`
	CreatorRoot string    `json:"creator_root,omitempty"`
	Since       int64     `json:"since"`
}

// EncodeWebhookSpec is the stored form of w's spec.
func EncodeWebhookSpec(w envy.Webhook) string {
	b, _ := json.Marshal(webhookSpec{URL: w.URL, Scopes: w.Scopes, Events: w.Events, Description: w.Description,
		CreatedAt: w.CreatedAt.UTC(), CreatedBy: w.CreatedBy, CreatorID: w.CreatorID, CreatorRoot: w.CreatorRoot, Since: w.Since})
	return string(b)
}

// ScanWebhook reads one row of WebhookColumns.
func ScanWebhook(scan func(dest ...any) error) (envy.Webhook, error) {
	var (
		w                  envy.Webhook
		spec               string
		oldUntil, disabled int64
		failures           int64
	)
	if err := scan(&w.ID, &spec, &w.Secret, &w.OldSecret, &oldUntil, &w.Paused, &disabled, &failures); err != nil {
		return envy.Webhook{}, err
	}
	var sp webhookSpec
	if err := json.Unmarshal([]byte(spec), &sp); err != nil {
		return envy.Webhook{}, err
	}
	w.URL, w.Scopes, w.Events, w.Description = sp.URL, sp.Scopes, sp.Events, sp.Description
	w.CreatedAt, w.CreatedBy, w.CreatorID, w.CreatorRoot, w.Since = sp.CreatedAt, sp.CreatedBy, sp.CreatorID, sp.CreatorRoot, sp.Since
	if oldUntil > 0 {
		w.OldUntil = FromNanos(oldUntil)
	}
	if disabled > 0 {
		w.DisabledAt = FromNanos(disabled)
	}
	w.Failures = int(failures)
	return w, nil
}

// ApplyWebhookPatch returns w, as the store holds it in the update's
// transaction, with p applied; a rotation planned from another secret
// than w's is EConflict (envy.WebhookPatch.RotateFrom).
func ApplyWebhookPatch(w envy.Webhook, p envy.WebhookPatch) (envy.Webhook, error) {
	if p.Rotate && !bytes.Equal(w.Secret, p.RotateFrom) {
		return envy.Webhook{}, envy.Errorf(envy.EConflict, "webhook %s's secret was rotated meanwhile", w.ID)
	}
	if p.URL != nil {
		w.URL = *p.URL
	}
	if p.Events != nil {
		w.Events = p.Events
	}
	if p.Description != nil {
		w.Description = *p.Description
	}
	if p.Paused != nil {
		w.Paused = *p.Paused
		if !w.Paused {
			w.DisabledAt, w.Failures = time.Time{}, 0
		}
	}
	if p.Rotate {
		w.Secret, w.OldSecret, w.OldUntil = p.Secret, p.OldSecret, p.OldUntil
	}
	return w, nil
}

// WebhookUpdateArgs are the arguments of WebhookStatements.Update.
func WebhookUpdateArgs(w envy.Webhook) []any {
	return []any{w.ID, EncodeWebhookSpec(w), w.Secret, w.OldSecret, nanosOrZero(w.OldUntil), w.Paused, nanosOrZero(w.DisabledAt), int64(w.Failures)}
}

// FinishArgs are the arguments of FinishDelivery and Finished.
func FinishArgs(c envy.DeliveryClaim, o envy.DeliveryOutcome) (delivery, webhook []any) {
	var done int64
	if o.Status != envy.DeliveryPending {
		done = Nanos(o.At)
	}
	delivery = []any{c.Delivery.ID, o.Status, nanosOrZero(o.NextAt), o.Error, int64(o.ResponseCode), int64(o.Latency), done}
	webhook = []any{c.Webhook.ID, c.Owner, o.Status, int64(o.MaxFailures), Nanos(o.At)}
	return delivery, webhook
}

func nanosOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return Nanos(t)
}

// DeliveryArgs are the arguments of AddDelivery.
func DeliveryArgs(d envy.Delivery) []any {
	return []any{d.WebhookID, d.MessageID, d.Type, d.Scope, d.Revision, d.Body, Nanos(d.NextAt)}
}

// ScanDelivery reads one row of DeliveryColumns.
func ScanDelivery(scan func(dest ...any) error) (envy.Delivery, error) {
	var (
		d                         envy.Delivery
		attempts, code, lat       int64
		nextAt, createdAt, doneAt int64
	)
	if err := scan(&d.ID, &d.WebhookID, &d.MessageID, &d.Type, &d.Scope, &d.Revision, &d.Body, &d.Status, &attempts,
		&nextAt, &d.LastError, &code, &lat, &createdAt, &doneAt); err != nil {
		return envy.Delivery{}, err
	}
	d.Attempts, d.ResponseCode, d.Latency = int(attempts), int(code), time.Duration(lat)
	d.CreatedAt = FromNanos(createdAt)
	if nextAt > 0 {
		d.NextAt = FromNanos(nextAt)
	}
	if doneAt > 0 {
		d.DoneAt = FromNanos(doneAt)
	}
	return d, nil
}

// hookSQLs keeps WebhookSQL's statements by the mark of $1.
var hookSQLs sync.Map

func (r *Reader) hookSQL() *WebhookStatements {
	k := r.Mark(1)
	if st, ok := hookSQLs.Load(k); ok {
		return st.(*WebhookStatements)
	}
	st := WebhookSQL(r.Mark)
	hookSQLs.Store(k, &st)
	return &st
}

// scanAll reads every row with scan.
func scanAll[T any](scan func(func(dest ...any) error) (T, error)) func(Scanner) ([]T, error) {
	return func(rows Scanner) ([]T, error) {
		var out []T
		for rows.Next() {
			v, err := scan(rows.Scan)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, rows.Err()
	}
}

// Events returns the outbox's events after a revision, in order.
func (r *Reader) Events(ctx context.Context, after int64, limit int) ([]envy.OutboxEvent, error) {
	return read(ctx, r, "read events", scanAll(ScanEvent), r.hookSQL().Events, after, r.Limit(limit))
}

// EventCursor returns the revision up to which events were fanned out.
func (r *Reader) EventCursor(ctx context.Context) (int64, error) {
	revs, err := read(ctx, r, "read the event cursor", scanAll(func(scan func(...any) error) (int64, error) {
		var rev int64
		return rev, scan(&rev)
	}), r.hookSQL().Cursor)
	if err != nil || len(revs) == 0 {
		return 0, err
	}
	return revs[0], nil
}

// GetWebhook returns a webhook.
func (r *Reader) GetWebhook(ctx context.Context, id string) (envy.Webhook, error) {
	ws, err := read(ctx, r, "read a webhook", scanAll(ScanWebhook), r.hookSQL().Get, id)
	if err != nil {
		return envy.Webhook{}, err
	}
	if len(ws) == 0 {
		return envy.Webhook{}, envy.Errorf(envy.ENotFound, "webhook %s not found", id)
	}
	return ws[0], nil
}

// ListWebhooks returns every webhook by id.
func (r *Reader) ListWebhooks(ctx context.Context) ([]envy.Webhook, error) {
	return read(ctx, r, "list webhooks", scanAll(ScanWebhook), r.hookSQL().List)
}

// ListWebhooksAfter returns at most limit webhooks after an id, by id.
func (r *Reader) ListWebhooksAfter(ctx context.Context, after string, limit int) ([]envy.Webhook, error) {
	return read(ctx, r, "list webhooks", scanAll(ScanWebhook), r.hookSQL().ListAfter, after, r.Limit(limit))
}

// CountWebhooks counts the webhooks by state, in one aggregate read.
func (r *Reader) CountWebhooks(ctx context.Context) (envy.WebhookCounts, error) {
	cs, err := read(ctx, r, "count webhooks", scanAll(func(scan func(...any) error) (envy.WebhookCounts, error) {
		var all, paused, disabled int64
		err := scan(&all, &paused, &disabled)
		return envy.WebhookCounts{Total: int(all), Paused: int(paused), Disabled: int(disabled)}, err
	}), r.hookSQL().Count)
	if err != nil || len(cs) == 0 {
		return envy.WebhookCounts{}, err
	}
	return cs[0], nil
}

// CheckWebhookLimit is the refusal of a webhook beyond lim, when the
// store keeps all webhooks and its creator mine of them, or nil.
func CheckWebhookLimit(lim envy.WebhookLimit, all, mine int64) error {
	switch {
	case lim.Max > 0 && all >= int64(lim.Max):
		return envy.ErrWebhookLimit(envy.WebhookLimitStore, lim.Max)
	case lim.PerCreator > 0 && mine >= int64(lim.PerCreator):
		return envy.ErrWebhookLimit(envy.WebhookLimitCreator, lim.PerCreator)
	}
	return nil
}

// Deliveries returns a webhook's deliveries, newest first.
func (r *Reader) Deliveries(ctx context.Context, webhookID string, before int64, limit int) ([]envy.Delivery, error) {
	return read(ctx, r, "list deliveries", scanAll(ScanDelivery), r.hookSQL().Deliveries, webhookID, before, r.Limit(limit))
}

// GetDelivery returns one delivery of a webhook.
func (r *Reader) GetDelivery(ctx context.Context, webhookID string, id int64) (envy.Delivery, error) {
	ds, err := read(ctx, r, "read a delivery", scanAll(ScanDelivery), r.hookSQL().GetDelivery, webhookID, id)
	if err != nil {
		return envy.Delivery{}, err
	}
	if len(ds) == 0 {
		return envy.Delivery{}, envy.Errorf(envy.ENotFound, "delivery %d of webhook %s not found", id, webhookID)
	}
	return ds[0], nil
}
