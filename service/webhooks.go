package service

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/envy-dev/envy"
)

// Webhooks (docs/webhooks.md): a caller who holds admin on every scope a
// glob matches may have the events of those scopes sent to a URL. The
// store writes each change's event to its outbox in the change's own
// transaction (envy.WebhookStore); this file's loop (webhooks_deliver.go)
// fans the events out to the webhooks that cover them and delivers them.

// WebhookOptions configure the delivery of webhooks.
type WebhookOptions struct {
	// Sender makes the requests (package webhook); nil keeps webhooks and
	// queues their deliveries, but sends nothing.
	Sender envy.WebhookSender
	// AllowPrivate accepts URLs to loopback and private addresses, and
	// plain http (--webhook-allow-private); the Sender checks the address
	// it dials too.
	AllowPrivate bool
	// RetryBase is the delay before the first retry (default 2 s); each
	// retry doubles it, up to RetryMax (default 1 h), less a random part
	// of up to half (jitter).
	RetryBase, RetryMax time.Duration
	// GiveUpAfter is how long a delivery is retried before it is marked
	// failed (default 24 h).
	GiveUpAfter time.Duration
	// MaxFailures disables a webhook once this many of its deliveries in
	// a row failed (default 5).
	MaxFailures int
	// Lease is how long a server holds a webhook's queue for one attempt
	// (default 1 min; more than the Sender's time-out): a server killed
	// mid-delivery leaves it to another once it runs out.
	Lease time.Duration
	// InFlight bounds the requests this server makes at once (default 8).
	InFlight int
	// Poll is how often due retries and other servers' events are looked
	// for when no notice wakes the loop (default 1 s).
	Poll time.Duration
	// Overlap is how long a rotated secret keeps signing by default
	// (default 24 h).
	Overlap time.Duration
	// Retention is how long a delivery delivered or failed is kept
	// (default 30 days); the sweep deletes older ones.
	Retention time.Duration
	// Max is the most webhooks the store keeps (--max-webhooks, default
	// 1000); a token that does not hold admin on ** may define at most
	// a tenth of them (MaxPerToken). Beyond, a creation is refused (409).
	// The delivery loop reads every webhook for each batch of events it
	// fans out, and so does the dashboard's list: Max bounds that work.
	Max int
}

// MaxPerToken is the most webhooks one token that does not hold admin on
// ** may define: a tenth of Max, at least 1.
func (o *WebhookOptions) MaxPerToken() int {
	return max(o.Max/10, 1)
}

func (o *WebhookOptions) defaults() {
	if o.RetryBase <= 0 {
		o.RetryBase = 2 * time.Second
	}
	if o.RetryMax <= 0 {
		o.RetryMax = time.Hour
	}
	if o.GiveUpAfter <= 0 {
		o.GiveUpAfter = 24 * time.Hour
	}
	if o.MaxFailures <= 0 {
		o.MaxFailures = 5
	}
	if o.Lease <= 0 {
		o.Lease = time.Minute
	}
	if o.InFlight <= 0 {
		o.InFlight = 8
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.Overlap <= 0 {
		o.Overlap = 24 * time.Hour
	}
	if o.Retention <= 0 {
		o.Retention = 30 * 24 * time.Hour
	}
	if o.Max <= 0 {
		o.Max = DefaultMaxWebhooks
	}
}

// DefaultMaxWebhooks is WebhookOptions.Max's default.
const DefaultMaxWebhooks = 1000

// maxWebhookOverlap bounds a rotation's overlap.
const maxWebhookOverlap = 7 * 24 * time.Hour

// webhookStore returns the store's webhooks, or an error when the store
// keeps none.
func (s *Service) webhookStore() (envy.WebhookStore, error) {
	var st envy.Store = s.store
	if s.cache != nil {
		st = s.cache.Unwrap()
	}
	if ws, ok := st.(envy.WebhookStore); ok {
		return ws, nil
	}
	return nil, envy.Errorf(envy.EInternal, "the store keeps no webhooks")
}

// validWebhookURL checks a webhook's URL: https (or, with AllowPrivate,
// http), a host, no credentials, no fragment, and no literal loopback or
// private address unless AllowPrivate. A name is checked when dialled.
func (s *Service) validWebhookURL(loc, raw string) *envy.FieldError {
	bad := func(why string) *envy.FieldError {
		f := envy.Field(loc, "invalid_url", "%s", why)
		return &f
	}
	if raw == "" || len(raw) > 2000 || !envy.Printable(raw) {
		return bad("url must be an https URL of at most 2000 characters")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Hostname() == "" {
		return bad("url must be an absolute https URL, such as https://ci.example.com/hooks/envy")
	}
	allow := s.opts.Webhooks.AllowPrivate
	switch {
	case u.Scheme != "https" && !(u.Scheme == "http" && allow):
		return bad("url must use https (plain http only on a server started with --webhook-allow-private)")
	case u.User != nil:
		return bad("url must not hold credentials")
	case u.Fragment != "":
		return bad("url must not have a fragment")
	}
	if ip, err := netip.ParseAddr(u.Hostname()); !allow && (err == nil && envy.InternalAddr(ip) || strings.EqualFold(u.Hostname(), "localhost")) {
		return bad("url must not point at a loopback or private address (allowed only on a server started with --webhook-allow-private)")
	}
	return nil
}

// validEvents checks a webhook's event types.
func validEvents(loc string, evs []string) []envy.FieldError {
	if len(evs) == 0 {
		return []envy.FieldError{envy.Field(loc, "missing", "at least one event is required: %s", strings.Join(envy.WebhookEvents, ", "))}
	}
	var fields []envy.FieldError
	for i, e := range evs {
		if !slices.Contains(envy.WebhookEvents, e) {
			fields = append(fields, envy.Field(fmt.Sprintf("%s[%d]", loc, i), "invalid_event", "event must be one of %s", strings.Join(envy.WebhookEvents, ", ")))
		} else if slices.Index(evs, e) < i {
			fields = append(fields, envy.Field(fmt.Sprintf("%s[%d]", loc, i), "duplicate", "event %s is named twice", e))
		}
	}
	return fields
}

func validDescription(loc, d string) *envy.FieldError {
	if len(d) > 500 || !envy.Printable(d) {
		f := envy.Field(loc, "invalid_description", "description must be at most 500 printable characters")
		return &f
	}
	return nil
}

// newWebhookSecret returns a new signing secret: whsec_ and 32 random
// bytes in base64, as Standard Webhooks has them.
func newWebhookSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// sealWebhookSecret seals a webhook's signing secret.
func (s *Service) sealWebhookSecret(id string, old bool, secret string) ([]byte, error) {
	b, err := s.keys.Seal([]byte(secret), envy.WebhookAD(id, old))
	if err != nil {
		return nil, envy.Errorf(envy.EInternal, "seal a webhook's secret")
	}
	return b, nil
}

// webhookSecrets opens the secrets that sign w's messages at now: its
// secret, and the previous one while a rotation's overlap lasts.
func (s *Service) webhookSecrets(w envy.Webhook, now time.Time) ([]envy.Sensitive, error) {
	b, err := s.keys.Open(w.Secret, envy.WebhookAD(w.ID, false))
	if err != nil {
		return nil, envy.Errorf(envy.EInternal, "open webhook %s's secret", w.ID)
	}
	out := []envy.Sensitive{envy.NewSensitive(string(b))}
	if w.OldSecret != nil && now.Before(w.OldUntil) {
		if b, err := s.keys.Open(w.OldSecret, envy.WebhookAD(w.ID, true)); err == nil {
			out = append(out, envy.NewSensitive(string(b)))
		}
	}
	return out, nil
}

// ResealWebhookSecrets seals every webhook's signing secret, and its
// previous one while it is kept (Webhook.OldSecret), again under the
// keyring's newest data key, so that a reseal, which retires the older
// data keys, leaves them openable (ResealSecrets runs it). Each is
// replaced only where it is still the one read (ReplaceWebhookSecret): a
// webhook deleted or rotated meanwhile is left alone. It returns how many
// it sealed again.
func (s *Service) ResealWebhookSecrets(ctx context.Context) (int, error) {
	ws, err := s.webhookStore()
	if err != nil {
		return 0, nil // a store without webhooks has no secrets
	}
	n, after := 0, ""
	for {
		hooks, err := ws.ListWebhooksAfter(ctx, after, 100)
		if err != nil || len(hooks) == 0 {
			return n, err
		}
		for _, w := range hooks {
			after = w.ID
			for _, old := range []bool{false, true} {
				sealed := w.Secret
				if old {
					sealed = w.OldSecret
				}
				if len(sealed) == 0 {
					continue
				}
				ad := envy.WebhookAD(w.ID, old)
				plain, err := s.keys.Open(sealed, ad)
				if err != nil {
					return n, fmt.Errorf("open webhook %s's secret: %w", w.ID, err)
				}
				resealed, err := s.keys.Seal(plain, ad)
				clear(plain)
				if err != nil {
					return n, fmt.Errorf("seal webhook %s's secret: %w", w.ID, err)
				}
				ok, err := ws.ReplaceWebhookSecret(ctx, w.ID, old, sealed, resealed)
				if err != nil {
					return n, err
				}
				if ok {
					n++
				}
			}
		}
	}
}

// CreateWebhook creates a webhook. The caller must hold admin on every
// scope its glob matches. Its signing secret is in the reply, and
// nowhere else, ever again.
func (s *Service) CreateWebhook(ctx context.Context, in envy.WebhookInput) (envy.WebhookSecret, error) {
	var fields []envy.FieldError
	if f := s.validWebhookURL("body.url", in.URL); f != nil {
		fields = append(fields, *f)
	}
	if in.Scopes == "" {
		fields = append(fields, envy.Field("body.scopes", "missing", "scopes is required: a glob such as acme/web/**"))
	} else if f := envy.ValidateGlob("body.scopes", in.Scopes); f != nil {
		fields = append(fields, *f)
	}
	fields = append(fields, validEvents("body.events", in.Events)...)
	if f := validDescription("body.description", in.Description); f != nil {
		fields = append(fields, *f)
	}
	if len(fields) > 0 {
		return envy.WebhookSecret{}, envy.Invalid(fields...)
	}
	caller := CallerFrom(ctx).Token
	if caller == nil {
		return envy.WebhookSecret{}, envy.Errorf(envy.EUnauthenticated, "authentication required")
	}
	if !envy.Holds(caller, in.Scopes, envy.ActAdmin) {
		s.Refused(ctx, envy.AuditWebhookCreate, "", envy.OutcomeForbidden)
		return envy.WebhookSecret{}, &envy.Error{Code: envy.EForbidden, Message: "a webhook needs the admin permission on every scope it covers",
			Fields: []envy.FieldError{envy.Field("body.scopes", "not_admin", "the token does not hold admin on %s", in.Scopes)}}
	}
	ws, err := s.webhookStore()
	if err != nil {
		return envy.WebhookSecret{}, err
	}
	w := envy.Webhook{ID: "wh_" + strings.ReplaceAll(newID(), "-", ""), URL: in.URL, Scopes: in.Scopes, Events: in.Events, Description: in.Description,
		CreatedAt: s.now(), CreatedBy: caller.Name, CreatorID: caller.ID, CreatorRoot: caller.Root()}
	secret := newWebhookSecret()
	if w.Secret, err = s.sealWebhookSecret(w.ID, false, secret); err != nil {
		return envy.WebhookSecret{}, err
	}
	e := s.entry(ctx, envy.AuditWebhookCreate, "", []string{w.ID}, envy.OutcomeCreated)
	rec, err := s.toStreams(1)
	if err != nil {
		return envy.WebhookSecret{}, err
	}
	// At most Max in the store, and a tenth of them per token lineage
	// (the token and those minted from it, as for the rate limit) unless
	// it holds admin on **: a token holding admin on one team's scopes,
	// or the children it mints, cannot take every place (counted in the
	// creation's transaction).
	lim := envy.WebhookLimit{Max: s.opts.Webhooks.Max}
	if !envy.IsGlobalAdmin(caller) {
		lim.PerCreator = s.opts.Webhooks.MaxPerToken()
	}
	w.Since, err = ws.CreateWebhookWithin(ctx, w, lim, []envy.AuditEntry{e})
	if rec.done(err, 0, e); err != nil {
		if le := webhookLimitErr(err, lim); le != nil {
			s.Refused(ctx, envy.AuditWebhookCreate, "", envy.OutcomeConflict)
			return envy.WebhookSecret{}, le
		}
		return envy.WebhookSecret{}, err
	}
	s.hooks.none.Store(false) // the changes from now on have their events
	return envy.WebhookSecret{Webhook: w, Secret: envy.NewSensitive(secret)}, nil
}

// webhookLimitErr is the refusal of a creation beyond lim, naming the
// limit and its flag, when err is the store's envy.ErrWebhookLimit; nil
// otherwise.
func webhookLimitErr(err error, lim envy.WebhookLimit) error {
	e := envy.AsError(err)
	if e == nil || e.Code != envy.EConflict || len(e.Fields) != 1 {
		return nil
	}
	switch e.Fields[0].Type {
	case envy.WebhookLimitStore:
		return &envy.Error{Code: envy.EConflict, Fields: e.Fields,
			Message: fmt.Sprintf("the store already keeps %d webhooks, the most it keeps (--max-webhooks); delete one to make room", lim.Max)}
	case envy.WebhookLimitCreator:
		return &envy.Error{Code: envy.EConflict, Fields: e.Fields,
			Message: fmt.Sprintf("this token and the tokens of its lineage already defined %d webhooks, the most a token without admin on ** may (a tenth of --max-webhooks); delete one of them to make room", lim.PerCreator)}
	}
	return nil
}

// webhookFor returns webhook id when the caller holds admin on every
// scope it covers; to anyone else it does not exist.
func (s *Service) webhookFor(ctx context.Context, id string, action envy.AuditAction) (envy.Webhook, envy.WebhookStore, error) {
	caller := CallerFrom(ctx).Token
	if caller == nil {
		return envy.Webhook{}, nil, envy.Errorf(envy.EUnauthenticated, "authentication required")
	}
	ws, err := s.webhookStore()
	if err != nil {
		return envy.Webhook{}, nil, err
	}
	w, err := ws.GetWebhook(ctx, id)
	if err != nil && envy.ErrorCode(err) != envy.ENotFound {
		return envy.Webhook{}, nil, err
	}
	if err != nil || !envy.Holds(caller, w.Scopes, envy.ActAdmin) {
		s.Refused(ctx, action, "", envy.OutcomeNotFound)
		return envy.Webhook{}, nil, envy.Errorf(envy.ENotFound, "webhook %s not found", id)
	}
	return w, ws, nil
}

// GetWebhook returns a webhook whose scopes the caller administers.
func (s *Service) GetWebhook(ctx context.Context, id string) (envy.Webhook, error) {
	w, _, err := s.webhookFor(ctx, id, envy.AuditWebhookGet)
	return w, err
}

// ListWebhooksPage lists one page of the webhooks whose scopes the caller
// administers, by id: at most limit (1 to 1000, 0: 100) after cursor (the
// previous page's NextCursor, "" for the first), with NextCursor set when
// more may follow. It reads the store a page at a time, so that a caller
// who administers few of many webhooks reads no more than it must.
func (s *Service) ListWebhooksPage(ctx context.Context, cursor string, limit int) (envy.Page[envy.Webhook], error) {
	limit, err := limitOf("query.limit", limit)
	if err != nil {
		return envy.Page[envy.Webhook]{}, err
	}
	if len(cursor) > 200 || !envy.Printable(cursor) {
		return envy.Page[envy.Webhook]{}, envy.Invalid(envy.Field("query.cursor", "invalid_cursor", "cursor must be the next_cursor of a previous page"))
	}
	caller := CallerFrom(ctx).Token
	if caller == nil {
		return envy.Page[envy.Webhook]{}, envy.Errorf(envy.EUnauthenticated, "authentication required")
	}
	ws, err := s.webhookStore()
	if err != nil {
		return envy.Page[envy.Webhook]{}, err
	}
	p, err := fetchPage(limit, func(n int) ([]envy.Webhook, error) {
		out := []envy.Webhook{}
		// Read by batches of at least 200: a caller holding few of many
		// webhooks takes few round trips to fill a small page.
		size := max(n, 200)
		for after := cursor; ; {
			batch, err := ws.ListWebhooksAfter(ctx, after, size)
			if err != nil {
				return nil, err
			}
			for _, w := range batch {
				if envy.Holds(caller, w.Scopes, envy.ActAdmin) {
					if out = append(out, w); len(out) == n {
						return out, nil
					}
				}
			}
			if len(batch) < size {
				return out, nil
			}
			after = batch[len(batch)-1].ID
		}
	}, func(w envy.Webhook) string { return w.ID })
	if p.Items == nil && err == nil {
		p.Items = []envy.Webhook{}
	}
	return p, err
}

// ListWebhooks lists the webhooks whose scopes the caller administers, by
// id: all of them (at most WebhookOptions.Max), for the dashboard; the API
// pages them (ListWebhooksPage).
func (s *Service) ListWebhooks(ctx context.Context) ([]envy.Webhook, error) {
	caller := CallerFrom(ctx).Token
	if caller == nil {
		return nil, envy.Errorf(envy.EUnauthenticated, "authentication required")
	}
	ws, err := s.webhookStore()
	if err != nil {
		return nil, err
	}
	all, err := ws.ListWebhooks(ctx)
	if err != nil {
		return nil, err
	}
	out := []envy.Webhook{}
	for _, w := range all {
		if envy.Holds(caller, w.Scopes, envy.ActAdmin) {
			out = append(out, w)
		}
	}
	return out, nil
}

// UpdateWebhook changes a webhook: its URL, events or description, pauses
// or resumes it (resuming enables a disabled one), or rotates its secret,
// the old one signing too for the overlap.
func (s *Service) UpdateWebhook(ctx context.Context, id string, in envy.WebhookUpdate) (envy.WebhookSecret, error) {
	var fields []envy.FieldError
	if in.URL != nil {
		if f := s.validWebhookURL("body.url", *in.URL); f != nil {
			fields = append(fields, *f)
		}
	}
	if in.Events != nil {
		fields = append(fields, validEvents("body.events", in.Events)...)
	}
	if in.Description != nil {
		if f := validDescription("body.description", *in.Description); f != nil {
			fields = append(fields, *f)
		}
	}
	overlap := s.opts.Webhooks.Overlap
	if in.Overlap != "" {
		d, err := time.ParseDuration(in.Overlap)
		if err != nil || d < 0 || d > maxWebhookOverlap {
			fields = append(fields, envy.Field("body.overlap", "invalid_duration", "overlap must be a duration from 0s to 168h, such as 24h"))
		}
		overlap = d
		if !in.RotateSecret {
			fields = append(fields, envy.Field("body.overlap", "without_rotation", "overlap applies only with rotate_secret"))
		}
	}
	if in.URL == nil && in.Events == nil && in.Description == nil && in.Paused == nil && !in.RotateSecret {
		fields = append(fields, envy.Field("body", "empty", "nothing to change: give url, events, description, paused or rotate_secret"))
	}
	if len(fields) > 0 {
		return envy.WebhookSecret{}, envy.Invalid(fields...)
	}
	w, ws, err := s.webhookFor(ctx, id, envy.AuditWebhookUpdate)
	if err != nil {
		return envy.WebhookSecret{}, err
	}
	p := envy.WebhookPatch{URL: in.URL, Events: in.Events, Description: in.Description, Paused: in.Paused}
	var secret string
	if in.RotateSecret {
		secret = newWebhookSecret()
		p.Rotate = true
		if p.Secret, err = s.sealWebhookSecret(id, false, secret); err != nil {
			return envy.WebhookSecret{}, err
		}
	}
	e := s.entry(ctx, envy.AuditWebhookUpdate, "", []string{id}, envy.OutcomeOK)
	rec, err := s.toStreams(1)
	if err != nil {
		return envy.WebhookSecret{}, err
	}
	// A rotation keeps the secret it replaces as the old one, and the
	// store takes it only while that is still the secret (RotateFrom):
	// another rotation committed meanwhile (on this server or another)
	// would otherwise be overwritten, and the secret its reply gave
	// would sign nothing. Then it is planned again from the new one, as
	// if the two had run one after the other.
	for try := 1; ; try++ {
		if in.RotateSecret {
			if err = s.planRotation(&p, w, overlap); err != nil {
				break
			}
		}
		var up envy.Webhook
		if up, err = ws.UpdateWebhook(ctx, id, p, []envy.AuditEntry{e}); in.RotateSecret && envy.ErrorCode(err) == envy.EConflict && try < maxRotationTries {
			if w, err = ws.GetWebhook(ctx, id); err == nil {
				continue
			}
		}
		w = up
		break
	}
	if rec.done(err, 0, e); err != nil {
		return envy.WebhookSecret{}, err
	}
	s.wakeWebhooks()
	out := envy.WebhookSecret{Webhook: w}
	if secret != "" {
		out.Secret = envy.NewSensitive(secret)
	}
	return out, nil
}

// maxRotationTries bounds the plans of one rotation that other rotations
// committed ahead of: after that many, it is a conflict (409).
const maxRotationTries = 5

// planRotation sets p's old secret: w's current one, sealed as the old
// one, signing until now+overlap (none without an overlap), and the
// secret the rotation is planned from.
func (s *Service) planRotation(p *envy.WebhookPatch, w envy.Webhook, overlap time.Duration) error {
	p.RotateFrom, p.OldSecret, p.OldUntil = w.Secret, nil, time.Time{}
	if overlap <= 0 {
		return nil
	}
	cur, err := s.keys.Open(w.Secret, envy.WebhookAD(w.ID, false))
	if err != nil {
		return envy.Errorf(envy.EInternal, "open webhook %s's secret", w.ID)
	}
	if p.OldSecret, err = s.sealWebhookSecret(w.ID, true, string(cur)); err != nil {
		return err
	}
	p.OldUntil = s.now().Add(overlap)
	return nil
}

// DeleteWebhook deletes a webhook and its deliveries.
func (s *Service) DeleteWebhook(ctx context.Context, id string) error {
	_, ws, err := s.webhookFor(ctx, id, envy.AuditWebhookDelete)
	if err != nil {
		return err
	}
	e := s.entry(ctx, envy.AuditWebhookDelete, "", []string{id}, envy.OutcomeDeleted)
	rec, err := s.toStreams(1)
	if err != nil {
		return err
	}
	_, err = ws.DeleteWebhook(ctx, id, []envy.AuditEntry{e})
	rec.done(err, 0, e)
	return err
}

// Deliveries lists a webhook's deliveries, newest first.
func (s *Service) Deliveries(ctx context.Context, id, cursor string, limit int) (envy.Page[envy.Delivery], error) {
	limit, err := limitOf("query.limit", limit)
	if err != nil {
		return envy.Page[envy.Delivery]{}, err
	}
	var before int64
	if cursor != "" {
		if before, err = strconv.ParseInt(cursor, 10, 64); err != nil || before <= 0 {
			return envy.Page[envy.Delivery]{}, envy.Invalid(envy.Field("query.cursor", "invalid_cursor", "cursor must be the next_cursor of a previous page"))
		}
	}
	_, ws, err := s.webhookFor(ctx, id, envy.AuditWebhookGet)
	if err != nil {
		return envy.Page[envy.Delivery]{}, err
	}
	return fetchPage(limit, func(n int) ([]envy.Delivery, error) { return ws.Deliveries(ctx, id, before, n) },
		func(d envy.Delivery) string { return strconv.FormatInt(d.ID, 10) })
}

// Redeliver queues a delivery of a webhook again, at the end of its queue:
// the same message (id and body), attempted anew.
func (s *Service) Redeliver(ctx context.Context, id string, deliveryID int64) (envy.Delivery, error) {
	_, ws, err := s.webhookFor(ctx, id, envy.AuditWebhookRedeliver)
	if err != nil {
		return envy.Delivery{}, err
	}
	d, err := ws.GetDelivery(ctx, id, deliveryID)
	if err != nil {
		return envy.Delivery{}, err
	}
	return s.addDelivery(ctx, ws, envy.AuditWebhookRedeliver, envy.Delivery{WebhookID: id, MessageID: d.MessageID, Type: d.Type, Scope: d.Scope, Revision: d.Revision, Body: d.Body})
}

// TestWebhook queues a webhook.test message to a webhook.
func (s *Service) TestWebhook(ctx context.Context, id string) (envy.Delivery, error) {
	w, ws, err := s.webhookFor(ctx, id, envy.AuditWebhookTest)
	if err != nil {
		return envy.Delivery{}, err
	}
	e := envy.OutboxEvent{Type: envy.EventWebhookTest, Scope: w.Scopes, At: s.now()}
	if t := CallerFrom(ctx).Token; t != nil {
		e.Actor, e.ActorToken = t.Name, t.ID
	}
	msg := newMessageID()
	return s.addDelivery(ctx, ws, envy.AuditWebhookTest, envy.Delivery{WebhookID: id, MessageID: msg, Type: e.Type, Scope: w.Scopes,
		Body: webhookBody(msg, id, e, w.Scopes)})
}

func (s *Service) addDelivery(ctx context.Context, ws envy.WebhookStore, action envy.AuditAction, d envy.Delivery) (envy.Delivery, error) {
	d.Status, d.NextAt, d.CreatedAt = envy.DeliveryPending, s.now(), s.now()
	id, err := ws.AddDelivery(ctx, d)
	if err != nil {
		return envy.Delivery{}, err
	}
	d.ID = id
	e := s.entry(ctx, action, "", []string{d.WebhookID}, envy.OutcomeOK)
	if err := s.store.AppendAudit(ctx, e); err != nil {
		s.log.Warn("audit of a webhook delivery failed", "webhook", d.WebhookID, "err", err)
	} else {
		s.offer(e)
	}
	s.wakeWebhooks()
	return d, nil
}

// addEvent writes an event of no change of vars (a rollout that paused:
// envy.EventRolloutPaused) to the outbox, as the caller in ctx, and wakes
// the delivery loop; the webhooks covering scope that subscribe to typ
// fire. A store without webhooks takes none, and that is no error.
func (s *Service) addEvent(ctx context.Context, typ, scope string) error {
	ws, err := s.webhookStore()
	if err != nil {
		return nil
	}
	e := envy.OutboxEvent{Type: typ, Scope: scope, At: s.now()}
	if t := CallerFrom(ctx).Token; t != nil {
		e.Actor, e.ActorToken = t.Name, t.ID
	}
	if _, err := ws.AddEvent(ctx, e); err != nil {
		return err
	}
	s.wakeWebhooks()
	return nil
}

// pruneDeliveries deletes the deliveries done longer than Retention ago.
func (s *Service) pruneDeliveries(ctx context.Context, now time.Time) (int64, error) {
	ws, err := s.webhookStore()
	if err != nil {
		return 0, nil
	}
	return ws.PruneDeliveries(ctx, now.Add(-s.opts.Webhooks.Retention))
}
