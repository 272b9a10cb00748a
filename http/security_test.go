package http_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/api"
	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/internal/testenv"
	"github.com/envy-dev/envy/service"
)

// need is what a route needs of a token on the fixture scope.
type need int

const (
	needAuth        need = iota // any valid token
	needRead                    // read on the scope
	needWrite                   // write on the scope
	needReveal                  // reveal on the scope
	needGlobalAdmin             // admin on **
	needAdmin                   // admin somewhere (creating tokens)
	needScopeAdmin              // admin on the fixture scope (creating a webhook that covers it)
	needHookAdmin               // admin on the webhook's scopes (to anyone else it does not exist)
)

const fixture = "acme/web/prod"

// matrixRoutes is every native route that needs a token, with what it
// needs and the status it answers when allowed. The test fails when the
// OpenAPI document (kept equal to the served routes by another test) has
// a route this table lacks.
var matrixRoutes = []struct {
	method, path string // path as in the OpenAPI document
	need         need
	ok           int
	body         string
	query        string
}{
	{"GET", "/v1/scopes", needAuth, 200, "", ""},
	{"GET", "/v1/scopes/{path}", needRead, 200, "", ""},
	{"PUT", "/v1/scopes/{path}", needWrite, 200, `{"description":"web"}`, ""},
	{"DELETE", "/v1/scopes/{path}", needWrite, 204, "", ""},
	{"GET", "/v1/scopes/{path}/-/vars", needRead, 200, "", ""},
	{"PATCH", "/v1/scopes/{path}/-/vars", needWrite, 200, `{"B":"2"}`, ""},
	{"PUT", "/v1/scopes/{path}/-/vars", needWrite, 200, `{"A":"1"}`, ""},
	{"GET", "/v1/scopes/{path}/-/vars/{name}", needRead, 200, "", ""},
	{"PUT", "/v1/scopes/{path}/-/vars/{name}", needWrite, 200, `{"value":"x"}`, ""},
	{"PATCH", "/v1/scopes/{path}/-/vars/{name}", needWrite, 200, `{"description":"d"}`, ""},
	{"DELETE", "/v1/scopes/{path}/-/vars/{name}", needWrite, 204, "", ""},
	{"GET", "/v1/scopes/{path}/-/env", needReveal, 200, "", ""},
	{"GET", "/v1/scopes/{path}/-/resolved", needRead, 200, "", ""},
	{"GET", "/v1/scopes/{path}/-/history", needRead, 200, "", ""},
	{"POST", "/v1/scopes/{path}/-/rollback", needWrite, 200, `{"revision":1}`, ""},
	{"GET", "/v1/scopes/{path}/-/watch", needRead, 200, "", ""},
	{"PUT", "/v1/scopes/{path}/-/consumers/{id}", needRead, 201, `{"revision":1}`, ""},
	{"DELETE", "/v1/scopes/{path}/-/consumers/{id}", needRead, 204, "", ""},
	{"GET", "/v1/scopes/{path}/-/status", needRead, 200, "", ""},
	{"POST", "/v1/scopes/{path}/-/rollout/resume", needWrite, 200, "", ""},
	{"POST", "/v1/tokens", needAdmin, 201, `{"name":"made","permissions":[{"scopes":"acme/web/prod","actions":["read"]}]}`, ""},
	{"GET", "/v1/tokens", needGlobalAdmin, 200, "", ""},
	{"GET", "/v1/tokens/self", needAuth, 200, "", ""},
	{"GET", "/v1/tokens/{id}", needGlobalAdmin, 200, "", ""},
	{"DELETE", "/v1/tokens/{id}", needGlobalAdmin, 200, "", ""},
	{"GET", "/v1/audit", needGlobalAdmin, 200, "", ""},
	{"GET", "/v1/auth/jwt", needGlobalAdmin, 200, "", ""},
	{"GET", "/v1/auth/jwt/{name}", needGlobalAdmin, 200, "", ""},
	{"PUT", "/v1/auth/jwt/{name}", needAdmin, 201, `{"issuer":"https://issuer.example","audience":"envy","permissions":[{"scopes":"acme/web/prod","actions":["read"]}]}`, ""},
	{"DELETE", "/v1/auth/jwt/{name}", needGlobalAdmin, 204, "", ""},
	{"GET", "/v1/auth/oidc", needGlobalAdmin, 200, "", ""},
	{"GET", "/v1/auth/oidc/{name}", needGlobalAdmin, 200, "", ""},
	{"PUT", "/v1/auth/oidc/{name}", needAdmin, 201, `{"issuer":"https://login.example","client_id":"envy","client_secret":"s3cret-client","redirect_uris":["https://envy.example/ui/oidc/corp/callback"],"roles":[{"claim":"groups","value":"platform","permissions":[{"scopes":"acme/web/prod","actions":["read"]}]}]}`, ""},
	{"DELETE", "/v1/auth/oidc/{name}", needGlobalAdmin, 204, "", ""},
	{"POST", "/v1/webhooks", needScopeAdmin, 201, `{"url":"https://hooks.example/envy","scopes":"acme/web/prod","events":["vars.changed"]}`, ""},
	{"GET", "/v1/webhooks", needAuth, 200, "", ""},
	{"GET", "/v1/webhooks/{id}", needHookAdmin, 200, "", ""},
	{"PATCH", "/v1/webhooks/{id}", needHookAdmin, 200, `{"paused":true}`, ""},
	{"DELETE", "/v1/webhooks/{id}", needHookAdmin, 204, "", ""},
	{"GET", "/v1/webhooks/{id}/deliveries", needHookAdmin, 200, "", ""},
	{"POST", "/v1/webhooks/{id}/deliveries/{delivery}/redeliver", needHookAdmin, 202, "", ""},
	{"POST", "/v1/webhooks/{id}/test", needHookAdmin, 202, "", ""},
	// A reveal read is its own row: the same route, a stronger need.
	{"GET", "/v1/scopes/{path}/-/vars/{name}", needReveal, 200, "", "?reveal=true"},
	{"GET", "/v1/scopes/{path}/-/vars", needReveal, 200, "", "?reveal=true"},
	{"GET", "/v1/scopes/{path}/-/resolved", needReveal, 200, "", "?reveal=true"},
}

// principals: for each, the status a route with each need answers when
// the principal is not allowed; 0 means allowed (the route's ok status).
var principals = []struct {
	name   string
	grants []envy.Grant // nil: no token / a bad token, see setup
	want   map[need]int
}{
	{"no token", nil, map[need]int{needAuth: 401, needRead: 401, needWrite: 401, needReveal: 401, needGlobalAdmin: 401, needAdmin: 401, needScopeAdmin: 401, needHookAdmin: 401}},
	{"an expired token", []envy.Grant{{Scopes: "**", Actions: []envy.Action{envy.ActAdmin}}}, map[need]int{needAuth: 401, needRead: 401, needWrite: 401, needReveal: 401, needGlobalAdmin: 401, needAdmin: 401, needScopeAdmin: 401, needHookAdmin: 401}},
	{"a revoked token", []envy.Grant{{Scopes: "**", Actions: []envy.Action{envy.ActAdmin}}}, map[need]int{needAuth: 401, needRead: 401, needWrite: 401, needReveal: 401, needGlobalAdmin: 401, needAdmin: 401, needScopeAdmin: 401, needHookAdmin: 401}},
	{"read-only on another scope", []envy.Grant{{Scopes: "other/**", Actions: []envy.Action{envy.ActRead}}}, map[need]int{needRead: 404, needWrite: 404, needReveal: 404, needGlobalAdmin: 403, needAdmin: 403, needScopeAdmin: 403, needHookAdmin: 404}},
	{"read on the scope", []envy.Grant{{Scopes: fixture, Actions: []envy.Action{envy.ActRead}}}, map[need]int{needWrite: 403, needReveal: 403, needGlobalAdmin: 403, needAdmin: 403, needScopeAdmin: 403, needHookAdmin: 404}},
	{"read and write on the scope", []envy.Grant{{Scopes: fixture, Actions: []envy.Action{envy.ActRead, envy.ActWrite}}}, map[need]int{needReveal: 403, needGlobalAdmin: 403, needAdmin: 403, needScopeAdmin: 403, needHookAdmin: 404}},
	{"reveal on the scope", []envy.Grant{{Scopes: fixture, Actions: []envy.Action{envy.ActReveal}}}, map[need]int{needWrite: 403, needGlobalAdmin: 403, needAdmin: 403, needScopeAdmin: 403, needHookAdmin: 404}},
	{"admin on everything", []envy.Grant{{Scopes: "**", Actions: []envy.Action{envy.ActAdmin}}}, map[need]int{}},
	{"admin on a subtree", []envy.Grant{{Scopes: "acme/**", Actions: []envy.Action{envy.ActAdmin}}}, map[need]int{needGlobalAdmin: 403}},
	{"read and write through acme/*/prod", []envy.Grant{{Scopes: "acme/*/prod", Actions: []envy.Action{envy.ActRead, envy.ActWrite}}}, map[need]int{needReveal: 403, needGlobalAdmin: 403, needAdmin: 403, needScopeAdmin: 403, needHookAdmin: 404}},
	{"reveal through acme/**", []envy.Grant{{Scopes: "acme/**", Actions: []envy.Action{envy.ActReveal}}}, map[need]int{needWrite: 403, needGlobalAdmin: 403, needAdmin: 403, needScopeAdmin: 403, needHookAdmin: 404}},
	{"write only through **", []envy.Grant{{Scopes: "**", Actions: []envy.Action{envy.ActWrite}}}, map[need]int{needRead: 403, needReveal: 403, needGlobalAdmin: 403, needAdmin: 403, needScopeAdmin: 403, needHookAdmin: 404}},
	{"read through acme/* (one segment too few)", []envy.Grant{{Scopes: "acme/*", Actions: []envy.Action{envy.ActRead}}}, map[need]int{needRead: 404, needWrite: 404, needReveal: 404, needGlobalAdmin: 403, needAdmin: 403, needScopeAdmin: 403, needHookAdmin: 404}},
	{"read through */web/prod", []envy.Grant{{Scopes: "*/web/prod", Actions: []envy.Action{envy.ActRead}}}, map[need]int{needWrite: 403, needReveal: 403, needGlobalAdmin: 403, needAdmin: 403, needScopeAdmin: 403, needHookAdmin: 404}},
}

func TestPermissionMatrix(t *testing.T) {
	e := testenv.New(t, testenv.Options{HTTP: httpOptsNoLimits()})

	// Every route of the API document must be in the matrix.
	r := e.Do(t, "GET", "/v1/openapi.json", "", "")
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(r.Body, &doc); err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for _, m := range matrixRoutes {
		covered[m.method+" "+m.path] = true
	}
	for p, ops := range doc.Paths {
		// The admin routes (mounted by http/admin) need admin of every
		// scope; http/admin's tests refuse every other caller.
		// A JWT login needs no token, only a JWT (identity_test.go), nor
		// do the CLI's OIDC sign-in routes (oidc_test.go).
		if !strings.HasPrefix(p, "/v1/") || p == "/v1/openapi.json" || strings.HasPrefix(p, "/v1/admin/") || p == "/v1/auth/jwt/{name}/login" ||
			p == "/v1/auth/oidc/{name}/auth_url" || p == "/v1/auth/oidc/{name}/callback" {
			continue
		}
		for method := range ops {
			if k := strings.ToUpper(method) + " " + p; !covered[k] && method != "parameters" {
				t.Errorf("route %s is missing from the permission matrix", k)
			}
		}
	}

	tokens := map[string]string{}
	tokenIDs := map[string]string{}
	for _, p := range principals {
		if p.grants == nil {
			continue
		}
		body, _ := json.Marshal(map[string]any{"name": p.name, "permissions": p.grants})
		if p.name == "an expired token" {
			body, _ = json.Marshal(map[string]any{"name": p.name, "permissions": p.grants, "expires_in": "1s"})
		}
		r := e.Do(t, "POST", "/v1/tokens", e.Admin, string(body))
		if r.Status != 201 {
			t.Fatalf("create %s: %d %s", p.name, r.Status, r.Body)
		}
		tokens[p.name] = r.JSON(t)["token"].(string)
		tokenIDs[p.name] = r.JSON(t)["id"].(string)
	}
	if r := e.Do(t, "DELETE", "/v1/tokens/"+tokenIDs["a revoked token"], e.Admin, ""); r.Status != 200 {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	time.Sleep(1100 * time.Millisecond) // let the expired token expire

	victims := 0
	var hookID, deliveryID string
	reset := func(t *testing.T) (victimID string) {
		t.Helper()
		for _, req := range [][2]string{
			{"PUT", `{"A":{"value":"1"},"S":{"value":"secret-value-1234","secret":true}}`},
		} {
			if r := e.Do(t, req[0], "/v1/scopes/"+fixture+"/-/vars", e.Admin, req[1]); r.Status != 200 {
				t.Fatalf("reset: %d %s", r.Status, r.Body)
			}
		}
		if r := e.Do(t, "PUT", "/v1/auth/jwt/ci", e.Admin, `{"issuer":"https://issuer.example","audience":"envy","permissions":[{"scopes":"acme/**","actions":["read"]}]}`); r.Status != 200 && r.Status != 201 {
			t.Fatalf("reset: the trust: %d %s", r.Status, r.Body)
		}
		if r := e.Do(t, "PUT", "/v1/auth/oidc/corp", e.Admin, `{"issuer":"https://login.example","client_id":"envy","client_secret":"s3cret-client","redirect_uris":["https://envy.example/ui/oidc/corp/callback"],"roles":[{"claim":"groups","value":"platform","permissions":[{"scopes":"acme/web/prod","actions":["read"]}]}]}`); r.Status != 200 && r.Status != 201 {
			t.Fatalf("reset: the OIDC provider: %d %s", r.Status, r.Body)
		}
		hook := e.Do(t, "POST", "/v1/webhooks", e.Admin, `{"url":"https://hooks.example/envy","scopes":"acme/web/prod","events":["vars.changed"]}`)
		if hook.Status != 201 {
			t.Fatalf("reset: a webhook: %d %s", hook.Status, hook.Body)
		}
		hookID = hook.JSON(t)["id"].(string)
		test := e.Do(t, "POST", "/v1/webhooks/"+hookID+"/test", e.Admin, "")
		if test.Status != 202 {
			t.Fatalf("reset: a delivery: %d %s", test.Status, test.Body)
		}
		deliveryID = fmt.Sprint(test.JSON(t)["id"])
		victims++ // token names are unique per owner
		r := e.Do(t, "POST", "/v1/tokens", e.Admin, fmt.Sprintf(`{"name":"victim-%d","permissions":[{"scopes":"x","actions":["read"]}]}`, victims))
		return r.JSON(t)["id"].(string)
	}

	for _, p := range principals {
		for _, m := range matrixRoutes {
			name := fmt.Sprintf("%s: %s %s%s", p.name, m.method, m.path, m.query)
			t.Run(name, func(t *testing.T) {
				victim := reset(t)
				// A consumer belongs to the token that first reported it:
				// each principal reports one of its own.
				path := strings.NewReplacer("{path}", fixture, "{name}", "A", "{id}", fmt.Sprintf("c%d", victims)).Replace(m.path)
				if strings.HasPrefix(m.path, "/v1/webhooks/{id}") {
					path = strings.NewReplacer("{id}", hookID, "{delivery}", deliveryID).Replace(m.path)
				}
				if strings.HasPrefix(m.path, "/v1/tokens/{id}") {
					path = "/v1/tokens/" + victim
				}
				if m.path == "/v1/auth/jwt/{name}" { // the trust reset defines; a new one to define
					path = "/v1/auth/jwt/ci"
					if m.method == "PUT" {
						path = fmt.Sprintf("/v1/auth/jwt/made-%d", victims)
					}
				}
				if m.path == "/v1/auth/oidc/{name}" { // the provider reset defines; a new one to define
					path = "/v1/auth/oidc/corp"
					if m.method == "PUT" {
						path = fmt.Sprintf("/v1/auth/oidc/made-%d", victims)
					}
				}
				want := m.ok
				if s, ok := p.want[m.need]; ok && s != 0 {
					want = s
				}
				if m.path == "/v1/scopes/{path}/-/consumers/{id}" && want == 201 {
					want = -1 // 201 or 200
				}
				body := strings.Replace(m.body, `"name":"made"`, fmt.Sprintf(`"name":"made-%d"`, victims), 1)
				status := send(t, e, m.method, path+m.query, tokens[p.name], body)
				if status != want && !(want == -1 && (status == 200 || status == 201)) {
					t.Fatalf("status %d, want %d", status, want)
				}
			})
		}
	}

	t.Run("lists hide scopes the token may not read", func(t *testing.T) {
		reset(t)
		e.Do(t, "PUT", "/v1/scopes/other/x/-/vars/A", e.Admin, `{"value":"1"}`)
		tok := tokens["read-only on another scope"]
		r := e.Do(t, "GET", "/v1/scopes?limit=1", tok, "")
		var page struct {
			Items []struct {
				Path string `json:"path"`
			} `json:"items"`
			Next *string `json:"next_cursor"`
		}
		json.Unmarshal(r.Body, &page)
		if len(page.Items) != 1 || page.Items[0].Path != "other/x" || page.Next != nil {
			t.Fatalf("list for a token on other/**: %s", r.Body)
		}
		r = e.Do(t, "GET", "/v1/scopes?prefix=acme", tok, "")
		if !strings.Contains(string(r.Body), `"items":[]`) {
			t.Fatalf("prefix list leaks: %s", r.Body)
		}
		// The cursor of a hidden scope reveals nothing either.
		r = e.Do(t, "GET", "/v1/scopes?cursor=acme", tok, "")
		if strings.Contains(string(r.Body), "acme") {
			t.Fatalf("cursor list leaks: %s", r.Body)
		}
	})
}

func httpOptsNoLimits() envyhttp.Options {
	return envyhttp.Options{RateLimit: 0, AuthFailRate: 1e6}
}

// send makes one request and returns its status; a watch stream is closed
// as soon as its status is known.
func send(t *testing.T, e *testenv.Env, method, path, token, body string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequestWithContext(ctx, method, e.URL+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if !strings.HasSuffix(path, "/-/watch") {
		io.Copy(io.Discard, res.Body)
	}
	return res.StatusCode
}

func TestRevocationAndExpiryTakeEffectOnTheNextRequest(t *testing.T) {
	clock := newTestClock()
	e := testenv.New(t, testenv.Options{Service: service.Options{Now: clock.Now}})
	r := e.Do(t, "POST", "/v1/tokens", e.Admin, `{"name":"ci","permissions":[{"scopes":"**","actions":["read"]}]}`)
	tok, id := r.JSON(t)["token"].(string), r.JSON(t)["id"].(string)
	if r := e.Do(t, "GET", "/v1/tokens/self", tok, ""); r.Status != 200 {
		t.Fatalf("fresh token: %d", r.Status)
	}
	if r := e.Do(t, "DELETE", "/v1/tokens/"+id, e.Admin, ""); r.Status != 200 {
		t.Fatalf("revoke: %d", r.Status)
	}
	if r := e.Do(t, "GET", "/v1/tokens/self", tok, ""); r.Status != 401 {
		t.Fatalf("revoked token: %d, want 401", r.Status)
	}
	r = e.Do(t, "POST", "/v1/tokens", e.Admin, `{"name":"short","permissions":[{"scopes":"**","actions":["read"]}],"expires_in":"1s"}`)
	tok = r.JSON(t)["token"].(string)
	if r := e.Do(t, "GET", "/v1/tokens/self", tok, ""); r.Status != 200 {
		t.Fatalf("unexpired token: %d", r.Status)
	}
	clock.Advance(999 * time.Millisecond)
	if r := e.Do(t, "GET", "/v1/tokens/self", tok, ""); r.Status != 200 {
		t.Fatalf("token 1 ms before its expiry: %d", r.Status)
	}
	clock.Advance(time.Millisecond)
	if r := e.Do(t, "GET", "/v1/tokens/self", tok, ""); r.Status != 401 {
		t.Fatalf("expired token: %d, want 401", r.Status)
	}
}

func TestATokenCannotGrantMoreThanItsCreatorHolds(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	sub := e.Token(t, "sub-admin", envy.Grant{Scopes: "acme/**", Actions: []envy.Action{envy.ActAdmin}})
	if r := e.Do(t, "POST", "/v1/tokens", sub, `{"name":"ok","permissions":[{"scopes":"acme/web/*","actions":["read","reveal"]}]}`); r.Status != 201 {
		t.Fatalf("within its grant: %d %s", r.Status, r.Body)
	}
	for _, body := range []string{
		`{"name":"wider","permissions":[{"scopes":"**","actions":["read"]}]}`,
		`{"name":"elsewhere","permissions":[{"scopes":"other/x","actions":["read"]}]}`,
	} {
		if r := e.Do(t, "POST", "/v1/tokens", sub, body); r.Status != 403 {
			t.Fatalf("%s: %d %s, want 403", body, r.Status, r.Body)
		}
	}
	reader := e.Token(t, "reader", envy.Grant{Scopes: "**", Actions: []envy.Action{envy.ActRead, envy.ActWrite, envy.ActReveal}})
	if r := e.Do(t, "POST", "/v1/tokens", reader, `{"name":"x","permissions":[{"scopes":"a","actions":["read"]}]}`); r.Status != 403 {
		t.Fatalf("a non-admin created a token: %d", r.Status)
	}
}

// dialFrom returns an HTTP client whose connections come from the given
// loopback address, so that a test can be two clients at once.
func dialFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

func TestBruteForceIsLimitedPerAddress(t *testing.T) {
	// The default burst, refilled so slowly that the count of refusals
	// does not depend on how fast this machine sends.
	e := testenv.New(t, testenv.Options{HTTP: envyhttp.Options{AuthFailRate: 1e-6, AuthFailBurst: envyhttp.DefaultAuthFailBurst}})
	attacker := dialFrom("127.0.0.3")
	statuses := map[int]int{}
	first429 := -1
	for i := 0; i < 200; i++ {
		req, _ := http.NewRequest("GET", e.URL+"/v1/tokens/self", nil)
		req.Header.Set("Authorization", "Bearer "+envy.NewTokenValue())
		res, err := attacker.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		statuses[res.StatusCode]++
		if res.StatusCode == 429 {
			if first429 < 0 {
				first429 = i
			}
			if res.Header.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
		}
	}
	if first429 != envyhttp.DefaultAuthFailBurst || statuses[429] != 200-envyhttp.DefaultAuthFailBurst {
		t.Fatalf("200 bad tokens: %v, first 429 at %d", statuses, first429)
	}
	// A good token from another address still works.
	req, _ := http.NewRequest("GET", e.URL+"/v1/tokens/self", nil)
	req.Header.Set("Authorization", "Bearer "+e.Admin)
	res, err := dialFrom("127.0.0.4").Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("good token from another address: %d", res.StatusCode)
	}
	// The refusals are in the audit log.
	r := e.Do(t, "GET", "/v1/audit?limit=1000", e.Admin, "")
	var page struct {
		Items []struct {
			Status int    `json:"status"`
			Client string `json:"client"`
		} `json:"items"`
	}
	json.Unmarshal(r.Body, &page)
	seen := map[int]int{}
	for _, it := range page.Items {
		if it.Client == "127.0.0.3" {
			seen[it.Status]++
		}
	}
	if seen[401] == 0 || seen[429] == 0 {
		t.Fatalf("audit of refusals from the attacker: %v", seen)
	}
}

// TestCanaryNeverLeaks drives a unique secret value through every route
// and error path, then looks for it everywhere it must never be.
func TestCanaryNeverLeaks(t *testing.T) {
	e, streams, stream := streamEnv(t, "stdout") // the audit stream is one more place to look
	canary := "CANARY-" + strings.TrimPrefix(envy.NewTokenValue(), "envy_")
	reader := e.Token(t, "reader", envy.Grant{Scopes: "**", Actions: []envy.Action{envy.ActRead}})
	s := "/v1/scopes/canary/app"
	var bodies []string // every reply that is not a reveal
	var reveals []string
	do := func(method, path, token, body string, headers ...string) testenv.Response {
		r := e.Do(t, method, path, token, body, headers...)
		bodies = append(bodies, string(r.Body))
		for k, v := range r.Header {
			bodies = append(bodies, k+": "+strings.Join(v, ","))
		}
		return r
	}
	must := func(r testenv.Response, status int) {
		t.Helper()
		if r.Status != status {
			t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
		}
	}
	must(do("PUT", s+"/-/vars/KEY", e.Admin, `{"value":"`+canary+`","secret":true}`), 201)
	must(do("PUT", s+"/-/vars/KEY", e.Admin, `{"value":"`+canary+`","secret":true,"description":"d"}`), 200)
	must(do("PATCH", s+"/-/vars", e.Admin, `{"KEY2":{"value":"`+canary+`","secret":true},"PLAIN":"p"}`), 200)
	must(do("PATCH", s+"/-/vars/KEY2", e.Admin, `{"value":"`+canary+`"}`), 200)
	must(do("GET", s+"/-/vars", e.Admin, ""), 200)
	must(do("GET", s+"/-/vars/KEY", reader, ""), 200)
	must(do("GET", s+"/-/history", e.Admin, ""), 200)
	must(do("GET", s+"/-/status", e.Admin, ""), 200)
	must(do("GET", s, e.Admin, ""), 200)
	// Error paths with the canary in the request.
	must(do("PUT", s+"/-/vars/KEY", reader, `{"value":"`+canary+`"}`), 403)
	must(do("PUT", s+"/-/vars/KEY", "", `{"value":"`+canary+`"}`), 401)
	must(do("PUT", s+"/-/vars/KEY", "envy_"+canary, `{"value":"`+canary+`"}`), 401)
	must(do("PUT", s+"/-/vars/KEY", e.Admin, `{"value":"`+canary+`"`), 400)
	must(do("PUT", s+"/-/vars/KEY", e.Admin, `{"value":"`+canary+`","colour":"`+canary+`"}`), 422)
	must(do("PUT", s+"/-/vars/KEY", e.Admin, `{"value":"`+canary+`\u0000"}`), 422)
	must(do("PUT", s+"/-/vars/KEY", e.Admin, `{"value":"`+strings.Repeat(canary, 65536/len(canary)+1)+`"}`), 422)
	must(do("PUT", s+"/-/vars/KEY", e.Admin, `{"value":"`+canary+`"}`, "If-Match", `"1"`), 412)
	must(do("PUT", s+"/-/vars/KEY", e.Admin, `{"value":`+canary+`}`), 400)
	must(do("PUT", s+"/-/vars/1"+canary, e.Admin, `{"value":"x"}`), 422)
	must(do("PATCH", s+"/-/vars/NOPE", e.Admin, `{"value":"`+canary+`"}`), 404)
	must(do("PUT", "/v1/scopes/other/-/vars/KEY", reader, `{"value":"`+canary+`"}`), 403)
	req := e.Do(t, "PUT", s+"/-/vars/KEY", e.Admin, "", "Content-Type", "text/plain")
	bodies = append(bodies, string(req.Body))
	masked := e.Do(t, "GET", s+"/-/vars/KEY", e.Admin, "").JSON(t)["masked_value"].(string)
	must(do("PUT", s+"/-/vars/KEY", e.Admin, `{"value":"`+masked+`"}`), 422)
	must(do("POST", s+"/-/rollback", e.Admin, `{"revision":1}`), 200)
	must(do("DELETE", s+"/-/vars/KEY2", e.Admin, ""), 204)

	// Reveals do show it: the canary is really there.
	for _, p := range []string{s + "/-/vars/KEY?reveal=true", s + "/-/vars?reveal=true", s + "/-/env", s + "/-/env?format=dotenv", s + "/-/history?reveal=true"} {
		r := e.Do(t, "GET", p, e.Admin, "")
		reveals = append(reveals, string(r.Body))
		if !strings.Contains(string(r.Body), canary) {
			t.Fatalf("reveal %s does not show the value: %s", p, r.Body)
		}
	}

	audit := e.Do(t, "GET", "/v1/audit?limit=1000", e.Admin, "")
	if !strings.Contains(string(audit.Body), `"reveal"`) || !strings.Contains(string(audit.Body), `"var.set"`) {
		t.Fatalf("audit lacks the reveals or the writes: %s", audit.Body)
	}
	metrics := e.Do(t, "GET", "/metrics", "", "")
	history := e.Do(t, "GET", s+"/-/history?limit=1000", e.Admin, "")
	e.Svc.Close() // flush the audit log
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	streams.Close(ctx) // and the audit stream
	cancel()
	checkStreamLines(t, stream.String())
	places := map[string]string{
		"audit stream": stream.String(),
		"logs":         e.Logs.String(),
		"audit":        string(audit.Body),
		"metrics":      string(metrics.Body),
		"history":      string(history.Body),
		"replies":      strings.Join(bodies, "\n"),
	}
	keys := make([]string, 0, len(places))
	for k := range places {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.Contains(places[k], canary) || strings.Contains(places[k], canary[7:20]) {
			t.Errorf("the canary appears in the %s", k)
		}
	}
	if !strings.Contains(places["logs"], "request") {
		t.Fatal("the log is empty: the test would pass without looking at anything")
	}
}

// testClock is a clock that moves only when the test says, so that expiry
// is tested without sleeping.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock { return &testClock{now: time.Now()} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// checkStreamLines checks that an audit stream's output is JSON lines in
// the audit API's shape, with the reveals and writes in them.
func checkStreamLines(t *testing.T, out string) {
	t.Helper()
	// The audit API's entry fields, from its JSON tags.
	var fields []string
	et := reflect.TypeFor[api.AuditEntry]()
	for i := range et.NumField() {
		if name, _, _ := strings.Cut(et.Field(i).Tag.Get("json"), ","); name != "" && name != "-" {
			fields = append(fields, name)
		}
	}
	actions := map[string]int{}
	for i, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var x map[string]any
		if err := json.Unmarshal([]byte(l), &x); err != nil {
			t.Fatalf("audit stream line %d is not a JSON object: %v: %q", i+1, err, l)
		}
		for _, f := range fields {
			if _, ok := x[f]; !ok {
				t.Fatalf("audit stream line %d lacks %q: %s", i+1, f, l)
			}
		}
		if len(x) != len(fields) {
			t.Fatalf("audit stream line %d has fields the audit API's entries lack: %s", i+1, l)
		}
		if id, _ := x["token_id"].(string); strings.HasPrefix(id, "envy_") {
			t.Fatalf("audit stream line %d holds a token's secret, not its id: %s", i+1, l)
		}
		actions[x["action"].(string)]++
	}
	if actions["reveal"] == 0 || actions["var.set"] == 0 || actions["vars.merge"] == 0 {
		t.Fatalf("the audit stream lacks the reveals or the writes: %v", actions)
	}
}
