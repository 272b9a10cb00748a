package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/envy-dev/envy"
)

// The delivery of webhooks: one loop per server that fans the outbox's
// events out to the webhooks that cover them and claims the due heads of
// webhooks' queues, and a goroutine per claimed delivery (at most
// WebhookOptions.InFlight at once) that sends it and records how it went.
// Several servers sharing a store run the loop each: Enqueue moves the
// outbox's cursor once (the others' tries find it moved), and a webhook's
// lease gives its queue to one server at a time.

// hooks is the Service's delivery machinery.
type hooks struct {
	wake     chan struct{} // a poke: something may be due
	stop     chan struct{}
	done     chan struct{}
	cancel   context.CancelFunc
	inflight sync.WaitGroup
	busy     atomic.Int64 // requests in flight
	server   string       // this server's part of the lease owners
	claims   atomic.Int64
	unsub    func()

	dropped atomic.Int64 // when events were last dropped for want of webhooks (Unix ns)
	// none: the store had no webhook at the last look (each Poll, and
	// after this server creates one). A change then has no event to fan
	// out (the stores write one only while a webhook exists), so its
	// notice does not wake the loop: a server without webhooks does no
	// work of theirs per write.
	none atomic.Bool

	// What /metrics shows (WebhookStats).
	delivered, failed, retried atomic.Int64
}

// WebhookStats are the counters of this server's deliveries and the state
// of the webhooks, for /metrics.
type WebhookStats struct {
	Delivered, Failed, Retried int64 // attempts by this server: delivered, given up, to retry
	InFlight                   int64
	Webhooks, Disabled, Paused int
}

// WebhookStats reports the deliveries' counters and how many webhooks are
// disabled and paused, each under its one state: counted by the store in
// one aggregate read (the public /metrics calls it at each scrape, and
// reads no webhook).
func (s *Service) WebhookStats(ctx context.Context) WebhookStats {
	st := WebhookStats{Delivered: s.hooks.delivered.Load(), Failed: s.hooks.failed.Load(), Retried: s.hooks.retried.Load(), InFlight: s.hooks.busy.Load()}
	ws, err := s.webhookStore()
	if err != nil {
		return st
	}
	c, err := ws.CountWebhooks(ctx)
	if err != nil {
		return st
	}
	st.Webhooks, st.Disabled, st.Paused = c.Total, c.Disabled, c.Paused
	return st
}

// startWebhooks starts the delivery loop when the store keeps webhooks.
func (s *Service) startWebhooks() {
	s.opts.Webhooks.defaults()
	s.hooks.wake = make(chan struct{}, 1)
	s.hooks.stop = make(chan struct{})
	s.hooks.done = make(chan struct{})
	s.hooks.unsub = func() {}
	var b [6]byte
	_, _ = rand.Read(b[:])
	s.hooks.server = hex.EncodeToString(b[:])
	if _, err := s.webhookStore(); err != nil || s.store == nil {
		close(s.hooks.done)
		return
	}
	// A change's notice may mean a new event: fan it out at once.
	s.hooks.unsub = s.store.Subscribe(func(n envy.Notice) {
		if s.hooks.none.Load() {
			return
		}
		if n.Kind == envy.NoticeScope && !n.MetaOnly || n.Kind == envy.NoticeScopeMeta || n.Kind == envy.NoticeResync {
			s.wakeWebhooks()
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	s.hooks.cancel = cancel
	go s.webhookLoop(ctx)
}

// stopWebhooks ends the loop and the requests in flight (each then records
// a retry, or nothing: its lease runs out).
func (s *Service) stopWebhooks() {
	s.hooks.unsub()
	close(s.hooks.stop)
	<-s.hooks.done
}

// wakeWebhooks pokes the loop.
func (s *Service) wakeWebhooks() {
	select {
	case s.hooks.wake <- struct{}{}:
	default:
	}
}

func (s *Service) webhookLoop(ctx context.Context) {
	defer close(s.hooks.done)
	defer s.hooks.inflight.Wait()
	defer s.hooks.cancel()
	tick := time.NewTicker(s.opts.Webhooks.Poll)
	defer tick.Stop()
	for ticked := true; ; {
		if ticked { // a webhook may have come or gone on another server
			// Whether any is left: one row read, not every webhook (the
			// loop ticks every Poll on an idle server too).
			if ws, err := s.webhookStore(); err == nil {
				if one, err := ws.ListWebhooksAfter(ctx, "", 1); err == nil {
					s.hooks.none.Store(len(one) == 0)
				}
			}
		}
		for more := true; more; {
			var err error
			if more, err = s.FanOut(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("webhooks: fanning events out failed", "err", err)
			}
		}
		if err := s.claimDeliveries(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("webhooks: claiming deliveries failed", "err", err)
		}
		ticked = false
		select {
		case <-s.hooks.stop:
			return
		case <-s.hooks.wake:
		case <-tick.C:
			ticked = true
		}
	}
}

// fanOutBatch is how many events one Enqueue takes.
const fanOutBatch = 200

// idleDrop is how often the events of a store without webhooks are dropped.
const idleDrop = 10 * time.Second

// FanOut queues the deliveries of the outbox's next events (those after
// the cursor) and reports whether more may wait. A change fires each
// webhook that subscribes to its type and whose glob matches the scope
// changed, or a scope whose resolved env depends on it (an inheriting or
// referring scope: from the resolution's Deps, as of the fan-out). A
// scope's deletion fires scope.deleted for the webhooks covering it, and
// vars.changed, its vars removed, for the covered scopes that depend on
// it (they referred to it), from the same Deps. It runs in the
// background; tests call it.
func (s *Service) FanOut(ctx context.Context) (bool, error) {
	ws, err := s.webhookStore()
	if err != nil {
		return false, err
	}
	cur, err := ws.EventCursor(ctx)
	if err != nil {
		return false, err
	}
	evs, err := ws.Events(ctx, cur, fanOutBatch)
	if err != nil || len(evs) == 0 {
		return false, err
	}
	all, err := ws.ListWebhooks(ctx)
	if err != nil {
		return false, err
	}
	// Without webhooks the events go nowhere; they are dropped (the cursor
	// moved) now and then rather than after every write, so that a store
	// without webhooks pays a write of its own only every idleDrop.
	if len(all) == 0 && len(evs) < fanOutBatch && time.Since(time.Unix(0, s.hooks.dropped.Load())) < idleDrop {
		return false, nil
	}
	idxs := map[string]map[string][]string{} // glob → dep → the covered scopes that depend on it
	dependents := func(glob, dep string) ([]string, error) {
		idx, ok := idxs[glob]
		if !ok {
			var err error
			if idx, err = s.dependents(ctx, glob); err != nil {
				return nil, err
			}
			idxs[glob] = idx
		}
		return idx[dep], nil
	}
	var ds []envy.Delivery
	now := s.now()
	add := func(w *envy.Webhook, e envy.OutboxEvent, target string) {
		msg := newMessageID()
		ds = append(ds, envy.Delivery{WebhookID: w.ID, MessageID: msg, Type: e.Type, Scope: target, Revision: e.Revision,
			Body: webhookBody(msg, w.ID, e, target), NextAt: now})
	}
	for _, e := range evs {
		for i := range all {
			w := &all[i]
			if e.Revision <= w.Since {
				continue
			}
			switch {
			case !w.Subscribes(e.Type):
			case e.Type == envy.EventVarsChanged || e.Type == envy.EventScopeChanged:
				targets, err := dependents(w.Scopes, e.Scope)
				if err != nil {
					return false, err
				}
				if envy.MatchGlob(w.Scopes, e.Scope) && !slices.Contains(targets, e.Scope) {
					add(w, e, e.Scope)
				}
				for _, t := range targets {
					add(w, e, t)
				}
			case envy.MatchGlob(w.Scopes, e.Scope):
				own := e
				own.Vars = nil // a deletion's removed vars are for its dependents (below)
				add(w, own, e.Scope)
			}
			// A deleted scope's dependents (scopes whose values referred to
			// it: none inherits it, or it could not have been deleted) lost
			// its vars from their envs: a vars.changed each, as a removal
			// of those vars from a referenced scope is, from the one
			// dependency set. The deleted scope itself has scope.deleted.
			// It fires even when the scope had no var of its own: a
			// reference reads the scope's resolved env, inherited vars too.
			if e.Type == envy.EventScopeDeleted && w.Subscribes(envy.EventVarsChanged) {
				targets, err := dependents(w.Scopes, e.Scope)
				if err != nil {
					return false, err
				}
				removal := e
				removal.Type = envy.EventVarsChanged
				for _, t := range targets {
					if t != e.Scope {
						add(w, removal, t)
					}
				}
			}
		}
	}
	ok, err := ws.Enqueue(ctx, cur, evs[len(evs)-1].Revision, ds)
	if err != nil {
		return false, err
	}
	if len(all) == 0 {
		s.hooks.dropped.Store(time.Now().UnixNano())
	}
	// Not ok: another server fanned these out; look again.
	return ok && len(evs) == fanOutBatch || !ok, nil
}

// dependents maps each scope to the scopes that glob matches whose
// resolved env depends on it (their resolutions' Deps, the one dependency
// set).
func (s *Service) dependents(ctx context.Context, glob string) (map[string][]string, error) {
	scopes, err := s.store.ListScopes(ctx, envy.ScopeQuery{Allow: func(p string) bool { return envy.MatchGlob(glob, p) }})
	if err != nil {
		return nil, err
	}
	idx := map[string][]string{}
	for _, sc := range scopes {
		r, _, err := s.resolve(ctx, sc.Path)
		if envy.ErrorCode(err) == envy.ENotFound {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		for _, d := range r.Deps {
			idx[d.Path] = append(idx[d.Path], sc.Path)
		}
	}
	return idx, nil
}

// newMessageID is a message's webhook-id: the same on every attempt.
func newMessageID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "msg_" + hex.EncodeToString(b[:])
}

// webhookPayload is a message's body: never a value.
type webhookPayload struct {
	Type      string      `json:"type"`
	Timestamp time.Time   `json:"timestamp"`
	Data      webhookData `json:"data"`
}

type webhookData struct {
	ID        string `json:"id"`
	WebhookID string `json:"webhook_id"`
	// Scope is the covered scope whose env the change changed; Source the
	// scope changed (Scope itself, or one it inherits or refers to).
	Scope    string          `json:"scope"`
	Source   string          `json:"source"`
	Revision int64           `json:"revision,omitempty"`
	Vars     []envy.EventVar `json:"vars,omitempty"`
	Actor    webhookActor    `json:"actor"`
}

type webhookActor struct {
	TokenID string `json:"token_id,omitempty"`
	Name    string `json:"name,omitempty"`
}

func webhookBody(msg, hook string, e envy.OutboxEvent, scope string) []byte {
	b, _ := json.Marshal(webhookPayload{Type: e.Type, Timestamp: e.At.UTC(), Data: webhookData{ID: msg, WebhookID: hook, Scope: scope, Source: e.Scope,
		Revision: e.Revision, Vars: e.Vars, Actor: webhookActor{TokenID: e.ActorToken, Name: e.Actor}}})
	return b
}

// claimDeliveries claims as many due deliveries as there is room in
// flight for, and sends each in a goroutine of its own.
func (s *Service) claimDeliveries(ctx context.Context) error {
	o := &s.opts.Webhooks
	if o.Sender == nil {
		return nil
	}
	free := int64(o.InFlight) - s.hooks.busy.Load()
	if free <= 0 {
		return nil
	}
	ws, err := s.webhookStore()
	if err != nil {
		return err
	}
	owner := s.hooks.server + "/" + strconv.FormatInt(s.hooks.claims.Add(1), 10)
	cs, err := ws.ClaimDeliveries(ctx, owner, s.now(), o.Lease, int(free))
	if err != nil {
		return err
	}
	for _, c := range cs {
		s.hooks.busy.Add(1)
		s.hooks.inflight.Add(1)
		go func() {
			defer s.hooks.inflight.Done()
			defer s.hooks.busy.Add(-1)
			s.deliver(ctx, ws, c)
			s.wakeWebhooks() // the webhook's next delivery, or room for another's
		}()
	}
	return nil
}

// deliver makes one attempt at a claimed delivery and records it.
func (s *Service) deliver(ctx context.Context, ws envy.WebhookStore, c envy.DeliveryClaim) {
	o := &s.opts.Webhooks
	now := s.now()
	secrets, err := s.webhookSecrets(c.Webhook, now)
	var res envy.WebhookResult
	if err != nil {
		res.Err = err.Error()
	} else {
		res = o.Sender.Send(ctx, envy.WebhookMessage{URL: c.Webhook.URL, MessageID: c.Delivery.MessageID, At: now, Body: c.Delivery.Body, Secrets: secrets})
	}
	out := envy.DeliveryOutcome{Error: res.Err, ResponseCode: res.Status, Latency: res.Latency, At: s.now(), MaxFailures: o.MaxFailures}
	switch {
	case ctx.Err() != nil:
		// The server is stopping: whether the receiver got it is unknown,
		// so it is sent again (by any server) at once, not after the lease.
		out.Status, out.NextAt, out.Error = envy.DeliveryPending, out.At, "the server stopped during the attempt"
	case res.Err == "":
		out.Status = envy.DeliveryDelivered
		s.hooks.delivered.Add(1)
	case out.At.Sub(c.Delivery.CreatedAt) >= o.GiveUpAfter:
		out.Status = envy.DeliveryFailed
		s.hooks.failed.Add(1)
	default:
		out.Status, out.NextAt = envy.DeliveryPending, out.At.Add(retryDelay(o.RetryBase, o.RetryMax, c.Delivery.Attempts+1))
		s.hooks.retried.Add(1)
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	held, err := ws.FinishDelivery(fctx, c, out)
	switch {
	case err != nil:
		s.log.Warn("webhooks: recording a delivery failed", "webhook", c.Webhook.ID, "delivery", c.Delivery.ID, "err", err)
	case !held:
		// Not held: the webhook was deleted meanwhile (its deliveries with
		// it), or its lease ran out and another server took it on.
		if _, err := ws.GetWebhook(fctx, c.Webhook.ID); envy.ErrorCode(err) == envy.ENotFound {
			s.log.Info("webhooks: the webhook was deleted during a delivery; its outcome is not recorded", "webhook", c.Webhook.ID, "delivery", c.Delivery.ID)
			return
		}
		s.log.Warn("webhooks: the lease ran out during a delivery; its outcome is not recorded", "webhook", c.Webhook.ID, "delivery", c.Delivery.ID)
	case out.Status != envy.DeliveryDelivered:
		s.log.Info("webhooks: a delivery failed", "webhook", c.Webhook.ID, "delivery", c.Delivery.ID, "attempt", c.Delivery.Attempts+1,
			"status", out.Status, "error", res.Err, "next_at", out.NextAt)
	}
}

// retryDelay is the wait before attempt n+1 (n ≥ 1): base·2^(n-1), at
// most max, less a random part of up to half, so that the receivers'
// retries spread out.
func retryDelay(base, most time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < most; i++ {
		d *= 2
	}
	d = min(d, most)
	half := int64(d / 2)
	if half <= 0 {
		return d
	}
	j, err := rand.Int(rand.Reader, big.NewInt(half))
	if err != nil {
		return d
	}
	return d - time.Duration(j.Int64())
}
