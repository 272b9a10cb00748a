package envy

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"math/big"
	"strings"
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
	// noConsumers holds scopes seen without live consumers; reports
	// through this service remove them. (A store shared by several servers
	// will need to hear of other servers' reports.)
	noConsumers sync.Map

	audit     chan auditItem // reveals and refusals, written in batches
	auditDone chan struct{}
	closeOnce sync.Once

	hub *hub
}

type cachedToken struct {
	tok     *Token
	fetched time.Time
}

// tokenCacheTTL bounds how long another server's revocation can go unseen;
// revocations through this server take effect at once.
const tokenCacheTTL = 2 * time.Second

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
	go s.auditLoop()
	return s
}

// Close flushes pending audit entries and stops background work. It does
// not close the store.
func (s *Service) Close() {
	s.closeOnce.Do(func() {
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

// --- audit -----------------------------------------------------------------

// auditItem is an entry to append, or, with done set, a request to say
// when every entry queued before it is written.
type auditItem struct {
	e    AuditEntry
	done chan struct{}
}

// auditLoop writes reveal and refusal entries in batches, so that a read
// never waits for a disk write; writes record their entries in their own
// transaction instead.
func (s *Service) auditLoop() {
	defer close(s.auditDone)
	for it := range s.audit {
		var batch []AuditEntry
		var waiting []chan struct{}
		add := func(it auditItem) {
			if it.done != nil {
				waiting = append(waiting, it.done)
			} else {
				batch = append(batch, it.e)
			}
		}
		add(it)
	drain:
		for len(batch) < 512 {
			select {
			case it, ok := <-s.audit:
				if !ok {
					break drain
				}
				add(it)
			default:
				break drain
			}
		}
		if len(batch) > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if err := s.store.AppendAudit(ctx, batch...); err != nil {
				s.log.Error("audit append failed", "entries", len(batch), "err", err)
			}
			cancel()
		}
		for _, w := range waiting {
			close(w)
		}
	}
}

// flushAudit waits until every audit entry queued so far is written.
func (s *Service) flushAudit(ctx context.Context) {
	done := make(chan struct{})
	if !s.enqueue(auditItem{done: done}) {
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// enqueue queues an audit item; it reports false once the service is
// closed.
func (s *Service) enqueue(it auditItem) (ok bool) {
	defer func() {
		if recover() != nil { // the channel is closed during shutdown
			ok = false
		}
	}()
	s.audit <- it
	return true
}

// entry returns an audit entry for the caller in ctx.
func (s *Service) entry(ctx context.Context, action, scope string, names []string, status int) AuditEntry {
	c := CallerFrom(ctx)
	actor := ""
	if c.Token != nil {
		actor = c.Token.Name
	}
	return AuditEntry{At: s.now(), Actor: actor, Action: action, Scope: scope, Names: names, Status: status, RequestID: c.RequestID, Client: c.Client}
}

// record queues an audit entry that belongs to no write transaction.
func (s *Service) record(ctx context.Context, action, scope string, names []string, status int) {
	s.enqueue(auditItem{e: s.entry(ctx, action, scope, names, status)})
}

// Refused records a refused request (401, 403, 404 by permission, 429).
func (s *Service) Refused(ctx context.Context, action, scope string, status int) {
	s.record(ctx, action, scope, nil, status)
}

// --- tokens and permissions ------------------------------------------------

const tokenPrefix = "envy_"

// ValidTokenFormat reports whether s has the token format: "envy_" and at
// least 43 base62 characters.
func ValidTokenFormat(t string) bool {
	if !strings.HasPrefix(t, tokenPrefix) || len(t) < len(tokenPrefix)+43 || len(t) > 256 {
		return false
	}
	for i := len(tokenPrefix); i < len(t); i++ {
		c := t[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// NewTokenValue returns a new random token: 32 random bytes in base62,
// left-padded with '0' to 43 characters.
func NewTokenValue() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	n := new(big.Int).SetBytes(b[:])
	out := make([]byte, 0, 43)
	base := big.NewInt(62)
	mod := new(big.Int)
	for n.Sign() > 0 {
		n.DivMod(n, base, mod)
		out = append(out, base62[mod.Int64()])
	}
	for len(out) < 43 {
		out = append(out, '0')
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return tokenPrefix + string(out)
}

// HashToken returns the SHA-256 of a token's plaintext, as stored.
func HashToken(t string) []byte {
	h := sha256.Sum256([]byte(t))
	return h[:]
}

func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// Authenticate returns the token whose plaintext is given; EUnauthenticated
// when it is malformed, unknown, expired or revoked.
func (s *Service) Authenticate(ctx context.Context, plaintext string) (*Token, error) {
	if !ValidTokenFormat(plaintext) {
		return nil, Errorf(EUnauthenticated, "missing or malformed token")
	}
	sum := sha256.Sum256([]byte(plaintext))
	key := string(sum[:])
	now := s.now()
	var tok *Token
	if c, ok := s.tokens.Load(key); ok && now.Sub(c.(cachedToken).fetched) < tokenCacheTTL {
		tok = c.(cachedToken).tok
	} else {
		t, err := s.store.TokenByHash(ctx, sum[:])
		if ErrorCode(err) == ENotFound {
			return nil, Errorf(EUnauthenticated, "unknown token")
		}
		if err != nil {
			return nil, err
		}
		tok = &t
		s.tokens.Store(key, cachedToken{tok: tok, fetched: now})
	}
	if tok.RevokedAt != nil {
		return nil, Errorf(EUnauthenticated, "token revoked")
	}
	if tok.ExpiresAt != nil && !now.Before(*tok.ExpiresAt) {
		return nil, Errorf(EUnauthenticated, "token expired")
	}
	return tok, nil
}

// Bootstrap creates the first admin token when no token exists. An empty
// value makes a random one. It returns the plaintext and whether it
// created the token.
func (s *Service) Bootstrap(ctx context.Context, value string) (string, bool, error) {
	if value == "" {
		value = NewTokenValue()
	} else if !ValidTokenFormat(value) {
		return "", false, Invalid(Field("ENVY_BOOTSTRAP_TOKEN", "invalid_token", "must be envy_ followed by at least 43 base62 characters"))
	}
	t := Token{
		ID: newID(), Name: "admin", Owner: "admin", Hash: HashToken(value),
		Permissions: []Grant{{Scopes: "**", Actions: []Action{ActAdmin}}},
		CreatedAt:   s.now(), CreatedBy: "bootstrap",
	}
	e := AuditEntry{At: t.CreatedAt, Actor: "bootstrap", Action: "token.create", Names: []string{t.Name}, Status: 201}
	created, err := s.store.CreateToken(ctx, t, true, []AuditEntry{e})
	if err != nil || !created {
		return "", false, err
	}
	return value, true, nil
}

func grantAllows(g Grant, a Action) bool {
	for _, x := range g.Actions {
		if x == a || x == ActAdmin || (a == ActRead && x == ActReveal) {
			return true
		}
	}
	return false
}

// can reports whether the token may do a on scope. Reveal implies read;
// admin implies everything.
func can(t *Token, a Action, scope string) bool {
	if t == nil {
		return false
	}
	for _, g := range t.Permissions {
		if grantAllows(g, a) && MatchGlob(g.Scopes, scope) {
			return true
		}
	}
	return false
}

// visible reports whether the token holds any grant on scope; a scope it
// can't see is answered as missing.
func visible(t *Token, scope string) bool {
	if t == nil {
		return false
	}
	for _, g := range t.Permissions {
		if len(g.Actions) > 0 && MatchGlob(g.Scopes, scope) {
			return true
		}
	}
	return false
}

// isGlobalAdmin reports whether the token holds admin over every scope.
func isGlobalAdmin(t *Token) bool {
	if t == nil {
		return false
	}
	for _, g := range t.Permissions {
		if g.Scopes == "**" && grantAllows(g, ActAdmin) {
			return true
		}
	}
	return false
}

func scopeNotFound(path string) *Error {
	return Errorf(ENotFound, "scope %s not found", path)
}

// authorize checks that the caller may do a on scope: ENotFound when it
// can't see the scope at all, EForbidden when it sees it but may not do a.
// Refusals are audited.
func (s *Service) authorize(ctx context.Context, a Action, scope, action string) error {
	t := CallerFrom(ctx).Token
	if t == nil {
		return Errorf(EUnauthenticated, "authentication required")
	}
	if can(t, a, scope) {
		return nil
	}
	if !visible(t, scope) {
		s.Refused(ctx, action, scope, 404)
		return scopeNotFound(scope)
	}
	s.Refused(ctx, action, scope, 403)
	return Errorf(EForbidden, "token may not %s scope %s", a, scope)
}

// --- crypto helpers ----------------------------------------------------------

func (s *Service) seal(scope, name string, version int64, v Sensitive) ([]byte, error) {
	b, err := s.keys.Seal([]byte(v.Reveal()), AD(scope, name, version))
	if err != nil {
		return nil, Errorf(EInternal, "cannot seal %s/%s", scope, name)
	}
	return b, nil
}

func (s *Service) open(scope string, name string, version int64, sealed []byte) (Sensitive, error) {
	b, err := s.keys.Open(sealed, AD(scope, name, version))
	if err != nil {
		s.log.Error("cannot open a value", "scope", scope, "name", name, "version", version, "err", err)
		return Sensitive{}, Errorf(EInternal, "cannot open the value of %s in scope %s (version %d)", name, scope, version)
	}
	return NewSensitive(string(b)), nil
}

func limitOf(loc string, limit int) (int, error) {
	if limit == 0 {
		return 100, nil
	}
	if limit < 1 || limit > 1000 {
		return 0, Invalid(Field(loc, "out_of_range", "limit must be between 1 and 1000"))
	}
	return limit, nil
}
