package http

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestErrorsAreProblems(t *testing.T) {
	base, tok := newTestServer(t)
	small := newTestEnv(t, Options{MaxBody: 4096})
	v := base + "/v1/scopes/acme/web/-/vars/"
	// A scope to hold the vars below, and one revision to test If-Match.
	wantStatus(t, do(t, "PUT", v+"EXISTING", tok, `{"value":"x"}`), 201)

	bulk := map[string]string{}
	for i := 0; i < 1001; i++ {
		bulk[fmt.Sprintf("K%d", i)] = "v"
	}

	cases := []struct {
		name                string
		method, url, token  string
		body                any
		hdr                 []string
		status              int
		typ, loc, fieldType string
	}{
		{name: "malformed JSON is 400", method: "PUT", url: v + "A", body: `{"value":`, status: 400, typ: "bad_request"},
		{name: "data after the JSON value is 400", method: "PUT", url: v + "A", body: `{"value":"x"} {}`, status: 400, typ: "bad_request"},
		{name: "a missing body is 400", method: "PUT", url: v + "A", body: ``, status: 400, typ: "bad_request"},
		{name: "a body other than JSON is 415", method: "PUT", url: v + "A", body: `value=x`, hdr: []string{"Content-Type", "text/plain"}, status: 415, typ: "unsupported_media_type"},
		{name: "a body without a content type is 415", method: "PATCH", url: base + "/v1/scopes/acme/web/-/vars", body: `{"A":"x"}`, hdr: []string{"Content-Type", ""}, status: 415, typ: "unsupported_media_type"},
		{name: "a body too large is 413", method: "PUT", url: small.URL + "/v1/scopes/a/-/vars/A", token: small.Admin, body: `{"value":"` + strings.Repeat("x", 5000) + `"}`, status: 413, typ: "payload_too_large"},
		{name: "a body too large without a length is 413", method: "PUT", url: small.URL + "/v1/scopes/a/-/vars/A", token: small.Admin, body: io.MultiReader(strings.NewReader(`{"value":"`), strings.NewReader(strings.Repeat("x", 5000)+`"}`)), status: 413, typ: "payload_too_large"},
		{name: "an unknown field is 422 at its loc", method: "PUT", url: v + "A", body: `{"value":"x","colour":"red"}`, status: 422, typ: "validation_error", loc: "body.colour", fieldType: "unknown_field"},
		{name: "masked_value in a write is 422", method: "PUT", url: v + "A", body: `{"value":"x","masked_value":"••••"}`, status: 422, typ: "validation_error", loc: "body.masked_value"},
		{name: "a value of the wrong JSON type is 422", method: "PUT", url: v + "A", body: `{"value":5}`, status: 422, typ: "validation_error", loc: "body.value", fieldType: "type_error"},
		{name: "secret of the wrong JSON type is 422", method: "PUT", url: v + "A", body: `{"value":"x","secret":"yes"}`, status: 422, typ: "validation_error", loc: "body.secret"},
		{name: "a body that is not an object is 422", method: "PUT", url: v + "A", body: `["x"]`, status: 422, typ: "validation_error", loc: "body"},
		{name: "a name that differs from the URL is 422", method: "PUT", url: v + "A", body: `{"name":"B","value":"x"}`, status: 422, typ: "validation_error", loc: "body.name"},
		{name: "limit 0 is 422", method: "GET", url: base + "/v1/scopes?limit=0", status: 422, typ: "validation_error", loc: "query.limit"},
		{name: "limit 1001 is 422", method: "GET", url: base + "/v1/scopes?limit=1001", status: 422, typ: "validation_error", loc: "query.limit"},
		{name: "a limit that is not a number is 422", method: "GET", url: base + "/v1/scopes?limit=ten", status: 422, typ: "validation_error", loc: "query.limit"},
		{name: "reveal other than true or false is 422", method: "GET", url: v + "EXISTING?reveal=yes", status: 422, typ: "validation_error", loc: "query.reveal"},
		{name: "an unknown env format is 422", method: "GET", url: base + "/v1/scopes/acme/web/-/env?format=toml", status: 422, typ: "validation_error", loc: "query.format"},
		{name: "a bad before is 422", method: "GET", url: base + "/v1/scopes/acme/web/-/history?before=x", status: 422, typ: "validation_error", loc: "query.before"},
		{name: "before 0 is 422", method: "GET", url: base + "/v1/scopes/acme/web/-/history?before=0", status: 422, typ: "validation_error", loc: "query.before"},
		{name: "a bad since is 422", method: "GET", url: base + "/v1/audit?since=yesterday", status: 422, typ: "validation_error", loc: "query.since"},
		{name: "a bad scope path is 422", method: "PUT", url: base + "/v1/scopes/acme/_web/-/vars/A", body: `{"value":"x"}`, status: 422, typ: "validation_error", loc: "path.scope"},
		{name: "a bad var name is 422 at path.name", method: "PUT", url: v + "1BAD", body: `{"value":"x"}`, status: 422, typ: "validation_error", loc: "path.name"},
		{name: "a reserved prefix is 422", method: "PUT", url: v + "ENVY_X", body: `{"value":"x"}`, status: 422, typ: "validation_error", loc: "path.name", fieldType: "reserved_prefix"},
		{name: "a value too long is 422", method: "PUT", url: v + "A", body: map[string]string{"value": strings.Repeat("é", 65537)}, status: 422, typ: "validation_error", loc: "body.value", fieldType: "too_long"},
		{name: "a NUL in a value is 422", method: "PUT", url: v + "A", body: `{"value":"a\u0000b"}`, status: 422, typ: "validation_error", loc: "body.value"},
		{name: "a lone surrogate escape is invalid UTF-8: 422", method: "PUT", url: v + "A", body: `{"value":"a\ud800b"}`, status: 422, typ: "validation_error", loc: "body.value"},
		{name: "raw invalid UTF-8 in a value is 422", method: "PUT", url: v + "A", body: []byte("{\"value\":\"a\xffb\"}"), status: 422, typ: "validation_error", loc: "body.value"},
		{name: "invalid UTF-8 in a bulk value is 422 at its loc", method: "PATCH", url: base + "/v1/scopes/acme/web/-/vars", body: `{"B":{"value":"\udfff"}}`, status: 422, typ: "validation_error", loc: "body.B.value"},
		{name: "a bulk value of the wrong type is 422 at its loc", method: "PATCH", url: base + "/v1/scopes/acme/web/-/vars", body: `{"B":5}`, status: 422, typ: "validation_error", loc: "body.B"},
		{name: "an unknown field in a bulk entry is 422", method: "PATCH", url: base + "/v1/scopes/acme/web/-/vars", body: `{"B":{"value":"x","ttl":3}}`, status: 422, typ: "validation_error", loc: "body.B.ttl"},
		{name: "null in a replace is 422", method: "PUT", url: base + "/v1/scopes/acme/web/-/vars", body: `{"B":null}`, status: 422, typ: "validation_error", loc: "body.B"},
		{name: "more than 1000 keys in a bulk merge is 422", method: "PATCH", url: base + "/v1/scopes/acme/big/-/vars", body: bulk, status: 422, typ: "validation_error", loc: "body"},
		{name: "a bad name in a bulk merge is 422 at its key", method: "PATCH", url: base + "/v1/scopes/acme/web/-/vars", body: `{"9X":"v"}`, status: 422, typ: "validation_error", loc: "body.9X"},
		{name: "a stale If-Match is 412", method: "PUT", url: v + "A", body: `{"value":"x"}`, hdr: []string{"If-Match", `"999999"`}, status: 412, typ: "precondition_failed"},
		{name: "a malformed If-Match is 422", method: "PUT", url: v + "A", body: `{"value":"x"}`, hdr: []string{"If-Match", `W/"x"`}, status: 422, typ: "validation_error", loc: "header.If-Match"},
		{name: "an empty quoted If-Match is 422", method: "PUT", url: v + "A", body: `{"value":"x"}`, hdr: []string{"If-Match", `""`}, status: 422, typ: "validation_error", loc: "header.If-Match"},
		{name: "If-Match 0 is 422", method: "PUT", url: v + "A", body: `{"value":"x"}`, hdr: []string{"If-Match", `"0"`}, status: 422, typ: "validation_error", loc: "header.If-Match"},
		{name: "PATCH of a missing var is 404", method: "PATCH", url: v + "MISSING", body: `{"value":"x"}`, status: 404, typ: "not_found"},
		{name: "a missing scope is 404", method: "GET", url: base + "/v1/scopes/nope", status: 404, typ: "not_found"},
		{name: "an unknown sub-route is 404", method: "GET", url: base + "/v1/scopes/acme/web/-/nothing", status: 404, typ: "not_found"},
		{name: "an unknown path is 404", method: "GET", url: base + "/v2/nothing", status: 404, typ: "not_found"},
		{name: "a method a scope route lacks is 405", method: "POST", url: v + "A", body: `{}`, status: 405, typ: "method_not_allowed"},
		{name: "a method a route lacks is 405", method: "PATCH", url: base + "/v1/tokens", body: `{}`, status: 405, typ: "method_not_allowed"},
		{name: "no token is 401", method: "GET", url: base + "/v1/scopes", token: "-", status: 401, typ: "unauthenticated"},
		{name: "an unknown token is 401", method: "GET", url: base + "/v1/scopes", token: "envy_" + strings.Repeat("A", 43), status: 401, typ: "unauthenticated"},
		{name: "a malformed token is 401", method: "GET", url: base + "/v1/scopes/acme/web/-/vars", token: "nope", status: 401, typ: "unauthenticated"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			token := tc.token
			switch token {
			case "":
				token = tok
			case "-":
				token = ""
			}
			r := do(t, tc.method, tc.url, token, tc.body, tc.hdr...)
			if tc.fieldType != "" {
				wantProblem(t, r, tc.status, tc.typ, tc.loc, tc.fieldType)
			} else {
				wantProblem(t, r, tc.status, tc.typ, tc.loc)
			}
		})
	}

	t.Run("an inherits cycle is 422", func(t *testing.T) {
		wantStatus(t, do(t, "PUT", base+"/v1/scopes/cyc/a", tok, `{}`), 201)
		wantStatus(t, do(t, "PUT", base+"/v1/scopes/cyc/b", tok, `{"inherits":["cyc/a"]}`), 201)
		r := do(t, "PUT", base+"/v1/scopes/cyc/a", tok, `{"inherits":["cyc/b"]}`)
		wantProblem(t, r, 422, "validation_error", "body.inherits", "cycle")
	})
	t.Run("an inherits list of the wrong type is 422 at the item", func(t *testing.T) {
		r := do(t, "PUT", base+"/v1/scopes/cyc/a", tok, `{"inherits":["cyc/b", 3]}`)
		wantProblem(t, r, 422, "validation_error", "body.inherits[1]")
	})
	t.Run("a problem never shows the value", func(t *testing.T) {
		r := do(t, "PUT", v+"A", tok, "{\"value\":\"hunter2\\u0000\"}")
		wantProblem(t, r, 422, "validation_error", "body.value")
		if strings.Contains(string(r.Body), "hunter2") {
			t.Errorf("the problem shows the value: %s", r.Body)
		}
	})
}

func TestRequestID(t *testing.T) {
	base, tok := newTestServer(t)
	idPattern := regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	for _, path := range []string{"/healthz", "/v1/scopes", "/v1/scopes/missing", "/nothing"} {
		r := do(t, "GET", base+path, tok, nil)
		if id := r.Header.Get("X-Request-Id"); !idPattern.MatchString(id) {
			t.Errorf("GET %s (%d): X-Request-Id %q", path, r.Status, id)
		}
	}
	r := do(t, "GET", base+"/v1/scopes", "", nil)
	if r.Header.Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id on a 401")
	}
	r = do(t, "GET", base+"/healthz", "", nil, "X-Request-Id", "trace-123.abc_DEF")
	if got := r.Header.Get("X-Request-Id"); got != "trace-123.abc_DEF" {
		t.Errorf("a sane incoming id is replaced: %q", got)
	}
	for _, bad := range []string{strings.Repeat("a", 65), "a b", "a\"b", "<script>"} {
		r = do(t, "GET", base+"/healthz", "", nil, "X-Request-Id", bad)
		if got := r.Header.Get("X-Request-Id"); got == bad || !idPattern.MatchString(got) {
			t.Errorf("incoming id %q: got %q, want a new one", bad, got)
		}
	}
}

func TestPublicRoutes(t *testing.T) {
	base, _ := newTestServer(t)
	r := do(t, "GET", base+"/healthz", "", nil)
	wantStatus(t, r, 200)
	if got := r.JSON(t)["status"]; got != "ok" {
		t.Errorf("healthz status %v", got)
	}
	// /healthz's reply is made once (wire.Fixed), with the headers of
	// every reply; a HEAD gets them too, the length included.
	for _, method := range []string{"GET", "HEAD"} {
		r := do(t, method, base+"/healthz", "", nil)
		wantStatus(t, r, 200)
		for k, want := range map[string]string{"Content-Type": "application/json", "Content-Length": "16", "X-Content-Type-Options": "nosniff"} {
			if got := r.Header.Get(k); got != want {
				t.Errorf("%s /healthz: %s %q, want %q", method, k, got, want)
			}
		}
	}
	wantStatus(t, do(t, "GET", base+"/readyz", "", nil), 200)
	r = do(t, "GET", base+"/v1/openapi.json", "", nil)
	wantStatus(t, r, 200)
	if r.JSON(t)["openapi"] != "3.1.0" {
		t.Errorf("openapi.json: %.100s", r.Body)
	}
	wantStatus(t, do(t, "GET", base+"/metrics", "", nil), 200)
}

func TestReadyzUnavailable(t *testing.T) {
	e := newTestEnv(t, Options{Ready: func(ctx contextT) error { return errNotReady }})
	r := do(t, "GET", e.URL+"/readyz", "", nil)
	wantProblem(t, r, 503, "unavailable", "")
	if r.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
}

func TestScopesAndETags(t *testing.T) {
	base, tok := newTestServer(t)
	s := base + "/v1/scopes/acme/web/prod"

	r := do(t, "PUT", s, tok, `{"description":"production"}`)
	wantStatus(t, r, 201)
	m := r.JSON(t)
	wantKeys(t, m, "path", "description", "inherits", "revision", "created_at", "updated_at", "synced")
	if m["path"] != "acme/web/prod" || m["description"] != "production" {
		t.Errorf("created scope: %s", r.Body)
	}
	checkTime(t, m["created_at"])
	rev := m["revision"].(float64)
	if et := r.Header.Get("ETag"); et != fmt.Sprintf(`"%d"`, int64(rev)) {
		t.Errorf("write ETag %q, revision %v", et, rev)
	}

	r = do(t, "PUT", s, tok, nil) // no body: nothing changes
	wantStatus(t, r, 200)

	r = do(t, "GET", s, tok, nil)
	wantStatus(t, r, 200)
	m = r.JSON(t)
	wantKeys(t, m, "path", "description", "inherits", "revision", "created_at", "updated_at", "var_count")
	if et := r.Header.Get("ETag"); et != fmt.Sprintf(`"%d"`, int64(m["revision"].(float64))) {
		t.Errorf("GET scope ETag %q for %s", et, r.Body)
	}

	wantStatus(t, do(t, "PUT", s+"/-/vars/A", tok, `{"value":"1"}`), 201)
	r = do(t, "GET", base+"/v1/scopes?prefix=acme/&limit=1", tok, nil)
	wantStatus(t, r, 200)
	m = r.JSON(t)
	wantKeys(t, m, "items", "next_cursor")
	items := m["items"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["path"] != "acme/web/prod" {
		t.Errorf("scope list: %s", r.Body)
	}

	for _, path := range []string{"/-/vars", "/-/env", "/-/status", ""} {
		r := do(t, "GET", s+path, tok, nil)
		wantStatus(t, r, 200)
		if !regexp.MustCompile(`^"\d+"$`).MatchString(r.Header.Get("ETag")) {
			t.Errorf("GET %s: ETag %q", path, r.Header.Get("ETag"))
		}
		if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("GET %s: Cache-Control %q", path, cc)
		}
	}

	// If-Match: the current revision passes, with or without quotes.
	cur := do(t, "GET", s, tok, nil).Header.Get("ETag")
	r = do(t, "PUT", s+"/-/vars/B", tok, `{"value":"2"}`, "If-Match", cur)
	wantStatus(t, r, 201)
	next := r.Header.Get("ETag")
	r = do(t, "PUT", s+"/-/vars/B", tok, `{"value":"3"}`, "If-Match", strings.Trim(next, `"`))
	wantStatus(t, r, 200)
	r = do(t, "PUT", s+"/-/vars/B", tok, `{"value":"4"}`, "If-Match", next)
	wantProblem(t, r, 412, "precondition_failed", "")

	// DELETE: 204, no body, the new revision in ETag; also when absent.
	r = do(t, "DELETE", s+"/-/vars/B", tok, nil)
	wantStatus(t, r, 204)
	if len(r.Body) != 0 {
		t.Errorf("DELETE var has a body: %q", r.Body)
	}
	delRev := r.Header.Get("ETag")
	if delRev == "" || delRev == next {
		t.Errorf("DELETE var ETag %q (previous %q)", delRev, next)
	}
	if got := do(t, "GET", s, tok, nil).Header.Get("ETag"); got != delRev {
		t.Errorf("scope ETag after delete %q, DELETE said %q", got, delRev)
	}
	wantStatus(t, do(t, "DELETE", s+"/-/vars/B", tok, nil), 204)

	wantStatus(t, do(t, "PUT", base+"/v1/scopes/acme/child", tok, `{"inherits":["acme/web/prod"]}`), 201)
	wantProblem(t, do(t, "DELETE", s, tok, nil), 409, "conflict", "")
	wantStatus(t, do(t, "DELETE", base+"/v1/scopes/acme/child", tok, nil), 204)
	r = do(t, "DELETE", s, tok, nil)
	wantStatus(t, r, 204)
	if r.Header.Get("ETag") == "" || len(r.Body) != 0 {
		t.Errorf("DELETE scope: ETag %q body %q", r.Header.Get("ETag"), r.Body)
	}
	wantProblem(t, do(t, "GET", s, tok, nil), 404, "not_found", "")
	wantStatus(t, do(t, "DELETE", s, tok, nil), 204)
}

func TestVarWrites(t *testing.T) {
	base, tok := newTestServer(t)
	v := base + "/v1/scopes/acme/api/-/vars/"

	r := do(t, "PUT", v+"DB_URL", tok, `{"value":"postgres://x","description":"the db"}`)
	wantStatus(t, r, 201)
	m := r.JSON(t)
	wantKeys(t, m, "id", "name", "value", "masked_value", "secret", "description", "version", "revision", "created_at", "updated_at", "updated_by", "updated_by_token", "synced")
	if m["name"] != "DB_URL" || m["value"] != "postgres://x" || m["masked_value"] != nil || m["secret"] != false || m["version"] != 1.0 || m["description"] != "the db" {
		t.Errorf("created var: %s", r.Body)
	}
	if m["updated_by"] != "admin" {
		t.Errorf("updated_by %v", m["updated_by"])
	}
	checkTime(t, m["updated_at"])
	id := m["id"]

	// The same name in the body is accepted; omitted fields keep their value.
	r = do(t, "PUT", v+"DB_URL", tok, `{"name":"DB_URL","value":"postgres://y"}`)
	wantStatus(t, r, 200)
	m = r.JSON(t)
	if m["id"] != id || m["version"] != 2.0 || m["description"] != "the db" || m["value"] != "postgres://y" {
		t.Errorf("updated var: %s", r.Body)
	}
	if et := r.Header.Get("ETag"); et != fmt.Sprintf(`"%d"`, int64(m["revision"].(float64))) {
		t.Errorf("var write ETag %q, revision %v", et, m["revision"])
	}

	r = do(t, "PATCH", v+"DB_URL", tok, `{"description":"moved"}`, "Content-Type", "application/json; charset=utf-8")
	wantStatus(t, r, 200)
	if m := r.JSON(t); m["value"] != "postgres://y" || m["description"] != "moved" {
		t.Errorf("patched var: %s", r.Body)
	}

	// Values are kept exactly, HTML characters and all.
	odd := "a<b>&c \"q\" $HOME\nline2 ☃ \\"
	r = do(t, "PUT", v+"ODD", tok, map[string]string{"value": odd})
	wantStatus(t, r, 201)
	r = do(t, "GET", v+"ODD", tok, nil)
	if got := r.JSON(t)["value"]; got != odd {
		t.Errorf("value %q, want %q", got, odd)
	}
	if strings.Contains(string(r.Body), `\u003c`) {
		t.Errorf("HTML-escaped reply: %s", r.Body)
	}
	// A surrogate pair escape is one character, not invalid UTF-8.
	wantStatus(t, do(t, "PUT", v+"EMOJI", tok, `{"value":"\ud83d\ude00"}`), 201)
	if got := do(t, "GET", v+"EMOJI", tok, nil).JSON(t)["value"]; got != "😀" {
		t.Errorf("surrogate pair: %q", got)
	}

	// Bulk merge: a string sets, null deletes, an object sets fields; one revision.
	r = do(t, "PATCH", base+"/v1/scopes/acme/api/-/vars", tok, `{"A":"1","ODD":null,"C":{"value":"sk-live-1234567890","secret":true,"description":"key"}}`)
	wantStatus(t, r, 200)
	m = r.JSON(t)
	wantKeys(t, m, "scope", "revision", "synced")
	rev := m["revision"].(float64)
	r = do(t, "GET", base+"/v1/scopes/acme/api/-/vars", tok, nil)
	m = r.JSON(t)
	wantKeys(t, m, "scope", "revision", "items")
	var names []string
	for _, it := range m["items"].([]any) {
		names = append(names, it.(map[string]any)["name"].(string))
	}
	if !reflect.DeepEqual(names, []string{"A", "C", "DB_URL", "EMOJI"}) {
		t.Errorf("names after merge %v", names)
	}
	if m["revision"] != rev {
		t.Errorf("list revision %v, merge revision %v", m["revision"], rev)
	}

	// Replace: the set becomes exactly the body.
	r = do(t, "PUT", base+"/v1/scopes/acme/api/-/vars", tok, `{"ONLY":"x","C":{"value":"sk-live-1234567890","secret":true}}`)
	wantStatus(t, r, 200)
	r = do(t, "GET", base+"/v1/scopes/acme/api/-/vars", tok, nil)
	names = nil
	for _, it := range r.JSON(t)["items"].([]any) {
		names = append(names, it.(map[string]any)["name"].(string))
	}
	if !reflect.DeepEqual(names, []string{"C", "ONLY"}) {
		t.Errorf("names after replace %v", names)
	}
}

func TestSecretsMaskedUnlessRevealed(t *testing.T) {
	base, tok := newTestServer(t)
	v := base + "/v1/scopes/acme/api/-/vars"
	const secret = "sk-prod-abcdefghijklmnop789"
	r := do(t, "PUT", v+"/API_KEY", tok, map[string]any{"value": secret, "secret": true})
	wantStatus(t, r, 201)
	m := r.JSON(t)
	if m["value"] != nil || m["masked_value"] == nil {
		t.Errorf("write reply shows the secret: %s", r.Body)
	}

	for _, url := range []string{v, v + "/API_KEY"} {
		r := do(t, "GET", url, tok, nil)
		wantStatus(t, r, 200)
		if strings.Contains(string(r.Body), secret) {
			t.Errorf("GET %s shows the secret: %s", url, r.Body)
		}
		if !strings.Contains(string(r.Body), `"value":null`) || !strings.Contains(string(r.Body), "•") {
			t.Errorf("GET %s: no masked value: %s", url, r.Body)
		}
		r = do(t, "GET", url+"?reveal=true", tok, nil)
		wantStatus(t, r, 200)
		if !strings.Contains(string(r.Body), `"value":"`+secret+`"`) {
			t.Errorf("GET %s?reveal=true hides the secret: %s", url, r.Body)
		}
	}

	// A non-secret has no masked value.
	wantStatus(t, do(t, "PUT", v+"/PLAIN", tok, `{"value":"visible"}`), 201)
	r = do(t, "GET", v+"/PLAIN", tok, nil)
	if m := r.JSON(t); m["value"] != "visible" || m["masked_value"] != nil {
		t.Errorf("plain var: %s", r.Body)
	}
}

func TestEnvFormats(t *testing.T) {
	base, tok := newTestServer(t)
	wantStatus(t, do(t, "PATCH", base+"/v1/scopes/acme/base/-/vars", tok, `{"SHARED":"base","ONLY_BASE":"b"}`), 200)
	wantStatus(t, do(t, "PUT", base+"/v1/scopes/acme/app", tok, `{"inherits":["acme/base"]}`), 201)
	wantStatus(t, do(t, "PATCH", base+"/v1/scopes/acme/app/-/vars", tok,
		map[string]any{"SHARED": "app", "QUOTED": "it's \"x\" $y\nz", "KEY": map[string]any{"value": "sk-123", "secret": true}}), 200)
	env := base + "/v1/scopes/acme/app/-/env"

	r := do(t, "GET", env, tok, nil)
	wantStatus(t, r, 200)
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("json Content-Type %q", ct)
	}
	m := r.JSON(t)
	wantKeys(t, m, "scope", "revision", "env", "secrets")
	if !reflect.DeepEqual(m["secrets"], []any{"KEY"}) {
		t.Errorf("secrets %v, want [KEY]", m["secrets"])
	}
	want := map[string]any{"SHARED": "app", "ONLY_BASE": "b", "QUOTED": "it's \"x\" $y\nz", "KEY": "sk-123"}
	if !reflect.DeepEqual(m["env"], want) {
		t.Errorf("env %v, want %v", m["env"], want)
	}
	if !strings.Contains(string(r.Body), `"env":{"KEY":"sk-123","ONLY_BASE":"b","QUOTED"`) {
		t.Errorf("env names not sorted: %s", r.Body)
	}
	if r.Header.Get("ETag") != fmt.Sprintf(`"%d"`, int64(m["revision"].(float64))) {
		t.Errorf("env ETag %q", r.Header.Get("ETag"))
	}

	r = do(t, "GET", env+"?format=dotenv", tok, nil)
	wantStatus(t, r, 200)
	if ct := r.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("dotenv Content-Type %q", ct)
	}
	for _, line := range []string{"SHARED=app", "ONLY_BASE=b", "KEY=sk-123"} {
		if !strings.Contains(string(r.Body), line+"\n") {
			t.Errorf("dotenv lacks %q:\n%s", line, r.Body)
		}
	}
	if !strings.Contains(string(r.Body), "QUOTED=") {
		t.Errorf("dotenv lacks QUOTED:\n%s", r.Body)
	}

	r = do(t, "GET", env+"?format=shell", tok, nil)
	wantStatus(t, r, 200)
	if ct := r.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("shell Content-Type %q", ct)
	}
	for _, line := range []string{"export SHARED=", "export KEY=", "export QUOTED="} {
		if !strings.Contains(string(r.Body), line) {
			t.Errorf("shell lacks %q:\n%s", line, r.Body)
		}
	}
}

func TestHistoryAndRollback(t *testing.T) {
	base, tok := newTestServer(t)
	s := base + "/v1/scopes/acme/h"
	r := do(t, "PUT", s+"/-/vars/A", tok, `{"value":"one"}`)
	wantStatus(t, r, 201)
	rev1 := int64(r.JSON(t)["revision"].(float64))
	wantStatus(t, do(t, "PUT", s+"/-/vars/A", tok, `{"value":"two"}`), 200)
	wantStatus(t, do(t, "PUT", s+"/-/vars/S", tok, `{"value":"secret-value-xyz","secret":true}`), 201)
	wantStatus(t, do(t, "DELETE", s+"/-/vars/A", tok, nil), 204)

	r = do(t, "GET", s+"/-/history", tok, nil)
	wantStatus(t, r, 200)
	m := r.JSON(t)
	wantKeys(t, m, "items", "next_cursor")
	items := m["items"].([]any)
	if len(items) != 4 {
		t.Fatalf("history has %d items: %s", len(items), r.Body)
	}
	first := items[0].(map[string]any)
	wantKeys(t, first, "revision", "name", "op", "version", "actor", "actor_token", "at", "secret", "value", "masked_value")
	if first["op"] != "delete" || first["name"] != "A" || first["value"] != nil {
		t.Errorf("newest change %v", first)
	}
	if strings.Contains(string(r.Body), "secret-value-xyz") {
		t.Errorf("history shows a secret: %s", r.Body)
	}
	last := items[3].(map[string]any)
	if last["value"] != "one" || last["op"] != "set" || last["actor"] != "admin" {
		t.Errorf("oldest change %v", last)
	}

	// Paging: next_cursor resumes after the last change of the page.
	r = do(t, "GET", s+"/-/history?limit=3", tok, nil)
	m = r.JSON(t)
	cur, ok := m["next_cursor"].(string)
	if !ok || len(m["items"].([]any)) != 3 {
		t.Fatalf("first page: %s", r.Body)
	}
	r = do(t, "GET", s+"/-/history?limit=3&cursor="+cur, tok, nil)
	m = r.JSON(t)
	if len(m["items"].([]any)) != 1 || m["next_cursor"] != nil {
		t.Errorf("second page: %s", r.Body)
	}

	r = do(t, "POST", s+"/-/rollback", tok, fmt.Sprintf(`{"revision":%d}`, rev1))
	wantStatus(t, r, 200)
	m = r.JSON(t)
	wantKeys(t, m, "scope", "revision", "synced")
	r = do(t, "GET", s+"/-/vars", tok, nil)
	items = r.JSON(t)["items"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["value"] != "one" {
		t.Errorf("vars after rollback: %s", r.Body)
	}

	wantProblem(t, do(t, "POST", s+"/-/rollback", tok, `{}`), 422, "validation_error", "body.revision")
	wantProblem(t, do(t, "POST", s+"/-/rollback", tok, `{"revision":"3"}`), 422, "validation_error", "body.revision")
	wantProblem(t, do(t, "POST", s+"/-/rollback", tok, `{"revision":1.5}`), 422, "validation_error", "body.revision")
}

func TestConsumersAndStatus(t *testing.T) {
	base, tok := newTestServer(t)
	s := base + "/v1/scopes/acme/run"
	r := do(t, "PUT", s+"/-/vars/A", tok, `{"value":"1"}`)
	wantStatus(t, r, 201)
	rev := int64(r.JSON(t)["revision"].(float64))

	body := fmt.Sprintf(`{"revision":%d,"hostname":"web-1","pid":42}`, rev)
	r = do(t, "PUT", s+"/-/consumers/web-1.42", tok, body)
	wantStatus(t, r, 201)
	wantStatus(t, do(t, "PUT", s+"/-/consumers/web-1.42", tok, body), 200)

	r = do(t, "GET", s+"/-/status", tok, nil)
	wantStatus(t, r, 200)
	m := r.JSON(t)
	wantKeys(t, m, "scope", "revision", "synced", "consumers", "next_cursor")
	if m["synced"] != true {
		t.Errorf("status: %s", r.Body)
	}
	cs := m["consumers"].([]any)
	if len(cs) != 1 {
		t.Fatalf("consumers: %s", r.Body)
	}
	wantKeys(t, cs[0].(map[string]any), "id", "hostname", "pid", "revision", "first_seen", "seen_at", "behind", "on_fallback_since")
	if cs[0].(map[string]any)["on_fallback_since"] != nil {
		t.Errorf("a consumer that did not report a fallback shows one: %s", r.Body)
	}

	// A consumer on its fallback copy says since when; status shows it
	// until a report without it.
	onFallback := func() any {
		t.Helper()
		r := do(t, "GET", s+"/-/status", tok, nil)
		wantStatus(t, r, 200)
		return r.JSON(t)["consumers"].([]any)[0].(map[string]any)["on_fallback_since"]
	}
	wantStatus(t, do(t, "PUT", s+"/-/consumers/web-1.42", tok, fmt.Sprintf(`{"revision":%d,"fallback_since":"2026-01-02T03:04:05Z"}`, rev)), 200)
	if got := onFallback(); got != "2026-01-02T03:04:05Z" {
		t.Errorf("on_fallback_since %v after a report with fallback_since, want 2026-01-02T03:04:05Z: the server stores what the consumer reports", got)
	}
	wantStatus(t, do(t, "PUT", s+"/-/consumers/web-1.42", tok, body), 200)
	if got := onFallback(); got != nil {
		t.Errorf("on_fallback_since %v after a report without it, want null", got)
	}
	wantProblem(t, do(t, "PUT", s+"/-/consumers/web-1.42", tok, fmt.Sprintf(`{"revision":%d,"fallback_since":"yesterday"}`, rev)), 422, "validation_error", "body.fallback_since")

	r = do(t, "PUT", s+"/-/vars/A", tok, `{"value":"2"}`)
	if m := r.JSON(t); m["synced"] != false {
		t.Errorf("a write with a consumer behind says synced: %s", r.Body)
	}
	wantProblem(t, do(t, "PUT", s+"/-/consumers/c1", tok, `{"hostname":"x"}`), 422, "validation_error", "body.revision")
	wantProblem(t, do(t, "PUT", s+"/-/consumers/c1", tok, `{"revision":1,"pid":"x"}`), 422, "validation_error", "body.pid")
}

func TestTokensAndAudit(t *testing.T) {
	base, tok := newTestServer(t)
	r := do(t, "POST", base+"/v1/tokens", tok, `{"name":"ci","permissions":[{"scopes":"acme/**","actions":["read"]}],"expires_in":"1h"}`)
	wantStatus(t, r, 201)
	m := r.JSON(t)
	wantKeys(t, m, "id", "name", "owner", "permissions", "created_at", "created_by", "parent_id", "expires_at", "revoked_at", "token")
	ci, id := m["token"].(string), m["id"].(string)
	if !strings.HasPrefix(ci, "envy_") || m["owner"] != "ci" || m["expires_at"] == nil || m["revoked_at"] != nil {
		t.Errorf("created token: %s", r.Body)
	}

	r = do(t, "GET", base+"/v1/tokens/self", ci, nil)
	wantStatus(t, r, 200)
	if m := r.JSON(t); m["name"] != "ci" || m["token"] != nil {
		t.Errorf("self: %s", r.Body)
	}
	wantStatus(t, do(t, "GET", base+"/v1/tokens/"+id, tok, nil), 200)
	r = do(t, "GET", base+"/v1/tokens?limit=10", tok, nil)
	wantStatus(t, r, 200)
	if items := r.JSON(t)["items"].([]any); len(items) != 2 {
		t.Errorf("tokens: %s", r.Body)
	}
	if strings.Contains(string(r.Body), ci) {
		t.Errorf("token list shows a plaintext")
	}

	// Read but not write: 403 on writes, and 404 for scopes it can't read.
	wantStatus(t, do(t, "PUT", base+"/v1/scopes/acme/x/-/vars/A", tok, `{"value":"1"}`), 201)
	wantProblem(t, do(t, "PUT", base+"/v1/scopes/acme/x/-/vars/A", ci, `{"value":"2"}`), 403, "forbidden", "")
	wantStatus(t, do(t, "PUT", base+"/v1/scopes/other/-/vars/A", tok, `{"value":"1"}`), 201)
	wantProblem(t, do(t, "GET", base+"/v1/scopes/other/-/vars", ci, nil), 404, "not_found", "")
	wantProblem(t, do(t, "GET", base+"/v1/tokens", ci, nil), 403, "forbidden", "")

	wantProblem(t, do(t, "POST", base+"/v1/tokens", tok, `{"name":"x","permissions":[{"scopes":"a","actions":["read"],"extra":1}]}`),
		422, "validation_error", "body.permissions[0].extra")
	wantProblem(t, do(t, "POST", base+"/v1/tokens", tok, `{"name":"x","permissions":[{"scopes":"a","actions":["read"]}],"expires_at":"soon"}`),
		422, "validation_error", "body.expires_at")

	wantStatus(t, do(t, "DELETE", base+"/v1/tokens/"+id, tok, nil), 200)
	wantProblem(t, do(t, "GET", base+"/v1/tokens/self", ci, nil), 401, "unauthenticated", "")

	// The audit log has the writes and the refusals, never a value.
	var entries []any
	deadline := time.Now().Add(5 * time.Second)
	for {
		r = do(t, "GET", base+"/v1/audit?limit=1000", tok, nil)
		wantStatus(t, r, 200)
		m = r.JSON(t)
		wantKeys(t, m, "items", "next_cursor")
		entries = m["items"].([]any)
		if strings.Contains(string(r.Body), `"status":401`) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(entries) == 0 {
		t.Fatal("empty audit log")
	}
	wantKeys(t, entries[0].(map[string]any), "id", "at", "actor", "action", "scope", "names", "status", "request_id", "client", "revision", "token_id", "count", "last_at", "request_ids")
	if !strings.Contains(string(r.Body), `"status":401`) {
		t.Errorf("the 401 is not in the audit log: %s", r.Body)
	}
	if !strings.Contains(string(r.Body), `"client":"127.0.0.1"`) {
		t.Errorf("no client address in the audit log")
	}
	r = do(t, "GET", base+"/v1/audit?scope=acme/x&since="+time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), tok, nil)
	wantStatus(t, r, 200)
	for _, it := range r.JSON(t)["items"].([]any) {
		if it.(map[string]any)["scope"] != "acme/x" {
			t.Errorf("audit filtered by scope has %v", it)
		}
	}
}

// wantKeys fails unless a JSON object has exactly these members.
func wantKeys(t *testing.T, m map[string]any, want ...string) {
	t.Helper()
	got := keys(m)
	w := append([]string(nil), want...)
	sort.Strings(w)
	if !reflect.DeepEqual(got, w) {
		t.Errorf("members %v, want %v", got, w)
	}
}

// checkTime fails unless v is an RFC 3339 time in UTC.
func checkTime(t *testing.T, v any) {
	t.Helper()
	s, _ := v.(string)
	if _, err := time.Parse(time.RFC3339Nano, s); err != nil || !strings.HasSuffix(s, "Z") {
		t.Errorf("time %v is not RFC 3339 in UTC", v)
	}
}

func TestHistoryPagesThroughABulkRevisionWithoutLosingChanges(t *testing.T) {
	e := newTestEnv(t, Options{})
	body := map[string]string{}
	for i := 0; i < 250; i++ {
		body[fmt.Sprintf("K%03d", i)] = "v"
	}
	wantStatus(t, do(t, "PATCH", e.URL+"/v1/scopes/bulk/-/vars", e.Admin, body), 200)
	seen := map[string]bool{}
	cursor := ""
	for pages := 0; pages < 10; pages++ {
		r := do(t, "GET", e.URL+"/v1/scopes/bulk/-/history?limit=100&cursor="+cursor, e.Admin, nil)
		wantStatus(t, r, 200)
		m := r.JSON(t)
		for _, it := range m["items"].([]any) {
			seen[it.(map[string]any)["name"].(string)] = true
		}
		next, ok := m["next_cursor"].(string)
		if !ok {
			break
		}
		cursor = next
	}
	if len(seen) != 250 {
		t.Fatalf("paging saw %d of 250 changes of one bulk revision", len(seen))
	}
	wantStatus(t, do(t, "GET", e.URL+"/v1/scopes/bulk/-/history?cursor=x:y", e.Admin, nil), 422)
}

func TestTheResolvedEnvMergesInheritsInOrderAndFollowsChanges(t *testing.T) {
	e := newTestEnv(t, Options{})
	u := e.URL + "/v1/scopes/"
	wantStatus(t, do(t, "PATCH", u+"m/a/-/vars", e.Admin, `{"X":"a","Y":"a","ONLY_A":"a"}`), 200)
	wantStatus(t, do(t, "PATCH", u+"m/b/-/vars", e.Admin, `{"X":"b","Y":"b","ONLY_B":"b"}`), 200)
	wantStatus(t, do(t, "PUT", u+"m/base", e.Admin, `{"inherits":["m/a"]}`), 201)
	wantStatus(t, do(t, "PUT", u+"m/app", e.Admin, `{"inherits":["m/base","m/b"]}`), 201)
	wantStatus(t, do(t, "PATCH", u+"m/app/-/vars", e.Admin, `{"Y":"app","ZED":"app"}`), 200)
	env := func() map[string]any {
		r := do(t, "GET", u+"m/app/-/env", e.Admin, nil)
		wantStatus(t, r, 200)
		return r.JSON(t)["env"].(map[string]any)
	}
	got := env()
	want := map[string]any{"X": "b", "Y": "app", "ONLY_A": "a", "ONLY_B": "b", "ZED": "app"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("env = %v, want %v", got, want)
	}
	// A change two levels down shows at once; so does a new inherits order.
	wantStatus(t, do(t, "PATCH", u+"m/a/-/vars", e.Admin, `{"ONLY_A":"a2","ONLY_B":"from-a"}`), 200)
	if got := env(); got["ONLY_A"] != "a2" || got["ONLY_B"] != "b" {
		t.Fatalf("after a change in m/a: %v", got)
	}
	wantStatus(t, do(t, "PUT", u+"m/app", e.Admin, `{"inherits":["m/b","m/base"]}`), 200)
	if got := env(); got["X"] != "a" || got["ONLY_B"] != "from-a" {
		t.Fatalf("after reordering inherits: %v", got)
	}
	wantStatus(t, do(t, "DELETE", u+"m/app/-/vars/Y", e.Admin, nil), 204)
	if got := env(); got["Y"] != "a" {
		t.Fatalf("after deleting the own Y: %v", got)
	}
}

func TestWatchersHearOfDeletesToo(t *testing.T) {
	e := newTestEnv(t, Options{})
	s := e.URL + "/v1/scopes/acme/del"
	wantStatus(t, do(t, "PATCH", s+"/-/vars", e.Admin, `{"A":"1","B":"2"}`), 200)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s+"/-/watch", nil)
	req.Header.Set("Authorization", "Bearer "+e.Admin)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	ids := make(chan string, 8)
	go func() {
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			if id, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
				ids <- id
			}
		}
	}()
	for _, step := range []struct{ method, path, body string }{
		{"DELETE", s + "/-/vars/A", ""},
		{"PATCH", s + "/-/vars", `{"B":null}`},
	} {
		var body any
		if step.body != "" {
			body = step.body
		}
		r := do(t, step.method, step.path, e.Admin, body)
		if r.Status >= 300 {
			t.Fatalf("%s %s: %d %s", step.method, step.path, r.Status, r.Body)
		}
		want := strings.Trim(r.Header.Get("ETag"), `"`)
		select {
		case id := <-ids:
			if id != want {
				t.Fatalf("%s: event id %s, want the write's revision %s", step.method, id, want)
			}
		case <-ctx.Done():
			t.Fatalf("%s %s: no watch event", step.method, step.path)
		}
	}
}

// TestAWriteIsUnsyncedWhileAnInheritorsConsumerIsBehind: a write to a
// scope that another inherits names the consumers of the inheritor it
// leaves behind, with the scope each runs; a goodbye drops one at once.
func TestAWriteIsUnsyncedWhileAnInheritorsConsumerIsBehind(t *testing.T) {
	base, tok := newTestServer(t)
	s := base + "/v1/scopes/"
	wantStatus(t, do(t, "PUT", s+"app/base/-/vars/X", tok, `{"value":"1"}`), 201)
	wantStatus(t, do(t, "PUT", s+"app/mid", tok, `{"inherits":["app/base"]}`), 201)
	r := do(t, "PUT", s+"app/svc", tok, `{"inherits":["app/mid"]}`)
	wantStatus(t, r, 201)
	rev := int64(r.JSON(t)["revision"].(float64))
	wantStatus(t, do(t, "PUT", s+"app/svc/-/consumers/svc-1", tok, fmt.Sprintf(`{"revision":%d}`, rev)), 201)

	r = do(t, "PUT", s+"app/base/-/vars/X", tok, `{"value":"3"}`)
	wantStatus(t, r, 200)
	var reply struct {
		Synced bool `json:"synced"`
		Behind []struct {
			Scope    string `json:"scope"`
			ID       string `json:"id"`
			Revision int64  `json:"revision"`
		} `json:"behind"`
	}
	if err := json.Unmarshal(r.Body, &reply); err != nil {
		t.Fatal(err)
	}
	if reply.Synced || len(reply.Behind) != 1 || reply.Behind[0].Scope != "app/svc" || reply.Behind[0].ID != "svc-1" || reply.Behind[0].Revision != rev {
		t.Fatalf("a write to app/base with a consumer of app/svc (which inherits it) behind: %s", r.Body)
	}
	// Status stays about the scope's own consumers.
	if m := do(t, "GET", s+"app/base/-/status", tok, nil).JSON(t); m["synced"] != true || len(m["consumers"].([]any)) != 0 {
		t.Errorf("status of app/base: %v", m)
	}
	wantStatus(t, do(t, "DELETE", s+"app/svc/-/consumers/svc-1", tok, nil), 204)
	wantStatus(t, do(t, "DELETE", s+"app/svc/-/consumers/svc-1", tok, nil), 204)
	if m := do(t, "PATCH", s+"app/base/-/vars", tok, `{"X":"4"}`).JSON(t); m["synced"] != true || m["behind"] != nil {
		t.Errorf("a write after the only consumer said goodbye: %v", m)
	}
}
