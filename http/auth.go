package http

import (
	"context"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/service"
)

// BearerToken returns the token of an "Authorization: Bearer <token>"
// header, and whether there was one.
func BearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// Authenticate checks a token that a route extracted from r (the native
// API takes it from the Authorization header; a dialect may take it from
// elsewhere, such as ?token=) and returns r with a context whose
// service.Caller carries the token, the request id and the client address,
// ready for the service's calls.
//
// It applies the rate limits: failed authentications per client address
// (beyond the limit they are refused with ERateLimited instead of
// EUnauthenticated) and requests per token. Every refusal is recorded in
// the audit log (svc.Refused, action "auth" or "rate_limit", the scope
// being the path value "path" when the route has one). The error is always
// an *envy.Error, EUnauthenticated or ERateLimited with RetryAfter set,
// that the caller maps to its own envelope.
func (s *Server) Authenticate(r *http.Request, token string) (*http.Request, error) {
	return s.authenticate(r, token, checkFirst)
}

// checkAt is where the check of a cached token against a shared store is
// made: before the handler, or left to what the route does.
type checkAt uint8

const (
	checkFirst    checkAt = iota
	checkAtWrite          // service.Service.AuthenticateWrite (route.Check)
	checkAtReveal         // service.Service.AuthenticateReveal (route.Check)
)

// authenticate is Authenticate; at says where the check of a cached
// token goes: for a route that writes vars and reads nothing before, to
// the write (service.Service.AuthenticateWrite); for one whose every
// answer but an error is a reveal of the resolved env, to the reveal's
// audit entry (service.Service.AuthenticateReveal).
func (s *Server) authenticate(r *http.Request, token string, at checkAt) (*http.Request, error) {
	ctx := r.Context()
	base := service.CallerFrom(ctx)
	client := base.Client
	if client == "" {
		client = clientAddr(r)
	}
	if token == "" {
		return nil, s.authFailed(ctx, r, client, envy.Errorf(envy.EUnauthenticated, "a bearer token is required"))
	}
	// With the scope the route is about: on a shared store, the check of
	// a cached token also checks that scope's cached tree.
	authenticate := s.svc.AuthenticateFor
	if ownCaller(ctx) != nil {
		switch at {
		case checkAtWrite:
			authenticate = s.svc.AuthenticateWrite
		case checkAtReveal:
			authenticate = s.svc.AuthenticateReveal
		}
	}
	tok, err := authenticate(ctx, token, r.PathValue("path"))
	if err != nil {
		if envy.ErrorCode(err) != envy.EUnauthenticated {
			// The store is down or the like: not the client's fault.
			return nil, err
		}
		return nil, s.authFailed(ctx, r, client, err)
	}
	// The caller that serve made for this request is completed in place;
	// any other is replaced, in a new context.
	c := ownCaller(ctx)
	if c != nil {
		c.Token, c.Client = tok, client
	} else {
		c = &service.Caller{Token: tok, RequestID: base.RequestID, Client: client}
		ctx = service.WithCaller(ctx, c)
		r = r.WithContext(ctx)
	}
	if s.perToken != nil {
		// Per lineage: a token that mints children does not multiply
		// its limit.
		if wait, ok := s.perToken.allow(tok.Root(), s.now()); !ok {
			e := &envy.Error{Code: envy.ERateLimited, Message: "too many requests for this token and the tokens of its lineage (minted from the same first token)", RetryAfter: wait}
			// A token whose check was left to its write is checked before
			// it is refused as a live one.
			if err := s.confirmed(r, e); err != error(e) {
				return nil, err
			}
			s.svc.Refused(ctx, envy.AuditRateLimit, r.PathValue("path"), envy.OutcomeRateLimited)
			return nil, e
		}
	}
	return r, nil
}

// SignIn serves a dialect's client-credentials sign-in: secret (an envy
// token) is authenticated as any bearer token is (a failure counts against
// the client address and is audited), then traded by the Service for an
// access token that lives at most life (service.Service.SignIn). A client id
// that is not the secret's token counts as a failed authentication too.
// Neither the secret nor the access token is ever logged.
func (s *Server) SignIn(r *http.Request, dialect, clientID, secret string, life time.Duration) (envy.Token, string, error) {
	ar, err := s.Authenticate(r, secret)
	if err != nil {
		return envy.Token{}, "", err
	}
	tok, plain, err := s.svc.SignIn(ar.Context(), dialect, clientID, life)
	if envy.ErrorCode(err) == envy.EUnauthenticated {
		client := service.CallerFrom(ar.Context()).Client
		if wait, ok := s.authFail.allow(client, s.now()); !ok {
			s.svc.Refused(ar.Context(), envy.AuditRateLimit, "", envy.OutcomeRateLimited)
			return envy.Token{}, "", &envy.Error{Code: envy.ERateLimited, Message: "too many failed authentications from this address", RetryAfter: wait}
		}
	}
	return tok, plain, err
}

// confirmed is err, the refusal of a request whose token's check was
// left to its write (Deferred) and that failed, once the token is
// confirmed: a token found revoked now, or by the write, is a failed
// authentication (authFailed) rather than err.
func (s *Server) confirmed(r *http.Request, err error) error {
	ctx := r.Context()
	c := service.CallerFrom(ctx)
	if !c.Deferred() {
		return err
	}
	if cerr := s.svc.ConfirmToken(ctx); cerr != nil {
		err = cerr
	}
	if envy.ErrorCode(err) == envy.EUnauthenticated {
		return s.authFailed(ctx, r, c.Client, err)
	}
	return err
}

// authFailed counts a failed authentication against the client address
// and records the refusal.
func (s *Server) authFailed(ctx context.Context, r *http.Request, client string, err error) error {
	scope := r.PathValue("path")
	if wait, ok := s.authFail.allow(client, s.now()); !ok {
		s.svc.Refused(ctx, envy.AuditRateLimit, scope, envy.OutcomeRateLimited)
		return &envy.Error{Code: envy.ERateLimited, Message: "too many failed authentications from this address", RetryAfter: wait}
	}
	s.svc.Refused(ctx, envy.AuditAuth, scope, envy.OutcomeUnauthenticated)
	if envy.AsError(err) == nil {
		err = envy.Errorf(envy.EUnauthenticated, "the token is not valid")
	}
	return err
}

// limiters is a map of token-bucket limiters by key (a client address or a
// token id). Entries idle long enough to have refilled are dropped, so the
// map stays as small as the set of active keys.
type limiters struct {
	mu        sync.Mutex
	limit     rate.Limit
	burst     int
	m         map[string]*limiterEntry
	lastSweep time.Time
	idle      time.Duration
}

type limiterEntry struct {
	lim  *rate.Limiter
	seen time.Time
}

func newLimiters(perSecond float64, burst int) *limiters {
	// An entry idle for this long is full again, so forgetting it changes
	// nothing; at least a minute so that sweeps stay rare.
	idle := time.Duration(float64(burst)/perSecond*float64(time.Second)) + time.Second
	if idle < time.Minute {
		idle = time.Minute
	}
	return &limiters{limit: rate.Limit(perSecond), burst: burst, m: make(map[string]*limiterEntry), idle: idle}
}

// allow takes one token from key's bucket; when it is empty it tells how
// long until the next one (at least a second, for Retry-After).
func (l *limiters) allow(key string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	if now.Sub(l.lastSweep) > l.idle {
		for k, e := range l.m {
			if now.Sub(e.seen) > l.idle {
				delete(l.m, k)
			}
		}
		l.lastSweep = now
	}
	e := l.m[key]
	if e == nil {
		e = &limiterEntry{lim: rate.NewLimiter(l.limit, l.burst)}
		l.m[key] = e
	}
	e.seen = now
	l.mu.Unlock()

	res := e.lim.ReserveN(now, 1)
	if !res.OK() {
		return time.Second, false
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return time.Duration(math.Ceil(d.Seconds())) * time.Second, false
	}
	return 0, true
}

// size returns the number of entries, for tests.
func (l *limiters) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}
