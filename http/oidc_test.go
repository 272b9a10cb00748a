package http_test

import (
	"strings"
	"testing"

	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/internal/testenv"
)

// TestOIDCSignInRefusalsAreLimitedPerAddress: the CLI sign-in's finishing
// route needs no token; a refused sign-in (a state envy did not seal)
// counts against the client address like a bad token, and an unknown
// provider or a redirect URI it does not list is named.
func TestOIDCSignInRefusalsAreLimitedPerAddress(t *testing.T) {
	e := testenv.New(t, testenv.Options{HTTP: envyhttp.Options{AuthFailRate: 0.001, AuthFailBurst: 3}})
	if r := e.Do(t, "PUT", "/v1/auth/oidc/corp", e.Admin, `{"issuer":"https://login.example","client_id":"envy","client_secret":"s3cret-client",
		"redirect_uris":["http://127.0.0.1/callback"],"roles":[{"claim":"groups","value":"platform","permissions":[{"scopes":"**","actions":["read"]}]}]}`); r.Status != 201 ||
		strings.Contains(string(r.Body), "s3cret-client") {
		t.Fatalf("PUT provider: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "POST", "/v1/auth/oidc/nope/auth_url", "", `{"redirect_uri":"http://127.0.0.1:5000/callback","client_nonce":"0123456789abcdef"}`); r.Status != 404 ||
		!strings.Contains(string(r.Body), `no OIDC provider \"nope\"`) {
		t.Fatalf("an unknown provider: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "POST", "/v1/auth/oidc/corp/auth_url", "", `{"redirect_uri":"http://127.0.0.1:5000/elsewhere","client_nonce":"0123456789abcdef"}`); r.Status != 422 ||
		!strings.Contains(string(r.Body), "body.redirect_uri") {
		t.Fatalf("a redirect URI not listed: %d %s", r.Status, r.Body)
	}
	var statuses []int
	for range 5 {
		statuses = append(statuses, e.Do(t, "POST", "/v1/auth/oidc/corp/callback", "", `{"state":"AAAA","code":"c","client_nonce":"0123456789abcdef"}`).Status)
	}
	if statuses[0] != 401 || statuses[4] != 429 {
		t.Fatalf("statuses %v: want 401 first and 429 once over the limit", statuses)
	}
}

// trust_email is set, shown back and kept off unless asked; anything but
// a boolean is refused by name.
func TestOIDCTrustEmailIsSetShownAndValidated(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	const def = `"issuer":"https://login.example","client_id":"envy","client_secret":"s3cret-client",
		"redirect_uris":["http://127.0.0.1/callback"],"roles":[{"claim":"email","value":"*@acme.example","permissions":[{"scopes":"**","actions":["read"]}]}]`
	if r := e.Do(t, "PUT", "/v1/auth/oidc/corp", e.Admin, `{`+def+`}`); r.Status != 201 || strings.Contains(string(r.Body), "trust_email") {
		t.Fatalf("PUT without trust_email: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "PUT", "/v1/auth/oidc/corp", e.Admin, `{`+def+`,"trust_email":"yes"}`); r.Status != 400 && r.Status != 422 || !strings.Contains(string(r.Body), "body.trust_email") {
		t.Fatalf("trust_email as a string: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "PUT", "/v1/auth/oidc/corp", e.Admin, `{`+def+`,"trust_email":true}`); r.Status != 200 || !strings.Contains(string(r.Body), `"trust_email":true`) {
		t.Fatalf("PUT with trust_email: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "GET", "/v1/auth/oidc/corp", e.Admin, ""); !strings.Contains(string(r.Body), `"trust_email":true`) {
		t.Fatalf("GET: %d %s", r.Status, r.Body)
	}
}
