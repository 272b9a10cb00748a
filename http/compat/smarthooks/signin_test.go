package smarthooks_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/envy-dev/envy"
	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/http/compat/smarthooks"
	"github.com/envy-dev/envy/internal/testenv"
	"github.com/envy-dev/envy/service"
)

const authFailure = `{"statusCode":401,"name":"Unauthorized","message":"Authentication Failure"}`

func signInEnv(t *testing.T, o testenv.Options) *testenv.Env {
	o.Setup = func(api *envyhttp.Server, svc *service.Service) { smarthooks.Register(api, svc) }
	return testenv.New(t, o)
}

func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
}

// The OneLogin SDK's sign-in: Basic client id and secret, a
// client_credentials grant; the reply is OneLogin's, and its access token
// is a child of the secret: it serves the env var API, and revoking the
// secret ends it.
func TestSignInTradesTheClientSecretForAChildAccessToken(t *testing.T) {
	e := signInEnv(t, testenv.Options{})
	secret := e.Token(t, "hooks-ci", envy.Grant{Scopes: smarthooks.Scope, Actions: []envy.Action{envy.ActRead, envy.ActWrite}})
	r := e.Do(t, "POST", "/auth/oauth2/v2/token", "", `{"grant_type":"client_credentials"}`, "Authorization", basic("hooks-ci", secret))
	if r.Status != 200 {
		t.Fatalf("sign-in: %d %s", r.Status, r.Body)
	}
	o := r.JSON(t)
	access, _ := o["access_token"].(string)
	if !envy.ValidTokenFormat(access) || access == secret || o["expires_in"] != float64(36000) || o["token_type"] != "bearer" ||
		o["refresh_token"] != nil || !strings.Contains(string(r.Body), `"refresh_token":null`) || o["created_at"] == "" {
		t.Fatalf("reply: %s", r.Body)
	}
	if r := do(t, e, "POST", "/api/2/hooks/envs", access, `{"name":"A","value":"v"}`); r.Status != 201 {
		t.Fatalf("create with the access token: %d %s", r.Status, r.Body)
	}
	// The body's credentials work too.
	if r := e.Do(t, "POST", "/auth/oauth2/v2/token", "", `{"grant_type":"client_credentials","client_id":"hooks-ci","client_secret":"`+secret+`"}`); r.Status != 200 {
		t.Fatalf("sign-in with body credentials: %d %s", r.Status, r.Body)
	}
	if logs := e.Logs.String(); strings.Contains(logs, secret) || strings.Contains(logs, access) {
		t.Fatal("the log holds the client secret or the access token")
	}
	// Revoking the secret's token ends the access token.
	self := e.Do(t, "GET", "/v1/tokens/self", secret, "").JSON(t)
	if r := e.Do(t, "DELETE", "/v1/tokens/"+self["id"].(string), e.Admin, ""); r.Status != 200 {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	if r := do(t, e, "GET", "/api/2/hooks/envs", access, ""); r.Status != 401 {
		t.Fatalf("the access token outlived its secret: %d %s", r.Status, r.Body)
	}
}

// A wrong client id, a wrong secret, and the SDK's retried POST that has
// lost its body are each OneLogin's error, never a token.
func TestSignInRefusesInOneLoginsWords(t *testing.T) {
	e := signInEnv(t, testenv.Options{})
	secret := e.Token(t, "hooks-ci", envy.Grant{Scopes: smarthooks.Scope, Actions: []envy.Action{envy.ActRead}})
	grant := `{"grant_type":"client_credentials"}`
	for _, c := range []struct{ name, auth, body, want string }{
		{"wrong client id", basic("someone-else", secret), grant, authFailure},
		{"wrong secret", basic("hooks-ci", "envy_"+strings.Repeat("x", 43)), grant, authFailure},
		{"no credentials", "", grant, authFailure},
		{"retry without its body", basic("hooks-ci", secret), "", `{"statusCode":400,"name":"BadRequest","message":"grant_type is incorrect/absent"}`},
		{"another grant", basic("hooks-ci", secret), `{"grant_type":"password"}`, `{"statusCode":400,"name":"BadRequest","message":"grant_type is incorrect/absent"}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var h []string
			if c.auth != "" {
				h = []string{"Authorization", c.auth}
			}
			r := e.Do(t, "POST", "/auth/oauth2/v2/token", "", c.body, h...)
			if got := strings.TrimSpace(string(r.Body)); got != c.want {
				t.Fatalf("%d %s, want %s", r.Status, got, c.want)
			}
		})
	}
	if strings.Contains(e.Logs.String(), secret) {
		t.Fatal("the log holds the client secret")
	}
}

// A sign-in's token never outlives the client secret's, and failed
// sign-ins are limited per client address.
func TestSignInIsBoundedAndRateLimited(t *testing.T) {
	e := signInEnv(t, testenv.Options{HTTP: envyhttp.Options{AuthFailRate: 0.001, AuthFailBurst: 3}})
	r := e.Do(t, "POST", "/v1/tokens", e.Admin, `{"name":"short","expires_in":"1h","permissions":[{"scopes":"smart-hooks","actions":["read"]}]}`)
	secret := r.JSON(t)["token"].(string)
	r = e.Do(t, "POST", "/auth/oauth2/v2/token", "", `{"grant_type":"client_credentials"}`, "Authorization", basic("short", secret))
	if n, _ := r.JSON(t)["expires_in"].(float64); r.Status != 200 || n > 3600 || n < 3500 {
		t.Fatalf("a child of a 1h secret: %d %s", r.Status, r.Body)
	}
	last := 0
	for range 5 {
		last = e.Do(t, "POST", "/auth/oauth2/v2/token", "", `{"grant_type":"client_credentials"}`, "Authorization", basic("not-short", secret)).Status
	}
	if last != 429 {
		t.Fatalf("the 5th wrong client id is %d, want 429", last)
	}
}
