package service_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/service"
)

// An OIDC provider's discovery document names its token and keys
// endpoints: a definer who controls the issuer could name plain-http
// hosts inside the network, and have the server post the sign-in's code,
// its PKCE verifier and the client secret there in clear. Every request
// to a provider is https (loopback http only), whatever named it. The
// discovery here names plain-http endpoints at 0.0.0.0, which is no
// loopback address to the check but reaches this host's listener, so a
// request made is seen.
func TestAnOIDCProvidersEndpointsAreReachedOverHTTPSOnly(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.String())
		mu.Unlock()
		http.Error(w, "no", http.StatusBadGateway)
	}))
	defer internal.Close()
	plain := "http://0.0.0.0:" + internal.URL[strings.LastIndexByte(internal.URL, ':')+1:]
	var idp *httptest.Server
	idp = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"issuer": idp.URL, "authorization_endpoint": idp.URL + "/authorize",
			"token_endpoint": plain + "/token", "jwks_uri": plain + "/jwks",
			"id_token_signing_alg_values_supported": []string{"RS256"}})
	}))
	defer idp.Close()

	svc, admin := identityService(t, revocationStores[0].open(t))
	ctx := t.Context()
	actx := service.WithCaller(ctx, &service.Caller{Token: admin, Client: "10.0.0.1"})
	in := envy.OIDCInput{Issuer: idp.URL, ClientID: "c", ClientSecret: envy.NewSensitive("s3cret"), RedirectURIs: []string{"http://127.0.0.1/callback"},
		Roles: []envy.OIDCRole{{Claim: "groups", Value: "x", Permissions: []envy.Grant{{Scopes: "acme/x", Actions: []envy.Action{envy.ActRead}}}}}}
	if _, _, err := svc.PutOIDC(actx, "evil", in); err != nil {
		t.Fatal(err)
	}
	const binding = "a-client-nonce-of-the-cli"
	u, err := svc.OIDCAuthURL(ctx, "evil", "http://127.0.0.1:4321/callback", binding)
	if err != nil {
		t.Fatal(err)
	}
	pu, _ := url.Parse(u)
	if _, err := svc.OIDCCallback(context.Background(), "evil", pu.Query().Get("state"), "some-code", binding); err == nil {
		t.Fatal("a sign-in through a provider whose token endpoint is plain http succeeded")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) > 0 {
		t.Fatalf("the server sent requests to plain-http endpoints that discovery named: %q", seen)
	}
}
