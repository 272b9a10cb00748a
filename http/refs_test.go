package http_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/api"
	"github.com/envy-dev/envy/internal/testenv"
)

// References over the native API: refusals at write, the 403 naming the
// reference, raw and resolved reads, secrecy spreading into the env's
// secrets list, and the ETag following a referenced change.
func TestReferencesOverTheAPI(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	do := func(method, path, token, body string, want int) testenv.Response {
		t.Helper()
		r := e.Do(t, method, path, token, body)
		if r.Status != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, r.Status, r.Body, want)
		}
		return r
	}
	do("PATCH", "/v1/scopes/acme/shared/-/vars", e.Admin, `{"DB_PASSWORD":{"value":"hunter2-hunter2","secret":true},"HOST":"db1"}`, 200)
	do("PATCH", "/v1/scopes/acme/web/-/vars", e.Admin, `{"DATABASE_URL":"postgres://app:${acme/shared:DB_PASSWORD}@${acme/shared:HOST}/app","PORT":"80","LIT":"$${PORT}"}`, 200)

	r := do("PUT", "/v1/scopes/acme/web/-/vars/BAD", e.Admin, `{"value":"x ${9}"}`, 422)
	if !strings.Contains(string(r.Body), "BAD") || !strings.Contains(string(r.Body), "offset 2") {
		t.Errorf("bad reference: %s, want the var and the offset named", r.Body)
	}
	do("PUT", "/v1/scopes/acme/web/-/vars/A", e.Admin, `{"value":"${B}"}`, 201)
	r = do("PUT", "/v1/scopes/acme/web/-/vars/B", e.Admin, `{"value":"${A}"}`, 422)
	if !strings.Contains(string(r.Body), "reference cycle") {
		t.Errorf("cycle: %s", r.Body)
	}
	do("DELETE", "/v1/scopes/acme/web/-/vars/A", e.Admin, "", 204)

	r = do("GET", "/v1/scopes/acme/web/-/env", e.Admin, "", 200)
	var env api.Env
	if err := json.Unmarshal(r.Body, &env); err != nil {
		t.Fatal(err)
	}
	if env.Env["DATABASE_URL"] != "postgres://app:hunter2-hunter2@db1/app" || env.Env["LIT"] != "${PORT}" {
		t.Errorf("env: %s", r.Body)
	}
	if !strings.Contains(strings.Join(env.Secrets, ","), "DATABASE_URL") {
		t.Errorf("secrets %v lack DATABASE_URL, which refers to a secret", env.Secrets)
	}
	etag := r.Header.Get("ETag")
	raw := do("GET", "/v1/scopes/acme/web/-/env?raw=true&format=dotenv", e.Admin, "", 200)
	if !strings.Contains(string(raw.Body), "${acme/shared:DB_PASSWORD}") || strings.Contains(string(raw.Body), "hunter2") {
		t.Errorf("raw env: %s", raw.Body)
	}

	// A change to the referenced scope moves the ETag.
	do("PUT", "/v1/scopes/acme/shared/-/vars/HOST", e.Admin, `{"value":"db2"}`, 200)
	r = do("GET", "/v1/scopes/acme/web/-/env", e.Admin, "", 200)
	if r.Header.Get("ETag") == etag || !strings.Contains(string(r.Body), "@db2/app") {
		t.Errorf("after a referenced change: ETag %s (was %s), %s", r.Header.Get("ETag"), etag, r.Body)
	}

	// A token that may reveal acme/web only: a 403 naming the reference.
	tok := e.Token(t, "web", envy.Grant{Scopes: "acme/web", Actions: []envy.Action{envy.ActReveal}})
	r = do("GET", "/v1/scopes/acme/web/-/env", tok, "", 403)
	if !strings.Contains(string(r.Body), "DATABASE_URL refers to acme/shared:DB_PASSWORD, which this token may not read") || strings.Contains(string(r.Body), "hunter2") {
		t.Errorf("403: %s", r.Body)
	}
	// Its var list masks DATABASE_URL, whose raw value it may otherwise see.
	r = do("GET", "/v1/scopes/acme/web/-/vars", tok, "", 200)
	if strings.Contains(string(r.Body), "${acme/shared") {
		t.Errorf("the list shows DATABASE_URL unmasked: %s", r.Body)
	}

	// /-/resolved: references, and the resolved value with reveal.
	r = do("GET", "/v1/scopes/acme/web/-/resolved?reveal=true", e.Admin, "", 200)
	var res api.Resolved
	if err := json.Unmarshal(r.Body, &res); err != nil {
		t.Fatal(err)
	}
	for _, v := range res.Layers[len(res.Layers)-1].Vars {
		if v.Name == "DATABASE_URL" {
			if strings.Join(v.References, " ") != "acme/shared:DB_PASSWORD acme/shared:HOST" || v.ResolvedValue == nil || *v.ResolvedValue != "postgres://app:hunter2-hunter2@db2/app" {
				t.Errorf("resolved DATABASE_URL: %+v", v)
			}
		}
	}
	r = do("GET", "/v1/scopes/acme/web/-/resolved", tok, "", 200)
	if strings.Contains(string(r.Body), "hunter2") || !strings.Contains(string(r.Body), `"references":["acme/shared:DB_PASSWORD","acme/shared:HOST"]`) {
		t.Errorf("resolved without rights on the referenced scope: %s", r.Body)
	}
}
