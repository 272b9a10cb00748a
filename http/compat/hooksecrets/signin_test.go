package hooksecrets_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/envy-dev/envy"
	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/http/compat/hooksecrets"
	"github.com/envy-dev/envy/internal/testenv"
	"github.com/envy-dev/envy/service"
)

// Auth0's client-credentials grant, as a form (how Go's oauth2 package
// sends it) and as JSON (the Node SDK): the access token is a child of the
// secret that serves the hook secrets API; refusals are Auth0's OAuth
// envelope, and no secret reaches the log.
func TestOAuthTokenTradesTheClientSecret(t *testing.T) {
	e := testenv.New(t, testenv.Options{Setup: func(api *envyhttp.Server, svc *service.Service) { hooksecrets.Register(api, svc) }})
	secret := e.Token(t, "auth0-ci", envy.Grant{Scopes: "hooks/**", Actions: []envy.Action{envy.ActRead, envy.ActWrite}})
	if r := e.Do(t, "PUT", "/v1/scopes/hooks/h1", e.Admin, `{}`); r.Status != 201 {
		t.Fatal(r.Status)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"auth0-ci"}, "client_secret": {secret}, "audience": {e.URL + "/api/v2/"}}
	r := e.Do(t, "POST", "/oauth/token", "", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	if r.Status != 200 {
		t.Fatalf("form sign-in: %d %s", r.Status, r.Body)
	}
	o := r.JSON(t)
	access, _ := o["access_token"].(string)
	if !envy.ValidTokenFormat(access) || o["token_type"] != "Bearer" || o["expires_in"] != float64(86400) || !strings.Contains(o["scope"].(string), "update:hooks") {
		t.Fatalf("reply: %s", r.Body)
	}
	if r := e.Do(t, "POST", "/api/v2/hooks/h1/secrets", access, `{"K":"v"}`); r.Status != 201 {
		t.Fatalf("write with the access token: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "POST", "/oauth/token", "", `{"grant_type":"client_credentials","client_id":"auth0-ci","client_secret":"`+secret+`","audience":"https://x/api/v2/"}`); r.Status != 200 {
		t.Fatalf("JSON sign-in: %d %s", r.Status, r.Body)
	}
	for _, c := range []struct{ body, want string }{
		{`{"grant_type":"client_credentials","client_id":"other","client_secret":"` + secret + `"}`, `{"error":"access_denied","error_description":"Unauthorized"}`},
		{`{"grant_type":"client_credentials","client_id":"auth0-ci","client_secret":"envy_nope"}`, `{"error":"access_denied","error_description":"Unauthorized"}`},
		{``, `{"error":"invalid_request","error_description":"Missing required parameter: grant_type"}`},
		{`{"grant_type":"password"}`, `{"error":"unsupported_grant_type","error_description":"Unsupported grant type: password"}`},
	} {
		if r := e.Do(t, "POST", "/oauth/token", "", c.body); strings.TrimSpace(string(r.Body)) != c.want {
			t.Errorf("%s: %d %s, want %s", c.body, r.Status, r.Body, c.want)
		}
	}
	if logs := e.Logs.String(); strings.Contains(logs, secret) || strings.Contains(logs, access) {
		t.Fatal("the log holds the client secret or the access token")
	}
}
