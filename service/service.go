// Package service is the Service: the use-cases of envy that every API
// (the native one, each dialect, the dashboard) calls, so that all of them
// get the same validation, authorization (Authorize), sealing and audit.
// It plans each change and hands it to an envy.Store to persist, and keeps
// what makes reads fast and writes fair: the token, scope, env and
// plaintext caches, kept true by the store's notices; the watches; the
// audit queue; the turns of contending writers.
//
// It speaks the domain's language (package envy) and nothing else: it
// must never import a database package or net/http, nor any store, crypto
// or HTTP package of this module; the scope cache it reads its store
// through (storecache) wraps whatever store it is given. A refusal is an *envy.Error, an audit
// entry records an envy.AuditAction and an envy.Outcome; each API turns
// them into its own statuses.
package service

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/storecache"
)

// Service is the one service every dialect calls. Every method takes the
// caller from ctx (WithCaller), checks its permissions, validates input in
// the domain and records the audit entry.
type Service struct {
	// store is cache: the store the Service was given, read through the
	// scope cache (package storecache).
	store envy.Store
	cache *storecache.Store
	// ownCache: New made cache, so Close detaches it.
	ownCache bool
	keys     envy.Keyring
	opts     Options
	log      *slog.Logger

	// The caches, each bounded in bytes (see CacheStats).
	tokens tokenCache // by the SHA-256 of the plaintext
	envs   envCache   // resolved envs by scope path
	refs   refsCache  // the references of var versions (refs.go)
	// replies holds encoded replies of the hot reads, plaintext included
	// (Options.PlaintextCacheBytes).
	replies replyCache
	// noConsumers holds scopes seen without live consumers; consumer
	// notices remove them.
	noConsumers *lruCache[string, struct{}]

	audit chan auditItem // reveals and refusals, written in batches
	// auditLinger is how long the audit loop waits for more reveals after
	// a batch that had callers: the gap, and the most in all.
	auditLinger [2]time.Duration
	// auditInFlight is how many audit batches the audit loop lets commit
	// at once: auditInFlightShared on a shared store, one on SQLite; a
	// batch goes beside another only once that one has taken
	// auditOverlapAfter.
	auditInFlight     int
	auditOverlapAfter time.Duration
	// auditStreamWait bounds a reveal's wait for an audit stream
	// (auditStreamWait; shorter in tests).
	auditStreamWait time.Duration
	// refusalRows caps the aggregated refusal rows one client adds a minute.
	refusalRows refusalRows
	// loginRefusals caps the detailed rows of refused JWT logins one
	// client adds a minute (identity.go).
	loginRefusals loginRefusals
	// oidcProviders caches the OIDC providers' discovery (oidc.go).
	oidcProviders oidcProviders
	auditDone     chan struct{}
	closeOnce     sync.Once
	// Withdrawals waiting for their reveal's batch (unanswered): Close
	// lets them queue before it closes the audit channel, and none
	// starts once it has begun.
	lateMu     sync.Mutex
	lateClosed bool
	late       sync.WaitGroup
	stopSweep  chan struct{} // closed by Close
	sweepDone  chan struct{}

	turns    turns // writers of a scope take turns while they contend
	hub      *hub
	rollouts *rollouts // rolling restarts (rollout.go)
	unfollow func()    // ends the subscription to the store's notices
	hooks    hooks     // the delivery of webhooks (webhooks_deliver.go)
	// afterPeek, when set (by tests), runs in resolve between its look at
	// the env cache's entry and its use of whatever entry is there then.
	afterPeek func()
	// checkedAudit is the store's, when it is shared, offers checks and
	// can check an audit entry's append (AuthenticateReveal).
	checkedAudit envy.CheckedAuditor
	// shared: other servers write to the store too. Their changes reach
	// this one as notices, a moment after they commit; so the caches that
	// must reflect a change at once (a revoked token, a consumer's report)
	// are not trusted, unless the store offers checks (cache.Checks).
	shared bool
}

// Options configure a Service.
type Options struct {
	ReservedPrefixes []string      // default ["ENVY_"]
	ConsumerTTL      time.Duration // default 60 s
	// MaxConsumers bounds the consumers a scope keeps (default 1000): a
	// new one beyond it takes the place of one that stopped reporting, or
	// is refused when all are live.
	MaxConsumers int
	// ConsumerRetention is how long a consumer that stopped reporting is
	// kept before the sweep deletes it (default 24 h).
	ConsumerRetention time.Duration
	// AuditRetention is how long audit entries are kept (default one
	// year, 365 days); the sweep deletes older ones.
	AuditRetention time.Duration
	// SweepEvery is how often the background sweep runs (default 10 min);
	// negative turns it off (Sweep can still be called).
	SweepEvery time.Duration
	Logger     *slog.Logger
	Now        func() time.Time
	// TokenCacheBytes, EnvCacheBytes and ScopeCacheBytes bound the caches
	// of tokens, of resolved envs and of scopes (package storecache, which
	// New puts in front of the store unless it is one already; none on a
	// shared store without checks); 0 means the default (4 MB, 16 MB,
	// 32 MB), < 0 no cache.
	TokenCacheBytes int
	EnvCacheBytes   int
	ScopeCacheBytes int
	// PlaintextCacheBytes bounds the cache of encoded resolved envs and
	// masked var lists (EnvReply, VarListReply), which hold plaintext
	// values; 0 means the default (8 MB), < 0 no cache: every read opens
	// and encodes its values.
	PlaintextCacheBytes int
	// Verifier verifies the JWTs of workload logins (JWT trusts,
	// identity.Verifier); nil refuses every such login.
	Verifier envy.TokenVerifier
	// AuditStream, when set, gets every audit entry the store gets, and
	// refuses requests that must be audited while it can't record them
	// (package auditstream); Ready fails meanwhile.
	AuditStream AuditStream
	// RolloutLease is how long past a scope's health_timeout a rollout
	// slot stays held by an instance that neither reports its new
	// revision nor says goodbye (its server or process lost): default
	// 30 s. RolloutPoll is how often a server looks for slots freed on
	// other servers (default 500 ms).
	RolloutLease time.Duration
	RolloutPoll  time.Duration
	// OnRolloutPaused, when set, is called (on its own goroutine's time:
	// keep it short) each time a scope's rollout pauses on this server:
	// the hook for events out (webhooks).
	OnRolloutPaused func(envy.RolloutPause)
	// Webhooks configure the delivery of webhooks (webhooks.go).
	Webhooks WebhookOptions
}

// The default cache bounds. The resolved envs hold sealed values that the
// scope cache may hold too, so the sum overstates what they add.
const (
	defaultTokenCacheBytes = 4 << 20  // some 10,000 tokens
	defaultEnvCacheBytes   = 16 << 20 // some 80,000 resolved vars
	defaultScopeCacheBytes = 32 << 20 // some 100,000 vars
	// DefaultPlaintextCacheBytes is the default bound of the plaintext
	// cache: some 2,000 replies of 50 vars.
	DefaultPlaintextCacheBytes = 8 << 20
	noConsumersBytes           = 1 << 20 // some 10,000 scopes
)

// New returns a Service over store and keys. It reads the store through a
// scope cache (storecache.New, bounded by Options.ScopeCacheBytes) unless
// store is a *storecache.Store already, so that no caller must remember
// one. Call Close to flush the audit log.
func New(store envy.Store, keys envy.Keyring, opts Options) *Service {
	if opts.ReservedPrefixes == nil {
		opts.ReservedPrefixes = []string{"ENVY_"}
	}
	if opts.ConsumerTTL <= 0 {
		opts.ConsumerTTL = 60 * time.Second
	}
	if opts.MaxConsumers <= 0 {
		opts.MaxConsumers = 1000
	}
	if opts.ConsumerRetention <= 0 {
		opts.ConsumerRetention = 24 * time.Hour
	}
	if opts.AuditRetention <= 0 {
		opts.AuditRetention = 365 * 24 * time.Hour
	}
	if opts.SweepEvery == 0 {
		opts.SweepEvery = 10 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.TokenCacheBytes == 0 {
		opts.TokenCacheBytes = defaultTokenCacheBytes
	}
	if opts.EnvCacheBytes == 0 {
		opts.EnvCacheBytes = defaultEnvCacheBytes
	}
	if opts.ScopeCacheBytes == 0 {
		opts.ScopeCacheBytes = defaultScopeCacheBytes
	}
	if opts.PlaintextCacheBytes == 0 {
		opts.PlaintextCacheBytes = DefaultPlaintextCacheBytes
	}
	if opts.RolloutLease <= 0 {
		opts.RolloutLease = defaultRolloutLease
	}
	if opts.RolloutPoll <= 0 {
		opts.RolloutPoll = defaultRolloutPoll
	}
	s := &Service{
		store:             store,
		keys:              keys,
		opts:              opts,
		log:               opts.Logger,
		audit:             make(chan auditItem, 4096),
		auditLinger:       [2]time.Duration{auditLingerGap, auditLingerMax},
		auditInFlight:     1,
		auditOverlapAfter: auditOverlapAfter,
		auditStreamWait:   auditStreamWait,
		auditDone:         make(chan struct{}),
		stopSweep:         make(chan struct{}),
		sweepDone:         make(chan struct{}),

		tokens:      tokenCache{newLRU[[32]byte, cachedToken](opts.TokenCacheBytes)},
		envs:        envCache{newLRU[string, *envy.Resolution](opts.EnvCacheBytes)},
		refs:        newRefsCache(4 << 20),
		replies:     newReplyCache(opts.PlaintextCacheBytes),
		noConsumers: newLRU[string, struct{}](noConsumersBytes),
	}
	s.hub = newHub(s)
	s.rollouts = newRollouts(s, store)
	s.unfollow = func() {}
	if store != nil {
		cache, ok := store.(*storecache.Store)
		if !ok {
			cache, s.ownCache = storecache.New(store, opts.ScopeCacheBytes), true
		}
		s.store, s.cache = cache, cache
		s.shared = store.Shared()
		if ca, ok := cache.Unwrap().(envy.CheckedAuditor); ok && s.shared && cache.Checks() {
			s.checkedAudit = ca
		}
		if s.shared {
			s.auditInFlight = auditInFlightShared
			s.auditLinger = [2]time.Duration{auditLingerGapShared, auditLingerMaxShared}
		}
		s.unfollow = s.follow(s.store)
	}
	s.startWebhooks()
	go s.auditLoop()
	go s.sweepLoop()
	return s
}

// sweepLoop runs Sweep every opts.SweepEvery until Close.
func (s *Service) sweepLoop() {
	defer close(s.sweepDone)
	if s.opts.SweepEvery < 0 {
		return
	}
	tick := time.NewTicker(s.opts.SweepEvery)
	defer tick.Stop()
	for {
		select {
		case <-s.stopSweep:
			return
		case <-tick.C:
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if err := s.Sweep(ctx); err != nil {
				s.log.Warn("sweep failed", "err", err)
			}
			cancel()
		}
	}
}

// Sweep deletes what is kept no longer: consumers that stopped reporting
// more than opts.ConsumerRetention ago, and audit entries older than
// opts.AuditRetention. It runs in the background; tests call it.
func (s *Service) Sweep(ctx context.Context) error {
	now := s.now()
	consumers, err := s.store.PruneConsumers(ctx, now.Add(-s.opts.ConsumerRetention))
	if err != nil {
		return err
	}
	audit, err := s.store.PruneAudit(ctx, now.Add(-s.opts.AuditRetention))
	if err != nil {
		return err
	}
	logins, err := s.pruneLoginTokens(ctx, now)
	if err != nil {
		return err
	}
	deliveries, err := s.pruneDeliveries(ctx, now)
	if err != nil {
		return err
	}
	if consumers > 0 || audit > 0 || logins > 0 || deliveries > 0 {
		s.log.Info("swept", "consumers", consumers, "audit_entries", audit, "login_tokens", logins, "webhook_deliveries", deliveries)
	}
	return nil
}

// Close flushes pending audit entries and stops background work. It does
// not close the store.
func (s *Service) Close() {
	s.closeOnce.Do(func() {
		s.unfollow()
		if s.ownCache {
			s.cache.Detach()
		}
		close(s.stopSweep)
		<-s.sweepDone
		s.rollouts.close()
		s.stopWebhooks()
		s.hub.close()
		s.lateMu.Lock()
		s.lateClosed = true
		s.lateMu.Unlock()
		s.late.Wait() // the audit loop still runs: their reveals' batches answer
		close(s.audit)
		<-s.auditDone
	})
}

func (s *Service) now() time.Time { return s.opts.Now().UTC() }

// ReservedPrefixes returns the reserved name prefixes.
func (s *Service) ReservedPrefixes() []string { return s.opts.ReservedPrefixes }

// Ready checks that the store answers, the keyring works and, with audit
// streams, that one can record an entry.
func (s *Service) Ready(ctx context.Context) error {
	if err := s.store.Ping(ctx); err != nil {
		return err
	}
	ad := envy.AD("envy-readyz", "PROBE", 1)
	sealed, err := s.keys.Seal([]byte("probe"), ad)
	if err != nil {
		return envy.Errorf(envy.EUnavailable, "keyring cannot seal")
	}
	if _, err := s.keys.Open(sealed, ad); err != nil {
		return envy.Errorf(envy.EUnavailable, "keyring cannot open")
	}
	if s.opts.AuditStream != nil {
		return s.opts.AuditStream.Ready()
	}
	return nil
}

// Caller is who makes a request: the authenticated token (nil before
// authentication), the request id and the client address, for permission
// checks and the audit log.
type Caller struct {
	Token     *envy.Token
	RequestID string
	Client    string

	// checked is the tree of the request's scope, checked together with
	// the token (AuthenticateFor), for the request's first read of it.
	checked atomic.Pointer[checkedTree]
	// deferred is set when AuthenticateWrite left the check of a cached
	// token to the request's write, and unchecked until that check (or
	// ConfirmToken) found the token live; notLive once either found it
	// revoked. tokenKey is its cache key.
	deferred, unchecked, notLive atomic.Bool
	tokenKey                     [sha256.Size]byte
	// uncheckedTree is set while the request's first read of the tree of
	// uncheckedPath may take it as cached, unchecked (AuthenticateReveal):
	// its reveal's audit entry checks it.
	uncheckedTree atomic.Bool
	uncheckedPath string
	// servedUnchecked is set once that read took the tree as cached: what
	// the request works out from it is checked by its reveal's audit
	// entry, and any other outcome is worked out again from a checked
	// read (EnvReplyRaw), its refusals recorded only then (Refused).
	servedUnchecked atomic.Bool
}

// Deferred reports whether the check of the caller's token was left to
// its write (AuthenticateWrite): a request that fails must call
// ConfirmToken before it answers.
func (c *Caller) Deferred() bool { return c.deferred.Load() }

// CallerKey is the context key under which WithCaller keeps the caller.
// A context type of one's own may answer it from its Value method, as the
// HTTP middleware's per-request context does, to spare every request the
// context that WithCaller adds.
type CallerKey struct{}

// WithCaller returns a context that carries the caller.
func WithCaller(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, CallerKey{}, c)
}

// CallerFrom returns the caller in ctx, or an empty one.
func CallerFrom(ctx context.Context) *Caller {
	if c, ok := ctx.Value(CallerKey{}).(*Caller); ok {
		return c
	}
	return &Caller{}
}

// Store returns the store as the Service reads it: through its scope cache
// (package storecache). A change made behind the Service's back that no
// notice tells, a reseal (crypto.Keyring.Reseal), must go through it, so
// that the cache lets go of the bytes it replaced.
func (s *Service) Store() envy.Store { return s.store }
