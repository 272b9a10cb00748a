// Package compat_test fuzzes the five dialects' body decoders together,
// through a real server with every dialect mounted.
package compat_test

import (
	"encoding/json"
	"net/url"
	"testing"

	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/http/compat/apify"
	"github.com/envy-dev/envy/http/compat/containers"
	"github.com/envy-dev/envy/http/compat/hooksecrets"
	"github.com/envy-dev/envy/http/compat/smarthooks"
	"github.com/envy-dev/envy/http/compat/usersecrets"
	"github.com/envy-dev/envy/internal/testenv"
	"github.com/envy-dev/envy/service"
)

// dialectWrite is a dialect route that reads a body. envelope names the
// members every error reply of that dialect has; status, when set, is the
// member that repeats the HTTP status. scope and name, when set, are the
// native var that a {"value": …} body writes.
type dialectWrite struct {
	method, path string
	envelope     []string
	status       string
	scope, name  string
}

// allDialects starts a server with the five dialects mounted.
func allDialects(t testing.TB) *testenv.Env {
	return testenv.New(t, testenv.Options{Setup: func(api *envyhttp.Server, svc *service.Service) {
		smarthooks.Register(api, svc)
		apify.Register(api, svc)
		usersecrets.Register(api, svc)
		containers.Register(api, svc)
		hooksecrets.Register(api, svc)
	}})
}

func dialectWrites(smartHooksID, userSecretID string) []dialectWrite {
	sh := []string{"statusCode", "name", "message"}
	ap := []string{"error"}
	us := []string{"code", "detail", "type"}
	co := []string{"statusCode", "message", "error"}
	hs := []string{"statusCode", "error", "message", "errorCode"}
	const actor = "/v2/acts/fuzz~actor/versions/0.1/env-vars"
	return []dialectWrite{
		{"POST", "/api/2/hooks/envs", sh, "statusCode", "", ""},
		{"PUT", "/api/2/hooks/envs/" + smartHooksID, sh, "statusCode", "smart-hooks", "SAMPLE_VAR"},
		{"POST", actor, ap, "", "", ""},
		{"PUT", actor + "/MY_VAR", ap, "", "acts/fuzz~actor/versions/0.1", "MY_VAR"},
		{"POST", "/api/v1/user/secrets", us, "code", "", ""},
		{"PUT", "/api/v1/user/secrets/" + userSecretID, us, "code", "users/admin", "OPENAI_API_KEY"},
		{"PATCH", "/api/v1/containers/c1/env", co, "statusCode", "", ""},
		{"PUT", "/api/v1/containers/c1/env/LOG_LEVEL", co, "statusCode", "containers/c1", "LOG_LEVEL"},
		{"POST", "/api/v2/hooks/h1/secrets", hs, "statusCode", "", ""},
		{"PATCH", "/api/v2/hooks/h1/secrets", hs, "statusCode", "", ""},
		{"DELETE", "/api/v2/hooks/h1/secrets", hs, "statusCode", "", ""},
	}
}

// FuzzDialectBodies sends arbitrary bodies to every dialect route that
// reads one and holds each reply to what the dialect promises: no 5xx, a
// 4xx for a body that is not JSON, every error in the dialect's own
// envelope (its status member equal to the HTTP status), and a value read
// back natively equal to the one encoding/json reads from the body that
// set it. Seeds are in testdata/fuzz/FuzzDialectBodies/.
func FuzzDialectBodies(f *testing.F) {
	e := allDialects(f)
	mustJSON := func(method, path, body string, status int) map[string]any {
		r := e.Do(f, method, path, e.Admin, body, "Content-Type", "application/json")
		if r.Status != status {
			f.Fatalf("setup %s %s: %d %s", method, path, r.Status, r.Body)
		}
		var m map[string]any
		_ = json.Unmarshal(r.Body, &m)
		return m
	}
	sh := mustJSON("POST", "/api/2/hooks/envs", `{"name":"SAMPLE_VAR","value":"helloworld"}`, 201)
	us := mustJSON("POST", "/api/v1/user/secrets", `{"name":"OPENAI_API_KEY","value":"sk-proj-4f9c2b7e1a8d3c6f0e5b9a2d"}`, 201)
	mustJSON("POST", "/v2/acts/fuzz~actor/versions/0.1/env-vars", `{"name":"MY_VAR","value":"my-value"}`, 201)
	mustJSON("PUT", "/v1/scopes/containers/c1", `{}`, 201)
	mustJSON("PUT", "/v1/scopes/hooks/h1", `{}`, 201)
	routes := dialectWrites(sh["id"].(string), us["id"].(string))

	f.Fuzz(func(t *testing.T, route uint8, body string) {
		rt := routes[int(route)%len(routes)]
		r := e.Do(t, rt.method, rt.path, e.Admin, body, "Content-Type", "application/json")
		if r.Status >= 500 {
			t.Fatalf("%s %s with %q: %d %s", rt.method, rt.path, body, r.Status, r.Body)
		}
		if !json.Valid([]byte(body)) && r.Status < 400 {
			t.Fatalf("%s %s with %q (not JSON): %d %s; want a 4xx", rt.method, rt.path, body, r.Status, r.Body)
		}
		if r.Status == 204 {
			return
		}
		var reply any
		if err := json.Unmarshal(r.Body, &reply); err != nil {
			t.Fatalf("%s %s with %q: %d, the reply is not JSON: %v: %s", rt.method, rt.path, body, r.Status, err, r.Body)
		}
		if r.Status >= 400 {
			obj, _ := reply.(map[string]any)
			for _, k := range rt.envelope {
				if _, ok := obj[k]; !ok {
					t.Fatalf("%s %s with %q: %d without %q in the dialect's envelope: %s", rt.method, rt.path, body, r.Status, k, r.Body)
				}
			}
			if rt.status != "" && obj[rt.status] != float64(r.Status) {
				t.Fatalf("%s %s with %q: HTTP %d but %s %v", rt.method, rt.path, body, r.Status, rt.status, obj[rt.status])
			}
			return
		}
		if rt.name == "" {
			return
		}
		// The var was written: what reads back natively is what the body said.
		var in struct {
			Value *string `json:"value"`
		}
		if json.Unmarshal([]byte(body), &in) != nil || in.Value == nil {
			return
		}
		got := e.Do(t, "GET", "/v1/scopes/"+rt.scope+"/-/vars/"+url.PathEscape(rt.name)+"?reveal=true", e.Admin, "")
		var v struct {
			Value *string `json:"value"`
		}
		if err := json.Unmarshal(got.Body, &v); err != nil || got.Status != 200 || v.Value == nil {
			t.Fatalf("read back after %s %s with %q: %d %s", rt.method, rt.path, body, got.Status, got.Body)
		}
		if *v.Value != *in.Value {
			t.Fatalf("%s %s with %q set the value %q; encoding/json reads %q", rt.method, rt.path, body, *v.Value, *in.Value)
		}
	})
}
