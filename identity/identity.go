// Package identity verifies the JWTs that workloads present to a JWT
// trust (envy.JWTTrust): the signature against the issuer's published keys
// (JWKS, found through OpenID discovery unless the trust names it), the
// issuer, audience, times and bound claims. It never parses a JWT by
// hand: go-jose does, and only RS256, ES256 and EdDSA are accepted (never
// "none" or an HMAC algorithm, whose key would be the public key).
//
// A Verifier caches each key set. A JWT whose key id is not in the cached
// set makes it fetch the set again, at most once a minute per set, so that
// a key rotation at the provider is followed and a flood of made-up key
// ids can't make envy flood the provider. A set that can't be fetched
// refuses the logins that need it; nothing is ever accepted unverified.
//
// The errors of Verify are the precise reasons for the audit log; their
// messages never hold the JWT or a claim's value.
package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/envy-dev/envy"
)

// Leeway is the clock skew allowed on exp, nbf and iat.
const Leeway = 60 * time.Second

// RefreshEvery bounds how often a key set is fetched again for an unknown
// key id; MaxKeyAge is how long a fetched set is used at most.
const (
	RefreshEvery = time.Minute
	MaxKeyAge    = time.Hour
)

// MaxJWTLen bounds the JWT a login may present.
const MaxJWTLen = 16 << 10

// Algorithms are the signature algorithms accepted.
var Algorithms = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA}

// Reason is a refusal's precise reason, as the audit log records it.
type Reason string

// The reasons of a refusal.
const (
	ReasonMalformed        Reason = "malformed JWT"
	ReasonAlgorithm        Reason = "algorithm not allowed"
	ReasonUnknownKey       Reason = "unknown key id"
	ReasonBadSignature     Reason = "bad signature"
	ReasonKeysUnavailable  Reason = "issuer keys unavailable"
	ReasonWrongIssuer      Reason = "wrong issuer"
	ReasonWrongAudience    Reason = "wrong audience"
	ReasonExpired          Reason = "expired"
	ReasonNoExpiry         Reason = "no expiry"
	ReasonNotYetValid      Reason = "not yet valid (nbf)"
	ReasonIssuedInFuture   Reason = "issued in the future (iat)"
	ReasonTooOld           Reason = "older than the trust's max age"
	ReasonNoSubject        Reason = "subject claim missing or invalid"
	ReasonClaimMismatchFmt        = "claim %s did not match"
)

// Refusal is the error of a refused JWT.
type Refusal struct{ Reason string }

func (r *Refusal) Error() string { return r.Reason }

func refuse(r Reason) error { return &Refusal{Reason: string(r)} }

// Options tune a Verifier.
type Options struct {
	// Client fetches discovery documents and key sets; nil means a client
	// with a 10 s timeout.
	Client *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Verifier verifies JWTs for trusts, caching the issuers' keys.
type Verifier struct {
	client *http.Client
	now    func() time.Time

	mu   sync.Mutex
	sets map[string]*keySet // by JWKS URL
	jwks map[string]string  // discovered JWKS URL by issuer
	// tried is when discovery last failed, by issuer: it is tried again
	// at most once per RefreshEvery.
	tried map[string]time.Time
}

type keySet struct {
	mu      sync.Mutex // held while fetching
	keys    *jose.JSONWebKeySet
	fetched time.Time // when keys were fetched
	tried   time.Time // the last attempt, successful or not
}

var _ envy.TokenVerifier = (*Verifier)(nil)

// New returns a Verifier.
func New(o Options) *Verifier {
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if o.Client.CheckRedirect == nil {
		c := *o.Client
		c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 || CheckURL(req.URL.String()) != nil {
				return errors.New("a key set is fetched over https only")
			}
			return nil
		}
		o.Client = &c
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Verifier{client: o.Client, now: o.Now, sets: map[string]*keySet{}, jwks: map[string]string{}, tried: map[string]time.Time{}}
}

// CheckURL reports whether u may be fetched for keys: HTTPS, or plain HTTP
// to a loopback address (for tests and a provider on the same host).
func CheckURL(u string) error {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" || p.User != nil {
		return errors.New("must be an absolute URL")
	}
	switch p.Scheme {
	case "https":
		return nil
	case "http":
		h := p.Hostname()
		if ip := net.ParseIP(h); h == "localhost" || ip != nil && ip.IsLoopback() {
			return nil
		}
		return errors.New("must be https (plain http only to a loopback address)")
	}
	return errors.New("must be an https URL")
}

// Verify verifies raw for trust t and returns its claims.
func (v *Verifier) Verify(ctx context.Context, t envy.JWTTrust, raw string) (map[string]any, error) {
	if len(raw) > MaxJWTLen || strings.Count(raw, ".") != 2 {
		return nil, refuse(ReasonMalformed)
	}
	tok, err := jwt.ParseSigned(raw, Algorithms)
	if err != nil {
		if strings.Contains(err.Error(), "unexpected signature algorithm") {
			return nil, refuse(ReasonAlgorithm)
		}
		return nil, refuse(ReasonMalformed)
	}
	if len(tok.Headers) != 1 {
		return nil, refuse(ReasonMalformed)
	}
	kid := tok.Headers[0].KeyID
	keys, err := v.keysFor(ctx, t, kid)
	if err != nil {
		return nil, err
	}
	var std jwt.Claims
	var all map[string]any
	verified := false
	for _, k := range keys {
		if tok.Claims(k.Key, &std, &all) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, refuse(ReasonBadSignature)
	}
	now := v.now()
	switch err := std.ValidateWithLeeway(jwt.Expected{Issuer: t.Issuer, AnyAudience: jwt.Audience{t.Audience}, Time: now}, Leeway); {
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return nil, refuse(ReasonWrongIssuer)
	case errors.Is(err, jwt.ErrInvalidAudience):
		return nil, refuse(ReasonWrongAudience)
	case errors.Is(err, jwt.ErrExpired):
		return nil, refuse(ReasonExpired)
	case errors.Is(err, jwt.ErrNotValidYet):
		return nil, refuse(ReasonNotYetValid)
	case errors.Is(err, jwt.ErrIssuedInTheFuture):
		return nil, refuse(ReasonIssuedInFuture)
	case err != nil:
		return nil, refuse(ReasonMalformed)
	}
	if t.Issuer == "" || t.Audience == "" || std.Issuer != t.Issuer { // never an empty expectation
		return nil, refuse(ReasonWrongIssuer)
	}
	if std.Expiry == nil {
		return nil, refuse(ReasonNoExpiry)
	}
	if t.MaxAge > 0 && (std.IssuedAt == nil || now.Sub(std.IssuedAt.Time()) > t.MaxAge+Leeway) {
		return nil, refuse(ReasonTooOld)
	}
	for name, want := range t.BoundClaims {
		// A string claim only: a list that holds the value among others is
		// not bound to it.
		got, _ := Claim(all, name)
		if s, ok := got.(string); !ok || !MatchClaim(want, s) {
			return nil, &Refusal{Reason: fmt.Sprintf(ReasonClaimMismatchFmt, name)}
		}
	}
	return all, nil
}

// Claim returns the claim at path: the top-level claim so named, or, when
// there is none, the nested claim that a dotted path names, such as
// kubernetes.io.namespace for {"kubernetes.io": {"namespace": …}} (a key
// may itself hold dots).
func Claim(claims map[string]any, path string) (any, bool) {
	if v, ok := claims[path]; ok {
		return v, true
	}
	for i := 0; i < len(path); i++ {
		if path[i] != '.' {
			continue
		}
		if sub, ok := claims[path[:i]].(map[string]any); ok {
			if v, ok := Claim(sub, path[i+1:]); ok {
				return v, true
			}
		}
	}
	return nil, false
}

// ClaimHolds reports whether the claim at path (see Claim) matches
// pattern (see MatchClaim): a string claim that matches, or a list that
// holds a string that matches.
func ClaimHolds(claims map[string]any, path, pattern string) bool {
	switch v, _ := Claim(claims, path); v := v.(type) {
	case string:
		return MatchClaim(pattern, v)
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok && MatchClaim(pattern, s) {
				return true
			}
		}
	}
	return false
}

// MatchClaim matches a claim's value against a bound value: exactly, or,
// when the bound value holds '*', as a glob where '*' matches any run of
// characters (also none).
func MatchClaim(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return len(s) >= len(last) && strings.HasSuffix(s, last)
}

// keysFor returns the keys that may have signed a JWT with key id kid
// (every key when kid is empty), fetching the trust's key set when it is
// not cached, too old, or lacks kid (at most once per RefreshEvery).
func (v *Verifier) keysFor(ctx context.Context, t envy.JWTTrust, kid string) ([]jose.JSONWebKey, error) {
	u := t.JWKSURL
	if u == "" {
		var err error
		if u, err = v.discover(ctx, t.Issuer); err != nil {
			return nil, refuse(ReasonKeysUnavailable)
		}
	}
	if CheckURL(u) != nil {
		return nil, refuse(ReasonKeysUnavailable)
	}
	v.mu.Lock()
	ks := v.sets[u]
	if ks == nil {
		ks = &keySet{}
		v.sets[u] = ks
	}
	v.mu.Unlock()

	ks.mu.Lock()
	defer ks.mu.Unlock()
	now := v.now()
	find := func() []jose.JSONWebKey {
		if ks.keys == nil {
			return nil
		}
		var out []jose.JSONWebKey
		for _, k := range ks.keys.Keys {
			if (kid == "" || k.KeyID == kid) && k.Use != "enc" && k.IsPublic() {
				out = append(out, k)
			}
		}
		return out
	}
	stale := ks.keys == nil || now.Sub(ks.fetched) >= MaxKeyAge
	found := find()
	if (stale || len(found) == 0) && (ks.tried.IsZero() || now.Sub(ks.tried) >= RefreshEvery) {
		ks.tried = now
		set, err := v.fetch(ctx, u)
		if err == nil {
			ks.keys, ks.fetched = set, now
			found = find()
		} else if stale {
			ks.keys = nil // an old set is not kept past MaxKeyAge
			found = nil
		}
	}
	switch {
	case ks.keys == nil:
		return nil, refuse(ReasonKeysUnavailable)
	case len(found) == 0:
		return nil, refuse(ReasonUnknownKey)
	}
	return found, nil
}

// discover returns the issuer's JWKS URL from its OpenID discovery
// document, cached once found.
func (v *Verifier) discover(ctx context.Context, issuer string) (string, error) {
	v.mu.Lock()
	u, ok := v.jwks[issuer]
	last, failed := v.tried[issuer]
	now := v.now()
	if !ok && failed && now.Sub(last) < RefreshEvery {
		v.mu.Unlock()
		return "", errors.New("discovery failed within the last minute")
	}
	v.mu.Unlock()
	if ok {
		return u, nil
	}
	if err := CheckURL(issuer); err != nil {
		return "", err
	}
	fail := func(err error) (string, error) {
		v.mu.Lock()
		v.tried[issuer] = now
		v.mu.Unlock()
		return "", err
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := v.getJSON(ctx, strings.TrimSuffix(issuer, "/")+"/.well-known/openid-configuration", &doc); err != nil {
		return fail(err)
	}
	if doc.Issuer != issuer || CheckURL(doc.JWKSURI) != nil {
		return fail(errors.New("the discovery document does not match the issuer"))
	}
	v.mu.Lock()
	v.jwks[issuer] = doc.JWKSURI
	v.mu.Unlock()
	return doc.JWKSURI, nil
}

func (v *Verifier) fetch(ctx context.Context, u string) (*jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	if err := v.getJSON(ctx, u, &set); err != nil {
		return nil, err
	}
	return &set, nil
}

func (v *Verifier) getJSON(ctx context.Context, u string, dst any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(dst)
}
