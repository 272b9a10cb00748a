package http_test

import (
	"crypto/x509"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/identity"
	"github.com/envy-dev/envy/identity/idtest"
	"github.com/envy-dev/envy/internal/testenv"
	"github.com/envy-dev/envy/service"
)

// TestJWTLoginOverHTTP: a login needs no bearer token and answers 201 with
// the token, its name and expiry; every refusal is the same 401 "invalid
// token", whatever its reason, and the audit log holds the reason, never
// the JWT (nor does the server's log); the minted token shows its lineage
// in tokens/self and reads only what the trust grants; deleting the trust
// ends it on the next request.
func TestJWTLoginOverHTTP(t *testing.T) {
	k := idtest.NewKey(t, "k1", jose.RS256)
	p := idtest.New(t, k)
	e := testenv.New(t, testenv.Options{Service: service.Options{Verifier: identity.New(identity.Options{})}, HTTP: httpOptsNoLimits()})
	trust := `{"issuer":"` + p.URL + `","audience":"envy","bound_claims":{"repository":"acme/web","ref":"refs/heads/*"},
		"permissions":[{"scopes":"acme/web/**","actions":["read","reveal"]}],"ttl":"15m","max_age":"1h"}`
	if r := e.Do(t, "PUT", "/v1/auth/jwt/github", e.Admin, trust); r.Status != 201 {
		t.Fatalf("PUT trust: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "PUT", "/v1/auth/jwt/github", e.Admin, trust); r.Status != 200 {
		t.Fatalf("PUT trust again: %d %s", r.Status, r.Body)
	}
	r := e.Do(t, "GET", "/v1/auth/jwt/github", e.Admin, "")
	if r.Status != 200 || r.JSON(t)["ttl"] != "15m0s" || r.JSON(t)["max_age"] != "1h0m0s" {
		t.Fatalf("GET trust: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "GET", "/v1/auth/jwt", e.Admin, ""); r.Status != 200 || !strings.Contains(string(r.Body), `"name":"github"`) {
		t.Fatalf("list: %d %s", r.Status, r.Body)
	}
	e.Do(t, "PUT", "/v1/scopes/acme/web/prod/-/vars/DB", e.Admin, `{"value":"postgres://db"}`)
	e.Do(t, "PUT", "/v1/scopes/other/-/vars/X", e.Admin, `{"value":"x"}`)

	claims := func(edit func(map[string]any)) map[string]any {
		c := p.Claims("envy", "repo:acme/web:ref:refs/heads/main", time.Now(), map[string]any{"repository": "acme/web", "ref": "refs/heads/main"})
		if edit != nil {
			edit(c)
		}
		return c
	}
	login := func(jwt string) testenv.Response {
		body, _ := json.Marshal(map[string]string{"jwt": jwt})
		return e.Do(t, "POST", "/v1/auth/jwt/github/login", "", string(body))
	}
	good := idtest.Sign(t, k, claims(nil))
	r = login(good)
	if r.Status != 201 {
		t.Fatalf("login: %d %s", r.Status, r.Body)
	}
	tok := r.JSON(t)["token"].(string)
	if r.JSON(t)["name"] != "jwt:github:repo:acme/web:ref:refs/heads/main" || !strings.HasPrefix(tok, "envy_") {
		t.Fatalf("login reply %s", r.Body)
	}
	exp, _ := time.Parse(time.RFC3339Nano, r.JSON(t)["expires_at"].(string))
	self := e.Do(t, "GET", "/v1/tokens/self", tok, "")
	created, _ := time.Parse(time.RFC3339Nano, self.JSON(t)["created_at"].(string))
	if self.Status != 200 || self.JSON(t)["trust"] != "github" || self.JSON(t)["subject"] != "repo:acme/web:ref:refs/heads/main" || exp.Sub(created) != 15*time.Minute {
		t.Fatalf("tokens/self: %d %s (expires %v)", self.Status, self.Body, exp)
	}
	if r := e.Do(t, "GET", "/v1/scopes/acme/web/prod/-/env", tok, ""); r.Status != 200 || !strings.Contains(string(r.Body), "postgres://db") {
		t.Fatalf("reading what the trust grants: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "GET", "/v1/scopes/other/-/env", tok, ""); r.Status != 404 {
		t.Fatalf("reading beyond the trust: %d", r.Status)
	}
	if r := e.Do(t, "POST", "/v1/tokens", tok, `{"name":"x","permissions":[{"scopes":"acme/web/prod","actions":["read"]}]}`); r.Status != 403 {
		t.Fatalf("a login's token minting: %d", r.Status)
	}

	other := idtest.NewKey(t, "k1", jose.RS256)
	der, _ := x509.MarshalPKIXPublicKey(k.Priv.Public())
	refusals := map[string]string{
		"bad signature":                  idtest.Sign(t, other, claims(nil)),
		"expired":                        idtest.Sign(t, k, claims(func(c map[string]any) { c["exp"] = time.Now().Add(-2 * time.Minute).Unix() })),
		"not yet valid (nbf)":            idtest.Sign(t, k, claims(func(c map[string]any) { c["nbf"] = time.Now().Add(5 * time.Minute).Unix() })),
		"wrong issuer":                   idtest.Sign(t, k, claims(func(c map[string]any) { c["iss"] = "https://evil.example" })),
		"wrong audience":                 idtest.Sign(t, k, claims(func(c map[string]any) { c["aud"] = "sts.amazonaws.com" })),
		"claim ref did not match":        idtest.Sign(t, k, claims(func(c map[string]any) { c["ref"] = "refs/tags/v1" })),
		"algorithm not allowed":          idtest.SignHMAC(t, "k1", der, claims(nil)),
		"unknown key id":                 idtest.Sign(t, idtest.NewKey(t, "k9", jose.RS256), claims(nil)),
		"older than the trust's max age": idtest.Sign(t, k, claims(func(c map[string]any) { c["iat"] = time.Now().Add(-2 * time.Hour).Unix() })),
	}
	refusals["algorithm not allowed (none)"] = idtest.Unsigned("k1", claims(nil))
	var first string
	for reason, jwt := range refusals {
		r := login(jwt)
		if r.Status != 401 {
			t.Fatalf("%s: %d %s", reason, r.Status, r.Body)
		}
		var prob map[string]any
		json.Unmarshal(r.Body, &prob)
		delete(prob, "request_id")
		delete(prob, "instance")
		b, _ := json.Marshal(prob)
		if first == "" {
			first = string(b)
		} else if string(b) != first {
			t.Fatalf("%s: the refusal %s differs from another's %s: it tells the reason", reason, b, first)
		}
		if !strings.Contains(first, "invalid token") {
			t.Fatalf("refusal %s", first)
		}
	}
	audit := e.Do(t, "GET", "/v1/audit?limit=500", e.Admin, "")
	for reason := range refusals {
		reason = strings.TrimSuffix(reason, " (none)")
		if !strings.Contains(string(audit.Body), `"refused: `+reason+`"`) {
			t.Errorf("the audit log lacks the reason %q", reason)
		}
	}
	for _, jwt := range append([]string{good}, refusals["expired"], refusals["bad signature"]) {
		payload := strings.Split(jwt, ".")[1]
		if strings.Contains(string(audit.Body), payload) || strings.Contains(e.Logs.String(), payload) {
			t.Fatalf("a JWT is in the audit log or the server's log")
		}
	}
	if strings.Contains(e.Logs.String(), tok) || strings.Contains(string(audit.Body), tok) {
		t.Fatalf("the minted token is in the log or the audit log")
	}

	// Deleting the trust ends its tokens at once.
	if r := e.Do(t, "DELETE", "/v1/auth/jwt/github", e.Admin, ""); r.Status != 204 {
		t.Fatalf("DELETE trust: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "GET", "/v1/tokens/self", tok, ""); r.Status != 401 {
		t.Fatalf("a deleted trust's token: %d", r.Status)
	}
	if r := login(good); r.Status != 401 {
		t.Fatalf("login to a deleted trust: %d", r.Status)
	}
	if r := e.Do(t, "GET", "/v1/auth/jwt/github", e.Admin, ""); r.Status != 404 {
		t.Fatalf("GET a deleted trust: %d", r.Status)
	}
}

// TestJWTLoginRefusalsAreLimitedPerAddress: refused logins count against
// the client address like bad tokens, so JWTs can't be guessed at speed.
func TestJWTLoginRefusalsAreLimitedPerAddress(t *testing.T) {
	p := idtest.New(t, idtest.NewKey(t, "k1", jose.ES256))
	e := testenv.New(t, testenv.Options{Service: service.Options{Verifier: identity.New(identity.Options{})},
		HTTP: envyhttp.Options{AuthFailRate: 0.001, AuthFailBurst: 3}})
	if r := e.Do(t, "PUT", "/v1/auth/jwt/k8s", e.Admin, `{"issuer":"`+p.URL+`","audience":"envy","permissions":[{"scopes":"**","actions":["read"]}]}`); r.Status != 201 {
		t.Fatalf("PUT trust: %d %s", r.Status, r.Body)
	}
	var statuses []int
	for range 5 {
		statuses = append(statuses, e.Do(t, "POST", "/v1/auth/jwt/k8s/login", "", `{"jwt":"a.b.c"}`).Status)
	}
	if statuses[0] != 401 || statuses[4] != 429 {
		t.Fatalf("statuses %v: want 401 first and 429 once over the limit", statuses)
	}
}
