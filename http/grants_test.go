package http_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/testenv"
)

// manyGrants returns n distinct grants of read, one scope each.
func manyGrants(n int) []envy.Grant {
	gs := make([]envy.Grant, n)
	for i := range gs {
		gs[i] = envy.Grant{Scopes: fmt.Sprintf("acme/s%d/**", i), Actions: []envy.Action{envy.ActRead}}
	}
	return gs
}

// wantField fails unless r is a 422 whose fields hold one at loc of type typ.
func wantField(t *testing.T, what string, r testenv.Response, loc, typ string) {
	t.Helper()
	if r.Status != 422 {
		t.Fatalf("%s: status %d, want 422 naming %s (%s): %.300s", what, r.Status, loc, typ, r.Body)
	}
	if !strings.Contains(string(r.Body), `"loc":"`+loc+`"`) || !strings.Contains(string(r.Body), `"type":"`+typ+`"`) {
		t.Fatalf("%s: the problem does not name %s (%s): %.300s", what, loc, typ, r.Body)
	}
}

// TestATokensGrantsAreBounded: a token is minted with at most
// envy.MaxGrants grants, each action of a grant once (the check that a
// creator holds what it grants, and every request's, cost the count); a
// refusal names the field, says the bound and lists nothing per grant. A
// token stored with more, before the bound, still works and mints.
func TestATokensGrantsAreBounded(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	r := mint(t, e, e.Admin, map[string]any{"name": "many", "permissions": manyGrants(envy.MaxGrants + 1)})
	wantField(t, "one grant too many", r, "body.permissions", "too_many")
	if !strings.Contains(string(r.Body), fmt.Sprint(envy.MaxGrants)) || strings.Contains(string(r.Body), "body.permissions[") {
		t.Fatalf("the refusal does not say the bound, or lists grants: %.300s", r.Body)
	}
	// Far too many is as quick and as short a refusal.
	bad := manyGrants(20000)
	for i := range bad {
		bad[i].Actions = []envy.Action{"nope"}
	}
	start := time.Now()
	r = mint(t, e, e.Admin, map[string]any{"name": "many", "permissions": bad})
	wantField(t, "20,000 grants", r, "body.permissions", "too_many")
	if len(r.Body) > 2000 {
		t.Fatalf("the refusal of 20,000 grants is %d bytes: %.300s", len(r.Body), r.Body)
	}
	t.Logf("20,000 grants refused in %v", time.Since(start))
	minted(t, e, e.Admin, map[string]any{"name": "bound", "permissions": manyGrants(envy.MaxGrants)})

	dup := []envy.Grant{{Scopes: "acme/**", Actions: []envy.Action{envy.ActRead, envy.ActWrite, envy.ActRead}}}
	wantField(t, "an action twice", mint(t, e, e.Admin, map[string]any{"name": "dup", "permissions": dup}),
		"body.permissions[0].actions[2]", "duplicate_action")
	// An endless list of one action is refused at its first repeat.
	long := []envy.Grant{{Scopes: "acme/**", Actions: make([]envy.Action, 10000)}}
	for i := range long[0].Actions {
		long[0].Actions[i] = envy.ActRead
	}
	r = mint(t, e, e.Admin, map[string]any{"name": "dup", "permissions": long})
	wantField(t, "10,000 actions", r, "body.permissions[0].actions[1]", "duplicate_action")
	if n := strings.Count(string(r.Body), `"loc"`); n != 1 {
		t.Fatalf("10,000 repeated actions make %d fields, want 1: %.300s", n, r.Body)
	}

	// A token stored before the bound with more grants keeps working.
	plain := envy.NewTokenValue()
	old := envy.Token{ID: "0123456789abcdef0123456789abcdef", Name: "old", Owner: "old", Hash: envy.HashToken(plain),
		Permissions: append(manyGrants(2*envy.MaxGrants), envy.Grant{Scopes: "acme/**", Actions: []envy.Action{envy.ActAdmin}}),
		CreatedAt:   time.Now(), CreatedBy: "admin"}
	if _, err := e.Store.CreateToken(context.Background(), old, false, nil); err != nil {
		t.Fatal(err)
	}
	if r := e.Do(t, "GET", "/v1/tokens/self", plain, ""); r.Status != 200 {
		t.Fatalf("the stored token of %d grants: %d %s", len(old.Permissions), r.Status, r.Body)
	}
	minted(t, e, plain, map[string]any{"name": "child", "permissions": manyGrants(envy.MaxGrants)})
}

var dupReveal = []envy.Grant{{Scopes: "acme/**", Actions: []envy.Action{envy.ActReveal, envy.ActReveal}}}

// TestATrustsGrantsAreBounded: a JWT trust holds at most envy.MaxGrants
// grants, each action once, as a token does; the refusal names the field.
func TestATrustsGrantsAreBounded(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	trust := func(gs []envy.Grant) string {
		b, _ := json.Marshal(map[string]any{"issuer": "https://issuer.example", "audience": "envy", "permissions": gs})
		return string(b)
	}
	wantField(t, "a trust of too many grants", e.Do(t, "PUT", "/v1/auth/jwt/ci", e.Admin, trust(manyGrants(envy.MaxGrants+1))),
		"body.permissions", "too_many")
	wantField(t, "a trust's action twice", e.Do(t, "PUT", "/v1/auth/jwt/ci", e.Admin, trust(dupReveal)),
		"body.permissions[0].actions[1]", "duplicate_action")
	if r := e.Do(t, "PUT", "/v1/auth/jwt/ci", e.Admin, trust(manyGrants(envy.MaxGrants))); r.Status != 201 {
		t.Fatalf("a trust of %d grants: %d %s", envy.MaxGrants, r.Status, r.Body)
	}
}

// TestAnOIDCRolesGrantsAreBounded: each role of an OIDC provider holds at
// most envy.MaxGrants grants, each action once, as a token does; the
// refusal names the role's field.
func TestAnOIDCRolesGrantsAreBounded(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	provider := func(gs []envy.Grant) string {
		b, _ := json.Marshal(map[string]any{"issuer": "https://login.example", "client_id": "envy", "client_secret": "s3cret-client",
			"redirect_uris": []string{"http://127.0.0.1/callback"},
			"roles": []map[string]any{
				{"claim": "groups", "value": "ops", "permissions": []envy.Grant{{Scopes: "**", Actions: []envy.Action{envy.ActRead}}}},
				{"claim": "groups", "value": "dev", "permissions": gs},
			}})
		return string(b)
	}
	wantField(t, "an OIDC role of too many grants", e.Do(t, "PUT", "/v1/auth/oidc/corp", e.Admin, provider(manyGrants(envy.MaxGrants+1))),
		"body.roles[1].permissions", "too_many")
	wantField(t, "an OIDC role's action twice", e.Do(t, "PUT", "/v1/auth/oidc/corp", e.Admin, provider(dupReveal)),
		"body.roles[1].permissions[0].actions[1]", "duplicate_action")
	if r := e.Do(t, "PUT", "/v1/auth/oidc/corp", e.Admin, provider(manyGrants(envy.MaxGrants))); r.Status != 201 {
		t.Fatalf("an OIDC role of %d grants: %d %s", envy.MaxGrants, r.Status, r.Body)
	}
}
