// Package idtest is an OpenID provider on loopback for tests: it serves a
// discovery document and a key set (JWKS) whose keys it can rotate, and
// signs real JWTs with go-jose.
package idtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Key is a signing key with its id and algorithm.
type Key struct {
	ID   string
	Alg  jose.SignatureAlgorithm
	Priv crypto.Signer
}

// NewKey makes a key of alg (RS256, ES256 or EdDSA).
func NewKey(t testing.TB, id string, alg jose.SignatureAlgorithm) Key {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch alg {
	case jose.RS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("no key for %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return Key{ID: id, Alg: alg, Priv: priv}
}

// Public is the key as a JWKS lists it.
func (k Key) Public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.Priv.Public(), KeyID: k.ID, Algorithm: string(k.Alg), Use: "sig"}
}

// Provider is an OpenID provider on loopback.
type Provider struct {
	URL string // the issuer
	srv *httptest.Server

	mu        sync.Mutex
	published []Key
	down      bool
	// JWKSFetches and DiscoveryFetches count the fetches of the key set
	// and of the discovery document.
	JWKSFetches, DiscoveryFetches atomic.Int64
}

// New starts a provider publishing keys; it stops when the test ends.
func New(t testing.TB, keys ...Key) *Provider {
	p := &Provider{published: keys}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		p.DiscoveryFetches.Add(1)
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"issuer": p.URL, "jwks_uri": p.URL + "/keys",
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256", "EdDSA"}})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		p.JWKSFetches.Add(1)
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		var set jose.JSONWebKeySet
		for _, k := range p.published {
			set.Keys = append(set.Keys, k.Public())
		}
		json.NewEncoder(w).Encode(set)
	})
	p.srv = httptest.NewServer(mux)
	p.URL = p.srv.URL
	t.Cleanup(p.srv.Close)
	return p
}

// Publish replaces the published keys (a rotation).
func (p *Provider) Publish(keys ...Key) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.published = keys
}

// SetDown makes the key set and the discovery document answer 503 (or
// serve again).
func (p *Provider) SetDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
}

// Claims returns the standard claims of a JWT for audience aud and
// subject sub, issued now and valid for 10 minutes, with extra claims.
func (p *Provider) Claims(aud, sub string, now time.Time, extra map[string]any) map[string]any {
	c := map[string]any{"iss": p.URL, "aud": aud, "sub": sub, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

// Sign signs claims with k.
func Sign(t testing.TB, k Key, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", k.ID)
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.Alg, Key: k.Priv}, opts)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// SignHMAC signs claims with HS256 under secret, claiming key id kid: the
// attack that passes a public key off as an HMAC secret.
func SignHMAC(t testing.TB, kid string, secret []byte, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: secret}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// Unsigned is a JWT with "alg": "none" and an empty signature.
func Unsigned(kid string, claims map[string]any) string {
	h, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT", "kid": kid})
	c, _ := json.Marshal(claims)
	return fmt.Sprintf("%s.%s.", b64(h), b64(c))
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
