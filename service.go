package envy

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Service is the one service every dialect calls. Every method takes the
// caller from ctx (WithCaller), checks its permissions, validates input in
// the domain and records the audit entry.
type Service struct {
	store Store
	keys  Keyring
	opts  Options
	log   *slog.Logger

	tokens   sync.Map // SHA-256 → cachedToken
	resolved sync.Map // scope path → *resolved
	// noConsumers holds scopes seen without live consumers; consumer
	// notices remove them.
	noConsumers sync.Map

	audit     chan auditItem // reveals and refusals, written in batches
	auditDone chan struct{}
	closeOnce sync.Once

	hub      *hub
	unfollow func() // ends the subscription to the store's notices
	// shared: other servers write to the store too. Their changes reach
	// this one as notices, a moment after they commit; so the caches that
	// must reflect a change at once (a revoked token, a consumer's report)
	// are not trusted.
	shared bool
}

// Options configure a Service.
type Options struct {
	ReservedPrefixes []string      // default ["ENVY_"]
	ConsumerTTL      time.Duration // default 60 s
	Logger           *slog.Logger
	Now              func() time.Time
}

// NewService returns a Service over store and keys. Call Close to flush
// the audit log.
func NewService(store Store, keys Keyring, opts Options) *Service {
	if opts.ReservedPrefixes == nil {
		opts.ReservedPrefixes = []string{"ENVY_"}
	}
	if opts.ConsumerTTL <= 0 {
		opts.ConsumerTTL = 60 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{
		store:     store,
		keys:      keys,
		opts:      opts,
		log:       opts.Logger,
		audit:     make(chan auditItem, 4096),
		auditDone: make(chan struct{}),
	}
	s.hub = newHub(s)
	s.unfollow = func() {}
	if store != nil {
		s.shared = store.Shared()
		s.unfollow = s.follow(store)
	}
	go s.auditLoop()
	return s
}

// Close flushes pending audit entries and stops background work. It does
// not close the store.
func (s *Service) Close() {
	s.closeOnce.Do(func() {
		s.unfollow()
		s.hub.close()
		close(s.audit)
		<-s.auditDone
	})
}

func (s *Service) now() time.Time { return s.opts.Now().UTC() }

// ReservedPrefixes returns the reserved name prefixes.
func (s *Service) ReservedPrefixes() []string { return s.opts.ReservedPrefixes }

// Ready checks that the store answers and the keyring works.
func (s *Service) Ready(ctx context.Context) error {
	if err := s.store.Ping(ctx); err != nil {
		return err
	}
	ad := AD("envy-readyz", "PROBE", 1)
	sealed, err := s.keys.Seal([]byte("probe"), ad)
	if err != nil {
		return Errorf(EUnavailable, "keyring cannot seal")
	}
	if _, err := s.keys.Open(sealed, ad); err != nil {
		return Errorf(EUnavailable, "keyring cannot open")
	}
	return nil
}

// Caller is who makes a request: the authenticated token (nil before
// authentication), the request id and the client address, for permission
// checks and the audit log.
type Caller struct {
	Token     *Token
	RequestID string
	Client    string
}

type callerKey struct{}

// WithCaller returns a context that carries the caller.
func WithCaller(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller in ctx, or an empty one.
func CallerFrom(ctx context.Context) *Caller {
	if c, ok := ctx.Value(callerKey{}).(*Caller); ok {
		return c
	}
	return &Caller{}
}

// Cond is a write precondition.
type Cond struct {
	IfRevision int64 // when > 0, EPrecondition unless the scope is at this revision
}
