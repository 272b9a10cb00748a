package http_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/envy-dev/envy/internal/testenv"
)

// nativeWrites are the native routes that read a JSON body, on a scope
// that exists (fuzz/native, with the var PORT) so that the body decoders
// are reached.
var nativeWrites = []struct{ method, path string }{
	{"PUT", "/v1/scopes/fuzz/native/-/vars/PORT"},
	{"PATCH", "/v1/scopes/fuzz/native/-/vars/PORT"},
	{"PATCH", "/v1/scopes/fuzz/native/-/vars"},
	{"PUT", "/v1/scopes/fuzz/replaced/-/vars"},
	{"PUT", "/v1/scopes/fuzz/native"},
	{"POST", "/v1/scopes/fuzz/native/-/rollback"},
	{"PUT", "/v1/scopes/fuzz/native/-/consumers/fuzz-1"},
	{"POST", "/v1/tokens"},
	{"PUT", "/v1/auth/oidc/fuzz"},
	{"POST", "/v1/auth/oidc/fuzz/auth_url"},
	{"POST", "/v1/auth/oidc/fuzz/callback"},
	{"POST", "/v1/webhooks"},
}

// FuzzNativeBodies sends arbitrary bodies to every native route that reads
// one, through a real server, and holds each reply to the API's rules: no
// 5xx, a JSON object in every reply, problem+json with a type for every
// refusal, 400 bad_request for a body that is not JSON (but an empty one
// where a scope PUT allows it), and a value read
// back equal to the one encoding/json reads from the body that set it.
// Seeds are in testdata/fuzz/FuzzNativeBodies/.
func FuzzNativeBodies(f *testing.F) {
	e := testenv.New(f, testenv.Options{})
	if r := e.Do(f, "PUT", "/v1/scopes/fuzz/native/-/vars/PORT", e.Admin, `{"value":"8080"}`); r.Status != 201 {
		f.Fatalf("seed write: %d %s", r.Status, r.Body)
	}
	f.Fuzz(func(t *testing.T, route uint8, body string) {
		rt := nativeWrites[int(route)%len(nativeWrites)]
		r := e.Do(t, rt.method, rt.path, e.Admin, body, "Content-Type", "application/json")
		if r.Status >= 500 {
			t.Fatalf("%s %s with %q: %d %s", rt.method, rt.path, body, r.Status, r.Body)
		}
		if r.Status == 204 {
			return
		}
		var reply map[string]any
		if err := json.Unmarshal(r.Body, &reply); err != nil {
			t.Fatalf("%s %s with %q: %d, the reply is not a JSON object: %v: %s", rt.method, rt.path, body, r.Status, err, r.Body)
		}
		if r.Status >= 400 {
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
				t.Fatalf("%s %s with %q: %d with Content-Type %q", rt.method, rt.path, body, r.Status, ct)
			}
			if typ, _ := reply["type"].(string); typ == "" {
				t.Fatalf("%s %s with %q: %d problem without a type: %s", rt.method, rt.path, body, r.Status, r.Body)
			}
		}
		// An empty body to PUT /v1/scopes/{path} creates the scope as it is.
		emptyScopePut := rt.path == "/v1/scopes/fuzz/native" && strings.TrimSpace(body) == ""
		if !json.Valid([]byte(body)) && !emptyScopePut {
			if r.Status != 400 || reply["type"] != "bad_request" {
				t.Fatalf("%s %s with %q (not JSON): %d %s; want 400 bad_request", rt.method, rt.path, body, r.Status, r.Body)
			}
			return
		}
		if r.Status >= 300 || !strings.HasSuffix(rt.path, "/-/vars/PORT") {
			return
		}
		// The var was written: what reads back is what the body said.
		var in struct {
			Value *string `json:"value"`
		}
		if json.Unmarshal([]byte(body), &in) != nil || in.Value == nil {
			return
		}
		got := e.Do(t, "GET", "/v1/scopes/fuzz/native/-/vars/PORT?reveal=true", e.Admin, "")
		var v struct {
			Value *string `json:"value"`
		}
		if err := json.Unmarshal(got.Body, &v); err != nil || got.Status != 200 || v.Value == nil {
			t.Fatalf("read back after %q: %d %s", body, got.Status, got.Body)
		}
		if *v.Value != *in.Value {
			t.Fatalf("body %q set the value %q; encoding/json reads %q", body, *v.Value, *in.Value)
		}
	})
}
