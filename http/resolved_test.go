package http_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/envy-dev/envy/api"
	"github.com/envy-dev/envy/internal/testenv"
)

func resolvedOf(t *testing.T, e *testenv.Env, token, path string) (api.Resolved, testenv.Response) {
	t.Helper()
	r := e.Do(t, "GET", "/v1/scopes/"+path+"/-/resolved", token, "")
	var out api.Resolved
	if r.Status == 200 {
		if err := json.Unmarshal(r.Body, &out); err != nil {
			t.Fatal(err)
		}
	}
	return out, r
}

func TestResolvedShowsLayersMasksSecretsAndHidesWhatTheTokenMayNotRead(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	for _, c := range []struct{ path, body string }{
		{"base/shared", `{"LOG":"info","KEY":{"value":"sk-base-0123456789abcdef","secret":true}}`},
		{"acme/mid", `{"LOG":"warn"}`},
		{"acme/app", `{"PORT":"80"}`},
	} {
		if r := e.Do(t, "PATCH", "/v1/scopes/"+c.path+"/-/vars", e.Admin, c.body); r.Status != 200 {
			t.Fatalf("%s: %d %s", c.path, r.Status, r.Body)
		}
	}
	e.Do(t, "PUT", "/v1/scopes/acme/mid", e.Admin, `{"inherits":["base/shared"]}`)
	if r := e.Do(t, "PUT", "/v1/scopes/acme/app", e.Admin, `{"inherits":["base/shared","acme/mid"]}`); r.Status != 200 {
		t.Fatalf("inherits: %d %s", r.Status, r.Body)
	}

	res, r := resolvedOf(t, e, e.Admin, "acme/app")
	if r.Status != 200 || r.Header.Get("ETag") != fmt.Sprintf(`"%d"`, res.Revision) {
		t.Fatalf("resolved: %d %s (ETag %q)", r.Status, r.Body, r.Header.Get("ETag"))
	}
	var layers []string
	for _, l := range res.Layers {
		layers = append(layers, l.Scope)
	}
	// base/shared is listed by app before mid, and mid inherits it: its
	// last place in the depth-first order is under mid.
	if got := strings.Join(layers, " "); got != "base/shared acme/mid acme/app" {
		t.Fatalf("layers %s", got)
	}
	base := res.Layers[0]
	if base.Vars[0].Name != "KEY" || base.Vars[0].Value != nil || base.Vars[0].MaskedValue == nil || strings.Contains(string(r.Body), "sk-base-0123456789abcdef") {
		t.Errorf("a secret is not masked without reveal: %s", r.Body)
	}
	if base.Vars[1].Name != "LOG" || base.Vars[1].ShadowedBy != "acme/mid" || res.Layers[1].Vars[0].ShadowedBy != "" {
		t.Errorf("LOG: base %+v, mid %+v", base.Vars[1], res.Layers[1].Vars[0])
	}

	// A token that reads acme/** only sees base/shared as hidden, and the
	// var it shadows names no hidden scope.
	_, reader := minted(t, e, e.Admin, map[string]any{"name": "reader", "permissions": []map[string]any{{"scopes": "acme/**", "actions": []string{"read", "reveal"}}}})
	res, r = resolvedOf(t, e, reader, "acme/app")
	if r.Status != 200 || len(res.Layers) != 3 || !res.Layers[0].Hidden || res.Layers[0].Scope != "(hidden)" || len(res.Layers[0].Vars) != 0 {
		t.Fatalf("as reader: %d %s", r.Status, r.Body)
	}
	if strings.Contains(string(r.Body), "base/shared") || strings.Contains(string(r.Body), "sk-base") {
		t.Errorf("a hidden scope is named or shown: %s", r.Body)
	}
	// Reveal needs reveal on every layer shown; a hidden layer is not
	// shown, so its values are not revealed either.
	r = e.Do(t, "GET", "/v1/scopes/acme/app/-/resolved?reveal=true", reader, "")
	if r.Status != 200 || strings.Contains(string(r.Body), "sk-base") {
		t.Errorf("reveal as reader: %d %s", r.Status, r.Body)
	}
	// A token that reads base/shared but may not reveal it is refused a
	// reveal of the resolution that shows it, naming that scope (it may
	// see it).
	_, masked := minted(t, e, e.Admin, map[string]any{"name": "masked", "permissions": []map[string]any{
		{"scopes": "acme/**", "actions": []string{"read", "reveal"}}, {"scopes": "base/**", "actions": []string{"read"}}}})
	r = e.Do(t, "GET", "/v1/scopes/acme/app/-/resolved?reveal=true", masked, "")
	if r.Status != 403 || !strings.Contains(string(r.Body), "inherits scope base/shared, which this token may not reveal") {
		t.Errorf("reveal without reveal on a layer: %d %s", r.Status, r.Body)
	}
	// With reveal on everything, values come, and the reveal is audited.
	r = e.Do(t, "GET", "/v1/scopes/acme/app/-/resolved?reveal=true", e.Admin, "")
	if r.Status != 200 || !strings.Contains(string(r.Body), "sk-base-0123456789abcdef") {
		t.Fatalf("reveal as admin: %d %s", r.Status, r.Body)
	}
	audit := e.Do(t, "GET", "/v1/audit?scope=acme/app", e.Admin, "")
	if !strings.Contains(string(audit.Body), `"action":"reveal"`) || strings.Contains(string(audit.Body), "sk-base") {
		t.Errorf("the reveal is not audited, or the audit holds the value: %s", audit.Body)
	}
	// Without read, 404 as for any scope the token can't see.
	_, other := minted(t, e, e.Admin, map[string]any{"name": "other", "permissions": []map[string]any{{"scopes": "zzz/**", "actions": []string{"read"}}}})
	if _, r := resolvedOf(t, e, other, "acme/app"); r.Status != 404 {
		t.Errorf("a scope the token can't read: %d", r.Status)
	}
}
