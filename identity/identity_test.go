package identity_test

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/identity"
	"github.com/envy-dev/envy/identity/idtest"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func reason(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	var r *identity.Refusal
	if !errors.As(err, &r) {
		t.Fatalf("error %v is no Refusal", err)
	}
	return r.Reason
}

func TestVerify(t *testing.T) {
	rsaKey := idtest.NewKey(t, "rsa-1", jose.RS256)
	ecKey := idtest.NewKey(t, "ec-1", jose.ES256)
	edKey := idtest.NewKey(t, "ed-1", jose.EdDSA)
	p := idtest.New(t, rsaKey, ecKey, edKey)
	clk := &clock{now: time.Now()}
	v := identity.New(identity.Options{Now: clk.Now})
	trust := envy.JWTTrust{Name: "ci", Issuer: p.URL, Audience: "envy",
		BoundClaims: map[string]string{"repository": "acme/web", "ref": "refs/heads/*"}, TTL: time.Minute}
	good := map[string]any{"repository": "acme/web", "ref": "refs/heads/main"}
	claims := func(edit func(c map[string]any)) map[string]any {
		c := p.Claims("envy", "repo:acme/web", clk.Now(), good)
		if edit != nil {
			edit(c)
		}
		return c
	}
	ctx := t.Context()
	for _, k := range []idtest.Key{rsaKey, ecKey, edKey} {
		got, err := v.Verify(ctx, trust, idtest.Sign(t, k, claims(nil)))
		if err != nil || got["sub"] != "repo:acme/web" {
			t.Fatalf("%s: Verify = %v, %v", k.Alg, got, err)
		}
	}
	// An audience list that holds the trust's audience is fine.
	if _, err := v.Verify(ctx, trust, idtest.Sign(t, rsaKey, claims(func(c map[string]any) { c["aud"] = []string{"other", "envy"} }))); err != nil {
		t.Fatalf("audience list: %v", err)
	}

	// A dotted bound claim reaches a nested one, as Kubernetes nests the
	// namespace under "kubernetes.io".
	nested := trust
	nested.BoundClaims = map[string]string{"kubernetes.io.namespace": "web"}
	k8s := func(ns any) string {
		return idtest.Sign(t, rsaKey, claims(func(c map[string]any) { c["kubernetes.io"] = map[string]any{"namespace": ns} }))
	}
	if _, err := v.Verify(ctx, nested, k8s("web")); err != nil {
		t.Fatalf("nested claim: %v", err)
	}
	if _, err := v.Verify(ctx, nested, k8s("db")); reason(t, err) != "claim kubernetes.io.namespace did not match" {
		t.Fatalf("nested claim of another value: %v", err)
	}

	other := idtest.NewKey(t, "rsa-1", jose.RS256) // same kid, another key
	der, _ := x509.MarshalPKIXPublicKey(rsaKey.Priv.Public())
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	maxAge := trust
	maxAge.MaxAge = 5 * time.Minute
	signed := idtest.Sign(t, rsaKey, claims(nil))
	parts := strings.Split(signed, ".")
	tampered := parts[0] + "." + strings.TrimRight(parts[1], "A") + "x." + parts[2]
	for _, c := range []struct {
		name, jwt string
		trust     envy.JWTTrust
		want      string
	}{
		{"bad signature (the payload changed)", tampered, trust, "bad signature"},
		{"signed by another key with the same kid", idtest.Sign(t, other, claims(nil)), trust, "bad signature"},
		{"expired beyond the leeway", idtest.Sign(t, rsaKey, claims(func(c map[string]any) { c["exp"] = clk.Now().Add(-61 * time.Second).Unix() })), trust, "expired"},
		{"nbf in the future beyond the leeway", idtest.Sign(t, rsaKey, claims(func(c map[string]any) { c["nbf"] = clk.Now().Add(2 * time.Minute).Unix() })), trust, "not yet valid (nbf)"},
		{"iat in the future beyond the leeway", idtest.Sign(t, rsaKey, claims(func(c map[string]any) { c["iat"] = clk.Now().Add(2 * time.Minute).Unix() })), trust, "issued in the future (iat)"},
		{"no exp", idtest.Sign(t, rsaKey, claims(func(c map[string]any) { delete(c, "exp") })), trust, "no expiry"},
		{"wrong iss", idtest.Sign(t, rsaKey, claims(func(c map[string]any) { c["iss"] = p.URL + "/other" })), trust, "wrong issuer"},
		{"wrong aud", idtest.Sign(t, rsaKey, claims(func(c map[string]any) { c["aud"] = "not-envy" })), trust, "wrong audience"},
		{"claim mismatch", idtest.Sign(t, rsaKey, claims(func(c map[string]any) { c["ref"] = "refs/tags/v1" })), trust, "claim ref did not match"},
		{"claim missing", idtest.Sign(t, rsaKey, claims(func(c map[string]any) { delete(c, "repository") })), trust, "claim repository did not match"},
		{"claim of another type", idtest.Sign(t, rsaKey, claims(func(c map[string]any) { c["repository"] = []string{"acme/web"} })), trust, "claim repository did not match"},
		{"alg none", idtest.Unsigned("rsa-1", claims(nil)), trust, "algorithm not allowed"},
		{"HS256 signed with the public key", idtest.SignHMAC(t, "rsa-1", pubPEM, claims(nil)), trust, "algorithm not allowed"},
		{"HS256 signed with the public key's DER", idtest.SignHMAC(t, "rsa-1", der, claims(nil)), trust, "algorithm not allowed"},
		{"unknown kid", idtest.Sign(t, idtest.NewKey(t, "nope", jose.ES256), claims(nil)), trust, "unknown key id"},
		{"older than max age", idtest.Sign(t, rsaKey, claims(func(c map[string]any) { c["iat"] = clk.Now().Add(-10 * time.Minute).Unix() })), maxAge, "older than the trust's max age"},
		{"no iat under a max age", idtest.Sign(t, rsaKey, claims(func(c map[string]any) { delete(c, "iat") })), maxAge, "older than the trust's max age"},
		{"not a JWT", "envy_notajwt", trust, "malformed JWT"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := v.Verify(ctx, c.trust, c.jwt)
			if got := reason(t, err); got != c.want {
				t.Fatalf("reason %q, want %q", got, c.want)
			}
			if strings.Contains(err.Error(), c.jwt) || strings.Contains(err.Error(), "acme/web") {
				t.Fatalf("the reason %q holds the JWT or a claim's value", err)
			}
		})
	}
	// Within the leeway, times are fine.
	if _, err := v.Verify(ctx, trust, idtest.Sign(t, rsaKey, claims(func(c map[string]any) {
		c["exp"] = clk.Now().Add(-30 * time.Second).Unix()
		c["nbf"] = clk.Now().Add(30 * time.Second).Unix()
	}))); err != nil {
		t.Fatalf("within the leeway: %v", err)
	}
}

func TestKeyRotationAndUnreachableKeys(t *testing.T) {
	k1 := idtest.NewKey(t, "k1", jose.ES256)
	k2 := idtest.NewKey(t, "k2", jose.ES256)
	p := idtest.New(t, k1)
	clk := &clock{now: time.Now()}
	v := identity.New(identity.Options{Now: clk.Now})
	trust := envy.JWTTrust{Name: "k8s", Issuer: p.URL, Audience: "envy", JWKSURL: p.URL + "/keys", TTL: time.Minute}
	ctx := t.Context()
	sign := func(k idtest.Key) string {
		return idtest.Sign(t, k, p.Claims("envy", "system:serviceaccount:web:api", clk.Now(), nil))
	}
	if _, err := v.Verify(ctx, trust, sign(k1)); err != nil {
		t.Fatal(err)
	}
	if n := p.JWKSFetches.Load(); n != 1 {
		t.Fatalf("%d fetches after the first login, want 1", n)
	}
	if _, err := v.Verify(ctx, trust, sign(k1)); err != nil || p.JWKSFetches.Load() != 1 {
		t.Fatalf("a known key: %v, %d fetches: the set is cached", err, p.JWKSFetches.Load())
	}
	// The provider rotates to k2. Within the minute of the last fetch, an
	// unknown kid fetches nothing.
	p.Publish(k2)
	clk.Advance(30 * time.Second)
	if got := reason(t, func() error { _, err := v.Verify(ctx, trust, sign(k2)); return err }()); got != "unknown key id" {
		t.Fatalf("within the minute: %q, want unknown key id", got)
	}
	for range 5 {
		v.Verify(ctx, trust, sign(idtest.NewKey(t, "made-up", jose.ES256)))
	}
	if n := p.JWKSFetches.Load(); n != 1 {
		t.Fatalf("%d fetches: unknown kids fetched again within the minute", n)
	}
	// A minute on, the unknown kid fetches the set again and finds k2.
	clk.Advance(31 * time.Second)
	if _, err := v.Verify(ctx, trust, sign(k2)); err != nil {
		t.Fatalf("after the rotation: %v", err)
	}
	if n := p.JWKSFetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
	// k1 is gone from the set: refused (and never fetched again within the minute).
	if got := reason(t, func() error { _, err := v.Verify(ctx, trust, sign(k1)); return err }()); got != "unknown key id" {
		t.Fatalf("a retired key: %q", got)
	}

	// Unreachable keys refuse the logins that need them and accept nothing.
	v2 := identity.New(identity.Options{Now: clk.Now})
	p.SetDown(true)
	if got := reason(t, func() error { _, err := v2.Verify(ctx, trust, sign(k2)); return err }()); got != "issuer keys unavailable" {
		t.Fatalf("keys down: %q", got)
	}
	if got := reason(t, func() error {
		_, err := v2.Verify(ctx, trust, idtest.Unsigned("k2", p.Claims("envy", "x", clk.Now(), nil)))
		return err
	}()); got != "algorithm not allowed" {
		t.Fatalf("unsigned while keys are down: %q", got)
	}
	p.SetDown(false)
	clk.Advance(61 * time.Second)
	if _, err := v2.Verify(ctx, trust, sign(k2)); err != nil {
		t.Fatalf("keys back: %v", err)
	}
	// A cached set older than MaxKeyAge that can't be fetched again is not used.
	p.SetDown(true)
	clk.Advance(identity.MaxKeyAge)
	if got := reason(t, func() error { _, err := v2.Verify(ctx, trust, sign(k2)); return err }()); got != "issuer keys unavailable" {
		t.Fatalf("stale keys while down: %q", got)
	}
}

func TestCheckURL(t *testing.T) {
	for u, ok := range map[string]bool{
		"https://token.actions.githubusercontent.com": true, "http://127.0.0.1:8080/keys": true, "http://[::1]/k": true,
		"http://localhost:1/k": true, "http://example.com/keys": false, "ftp://x/y": false, "/keys": false, "https://u:p@x/": false,
	} {
		if err := identity.CheckURL(u); (err == nil) != ok {
			t.Errorf("CheckURL(%q) = %v, want ok %v", u, err, ok)
		}
	}
}

func TestMatchClaim(t *testing.T) {
	for _, c := range []struct {
		pattern, s string
		want       bool
	}{
		{"refs/heads/main", "refs/heads/main", true}, {"refs/heads/main", "refs/heads/main2", false},
		{"refs/heads/*", "refs/heads/feature/x", true}, {"refs/heads/*", "refs/tags/v1", false},
		{"*", "", true}, {"a*b*c", "abc", true}, {"a*b*c", "axxbyyc", true}, {"a*b*c", "acb", false},
		{"*-prod", "web-prod", true}, {"*-prod", "web-prod-x", false}, {"ab*ba", "aba", false},
	} {
		if got := identity.MatchClaim(c.pattern, c.s); got != c.want {
			t.Errorf("MatchClaim(%q, %q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
	}
}

// TestDiscoveryFailuresAreRetriedAtMostOnceAMinute: a trust without a
// jwks_url finds the keys through discovery; while discovery fails,
// logins are refused and discovery is tried again at most once a minute.
func TestDiscoveryFailuresAreRetriedAtMostOnceAMinute(t *testing.T) {
	k := idtest.NewKey(t, "k1", jose.EdDSA)
	p := idtest.New(t, k)
	clk := &clock{now: time.Now()}
	v := identity.New(identity.Options{Now: clk.Now})
	trust := envy.JWTTrust{Name: "ci", Issuer: p.URL, Audience: "envy", TTL: time.Minute}
	jwt := idtest.Sign(t, k, p.Claims("envy", "s", clk.Now(), nil))
	p.SetDown(true)
	for range 5 {
		if got := reason(t, func() error { _, err := v.Verify(t.Context(), trust, jwt); return err }()); got != "issuer keys unavailable" {
			t.Fatalf("discovery down: %q", got)
		}
	}
	if n := p.DiscoveryFetches.Load(); n != 1 {
		t.Fatalf("%d discovery fetches within the minute, want 1", n)
	}
	p.SetDown(false)
	clk.Advance(61 * time.Second)
	if _, err := v.Verify(t.Context(), trust, jwt); err != nil {
		t.Fatalf("discovery back: %v", err)
	}
	if n := p.DiscoveryFetches.Load(); n != 2 {
		t.Fatalf("%d discovery fetches, want 2", n)
	}
}

// TestAnEmptyExpectationAcceptsNothing: a trust without an issuer or an
// audience (which PutTrust refuses) verifies no JWT, even one without them.
func TestAnEmptyExpectationAcceptsNothing(t *testing.T) {
	k := idtest.NewKey(t, "k1", jose.ES256)
	p := idtest.New(t, k)
	v := identity.New(identity.Options{})
	c := p.Claims("envy", "s", time.Now(), nil)
	delete(c, "iss")
	delete(c, "aud")
	jwt := idtest.Sign(t, k, c)
	for _, tr := range []envy.JWTTrust{
		{Name: "a", Issuer: "", Audience: "envy", JWKSURL: p.URL + "/keys"},
		{Name: "b", Issuer: "", Audience: "", JWKSURL: p.URL + "/keys"},
	} {
		if _, err := v.Verify(t.Context(), tr, jwt); err == nil {
			t.Fatalf("trust %+v accepted a JWT without iss and aud", tr)
		}
	}
}

func TestClaimHolds(t *testing.T) {
	claims := map[string]any{"groups": []any{"staff", "platform"}, "email": "a@acme.example",
		"kubernetes.io": map[string]any{"namespace": "web"}, "org": map[string]any{"team": map[string]any{"name": "ops"}}, "n": 3.0}
	for _, c := range []struct {
		path, pattern string
		want          bool
	}{
		{"groups", "platform", true}, {"groups", "plat*", true}, {"groups", "sales", false},
		{"email", "*@acme.example", true}, {"email", "a@evil.example", false},
		{"kubernetes.io.namespace", "web", true}, {"org.team.name", "ops", true}, {"org.team", "ops", false},
		{"missing", "*", false}, {"n", "3", false},
	} {
		if got := identity.ClaimHolds(claims, c.path, c.pattern); got != c.want {
			t.Errorf("ClaimHolds(%s, %q) = %v, want %v", c.path, c.pattern, got, c.want)
		}
	}
}
