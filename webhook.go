package envy

import (
	"context"
	"fmt"
	"net/netip"
	"time"
)

// Webhooks tell other systems of changes without their polling: a change
// that commits writes its Event to the store's outbox in its own
// transaction, the Service fans each event out to the webhooks that cover
// it (a Delivery each), and one server at a time delivers a webhook's
// deliveries, in order, signed as the Standard Webhooks specification says.
// No event, delivery or payload ever holds a value.

// The event types a webhook may subscribe to.
const (
	// EventVarsChanged: a var of the scope, or of the env resolved over it
	// (an inherited or referenced scope), was added, changed or removed.
	EventVarsChanged = "vars.changed"
	// EventScopeChanged: the scope's inherits changed (or it was created
	// by a scope write), and with them the env resolved over it.
	EventScopeChanged = "scope.changed"
	// EventScopeDeleted: the scope was deleted.
	EventScopeDeleted = "scope.deleted"
	// EventRolloutPaused: a rollout of the scope paused on a failed health
	// check (fired by rollouts).
	EventRolloutPaused = "rollout.paused"
	// EventWebhookTest is what `envy webhooks test` sends; no webhook
	// subscribes to it.
	EventWebhookTest = "webhook.test"
)

// WebhookEvents are the event types a webhook may name, in the order the
// docs list them.
var WebhookEvents = []string{EventVarsChanged, EventScopeChanged, EventScopeDeleted, EventRolloutPaused}

// The change kinds of a var in an event.
const (
	VarAdded   = "added"
	VarChanged = "changed"
	VarRemoved = "removed"
)

// EventVar is one var of a change: its name, what happened to it, and
// whether it is secret. Never its value.
type EventVar struct {
	Name   string `json:"name"`
	Change string `json:"change"`
	Secret bool   `json:"secret"`
}

// OutboxEvent is one committed change as the outbox keeps it: written by the
// store in the change's own transaction, so that a change that commits
// always has its event and one that rolls back never does. Revision, the
// change's store-wide revision, orders the outbox: a store commits its
// revisions in order, so no event can appear behind one already read.
type OutboxEvent struct {
	Revision   int64
	Type       string
	Scope      string
	Vars       []EventVar // EventVarsChanged only
	Actor      string     // the acting token's name
	ActorToken string     // the acting token's id
	At         time.Time
}

// The states of a delivery.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// Webhook is a receiver of events: the events of the scopes that Scopes
// matches (a glob) and of the envs resolved over them. Its signing secret
// is kept sealed (WebhookAD); during a rotation the previous one signs
// too, until OldUntil.
type Webhook struct {
	ID          string
	URL         string
	Scopes      string
	Events      []string
	Description string
	CreatedAt   time.Time
	CreatedBy   string // the creating token's name
	CreatorID   string // the creating token's id
	// CreatorRoot is the creating token's lineage (Token.Root: the token
	// and every token minted from it below a global admin), whose
	// webhooks count together against WebhookLimit.PerCreator; "" in
	// webhooks made before it was kept, which count as CreatorID's.
	CreatorRoot string
	// Since is the store's revision when the webhook was created: it
	// hears of the changes after it only.
	Since int64

	Secret    []byte // sealed
	OldSecret []byte // sealed; nil when no rotation overlaps
	OldUntil  time.Time
	Paused    bool
	// DisabledAt is when the webhook was disabled for Failures consecutive
	// failed deliveries (zero: it is not); resuming it enables it again.
	DisabledAt time.Time
	Failures   int
}

// The states of a webhook (Webhook.State).
const (
	WebhookActive   = "active"
	WebhookPaused   = "paused"
	WebhookDisabled = "disabled"
)

// State is the webhook's one state: disabled (after failed deliveries in
// a row) wins over paused, since a webhook disabled and then paused is
// both, and everything that shows or counts webhooks by state (the API,
// the dashboard, the metrics) must put it under one.
func (w *Webhook) State() string {
	switch {
	case !w.DisabledAt.IsZero():
		return WebhookDisabled
	case w.Paused:
		return WebhookPaused
	}
	return WebhookActive
}

// Subscribes reports whether w wants events of type typ.
func (w *Webhook) Subscribes(typ string) bool {
	for _, e := range w.Events {
		if e == typ {
			return true
		}
	}
	return false
}

// WebhookAD binds a webhook's sealed signing secret to the webhook (and
// to old for the secret of the previous rotation), so that it opens as
// no value and as no other webhook's secret.
func WebhookAD(id string, old bool) []byte {
	if old {
		return []byte("webhook-old:" + id)
	}
	return []byte("webhook:" + id)
}

// Delivery is one event for one webhook: the body that is sent (built
// once, so that every attempt sends the same bytes, under the same
// message id) and how its attempts went.
type Delivery struct {
	ID        int64 // the store's, in the order deliveries are made
	WebhookID string
	MessageID string // the webhook-id header: the same on every attempt
	Type      string
	Scope     string // the covered scope the event is about
	Revision  int64
	Body      []byte
	Status    string
	Attempts  int
	NextAt    time.Time // when the next attempt is due (pending)
	LastError string
	// ResponseCode is the last attempt's HTTP status, 0 when it got none.
	ResponseCode int
	Latency      time.Duration // the last attempt's
	CreatedAt    time.Time
	DoneAt       time.Time // delivered or failed; zero while pending
}

// WebhookPatch is what an update of a webhook changes; nil leaves a field.
type WebhookPatch struct {
	URL         *string
	Events      []string // nil: unchanged
	Description *string
	Paused      *bool // false also enables a disabled webhook
	// Rotate replaces the secret: Secret is the new one, sealed, and the
	// current one becomes OldSecret until OldUntil.
	Rotate    bool
	Secret    []byte
	OldSecret []byte
	OldUntil  time.Time
	// RotateFrom is the sealed secret the rotation was planned from (the
	// one OldSecret holds, sealed anew): the store refuses the patch with
	// EConflict when the webhook's secret is no longer it, for another
	// rotation committed meanwhile and this one would drop its secret.
	RotateFrom []byte
}

// DeliveryClaim is a webhook whose lease a server took, with the delivery
// at the head of its queue.
type DeliveryClaim struct {
	Webhook  Webhook
	Delivery Delivery
	// Owner is the lease's holder; the attempt's outcome counts only while
	// it still holds it.
	Owner string
}

// DeliveryOutcome is how one attempt went.
type DeliveryOutcome struct {
	Status       string // DeliveryDelivered, DeliveryPending (retry at NextAt) or DeliveryFailed
	NextAt       time.Time
	Error        string
	ResponseCode int
	Latency      time.Duration
	At           time.Time
	// MaxFailures disables the webhook once this many deliveries in a row
	// failed (0: never).
	MaxFailures int
}

// WebhookStore is the optional capability of a Store that keeps webhooks
// and an outbox of events (both stores have it). The store writes an
// OutboxEvent in the transaction of every change of an env (a Write that
// changes a value, a secret flag or a var's presence; a PutScope that
// creates a scope or changes its inherits; a DeleteScope), and
// AddEvent's.
type WebhookStore interface {
	// AddEvent writes an event of its own (a rollout's, a test's) at the
	// next revision, and returns it.
	AddEvent(ctx context.Context, e OutboxEvent) (int64, error)
	// Events returns the outbox's events after revision after, in order.
	Events(ctx context.Context, after int64, limit int) ([]OutboxEvent, error)
	// EventCursor is the revision up to which events were fanned out.
	EventCursor(ctx context.Context) (int64, error)
	// Enqueue adds the deliveries of the events up to upto and moves the
	// cursor from after to upto, in one transaction, and drops those
	// events from the outbox; ok is false (nothing written) when the
	// cursor is no longer after: another server fanned them out.
	Enqueue(ctx context.Context, after, upto int64, ds []Delivery) (ok bool, err error)

	// CreateWebhook stores w with its Since set to the store's revision
	// as its own transaction reads it, and returns that revision: every
	// change that commits after the webhook writes its event (on a store
	// shared by several servers, the read waits for the changes that
	// took their revisions before it, and the changes after it wait for
	// the webhook's commit before they write their events).
	CreateWebhook(ctx context.Context, w Webhook, audit []AuditEntry) (since int64, err error)
	// CreateWebhookWithin is CreateWebhook within lim: it refuses, with
	// ErrWebhookLimit's EConflict and nothing written, a webhook beyond
	// lim.Max in the store or beyond lim.PerCreator of its CreatorRoot, as
	// counted in its own transaction (on a store shared by several
	// servers, creations take turns: none counts past another's).
	CreateWebhookWithin(ctx context.Context, w Webhook, lim WebhookLimit, audit []AuditEntry) (since int64, err error)
	GetWebhook(ctx context.Context, id string) (Webhook, error)
	// ListWebhooks returns every webhook, by id.
	ListWebhooks(ctx context.Context) ([]Webhook, error)
	// ListWebhooksAfter returns at most limit webhooks whose id is after
	// after ("": from the first), by id: one page of ListWebhooks.
	ListWebhooksAfter(ctx context.Context, after string, limit int) ([]Webhook, error)
	// CountWebhooks counts the webhooks by state (Webhook.State) in one
	// aggregate read, no webhook read whole: what /metrics shows.
	CountWebhooks(ctx context.Context) (WebhookCounts, error)
	UpdateWebhook(ctx context.Context, id string, p WebhookPatch, audit []AuditEntry) (Webhook, error)
	// DeleteWebhook deletes a webhook with its deliveries.
	DeleteWebhook(ctx context.Context, id string, audit []AuditEntry) (existed bool, err error)
	// ReplaceWebhookSecret puts replacement in place of the webhook's
	// sealed secret (old: its previous secret, Webhook.OldSecret) if the
	// webhook still exists and that secret is still sealed (a webhook
	// deleted or rotated meanwhile is left alone: replaced is false), and
	// changes nothing else. It is how a reseal
	// (service.ResealWebhookSecrets) seals the secrets again under the
	// newest data key.
	ReplaceWebhookSecret(ctx context.Context, id string, old bool, sealed, replacement []byte) (replaced bool, err error)

	// Deliveries returns a webhook's deliveries, newest first, those with
	// an id below before when it is > 0.
	Deliveries(ctx context.Context, webhookID string, before int64, limit int) ([]Delivery, error)
	// AddDelivery queues one more delivery (a redelivery, a test) at the
	// end of the webhook's queue and returns its id.
	AddDelivery(ctx context.Context, d Delivery) (int64, error)
	// GetDelivery returns one delivery of a webhook.
	GetDelivery(ctx context.Context, webhookID string, id int64) (Delivery, error)
	// ClaimDeliveries takes the lease, until now+lease, of at most n
	// webhooks that are neither paused nor disabled, whose lease is free
	// (or ran out) and whose oldest pending delivery is due, and returns
	// each with that delivery. Among servers sharing the store, one
	// webhook is leased to one server at a time, so its deliveries go one
	// at a time, in order.
	ClaimDeliveries(ctx context.Context, owner string, now time.Time, lease time.Duration, n int) ([]DeliveryClaim, error)
	// FinishDelivery records an attempt's outcome and frees the lease,
	// if owner still holds it (held=false: it ran out and another server
	// may have taken it; nothing is written).
	FinishDelivery(ctx context.Context, c DeliveryClaim, o DeliveryOutcome) (held bool, err error)
	// PruneDeliveries deletes the deliveries delivered or failed before
	// before; pending ones stay.
	PruneDeliveries(ctx context.Context, before time.Time) (deleted int64, err error)
}

// WebhookLimit bounds the webhooks a store keeps (CreateWebhookWithin);
// a zero field bounds nothing.
type WebhookLimit struct {
	Max        int // webhooks in the store
	PerCreator int // webhooks of the new one's CreatorRoot (its lineage)
}

// The Field types of ErrWebhookLimit: which bound a creation reached.
const (
	WebhookLimitStore   = "max_webhooks"
	WebhookLimitCreator = "max_webhooks_per_token"
)

// ErrWebhookLimit is the refusal of a webhook beyond a WebhookLimit:
// EConflict, its one Field's Type WebhookLimitStore or
// WebhookLimitCreator, naming the bound n.
func ErrWebhookLimit(kind string, n int) error {
	if kind == WebhookLimitCreator {
		return &Error{Code: EConflict, Message: fmt.Sprintf("this token already defined %d webhooks, the most one token may", n),
			Fields: []FieldError{Field("body", kind, "a token may define at most %d webhooks; delete one of its webhooks first", n)}}
	}
	return &Error{Code: EConflict, Message: fmt.Sprintf("the store already keeps %d webhooks, the most it keeps", n),
		Fields: []FieldError{Field("body", kind, "the store keeps at most %d webhooks; delete one first", n)}}
}

// WebhookCounts are the webhooks of a store by state (Webhook.State):
// Total of them, Paused and Disabled under their one state each.
type WebhookCounts struct {
	Total, Paused, Disabled int
}

// WebhookMessage is one signed request to a webhook.
type WebhookMessage struct {
	URL       string
	MessageID string
	At        time.Time
	Body      []byte
	// Secrets are the signing secrets ("whsec_…"): one, or two during a
	// rotation's overlap, each signing.
	Secrets []Sensitive
}

// WebhookResult is how a request went: the status (0 with none) and, when
// it failed, why (never a value: the receiver's body is not kept).
type WebhookResult struct {
	Status  int
	Err     string
	Latency time.Duration
}

// WebhookSender sends webhook requests (package webhook does, over HTTP).
type WebhookSender interface {
	Send(ctx context.Context, m WebhookMessage) WebhookResult
}

// The audit actions of webhooks.
const (
	AuditWebhookCreate    AuditAction = "webhook.create"
	AuditWebhookList      AuditAction = "webhook.list"
	AuditWebhookGet       AuditAction = "webhook.get"
	AuditWebhookUpdate    AuditAction = "webhook.update"
	AuditWebhookDelete    AuditAction = "webhook.delete"
	AuditWebhookRedeliver AuditAction = "webhook.redeliver"
	AuditWebhookTest      AuditAction = "webhook.test"
)

// WebhookInput is what a caller gives to create a webhook.
type WebhookInput struct {
	URL         string
	Scopes      string
	Events      []string
	Description string
}

// WebhookUpdate is what a caller may change of a webhook; nil (or false)
// leaves a field as it is.
type WebhookUpdate struct {
	URL         *string
	Events      []string
	Description *string
	Paused      *bool
	// RotateSecret makes a new signing secret; the current one keeps
	// signing too for Overlap (a duration such as "24h"; "" the default,
	// "0s" none).
	RotateSecret bool
	Overlap      string
}

// WebhookSecret is a webhook with its signing secret, which only its
// creation and a rotation show, once.
type WebhookSecret struct {
	Webhook Webhook
	Secret  Sensitive // zero when none was made
}

// internalRanges are the ranges beyond those netip names that no webhook
// may reach without AllowPrivate.
var internalRanges = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, broadcast
	netip.MustParsePrefix("::/96"),           // IPv4-compatible (deprecated), which embeds any IPv4 address
	netip.MustParsePrefix("::ffff:0:0:0/96"), // IPv4-translated (SIIT), likewise
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64, likewise
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("2002::/16"),       // 6to4, likewise
	netip.MustParsePrefix("fec0::/10"),       // site-local (deprecated)
}

// InternalAddr reports whether a is an address no webhook may reach
// without AllowPrivate: loopback, private, link-local (the clouds'
// metadata services among them), unspecified, multicast or otherwise
// internal. The same test refuses a URL naming such an address when a
// webhook is created and the address the sender dials.
func InternalAddr(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return true
	}
	for _, p := range internalRanges {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
