package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/storeutil"
)

var hookSQL = storeutil.WebhookSQL(storeutil.NumberedMark)

var _ envy.WebhookStore = (*Store)(nil)

// event writes e to the outbox in this transaction.
func (t *txn) event(e envy.OutboxEvent) error {
	if _, err := t.exec(hookSQL.AddEvent, e.Revision, e.Type, e.Scope, storeutil.EncodeEventVars(e.Vars), e.Actor, e.ActorToken, storeutil.Nanos(e.At)); err != nil {
		return dbErr("write an event", err)
	}
	return nil
}

// AddEvent writes an event at the next revision.
func (s *Store) AddEvent(ctx context.Context, e envy.OutboxEvent) (int64, error) {
	var rev int64
	err := s.do(ctx, func(t *txn) error {
		var err error
		if rev, err = t.nextRevision(); err != nil {
			return err
		}
		e.Revision, e.At = rev, storeutil.OrNow(e.At, t.now)
		return t.event(e)
	})
	return rev, err
}

// Enqueue adds deliveries and moves the cursor, if it is still at after.
func (s *Store) Enqueue(ctx context.Context, after, upto int64, ds []envy.Delivery) (bool, error) {
	var ok bool
	err := s.do(ctx, func(t *txn) error {
		res, err := t.exec(hookSQL.MoveCursor, after, upto)
		if err != nil {
			return dbErr("move the event cursor", err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return dbErrOrNil("move the event cursor", err)
		}
		ok = true
		for _, d := range ds {
			if _, err := t.exec(hookSQL.AddDelivery, storeutil.DeliveryArgs(d)...); err != nil {
				return dbErr("queue a delivery", err)
			}
		}
		if _, err := t.exec(hookSQL.PruneEvents, upto); err != nil {
			return dbErr("prune events", err)
		}
		return nil
	})
	return ok && err == nil, err
}

// CreateWebhook stores a new webhook.
func (s *Store) CreateWebhook(ctx context.Context, w envy.Webhook, audit []envy.AuditEntry) (int64, error) {
	return s.CreateWebhookWithin(ctx, w, envy.WebhookLimit{}, audit)
}

// countHooks counts the webhooks, and those of the creator's lineage (a
// webhook made before lineages were kept counts as its creator's).
const countHooks = `SELECT COUNT(*), COALESCE(SUM(COALESCE(json_extract(spec, '$.creator_root'), json_extract(spec, '$.creator_id')) = ?1), 0) FROM webhooks`

// CreateWebhookWithin stores a new webhook unless it is beyond lim, as
// counted in the writer's transaction (the one writer: no other creation
// runs meanwhile).
func (s *Store) CreateWebhookWithin(ctx context.Context, w envy.Webhook, lim envy.WebhookLimit, audit []envy.AuditEntry) (int64, error) {
	err := s.do(ctx, func(t *txn) error {
		// Its secret's data key must still exist: one a reseal retired
		// since it was sealed would open nowhere once the servers restart.
		if err := t.liveKeys(storeutil.SecretKeyIDs(w.Secret)); err != nil {
			return err
		}
		if lim.Max > 0 || lim.PerCreator > 0 {
			var all, mine int64
			if err := t.queryRow(countHooks, cmp.Or(w.CreatorRoot, w.CreatorID)).Scan(&all, &mine); err != nil {
				return dbErr("count webhooks", err)
			}
			if err := storeutil.CheckWebhookLimit(lim, all, mine); err != nil {
				return err
			}
		}
		// The revision of the writes before it, in this batch too: those
		// after it see the webhook and write their events.
		w.Since = t.b.rev
		if _, err := t.exec(hookSQL.Create, w.ID, storeutil.EncodeWebhookSpec(w), w.Secret); err != nil {
			return dbErr("create a webhook", err)
		}
		return t.audit(audit, 0)
	})
	return w.Since, err
}

func getWebhook(row *sql.Row, id string) (envy.Webhook, error) {
	w, err := storeutil.ScanWebhook(row.Scan)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return envy.Webhook{}, envy.Errorf(envy.ENotFound, "webhook %s not found", id)
	case err != nil:
		return envy.Webhook{}, dbErr("read a webhook", err)
	}
	return w, nil
}

// UpdateWebhook applies a patch to a webhook.
func (s *Store) UpdateWebhook(ctx context.Context, id string, p envy.WebhookPatch, audit []envy.AuditEntry) (envy.Webhook, error) {
	var w envy.Webhook
	err := s.do(ctx, func(t *txn) error {
		cur, err := getWebhook(t.queryRow(hookSQL.Get, id), id)
		if err != nil {
			return err
		}
		if w, err = storeutil.ApplyWebhookPatch(cur, p); err != nil {
			return err
		}
		if err := t.liveKeys(storeutil.SecretKeyIDs(w.Secret, w.OldSecret)); err != nil {
			return err
		}
		if _, err := t.exec(hookSQL.Update, storeutil.WebhookUpdateArgs(w)...); err != nil {
			return dbErr("update a webhook", err)
		}
		return t.audit(audit, 0)
	})
	if err != nil {
		return envy.Webhook{}, err
	}
	return w, nil
}

// DeleteWebhook deletes a webhook with its deliveries.
func (s *Store) DeleteWebhook(ctx context.Context, id string, audit []envy.AuditEntry) (bool, error) {
	var existed bool
	err := s.do(ctx, func(t *txn) error {
		if _, err := t.exec(hookSQL.DeleteDeliveries, id); err != nil {
			return dbErr("delete a webhook", err)
		}
		res, err := t.exec(hookSQL.Delete, id)
		if err != nil {
			return dbErr("delete a webhook", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return dbErr("delete a webhook", err)
		}
		existed = n > 0
		return t.audit(audit, 0)
	})
	return existed && err == nil, err
}

// ReplaceWebhookSecret puts a reseal's bytes in place of a webhook's
// secret (old: its previous one), if the webhook still exists and that
// secret is still sealed.
func (s *Store) ReplaceWebhookSecret(ctx context.Context, id string, old bool, sealed, replacement []byte) (bool, error) {
	q := hookSQL.ReplaceSecret
	if old {
		q = hookSQL.ReplaceOldSecret
	}
	var replaced bool
	err := s.do(ctx, func(t *txn) error {
		res, err := t.exec(q, id, sealed, replacement)
		if err != nil {
			return dbErr("reseal a webhook's secret", err)
		}
		n, err := res.RowsAffected()
		replaced = n > 0
		return dbErrOrNil("reseal a webhook's secret", err)
	})
	return replaced && err == nil, err
}

// AddDelivery queues one more delivery.
func (s *Store) AddDelivery(ctx context.Context, d envy.Delivery) (int64, error) {
	var id int64
	err := s.do(ctx, func(t *txn) error {
		res, err := t.exec(hookSQL.AddDelivery, storeutil.DeliveryArgs(d)...)
		if err != nil {
			return dbErr("queue a delivery", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return envy.Errorf(envy.ENotFound, "webhook %s not found", d.WebhookID)
		}
		id, err = res.LastInsertId()
		return dbErrOrNil("queue a delivery", err)
	})
	return id, err
}

// ClaimDeliveries leases webhooks whose queue's head is due.
func (s *Store) ClaimDeliveries(ctx context.Context, owner string, now time.Time, lease time.Duration, n int) ([]envy.DeliveryClaim, error) {
	// Most polls find nothing due: they ask a reader, not the writer.
	if s.closed.Load() {
		return nil, storeutil.ErrClosed()
	}
	var due bool
	if err := s.readers.QueryRowContext(ctx, `SELECT EXISTS (`+hookSQL.Heads+`)`, storeutil.Nanos(now), 1).Scan(&due); err != nil {
		return nil, dbErr("look for due deliveries", err)
	}
	if !due {
		return nil, nil
	}
	var out []envy.DeliveryClaim
	err := s.do(ctx, func(t *txn) error {
		out = nil
		rows, err := t.query(t.ctx, hookSQL.Heads, storeutil.Nanos(now), n)
		if err != nil {
			return dbErr("claim deliveries", err)
		}
		type head struct {
			hook string
			id   int64
		}
		var heads []head
		for rows.Next() {
			var h head
			if err := rows.Scan(&h.hook, &h.id); err != nil {
				rows.Close()
				return dbErr("claim deliveries", err)
			}
			heads = append(heads, h)
		}
		rows.Close()
		for _, h := range heads {
			if _, err := t.exec(hookSQL.Lease, h.hook, owner, storeutil.Nanos(now.Add(lease)), storeutil.Nanos(now)); err != nil {
				return dbErr("claim deliveries", err)
			}
			w, err := getWebhook(t.queryRow(hookSQL.Get, h.hook), h.hook)
			if err != nil {
				return err
			}
			d, err := storeutil.ScanDelivery(t.queryRow(hookSQL.GetDelivery, h.hook, h.id).Scan)
			if err != nil {
				return dbErr("claim deliveries", err)
			}
			out = append(out, envy.DeliveryClaim{Webhook: w, Delivery: d, Owner: owner})
		}
		return nil
	})
	return out, err
}

// FinishDelivery records an attempt's outcome while owner holds the lease.
func (s *Store) FinishDelivery(ctx context.Context, c envy.DeliveryClaim, o envy.DeliveryOutcome) (bool, error) {
	var held bool
	err := s.do(ctx, func(t *txn) error {
		held = false
		var owner string
		if err := t.queryRow(`SELECT lease_owner FROM webhooks WHERE id = ?`, c.Webhook.ID).Scan(&owner); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return nil
			}
			return dbErr("finish a delivery", err)
		}
		if owner != c.Owner {
			return nil
		}
		dArgs, wArgs := storeutil.FinishArgs(c, o)
		if _, err := t.exec(hookSQL.FinishDelivery, dArgs...); err != nil {
			return dbErr("finish a delivery", err)
		}
		if _, err := t.exec(hookSQL.Finished, wArgs...); err != nil {
			return dbErr("finish a delivery", err)
		}
		held = true
		return nil
	})
	return held && err == nil, err
}

// dbErrOrNil is dbErr, or nil for nil.
func dbErrOrNil(what string, err error) error {
	if err == nil {
		return nil
	}
	return dbErr(what, err)
}

// PruneDeliveries deletes the deliveries done before before.
func (s *Store) PruneDeliveries(ctx context.Context, before time.Time) (int64, error) {
	return s.execCount(ctx, "prune webhook deliveries", hookSQL.PruneDeliveries, storeutil.Nanos(before))
}
