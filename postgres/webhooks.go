package postgres

import (
	"cmp"
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/storeutil"
)

var hookSQL = storeutil.WebhookSQL(storeutil.DollarMark)

var _ envy.WebhookStore = (*Store)(nil)

// queueEvents queues the outbox rows of events; relative: their revisions
// are a batch's 1…n (commit.go).
func queueEvents(b *pgx.Batch, events []envy.OutboxEvent, relative bool) {
	if len(events) == 0 {
		return
	}
	var (
		revs, at                     []int64
		typ, scope, vars, actor, tok []string
	)
	for _, e := range events {
		revs, at = append(revs, e.Revision), append(at, storeutil.Nanos(e.At))
		typ, scope, vars = append(typ, e.Type), append(scope, e.Scope), append(vars, storeutil.EncodeEventVars(e.Vars))
		actor, tok = append(actor, e.Actor), append(tok, e.ActorToken)
	}
	base := "0"
	if relative {
		base = baseRev
	}
	b.Queue(`INSERT INTO outbox (revision, type, scope, vars, actor, actor_token, at)
		SELECT `+base+` + r, ty, s, v, a, tk, t
		FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[]) AS x(r, ty, s, v, a, tk, t)
		WHERE EXISTS (SELECT 1 FROM webhooks)`,
		revs, typ, scope, vars, actor, tok, at)
}

// event writes e to the outbox in this transaction.
func (t *txn) event(e envy.OutboxEvent) error {
	return t.exec(hookSQL.AddEvent, e.Revision, e.Type, e.Scope, storeutil.EncodeEventVars(e.Vars), e.Actor, e.ActorToken, storeutil.Nanos(e.At))
}

// AddEvent writes an event at the next revision.
func (s *Store) AddEvent(ctx context.Context, e envy.OutboxEvent) (int64, error) {
	var rev int64
	err := s.tx(ctx, "write an event", func(t *txn) error {
		var err error
		if rev, err = t.nextRevision(); err != nil {
			return err
		}
		e.Revision, e.At = rev, storeutil.OrNow(e.At, t.now)
		return t.event(e)
	})
	return rev, err
}

// Enqueue adds deliveries and moves the cursor, if it is still at after:
// the cursor's row lock makes a second server's Enqueue of the same
// events wait, then find the cursor moved and write nothing.
func (s *Store) Enqueue(ctx context.Context, after, upto int64, ds []envy.Delivery) (bool, error) {
	var ok bool
	err := s.tx(ctx, "queue deliveries", func(t *txn) error {
		ok = false
		tag, err := t.Exec(t.ctx, hookSQL.MoveCursor, after, upto)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		ok = true
		b := &pgx.Batch{}
		for _, d := range ds {
			b.Queue(hookSQL.AddDelivery, storeutil.DeliveryArgs(d)...)
		}
		b.Queue(hookSQL.PruneEvents, upto)
		return t.SendBatch(t.ctx, b).Close()
	})
	return ok && err == nil, err
}

// CreateWebhook stores a new webhook, whose Since it reads in its own
// transaction with a share lock on the revision counter's row: a change
// that took its revision before waits for nothing and is counted in
// Since (it commits first; the lock waits for it), and a change that
// takes its revision after waits for the webhook's commit, so that its
// event, written after its revision is taken, sees the webhook. Read
// outside the transaction, Since could count a change whose event was
// skipped (no webhook yet) but that committed after the webhook: lost.
func (s *Store) CreateWebhook(ctx context.Context, w envy.Webhook, audit []envy.AuditEntry) (int64, error) {
	return s.CreateWebhookWithin(ctx, w, envy.WebhookLimit{}, audit)
}

// webhooksLock makes the creations of webhooks within a limit take turns:
// each counts the webhooks after the one before committed (READ
// COMMITTED: a statement sees what committed before it began), so that
// two servers creating at once cannot both take the last place.
const webhooksLock int64 = 0x656e767977686b73 // "envywhks"

// CreateWebhookWithin is CreateWebhook, refused beyond lim (counted under
// webhooksLock).
func (s *Store) CreateWebhookWithin(ctx context.Context, w envy.Webhook, lim envy.WebhookLimit, audit []envy.AuditEntry) (int64, error) {
	err := s.tx(ctx, "create a webhook", func(t *txn) error {
		// Its secret's data key must still exist (liveKeys).
		if err := s.liveKeys(t, storeutil.SecretKeyIDs(w.Secret)); err != nil {
			return err
		}
		if lim.Max > 0 || lim.PerCreator > 0 {
			if _, err := t.Exec(t.ctx, `SELECT pg_advisory_xact_lock($1)`, webhooksLock); err != nil {
				return err
			}
			var all, mine int64
			// Those of the creator's lineage (a webhook made before
			// lineages were kept counts as its creator's).
			if err := t.QueryRow(t.ctx, `SELECT COUNT(*), COUNT(*) FILTER (WHERE COALESCE(spec::jsonb->>'creator_root', spec::jsonb->>'creator_id') = $1) FROM webhooks`,
				cmp.Or(w.CreatorRoot, w.CreatorID)).Scan(&all, &mine); err != nil {
				return err
			}
			if err := storeutil.CheckWebhookLimit(lim, all, mine); err != nil {
				return err
			}
		}
		if err := t.QueryRow(t.ctx, `SELECT revision FROM meta WHERE id = 1 FOR SHARE`).Scan(&w.Since); err != nil {
			return err
		}
		if err := t.exec(hookSQL.Create, w.ID, storeutil.EncodeWebhookSpec(w), w.Secret); err != nil {
			return err
		}
		return t.audit(audit, 0)
	})
	return w.Since, err
}

func getWebhook(row pgx.Row, id string) (envy.Webhook, error) {
	w, err := storeutil.ScanWebhook(row.Scan)
	if errors.Is(err, pgx.ErrNoRows) {
		return envy.Webhook{}, envy.Errorf(envy.ENotFound, "webhook %s not found", id)
	}
	return w, err
}

// UpdateWebhook applies a patch to a webhook.
func (s *Store) UpdateWebhook(ctx context.Context, id string, p envy.WebhookPatch, audit []envy.AuditEntry) (envy.Webhook, error) {
	var w envy.Webhook
	err := s.tx(ctx, "update a webhook", func(t *txn) error {
		cur, err := getWebhook(t.QueryRow(t.ctx, hookSQL.Get+` FOR UPDATE`, id), id)
		if err != nil {
			return err
		}
		if w, err = storeutil.ApplyWebhookPatch(cur, p); err != nil {
			return err
		}
		if err := s.liveKeys(t, storeutil.SecretKeyIDs(w.Secret, w.OldSecret)); err != nil {
			return err
		}
		if err := t.exec(hookSQL.Update, storeutil.WebhookUpdateArgs(w)...); err != nil {
			return err
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
	err := s.tx(ctx, "delete a webhook", func(t *txn) error {
		if err := t.exec(hookSQL.DeleteDeliveries, id); err != nil {
			return err
		}
		tag, err := t.Exec(t.ctx, hookSQL.Delete, id)
		if err != nil {
			return err
		}
		existed = tag.RowsAffected() > 0
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
	err := s.tx(ctx, "reseal a webhook's secret", func(t *txn) error {
		tag, err := t.Exec(t.ctx, q, id, sealed, replacement)
		replaced = err == nil && tag.RowsAffected() > 0
		return err
	})
	return replaced && err == nil, err
}

// AddDelivery queues one more delivery.
func (s *Store) AddDelivery(ctx context.Context, d envy.Delivery) (int64, error) {
	var id int64
	err := s.tx(ctx, "queue a delivery", func(t *txn) error {
		err := t.QueryRow(t.ctx, hookSQL.AddDelivery+` RETURNING id`, storeutil.DeliveryArgs(d)...).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return envy.Errorf(envy.ENotFound, "webhook %s not found", d.WebhookID)
		}
		return err
	})
	return id, err
}

// ClaimDeliveries leases webhooks whose queue's head is due. The
// webhooks' rows are locked SKIP LOCKED: two servers claiming at once
// take different webhooks, never one twice. The head is read again once
// the lease is taken: Heads reads the deliveries as of its start, and a
// server that leased, delivered and gave back the webhook while it ran
// leaves it a head already delivered, which would be sent twice.
func (s *Store) ClaimDeliveries(ctx context.Context, owner string, now time.Time, lease time.Duration, n int) ([]envy.DeliveryClaim, error) {
	var out []envy.DeliveryClaim
	err := s.tx(ctx, "claim deliveries", func(t *txn) error {
		out = nil
		rows, err := t.Query(t.ctx, hookSQL.Heads+` FOR UPDATE OF w SKIP LOCKED`, storeutil.Nanos(now), n)
		if err != nil {
			return err
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
				return err
			}
			heads = append(heads, h)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, h := range heads {
			tag, err := t.Exec(t.ctx, hookSQL.Lease, h.hook, owner, storeutil.Nanos(now.Add(lease)), storeutil.Nanos(now))
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				continue
			}
			d, err := storeutil.ScanDelivery(t.QueryRow(t.ctx, hookSQL.Head, h.hook).Scan)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			if err != nil || d.NextAt.After(now) {
				// Delivered (or given up) since Heads read it, and nothing
				// else due: the lease goes back.
				if err := t.exec(hookSQL.Unlease, h.hook, owner); err != nil {
					return err
				}
				continue
			}
			w, err := getWebhook(t.QueryRow(t.ctx, hookSQL.Get, h.hook), h.hook)
			if err != nil {
				return err
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
	err := s.tx(ctx, "finish a delivery", func(t *txn) error {
		held = false
		var owner string
		err := t.QueryRow(t.ctx, `SELECT lease_owner FROM webhooks WHERE id = $1 FOR UPDATE`, c.Webhook.ID).Scan(&owner)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil || owner != c.Owner {
			return err
		}
		dArgs, wArgs := storeutil.FinishArgs(c, o)
		if err := t.exec(hookSQL.FinishDelivery, dArgs...); err != nil {
			return err
		}
		if err := t.exec(hookSQL.Finished, wArgs...); err != nil {
			return err
		}
		held = true
		return nil
	})
	return held && err == nil, err
}

// PruneDeliveries deletes the deliveries done before before.
func (s *Store) PruneDeliveries(ctx context.Context, before time.Time) (int64, error) {
	return s.execCount(ctx, "prune webhook deliveries", hookSQL.PruneDeliveries, storeutil.Nanos(before))
}
