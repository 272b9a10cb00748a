package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/envy-dev/envy"
)

// Workload identity: a JWT trust lets a workload trade a JWT from an
// identity provider it already has for a short-lived token
// (docs/identity.md). A trust's grants are bounded by its definer's, like
// a minted token's; a token minted by a login names its trust and subject,
// and deleting the trust revokes them.

// defaultTrustTTL is the life of a login's token when the trust sets none.
const defaultTrustTTL = 15 * time.Minute

// maxSubjectLen bounds the subject a login's token is named after.
const maxSubjectLen = 200

// trustStore returns the store's JWT trusts, or an error when the store
// keeps none.
func (s *Service) trustStore() (envy.TrustStore, error) {
	var st envy.Store = s.store
	if s.cache != nil {
		st = s.cache.Unwrap()
	}
	if ts, ok := st.(envy.TrustStore); ok {
		return ts, nil
	}
	return nil, envy.Errorf(envy.EInternal, "the store keeps no JWT trusts")
}

// validTrustName: 1 to 64 of a-z, 0-9, '-', '_' and '.'.
func validTrustName(name string) *envy.FieldError { return validDefName(name, "a trust") }

// validDefName validates the name of a definition (what: "a trust"): 1 to
// 64 of a-z, 0-9, '-', '_' and '.', so it never holds ':'.
func validDefName(name, what string) *envy.FieldError {
	ok := name != "" && len(name) <= 64
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
	}
	if !ok {
		f := envy.Field("path.name", "invalid_name", "%s's name is 1 to 64 of a-z, 0-9, '-', '_' and '.'", what)
		return &f
	}
	return nil
}

// keyURL reports whether u may be fetched for keys: https, or plain http
// to a loopback address.
func keyURL(u string) bool {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" || p.User != nil || len(u) > 2000 {
		return false
	}
	h := p.Hostname()
	ip := net.ParseIP(h)
	return p.Scheme == "https" || p.Scheme == "http" && (h == "localhost" || ip != nil && ip.IsLoopback())
}

// PutTrust creates or replaces the JWT trust name. Only a holder of admin
// may, and the trust can't grant more than the caller holds.
func (s *Service) PutTrust(ctx context.Context, name string, in envy.TrustInput) (envy.JWTTrust, bool, error) {
	caller := CallerFrom(ctx).Token
	var fields []envy.FieldError
	if f := validTrustName(name); f != nil {
		fields = append(fields, *f)
	}
	if !keyURL(in.Issuer) {
		fields = append(fields, envy.Field("body.issuer", "invalid_url", "issuer must be an https URL (plain http only to a loopback address)"))
	}
	if in.JWKSURL != "" && !keyURL(in.JWKSURL) {
		fields = append(fields, envy.Field("body.jwks_url", "invalid_url", "jwks_url must be an https URL (plain http only to a loopback address)"))
	}
	if in.Audience == "" || len(in.Audience) > 200 || !envy.Printable(in.Audience) {
		fields = append(fields, envy.Field("body.audience", "invalid_audience", "audience must be 1 to 200 printable characters"))
	}
	if in.SubjectClaim == "" {
		in.SubjectClaim = "sub"
	} else if len(in.SubjectClaim) > 100 || !envy.Printable(in.SubjectClaim) {
		fields = append(fields, envy.Field("body.subject_claim", "invalid_claim", "subject_claim must be 1 to 100 printable characters"))
	}
	if len(in.BoundClaims) > 32 {
		fields = append(fields, envy.Field("body.bound_claims", "too_many", "at most 32 bound claims"))
	}
	for k, v := range in.BoundClaims {
		if k == "" || len(k) > 100 || !envy.Printable(k) || len(v) > 500 || !envy.Printable(v) {
			fields = append(fields, envy.Field("body.bound_claims", "invalid_claim", "a bound claim is a name of 1 to 100 and a value of at most 500 printable characters"))
			break
		}
	}
	fields = append(fields, validGrants(in.Permissions)...)
	ttl := defaultTrustTTL
	if in.TTL != "" {
		d, err := time.ParseDuration(in.TTL)
		if err != nil || d < time.Second || d > envy.MaxJWTTokenTTL {
			fields = append(fields, envy.Field("body.ttl", "invalid_duration", "ttl must be a duration from 1s to 24h, such as 15m"))
		}
		ttl = d
	}
	var maxAge time.Duration
	if in.MaxAge != "" {
		d, err := time.ParseDuration(in.MaxAge)
		if err != nil || d <= 0 || d > maxTokenLife {
			fields = append(fields, envy.Field("body.max_age", "invalid_duration", "max_age must be a positive duration such as 1h"))
		}
		maxAge = d
	}
	if len(fields) > 0 {
		return envy.JWTTrust{}, false, envy.Invalid(fields...)
	}
	if caller == nil {
		return envy.JWTTrust{}, false, envy.Errorf(envy.EUnauthenticated, "authentication required")
	}
	if err := s.bounded(ctx, caller, in.Permissions, envy.AuditTrustPut, "a trust"); err != nil {
		return envy.JWTTrust{}, false, err
	}
	ts, err := s.trustStore()
	if err != nil {
		return envy.JWTTrust{}, false, err
	}
	t := envy.JWTTrust{Name: name, Issuer: in.Issuer, Audience: in.Audience, JWKSURL: in.JWKSURL, BoundClaims: in.BoundClaims,
		SubjectClaim: in.SubjectClaim, Permissions: in.Permissions, TTL: ttl, MaxAge: maxAge,
		CreatedAt: s.now().UTC(), CreatedBy: caller.Name, CreatorID: caller.ID}
	if old, err := ts.GetTrust(ctx, name); err == nil && old.CreatorID != caller.ID && !envy.IsGlobalAdmin(caller) {
		s.Refused(ctx, envy.AuditTrustPut, "", envy.OutcomeForbidden)
		return envy.JWTTrust{}, false, envy.Errorf(envy.EForbidden, "trust %s was defined by another token; only it or a global admin may replace it", name)
	} else if err != nil && envy.ErrorCode(err) != envy.ENotFound {
		return envy.JWTTrust{}, false, err
	}
	e := s.entry(ctx, envy.AuditTrustPut, "", []string{name}, envy.OutcomeOK)
	rec, err := s.toStreams(1)
	if err != nil {
		return envy.JWTTrust{}, false, err
	}
	created, err := ts.PutTrust(ctx, t, []envy.AuditEntry{e})
	if rec.done(err, 0, e); err != nil {
		return envy.JWTTrust{}, false, err
	}
	return t, created, nil
}

// validGrants validates grants: a token's permissions, and a JWT trust's.
func validGrants(gs []envy.Grant) []envy.FieldError {
	var fields []envy.FieldError
	switch {
	case len(gs) == 0:
		fields = append(fields, envy.Field("body.permissions", "missing", "at least one permission is required"))
	case len(gs) > envy.MaxGrants:
		// Said once, before any grant is looked at: the check that a
		// creator holds what it grants is quadratic, and a grant's
		// problems each add a field.
		return append(fields, envy.Field("body.permissions", "too_many", "at most %d permissions (grants); a glob such as acme/** covers many scopes", envy.MaxGrants))
	}
	for i, g := range gs {
		loc := fmt.Sprintf("body.permissions[%d]", i)
		if f := envy.ValidateGlob(loc+".scopes", g.Scopes); f != nil {
			fields = append(fields, *f)
		}
		if len(g.Actions) == 0 {
			fields = append(fields, envy.Field(loc+".actions", "missing", "at least one action is required"))
		}
		// A grant's actions are distinct, so at most the four there are:
		// the first one invalid or given again ends its check.
		for j, a := range g.Actions {
			if !envy.ValidAction(a) {
				fields = append(fields, envy.Field(fmt.Sprintf("%s.actions[%d]", loc, j), "invalid_action", "action must be read, write, reveal or admin"))
				break
			}
			if slices.Contains(g.Actions[:j], a) {
				fields = append(fields, envy.Field(fmt.Sprintf("%s.actions[%d]", loc, j), "duplicate_action", "action %s is given twice", a))
				break
			}
		}
	}
	return fields
}

// bounded checks that caller holds admin somewhere and every action of
// grants on its scopes, as minting a token does.
func (s *Service) bounded(ctx context.Context, caller *envy.Token, grants []envy.Grant, action envy.AuditAction, what string) error {
	adminSomewhere := false
	for _, g := range caller.Permissions {
		adminSomewhere = adminSomewhere || envy.GrantAllows(g, envy.ActAdmin)
	}
	if !adminSomewhere {
		s.Refused(ctx, action, "", envy.OutcomeForbidden)
		return envy.Errorf(envy.EForbidden, "defining %s needs the admin permission", what)
	}
	if i, a, ok := unheld(caller, grants); ok {
		s.Refused(ctx, action, "", envy.OutcomeForbidden)
		return &envy.Error{Code: envy.EForbidden, Message: what + " can't grant more than its creator holds",
			Fields: []envy.FieldError{envy.Field(fmt.Sprintf("body.permissions[%d]", i), "exceeds_creator", "the creator does not hold %s on %s", a, grants[i].Scopes)}}
	}
	return nil
}

// unheld returns the first grant of grants (its index) and action that t
// does not hold, itself or through admin on the grant's scopes.
func unheld(t *envy.Token, grants []envy.Grant) (i int, a envy.Action, ok bool) {
	for i, g := range grants {
		for _, a := range g.Actions {
			// Holding admin on the scopes holds a too (envy.GrantAllows).
			if !envy.Holds(t, g.Scopes, a) {
				return i, a, true
			}
		}
	}
	return 0, "", false
}

// definer returns the token that defined a trust or an OIDC provider (id,
// "" for one stored before definers were kept) when it may mint grants
// now: live, and holding them still, as its definition needed. A login
// mints a child of it (ParentID), so that the token never outlives it
// and its revocation revokes the token too, as for any token it minted:
// a delegation ends with its delegator. reason says, for the audit log,
// why it may not.
func (s *Service) definer(ctx context.Context, id string, grants []envy.Grant, now time.Time) (d *envy.Token, reason string, err error) {
	if id == "" {
		return nil, "", nil
	}
	t, err := s.store.GetToken(ctx, id)
	switch {
	case envy.ErrorCode(err) == envy.ENotFound:
		return nil, "the token that defined it no longer exists", nil
	case err != nil:
		return nil, "", err
	case !t.LiveAt(now):
		return nil, "the token that defined it is revoked or expired", nil
	}
	if i, a, ok := unheld(&t, grants); ok {
		return nil, "the token that defined it no longer holds " + string(a) + " on " + grants[i].Scopes, nil
	}
	return &t, "", nil
}

// childOf makes t, a login's token, a child of the definer d (nil: none):
// its parent, and an expiry no later than d's.
func childOf(t *envy.Token, d *envy.Token) {
	if d == nil {
		return
	}
	t.ParentID = d.ID
	// In its definer's lineage, as a token it mints is (CreateToken): a
	// scoped admin's logins share its rate limit.
	if !envy.IsGlobalAdmin(d) {
		t.RootID = d.Root()
	}
	if d.ExpiresAt != nil && (t.ExpiresAt == nil || t.ExpiresAt.After(*d.ExpiresAt)) {
		e := *d.ExpiresAt
		t.ExpiresAt = &e
	}
}

// trustFor returns trust name when the caller is a global admin or defined
// it; to anyone else it does not exist (403, as for a token).
func (s *Service) trustFor(ctx context.Context, name string, action envy.AuditAction) (envy.JWTTrust, envy.TrustStore, error) {
	ts, err := s.trustStore()
	if err != nil {
		return envy.JWTTrust{}, nil, err
	}
	t, err := definedBy(s, ctx, name, "a trust", action, ts.GetTrust, func(t envy.JWTTrust) string { return t.CreatorID })
	return t, ts, err
}

// definedBy returns the definition name (a trust, an OIDC provider) when
// the caller is a global admin or the token that defined it; to anyone
// else it does not exist (403, as for a token).
func definedBy[T any](s *Service, ctx context.Context, name, what string, action envy.AuditAction,
	get func(context.Context, string) (T, error), creator func(T) string) (T, error) {
	var zero T
	caller := CallerFrom(ctx).Token
	if caller == nil {
		return zero, envy.Errorf(envy.EUnauthenticated, "authentication required")
	}
	if f := validDefName(name, what); f != nil {
		return zero, envy.Invalid(*f)
	}
	v, err := get(ctx, name)
	if err != nil && envy.ErrorCode(err) != envy.ENotFound {
		return zero, err
	}
	if envy.IsGlobalAdmin(caller) || err == nil && creator(v) == caller.ID {
		return v, err
	}
	return zero, s.requireGlobalAdmin(ctx, action)
}

// GetTrust returns a JWT trust (global admin, or the token that defined it).
func (s *Service) GetTrust(ctx context.Context, name string) (envy.JWTTrust, error) {
	t, _, err := s.trustFor(ctx, name, envy.AuditTrustGet)
	return t, err
}

// ListTrusts lists the JWT trusts by name (global admin).
func (s *Service) ListTrusts(ctx context.Context, cursor string, limit int) (envy.Page[envy.JWTTrust], error) {
	limit, err := limitOf("query.limit", limit)
	if err != nil {
		return envy.Page[envy.JWTTrust]{}, err
	}
	if err := s.requireGlobalAdmin(ctx, envy.AuditTrustList); err != nil {
		return envy.Page[envy.JWTTrust]{}, err
	}
	ts, err := s.trustStore()
	if err != nil {
		return envy.Page[envy.JWTTrust]{}, err
	}
	return fetchPage(limit, func(n int) ([]envy.JWTTrust, error) {
		return ts.ListTrusts(ctx, cursor, n)
	}, func(t envy.JWTTrust) string { return t.Name })
}

// DeleteTrust deletes a JWT trust and revokes every token its logins
// minted, each through the store's RevokeToken so that the revocation
// reaches every server's caches at once (global admin, or the token that
// defined it). It returns how many tokens it revoked.
func (s *Service) DeleteTrust(ctx context.Context, name string) (int, error) {
	_, ts, err := s.trustFor(ctx, name, envy.AuditTrustDelete)
	if err != nil {
		return 0, err
	}
	e := s.entry(ctx, envy.AuditTrustDelete, "", []string{name}, envy.OutcomeDeleted)
	rec, err := s.toStreams(1)
	if err != nil {
		return 0, err
	}
	_, err = ts.DeleteTrust(ctx, name, []envy.AuditEntry{e})
	if rec.done(err, 0, e); err != nil {
		return 0, err
	}
	return s.revokeLineage(ctx, name, "trust "+name+" deleted")
}

// revokeLineage revokes every live token whose Token.Trust is trust, each
// through the store's RevokeToken so that the revocation reaches every
// server's caches at once, and returns how many it revoked. A login that
// read the definition before its deletion and mints after this list looks
// for its definition again once its token exists (revokeIfGone), and
// revokes its token itself.
func (s *Service) revokeLineage(ctx context.Context, trust, why string) (int, error) {
	ts, err := s.trustStore()
	if err != nil {
		return 0, err
	}
	ids, err := ts.TrustTokens(ctx, trust)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		re := s.entry(ctx, envy.AuditTokenRevoke, "", []string{why}, envy.OutcomeDeleted)
		if err := s.store.RevokeToken(ctx, id, s.now(), []envy.AuditEntry{re}); err != nil && envy.ErrorCode(err) != envy.ENotFound {
			return n, err
		} else if err == nil {
			s.offer(re) // follows the delete, which reserved
		}
		n++
	}
	return n, nil
}

// revokeIfGone revokes the token id just minted when its definition is
// gone (exists answers ENotFound), which it then returns.
func (s *Service) revokeIfGone(ctx context.Context, id, why string, exists func() error) error {
	err := exists()
	if err == nil {
		return nil
	}
	re := s.entry(ctx, envy.AuditTokenRevoke, "", []string{why}, envy.OutcomeDeleted)
	if rerr := s.store.RevokeToken(ctx, id, s.now(), []envy.AuditEntry{re}); rerr != nil {
		return rerr
	}
	s.offer(re)
	return err
}

// loginTokenRetention is how long a login's token is kept after it ended:
// a workload that renews every few minutes would otherwise fill the
// tokens table.
const loginTokenRetention = 24 * time.Hour

// pruneLoginTokens deletes the logins' tokens that ended more than
// loginTokenRetention ago (the sweep).
func (s *Service) pruneLoginTokens(ctx context.Context, now time.Time) (int64, error) {
	ts, err := s.trustStore()
	if err != nil {
		return 0, nil // a store without trusts has no such tokens
	}
	return ts.PruneTrustTokens(ctx, now.Add(-loginTokenRetention))
}

// MaxLoginRefusalRowsPerClient is how many refused JWT logins of one
// client address a minute the audit log records one row each, with the
// precise reason; beyond, they are counted in the client's aggregated
// refusal row (Refused), without a reason, so that a flood of bad JWTs
// can't fill the log.
const MaxLoginRefusalRowsPerClient = 16

type loginRefusals struct {
	mu     sync.Mutex
	minute time.Time
	n      map[string]int
}

// admit reports whether client may add another detailed row this minute.
func (l *loginRefusals) admit(client string, at time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if m := at.Truncate(time.Minute); !m.Equal(l.minute) || l.n == nil {
		l.minute, l.n = m, map[string]int{}
	}
	if len(l.n) >= maxRefusalClients && l.n[client] == 0 {
		return false
	}
	l.n[client]++
	return l.n[client] <= MaxLoginRefusalRowsPerClient
}

// validSubject: 1 to maxSubjectLen bytes of UTF-8 under the rules of a
// token's name (envy.ValidateLabel), as the subject names the token: no
// space at either end, no control or invisible character, no space but
// U+0020, so that no login's token passes for another's.
func validSubject(s string) bool {
	if s == "" || len(s) > maxSubjectLen || !utf8.ValidString(s) || s[0] == ' ' || s[len(s)-1] == ' ' {
		return false
	}
	for _, r := range s {
		if unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp) || r != ' ' && unicode.Is(unicode.Zs, r) {
			return false
		}
	}
	return true
}

// errInvalidJWT is every refused login's answer: the precise reason is the
// audit log's, never the caller's, so that it does not help an attacker.
func errInvalidJWT() error { return envy.Errorf(envy.EUnauthenticated, "invalid token") }

// LoginJWT trades a JWT that trust name accepts for a token that expires
// after the trust's TTL, named "jwt:{name}:{subject}". Every refusal is
// "invalid token"; the audit log records why, never the JWT.
func (s *Service) LoginJWT(ctx context.Context, name, raw string) (envy.JWTLogin, error) {
	refuse := func(reason string) (envy.JWTLogin, error) {
		e := s.entry(ctx, envy.AuditJWTLogin, "", []string{name, "refused: " + reason}, envy.OutcomeUnauthenticated)
		e.Actor = "jwt:" + name
		if s.loginRefusals.admit(e.Client, e.At) {
			s.enqueue(auditItem{e: e})
		} else {
			s.Refused(ctx, envy.AuditJWTLogin, "", envy.OutcomeUnauthenticated)
		}
		return envy.JWTLogin{}, errInvalidJWT()
	}
	if validTrustName(name) != nil {
		name = "(invalid name)"
		return refuse("unknown trust")
	}
	ts, err := s.trustStore()
	if err != nil {
		return envy.JWTLogin{}, err
	}
	t, err := ts.GetTrust(ctx, name)
	if envy.ErrorCode(err) == envy.ENotFound {
		return refuse("unknown trust")
	} else if err != nil {
		return envy.JWTLogin{}, err
	}
	if s.opts.Verifier == nil {
		return refuse("no verifier is configured")
	}
	claims, err := s.opts.Verifier.Verify(ctx, t, raw)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return envy.JWTLogin{}, err
		}
		return refuse(err.Error())
	}
	subject, _ := claims[t.SubjectClaim].(string)
	if !validSubject(subject) {
		return refuse("subject claim missing or invalid")
	}
	now := s.now()
	d, why, err := s.definer(ctx, t.CreatorID, t.Permissions, now)
	if err != nil {
		return envy.JWTLogin{}, err
	}
	if why != "" {
		return refuse(why)
	}
	exp := now.Add(t.TTL)
	plain := envy.NewTokenValue()
	id := newID()
	// A subject may log in many times at once (replicas of one workload):
	// each login's token is its own owner, so names never collide.
	tok := envy.Token{ID: id, Name: "jwt:" + name + ":" + subject, Owner: "jwt:" + id, Hash: envy.HashToken(plain),
		Permissions: t.Permissions, CreatedAt: now, CreatedBy: "jwt:" + name, ExpiresAt: &exp, Trust: name, Subject: subject}
	childOf(&tok, d)
	e := s.entry(ctx, envy.AuditJWTLogin, "", []string{name}, envy.OutcomeCreated)
	e.Actor, e.TokenID = tok.Name, tok.ID
	rec, err := s.toStreams(1)
	if err != nil {
		return envy.JWTLogin{}, err
	}
	_, err = s.store.CreateToken(ctx, tok, false, []envy.AuditEntry{e})
	if rec.done(err, 0, e); err != nil {
		if d != nil && envy.ErrorCode(err) == envy.EUnauthenticated {
			// The definer was revoked since it was read (the store's
			// check of a minted token's parent).
			return refuse("the token that defined it is revoked or expired")
		}
		return envy.JWTLogin{}, err
	}
	// The trust deleted meanwhile: its deletion may have listed its tokens
	// before this one existed, so this login revokes its own.
	if err := s.revokeIfGone(ctx, id, "trust "+name+" deleted", func() error {
		_, err := ts.GetTrust(ctx, name)
		return err
	}); err != nil {
		if envy.ErrorCode(err) == envy.ENotFound {
			return refuse("trust deleted during the login")
		}
		return envy.JWTLogin{}, err
	}
	return envy.JWTLogin{Token: tok, Plaintext: plain}, nil
}
