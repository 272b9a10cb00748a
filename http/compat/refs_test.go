package compat_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/envy-dev/envy"
)

// TestARefusedReferenceIsNamedInEveryDialectsEnvelope: a read that
// resolves an env (GREETING's reference) in which a var refers to a scope
// the token may not read is a 403 in the dialect's own envelope whose
// message names the reference (the var, and the scope and name it refers
// to), never the value. (The hooksecrets dialect never shows a value, so
// none of its reads resolves one: hooksecrets' own test holds its
// envelope to the same.)
func TestARefusedReferenceIsNamedInEveryDialectsEnvelope(t *testing.T) {
	e := allDialects(t)
	const value = "db-host-0123456789"
	put := func(scope string) {
		t.Helper()
		if r := e.Do(t, "PATCH", "/v1/scopes/"+scope+"/-/vars", e.Admin, `{"URL":"http://${shared:HOST}/","GREETING":"hello ${WHO}","WHO":"world"}`); r.Status != 200 {
			t.Fatalf("%s: %d %s", scope, r.Status, r.Body)
		}
	}
	if r := e.Do(t, "PATCH", "/v1/scopes/shared/-/vars", e.Admin, `{"HOST":"`+value+`"}`); r.Status != 200 {
		t.Fatalf("shared: %d %s", r.Status, r.Body)
	}
	for _, s := range []string{"smart-hooks", "acts/a~b/versions/0.1", "users/refs", "containers/c1", "hooks/h1"} {
		put(s)
	}
	rw := []envy.Action{envy.ActRead, envy.ActWrite}
	tok := e.Token(t, "refs",
		envy.Grant{Scopes: "smart-hooks", Actions: rw}, envy.Grant{Scopes: "acts/**", Actions: rw},
		envy.Grant{Scopes: "users/refs", Actions: rw}, envy.Grant{Scopes: "containers/**", Actions: rw},
		envy.Grant{Scopes: "hooks/**", Actions: rw})
	for _, c := range []struct {
		dialect, path string
		envelope      map[string]any // members and their values, as the platform answers a 403
	}{
		{"smarthooks", "/api/2/hooks/envs", map[string]any{"statusCode": 403.0, "name": "ForbiddenError"}},
		{"apify", "/v2/acts/a~b/versions/0.1/env-vars", map[string]any{"error": nil}},
		{"usersecrets", "/api/v1/user/secrets", map[string]any{"code": 403.0, "type": "permission_error"}},
		{"containers", "/api/v1/containers/c1/env", map[string]any{"statusCode": 403.0, "error": "RESOURCE_ACCESS_DENIED"}},
	} {
		t.Run(c.dialect, func(t *testing.T) {
			r := e.Do(t, "GET", c.path, tok, "")
			if r.Status != 403 {
				t.Fatalf("GET %s: %d %s, want 403", c.path, r.Status, r.Body)
			}
			var body map[string]any
			if err := json.Unmarshal(r.Body, &body); err != nil {
				t.Fatalf("GET %s: %v: %s", c.path, err, r.Body)
			}
			for k, want := range c.envelope {
				if got, ok := body[k]; !ok || want != nil && got != want {
					t.Errorf("GET %s: %s = %v, want %v: %s", c.path, k, got, want, r.Body)
				}
			}
			if !strings.Contains(string(r.Body), "URL refers to shared:HOST, which this token may not read") {
				t.Errorf("GET %s: the 403 does not name the reference: %s", c.path, r.Body)
			}
			if strings.Contains(string(r.Body), value) {
				t.Errorf("GET %s: the 403 holds the value: %s", c.path, r.Body)
			}
		})
	}
}
