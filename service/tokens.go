package service

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"time"

	"github.com/envy-dev/envy"
)

// maxTokenLife bounds a token's expiry: times far beyond it overflow
// nanosecond clocks and come back as already past.
const maxTokenLife = 100 * 365 * 24 * time.Hour

// tokenCache keeps found tokens by the SHA-256 of their plaintext, each
// for tokenCacheTTL. Only tokens that exist are kept, so unknown hashes
// can't fill it.
type tokenCache struct {
	*lruCache[[sha256.Size]byte, cachedToken]
}

// invalidateAll forgets every token: token notices are by id, the cache
// by hash, and token changes are rare.
func (c tokenCache) invalidateAll() { c.Clear() }

type cachedToken struct {
	tok     *envy.Token
	fetched time.Time
}

// tokenSize estimates the bytes a cached token holds, its key included.
func tokenSize(t *envy.Token) int {
	n := 400 + len(t.ID) + len(t.Name) + len(t.Owner) + 2*len(t.Hash) + len(t.CreatedBy) + len(t.ParentID) + len(t.RootID)
	for _, g := range t.Permissions {
		n += 64 + len(g.Scopes)
		for _, a := range g.Actions {
			n += 16 + len(a)
		}
	}
	return n
}

// tokenCacheTTL bounds how long a cached token is trusted. Token notices
// clear the cache at once. On a shared store a notice comes a moment
// after the commit, so there a cached token is checked against the store
// on every use instead (Checker.Check), and on a shared store without
// checks the cache is not used at all.
const tokenCacheTTL = 2 * time.Second

// Authenticate returns the token whose plaintext is given; EUnauthenticated
// when it is malformed, unknown, expired or revoked.
func (s *Service) Authenticate(ctx context.Context, plaintext string) (*envy.Token, error) {
	return s.AuthenticateFor(ctx, plaintext, "")
}

// AuthenticateFor is Authenticate for a request about scope (its path, or
// "" for none). On a shared store where a cached token is checked on each
// use, the same check covers the cached tree of scope, and the request's
// first read of that tree (for the caller in ctx) uses it: one round trip
// for both. The check is made after the request began, so the tree is as
// fresh as a read of its own.
func (s *Service) AuthenticateFor(ctx context.Context, plaintext, scope string) (*envy.Token, error) {
	return s.authenticate(ctx, plaintext, scope, deferNone)
}

// AuthenticateWrite is AuthenticateFor for a request that writes vars of
// scope (SetVar) and reads nothing before: on a shared store where a
// cached token is checked on each use, the check is left to the write's
// own transaction (envy.Write.LiveToken), which costs no round trip of
// its own, and the caller in ctx is marked Deferred. Every answer but an
// error comes from that write; whoever answers an error first confirms
// the token (ConfirmToken), as Authorize does before it records a
// refusal, and the HTTP layer before it answers any error.
func (s *Service) AuthenticateWrite(ctx context.Context, plaintext, scope string) (*envy.Token, error) {
	return s.authenticate(ctx, plaintext, scope, deferToWrite)
}

// AuthenticateReveal is AuthenticateFor for a request whose every answer
// but an error is a reveal of scope's resolved env (EnvReplyRaw): on a
// shared store where a cached token is checked on each use, and whose
// audit appends can check (envy.CheckedAuditor), the check of the token
// and of the cached tree of scope is left to the reveal's audit entry,
// whose append records it only when both hold, in the same one round trip.
// A reveal whose check fails is answered again from a checked read (or
// refused, the token revoked). The caller in ctx is marked Deferred, and
// its first read of scope's tree is the tree as cached, unchecked. With
// audit streams, whose entries go out before the append's outcome is
// known, it is AuthenticateFor.
func (s *Service) AuthenticateReveal(ctx context.Context, plaintext, scope string) (*envy.Token, error) {
	if s.checkedAudit == nil || s.opts.AuditStream != nil {
		return s.authenticate(ctx, plaintext, scope, deferNone)
	}
	return s.authenticate(ctx, plaintext, scope, deferToReveal)
}

// deferral is where the check of a cached token goes (authenticate).
type deferral uint8

const (
	deferNone     deferral = iota // checked before the request goes on
	deferToWrite                  // AuthenticateWrite
	deferToReveal                 // AuthenticateReveal
)

func (s *Service) authenticate(ctx context.Context, plaintext, scope string, deferCheck deferral) (*envy.Token, error) {
	if !envy.ValidTokenFormat(plaintext) {
		return nil, envy.Errorf(envy.EUnauthenticated, "missing or malformed token")
	}
	// The digest, not the plaintext, is the cache's key: a lookup
	// compares no secret. Hashed from a copy on the stack, and kept as an
	// array, so that a cached token costs no allocation.
	var buf [128]byte
	key := sha256.Sum256(append(buf[:0], plaintext...))
	now := s.now()
	tok, err := s.cachedToken(ctx, key, now, scope, deferCheck)
	if err != nil {
		return nil, err
	}
	if tok == nil {
		gen := s.tokens.Generation()
		sum := key // only a lookup in the store lets it escape
		t, err := s.store.TokenByHash(ctx, sum[:])
		if envy.ErrorCode(err) == envy.ENotFound {
			return nil, envy.Errorf(envy.EUnauthenticated, "unknown token")
		}
		if err != nil {
			return nil, err
		}
		tok = &t
		if !s.shared || s.checks() { // another server's revocation must count at once
			s.tokens.Put(gen, key, cachedToken{tok: tok, fetched: now}, tokenSize(tok))
		}
	}
	if tok.RevokedAt != nil {
		return nil, envy.Errorf(envy.EUnauthenticated, "token revoked")
	}
	if tok.ExpiresAt != nil && !now.Before(*tok.ExpiresAt) {
		return nil, envy.Errorf(envy.EUnauthenticated, "token expired")
	}
	return tok, nil
}

// cachedToken returns the cached token of hash key when it may be used
// as it is, nil when it must be read from the store. On a shared store
// with checks, the store confirms first that the token is still live (its
// revocation through another server counts at once), and in the same
// check whether the cached tree of scope is current, which it leaves for
// the request's first read of it.
func (s *Service) cachedToken(ctx context.Context, key [sha256.Size]byte, now time.Time, scope string, deferCheck deferral) (*envy.Token, error) {
	if !s.checks() {
		c, _ := s.tokens.Get(key, func(c cachedToken) bool { return !s.shared && now.Sub(c.fetched) < tokenCacheTTL })
		return c.tok, nil // nil when not cached
	}
	c, ok := s.tokens.Peek(key)
	if !ok {
		s.tokens.Count(false)
		return nil, nil
	}
	if caller, ok := ctx.Value(CallerKey{}).(*Caller); ok && deferCheck != deferNone {
		// The write checks it (AuthenticateWrite), or the reveal's audit
		// entry (AuthenticateReveal), which checks the tree of scope too.
		caller.tokenKey = key
		caller.deferred.Store(true)
		caller.unchecked.Store(true)
		if deferCheck == deferToReveal && scope != "" {
			caller.uncheckedPath = scope
			caller.uncheckedTree.Store(true)
		}
		return c.tok, nil
	}
	live, checked, err := s.cache.CheckToken(ctx, c.tok.ID, scope)
	if err != nil {
		return nil, err
	}
	s.tokens.Count(live)
	if !live { // read it again: the store says why it is refused
		s.tokens.Remove(key)
		return nil, nil
	}
	if caller, ok := ctx.Value(CallerKey{}).(*Caller); ok && checked != nil {
		caller.checked.Store(checked)
	}
	return c.tok, nil
}

// ConfirmToken checks the token of a Deferred caller (AuthenticateWrite)
// against the store, unless its write did already: EUnauthenticated when
// it is revoked (or gone). It does nothing for any other caller.
func (s *Service) ConfirmToken(ctx context.Context) error {
	return s.confirmTokenFor(ctx, "")
}

// confirmTokenFor is ConfirmToken; with scope set, the same check covers
// the cached tree of scope, for the request's next read of it, as
// AuthenticateFor's does.
func (s *Service) confirmTokenFor(ctx context.Context, scope string) error {
	c, ok := ctx.Value(CallerKey{}).(*Caller)
	switch {
	case !ok:
		return nil
	case c.notLive.Load():
		return envy.ErrTokenNotLive
	case !c.unchecked.Load():
		return nil
	}
	live, checked, err := s.cache.CheckToken(ctx, c.Token.ID, scope)
	if err != nil {
		return err
	}
	if !live {
		return s.tokenNotLive(c)
	}
	c.unchecked.Store(false)
	if checked != nil {
		c.checked.Store(checked)
	}
	return nil
}

// tokenNotLive is the refusal of a Deferred caller whose token the store
// found revoked: it is dropped from the cache, so that the next request
// with it reads it again.
func (s *Service) tokenNotLive(c *Caller) error {
	c.notLive.Store(true)
	c.unchecked.Store(false)
	s.tokens.Remove(c.tokenKey)
	return envy.ErrTokenNotLive
}

// liveToken is the id of the token that a write of the caller in ctx
// must find live (envy.Write.LiveToken): set while the caller is Deferred
// and unchecked.
func liveToken(ctx context.Context) string {
	if c, ok := ctx.Value(CallerKey{}).(*Caller); ok && c.unchecked.Load() {
		return c.Token.ID
	}
	return ""
}

// checks reports whether the store is shared and offers checks, so that a
// cached token is checked on each use.
func (s *Service) checks() bool { return s.cache != nil && s.cache.Checks() }

// Bootstrap creates the first admin token when no token exists. An empty
// value makes a random one. It returns the plaintext and whether it
// created the token.
func (s *Service) Bootstrap(ctx context.Context, value string) (string, bool, error) {
	if value == "" {
		value = envy.NewTokenValue()
	} else if !envy.ValidTokenFormat(value) {
		return "", false, envy.Invalid(envy.Field("ENVY_BOOTSTRAP_TOKEN", "invalid_token", "must be envy_ followed by at least 43 base62 characters"))
	}
	t := envy.Token{
		ID: newID(), Name: "admin", Owner: "admin", Hash: envy.HashToken(value),
		Permissions: []envy.Grant{{Scopes: "**", Actions: []envy.Action{envy.ActAdmin}}},
		CreatedAt:   s.now(), CreatedBy: "bootstrap",
	}
	e := envy.AuditEntry{At: t.CreatedAt, Actor: "bootstrap", Action: envy.AuditTokenCreate, Names: []string{t.Name}, Status: envy.OutcomeCreated}
	created, err := s.store.CreateToken(ctx, t, true, []envy.AuditEntry{e})
	if err != nil || !created {
		return "", false, err
	}
	s.offer(e) // at start: the server can't be refused its first token
	return value, true, nil
}

// CreateToken creates a token and returns it with its plaintext, shown
// this once. A token can't grant more than its creator holds, and only a
// holder of admin may create tokens.
func (s *Service) CreateToken(ctx context.Context, in envy.TokenInput) (envy.Token, string, error) {
	creator := CallerFrom(ctx).Token
	var fields []envy.FieldError
	// A name or owner that looks like another's (a trailing space, an
	// invisible character) would impersonate it wherever actors show.
	if f := envy.ValidateLabel("body.name", "invalid_name", "name", in.Name); f != nil {
		fields = append(fields, *f)
	}
	if in.Owner == "" {
		in.Owner = in.Name
	} else if f := envy.ValidateLabel("body.owner", "invalid_owner", "owner", in.Owner); f != nil {
		fields = append(fields, *f)
	}
	fields = append(fields, validGrants(in.Permissions)...)
	now := s.now()
	var expires *time.Time
	switch {
	case in.ExpiresAt != nil && in.ExpiresIn != "":
		fields = append(fields, envy.Field("body.expires_in", "exclusive", "give expires_at or expires_in, not both"))
	case in.ExpiresAt != nil:
		switch {
		case !in.ExpiresAt.After(now):
			fields = append(fields, envy.Field("body.expires_at", "in_past", "expires_at must be in the future"))
		case in.ExpiresAt.After(now.Add(maxTokenLife)):
			fields = append(fields, envy.Field("body.expires_at", "too_far", "expires_at must be at most 100 years from now"))
		}
		e := in.ExpiresAt.UTC()
		expires = &e
	case in.ExpiresIn != "":
		d, err := time.ParseDuration(in.ExpiresIn)
		switch {
		case err != nil && strings.Contains(err.Error(), "overflow"), err == nil && d > maxTokenLife:
			fields = append(fields, envy.Field("body.expires_in", "too_far", "expires_in must be at most 100 years (876000h)"))
		case err != nil || d <= 0:
			fields = append(fields, envy.Field("body.expires_in", "invalid_duration", "expires_in must be a positive duration such as 30s or 12h"))
		default:
			e := now.Add(d)
			expires = &e
		}
	}
	if len(fields) > 0 {
		return envy.Token{}, "", envy.Invalid(fields...)
	}
	if creator == nil {
		return envy.Token{}, "", envy.Errorf(envy.EUnauthenticated, "authentication required")
	}
	adminSomewhere := false
	for _, g := range creator.Permissions {
		adminSomewhere = adminSomewhere || envy.GrantAllows(g, envy.ActAdmin)
	}
	if !adminSomewhere {
		s.Refused(ctx, envy.AuditTokenCreate, "", envy.OutcomeForbidden)
		return envy.Token{}, "", envy.Errorf(envy.EForbidden, "creating tokens needs the admin permission")
	}
	// At most envy.MaxGrants of them (validGrants), each checked against
	// every grant of the creator.
	if i, a, ok := unheld(creator, in.Permissions); ok {
		s.Refused(ctx, envy.AuditTokenCreate, "", envy.OutcomeForbidden)
		return envy.Token{}, "", &envy.Error{Code: envy.EForbidden, Message: "a token can't grant more than its creator holds",
			Fields: []envy.FieldError{envy.Field(fmt.Sprintf("body.permissions[%d]", i), "exceeds_creator", "the creator does not hold %s on %s", a, in.Permissions[i].Scopes)}}
	}
	// A child never outlives its parent: asked for no expiry or a later
	// one, it gets the parent's.
	if creator.ExpiresAt != nil && (expires == nil || expires.After(*creator.ExpiresAt)) {
		e := *creator.ExpiresAt
		expires = &e
	}
	// A token a global admin mints starts a lineage of its own; any other
	// belongs to its creator's, whose rate limit it shares.
	root := creator.Root()
	if envy.IsGlobalAdmin(creator) {
		root = ""
	}
	plain := envy.NewTokenValue()
	t := envy.Token{ID: newID(), Name: in.Name, Owner: in.Owner, Hash: envy.HashToken(plain), Permissions: in.Permissions,
		CreatedAt: now, CreatedBy: creator.Name, ParentID: creator.ID, RootID: root, ExpiresAt: expires}
	e := s.entry(ctx, envy.AuditTokenCreate, "", []string{t.Name}, envy.OutcomeCreated)
	rec, err := s.toStreams(1)
	if err != nil {
		return envy.Token{}, "", err
	}
	_, err = s.store.CreateToken(ctx, t, false, []envy.AuditEntry{e})
	if rec.done(err, 0, e); err != nil {
		if envy.ErrorCode(err) == envy.EConflict {
			return envy.Token{}, "", &envy.Error{Code: envy.EConflict, Message: "owner " + t.Owner + " already has a token named " + t.Name,
				Fields: []envy.FieldError{envy.Field("body.name", "taken", "token names are unique per owner")}}
		}
		return envy.Token{}, "", err
	}
	return t, plain, nil
}

// ListTokens lists tokens by id (global admin).
func (s *Service) ListTokens(ctx context.Context, cursor string, limit int) (envy.Page[envy.Token], error) {
	limit, err := limitOf("query.limit", limit)
	if err != nil {
		return envy.Page[envy.Token]{}, err
	}
	if err := s.requireGlobalAdmin(ctx, envy.AuditTokenList); err != nil {
		return envy.Page[envy.Token]{}, err
	}
	return fetchPage(limit, func(n int) ([]envy.Token, error) {
		return s.store.ListTokens(ctx, cursor, n)
	}, func(t envy.Token) string { return t.ID })
}

// GetToken returns a token (global admin, the token itself, or the token
// that minted it).
func (s *Service) GetToken(ctx context.Context, id string) (envy.Token, error) {
	id = strings.ToLower(id)
	if t := CallerFrom(ctx).Token; t != nil && t.ID == id {
		return *t, nil
	}
	return s.tokenFor(ctx, id, envy.AuditTokenGet)
}

// tokenFor returns token id when the caller is a global admin or minted
// it; to anyone else it does not exist.
func (s *Service) tokenFor(ctx context.Context, id string, action envy.AuditAction) (envy.Token, error) {
	caller := CallerFrom(ctx).Token
	if caller == nil {
		return envy.Token{}, envy.Errorf(envy.EUnauthenticated, "authentication required")
	}
	if envy.IsGlobalAdmin(caller) {
		return s.store.GetToken(ctx, id)
	}
	t, err := s.store.GetToken(ctx, id)
	if err == nil && t.ParentID == caller.ID {
		return t, nil
	}
	if err != nil && envy.ErrorCode(err) != envy.ENotFound {
		return envy.Token{}, err
	}
	return envy.Token{}, s.requireGlobalAdmin(ctx, action)
}

// RevokeToken revokes a token and every token it minted, transitively, at
// once (global admin, the token itself, or the token that minted it). It
// refuses to end the last live global admin: Revoke, with its options.
func (s *Service) RevokeToken(ctx context.Context, id string) error {
	_, err := s.Revoke(ctx, id, RevokeOptions{})
	return err
}

// Self returns the caller's token.
func (s *Service) Self(ctx context.Context) (envy.Token, error) {
	t := CallerFrom(ctx).Token
	if t == nil {
		return envy.Token{}, envy.Errorf(envy.EUnauthenticated, "authentication required")
	}
	return *t, nil
}
