package hooksecrets_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/envy-dev/envy"
	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/http/compat/hooksecrets"
	"github.com/envy-dev/envy/internal/testenv"
	"github.com/envy-dev/envy/service"
)

// Hooks are created, read, listed (paged as Auth0 pages), updated and
// deleted with their secrets through /api/v2/hooks, in Auth0's shapes; a
// hook is the scope hooks/{id}, its fields kept in the scope's
// description, so that they round-trip.
func TestHooksRoundTripInAuth0sShapes(t *testing.T) {
	e := testenv.New(t, testenv.Options{Setup: func(api *envyhttp.Server, svc *service.Service) { hooksecrets.Register(api, svc) }})
	tok := e.Token(t, "hooks-admin", envy.Grant{Scopes: "hooks/**", Actions: []envy.Action{envy.ActRead, envy.ActWrite}})
	var ids []string
	for _, name := range []string{"first", "second", "third"} {
		r := e.Do(t, "POST", "/api/v2/hooks", tok, `{"name":"`+name+`","script":"module.exports = function(a, b, cb) { cb(null, {}); };","triggerId":"credentials-exchange","enabled":true,"dependencies":{}}`)
		if r.Status != 201 {
			t.Fatalf("create %s: %d %s", name, r.Status, r.Body)
		}
		o := r.JSON(t)
		if !regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{26}$`).MatchString(o["id"].(string)) || o["name"] != name || o["enabled"] != true || o["triggerId"] != "credentials-exchange" {
			t.Fatalf("created: %s", r.Body)
		}
		ids = append(ids, o["id"].(string))
	}
	if r := e.Do(t, "POST", "/api/v2/hooks/"+ids[0]+"/secrets", tok, `{"K":"v"}`); r.Status != 201 {
		t.Fatalf("secret: %d %s", r.Status, r.Body)
	}
	r := e.Do(t, "GET", "/api/v2/hooks/"+ids[1], tok, "")
	if o := r.JSON(t); r.Status != 200 || o["name"] != "second" || !strings.Contains(o["script"].(string), "module.exports") {
		t.Fatalf("get: %d %s", r.Status, r.Body)
	}
	r = e.Do(t, "GET", "/api/v2/hooks?page=1&per_page=2&include_totals=true", tok, "")
	var paged struct {
		Hooks               []map[string]any
		Start, Limit, Total int
	}
	if err := json.Unmarshal(r.Body, &paged); err != nil || r.Status != 200 || len(paged.Hooks) != 1 || paged.Start != 2 || paged.Limit != 2 || paged.Total != 3 {
		t.Fatalf("page 1 of 2: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "PATCH", "/api/v2/hooks/"+ids[1], tok, `{"name":"renamed","enabled":false}`); r.Status != 200 || r.JSON(t)["name"] != "renamed" {
		t.Fatalf("update: %d %s", r.Status, r.Body)
	}
	r = e.Do(t, "GET", "/api/v2/hooks/"+ids[1], tok, "")
	if o := r.JSON(t); o["name"] != "renamed" || o["enabled"] != false || o["triggerId"] != "credentials-exchange" || !strings.Contains(o["script"].(string), "module.exports") {
		t.Fatalf("after the update: %s", r.Body)
	}
	for _, c := range []struct{ method, path, body, want string }{
		{"POST", "/api/v2/hooks", `{"name":"first","script":"x","triggerId":"credentials-exchange"}`, `"errorCode":"hook_conflict"`},
		{"POST", "/api/v2/hooks", `{"name":"new","script":"x","triggerId":"nope"}`, `"statusCode":400`},
		{"POST", "/api/v2/hooks", `{"name":"new","script":"` + strings.Repeat("x", 2000) + `","triggerId":"credentials-exchange"}`, `"statusCode":400`},
		{"GET", "/api/v2/hooks/NOSUCHHOOK", "", `"errorCode":"inexistent_hook"`},
		{"PATCH", "/api/v2/hooks/" + ids[2], `{"name":"first"}`, `"errorCode":"hook_conflict"`},
	} {
		if r := e.Do(t, c.method, c.path, tok, c.body); !strings.Contains(string(r.Body), c.want) {
			t.Errorf("%s %s: %d %s, want %s", c.method, c.path, r.Status, r.Body, c.want)
		}
	}
	if r := e.Do(t, "DELETE", "/api/v2/hooks/"+ids[0], tok, ""); r.Status != 204 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "GET", "/v1/scopes/hooks/"+ids[0]+"/-/vars/K", e.Admin, ""); r.Status != 404 {
		t.Fatalf("the deleted hook's secret: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "DELETE", "/api/v2/hooks/"+ids[0], tok, ""); r.Status != 404 {
		t.Fatalf("deleting it again: %d %s", r.Status, r.Body)
	}
	r = e.Do(t, "GET", "/api/v2/hooks", tok, "")
	var all []map[string]any
	if err := json.Unmarshal(r.Body, &all); err != nil || len(all) != 2 {
		t.Fatalf("list: %d %s", r.Status, r.Body)
	}
	// A token that may not write hooks/** can't create one.
	ro := e.Token(t, "hooks-ro", envy.Grant{Scopes: "hooks/**", Actions: []envy.Action{envy.ActRead}})
	if r := e.Do(t, "POST", "/api/v2/hooks", ro, `{"name":"ro","script":"x","triggerId":"credentials-exchange"}`); r.Status != 403 {
		t.Fatalf("a read-only create: %d %s", r.Status, r.Body)
	}
}
