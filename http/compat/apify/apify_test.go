package apify_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/envy-dev/envy"
	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/http/compat/apify"
	"github.com/envy-dev/envy/internal/testenv"
	"github.com/envy-dev/envy/service"
)

// The seed's examples, byte for byte.
const (
	// The seed's path parameters: actorId janedoe~my-actor, versionNumber 0.1.
	seedVars = "/v2/acts/janedoe~my-actor/versions/0.1/env-vars"
	seedVar  = seedVars + "/MY_ENV_VAR"
	// The seed's request body and its 200 reply.
	seedBody  = "{\n  \"name\": \"MY_ENV_VAR\",\n  \"value\": \"my-value\",\n  \"isSecret\": false\n}"
	seedReply = `{"data":{"name":"MY_ENV_VAR","value":"my-value","isSecret":false}}`
	// The seed's 400.
	seedInvalid = `{"error":{"type":"invalid-input","message":"Invalid input: The request body contains invalid data."}}`
)

func newEnv(t *testing.T, o testenv.Options) *testenv.Env {
	t.Helper()
	o.Setup = func(api *envyhttp.Server, svc *service.Service) { apify.Register(api, svc) }
	return testenv.New(t, o)
}

// do sends a request as the seed's curl does: Content-Type and Accept
// application/json, "Authorization: Bearer <token>".
func do(t *testing.T, e *testenv.Env, method, path, token, body string) testenv.Response {
	t.Helper()
	return e.Do(t, method, path, token, body, "Accept", "application/json")
}

func wantStatus(t *testing.T, r testenv.Response, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d: %s", r.Status, status, r.Body)
	}
}

func wantBody(t *testing.T, r testenv.Response, status int, body string) {
	t.Helper()
	wantStatus(t, r, status)
	if got := strings.TrimSpace(string(r.Body)); got != body {
		t.Fatalf("body = %s\nwant %s", got, body)
	}
}

// wantError checks Apify's envelope {"error":{"type","message"}} and
// returns the message.
func wantError(t *testing.T, r testenv.Response, status int, typ string) string {
	t.Helper()
	wantStatus(t, r, status)
	var env map[string]map[string]string
	if err := json.Unmarshal(r.Body, &env); err != nil || len(env) != 1 || len(env["error"]) != 2 || env["error"]["type"] != typ || env["error"]["message"] == "" {
		t.Fatalf("error = %s, want {\"error\":{\"type\":%q,\"message\":…}}", r.Body, typ)
	}
	return env["error"]["message"]
}

// data returns the reply's data object.
func data(t *testing.T, r testenv.Response) map[string]any {
	t.Helper()
	d, ok := r.JSON(t)["data"].(map[string]any)
	if !ok {
		t.Fatalf("no data object: %s", r.Body)
	}
	return d
}

// nativeVar reads a var back through the native API, revealed.
func nativeVar(t *testing.T, e *testenv.Env, scope, name string) map[string]any {
	t.Helper()
	r := e.Do(t, "GET", "/v1/scopes/"+scope+"/-/vars?reveal=true", e.Admin, "")
	if r.Status == 404 {
		return nil
	}
	wantStatus(t, r, 200)
	for _, it := range r.JSON(t)["items"].([]any) {
		if v := it.(map[string]any); v["name"] == name {
			return v
		}
	}
	return nil
}

const seedScope = "acts/janedoe~my-actor/versions/0.1"

func TestTheSeedsUpdateExampleIsReplayedByteForByte(t *testing.T) {
	e := newEnv(t, testenv.Options{})
	wantStatus(t, do(t, e, "POST", seedVars, e.Admin, `{"name":"MY_ENV_VAR","value":"old-value","isSecret":true}`), 201)

	// curl -L -X PUT '…/v2/acts/:actorId/versions/:versionNumber/env-vars/:envVarName'
	// with the seed's headers and body.
	wantBody(t, do(t, e, "PUT", seedVar, e.Admin, seedBody), 200, seedReply)

	if n := nativeVar(t, e, seedScope, "MY_ENV_VAR"); n["value"] != "my-value" || n["secret"] != false || n["version"] != float64(2) {
		t.Errorf("native read back = %v", n)
	}
	t.Run("a GET answers the same EnvVar object", func(t *testing.T) {
		wantBody(t, do(t, e, "GET", seedVar, e.Admin, ""), 200, seedReply)
	})
	t.Run("a body that is not JSON is the seed's 400", func(t *testing.T) {
		for _, body := range []string{`{"name": "MY_ENV_VAR", "value": `, `not json`, `{"value":"a"}{}`} {
			wantBody(t, do(t, e, "PUT", seedVar, e.Admin, body), 400, seedInvalid)
			wantBody(t, do(t, e, "POST", seedVars, e.Admin, body), 400, seedInvalid)
		}
	})
}

func TestCreateAnswers201WithLocationAndTheEnvVar(t *testing.T) {
	e := newEnv(t, testenv.Options{})
	// The create page's example body: name and value only.
	r := do(t, e, "POST", seedVars, e.Admin, `{"name":"ENV_VAR_NAME","value":"my-env-var"}`)
	wantBody(t, r, 201, `{"data":{"name":"ENV_VAR_NAME","value":"my-env-var","isSecret":false}}`)
	if loc := r.Header.Get("Location"); loc != seedVars+"/ENV_VAR_NAME" {
		t.Errorf("Location = %q", loc)
	}
	n := nativeVar(t, e, seedScope, "ENV_VAR_NAME")
	if n == nil || n["value"] != "my-env-var" || n["secret"] != false {
		t.Fatalf("native read back = %v", n)
	}

	t.Run("creating a name that exists is a 409", func(t *testing.T) {
		msg := wantError(t, do(t, e, "POST", seedVars, e.Admin, `{"name":"ENV_VAR_NAME","value":"other"}`), 409, "record-not-unique")
		if !strings.Contains(msg, "ENV_VAR_NAME") || strings.Contains(msg, "other") {
			t.Errorf("message = %q", msg)
		}
		if n := nativeVar(t, e, seedScope, "ENV_VAR_NAME"); n["value"] != "my-env-var" {
			t.Error("a refused create changed the value")
		}
	})
	t.Run("isSecret null creates a plain var", func(t *testing.T) {
		r := do(t, e, "POST", seedVars, e.Admin, `{"name":"NULL_SECRET","value":"v","isSecret":null}`)
		wantBody(t, r, 201, `{"data":{"name":"NULL_SECRET","value":"v","isSecret":false}}`)
	})
}

func TestListAnswersTotalAndItemsInData(t *testing.T) {
	e := newEnv(t, testenv.Options{})
	t.Run("a version without env vars lists none", func(t *testing.T) {
		wantBody(t, do(t, e, "GET", seedVars, e.Admin, ""), 200, `{"data":{"total":0,"items":[]}}`)
	})
	wantStatus(t, do(t, e, "POST", seedVars, e.Admin, `{"name":"B_PLAIN","value":"plain-value"}`), 201)
	wantStatus(t, do(t, e, "POST", seedVars, e.Admin, `{"name":"A_SECRET","value":"secret-value-123","isSecret":true}`), 201)
	wantBody(t, do(t, e, "GET", seedVars, e.Admin, ""), 200,
		`{"data":{"total":2,"items":[{"name":"A_SECRET","isSecret":true},{"name":"B_PLAIN","value":"plain-value","isSecret":false}]}}`)
	t.Run("other versions are other scopes", func(t *testing.T) {
		wantBody(t, do(t, e, "GET", "/v2/acts/janedoe~my-actor/versions/0.2/env-vars", e.Admin, ""), 200, `{"data":{"total":0,"items":[]}}`)
	})
}

func TestASecretsValueIsNeverReturned(t *testing.T) {
	e := newEnv(t, testenv.Options{})
	r := do(t, e, "POST", seedVars, e.Admin, `{"name":"API_KEY","value":"sk-very-secret-42","isSecret":true}`)
	wantBody(t, r, 201, `{"data":{"name":"API_KEY","isSecret":true}}`)
	wantBody(t, do(t, e, "GET", seedVars+"/API_KEY", e.Admin, ""), 200, `{"data":{"name":"API_KEY","isSecret":true}}`)
	wantBody(t, do(t, e, "PUT", seedVars+"/API_KEY", e.Admin, `{"value":"sk-rotated-43"}`), 200, `{"data":{"name":"API_KEY","isSecret":true}}`)
	if n := nativeVar(t, e, seedScope, "API_KEY"); n["value"] != "sk-rotated-43" || n["secret"] != true {
		t.Errorf("native read back = %v", n)
	}
}

func TestPutSetsWhatTheBodyHasAndKeepsTheRest(t *testing.T) {
	e := newEnv(t, testenv.Options{})
	wantStatus(t, do(t, e, "POST", seedVars, e.Admin, `{"name":"MY_ENV_VAR","value":"v1"}`), 201)
	steps := []struct {
		name, body, reply string
		value             string
		secret            bool
	}{
		{"value alone keeps isSecret", `{"value":"v2"}`, `{"data":{"name":"MY_ENV_VAR","value":"v2","isSecret":false}}`, "v2", false},
		{"isSecret alone keeps the value", `{"isSecret":true}`, `{"data":{"name":"MY_ENV_VAR","isSecret":true}}`, "v2", true},
		{"isSecret null keeps isSecret", `{"value":"v3","isSecret":null}`, `{"data":{"name":"MY_ENV_VAR","isSecret":true}}`, "v3", true},
		{"the URL's own name may be repeated", `{"name":"MY_ENV_VAR","isSecret":false}`, `{"data":{"name":"MY_ENV_VAR","value":"v3","isSecret":false}}`, "v3", false},
		{"POST on the var updates as PUT does", `{"value":"v4"}`, `{"data":{"name":"MY_ENV_VAR","value":"v4","isSecret":false}}`, "v4", false},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			method := "PUT"
			if strings.HasPrefix(s.name, "POST") {
				method = "POST"
			}
			wantBody(t, do(t, e, method, seedVar, e.Admin, s.body), 200, s.reply)
			if n := nativeVar(t, e, seedScope, "MY_ENV_VAR"); n["value"] != s.value || n["secret"] != s.secret {
				t.Errorf("native read back = %v", n)
			}
		})
	}
	t.Run("another name is refused: names are immutable", func(t *testing.T) {
		msg := wantError(t, do(t, e, "PUT", seedVar, e.Admin, `{"name":"RENAMED","value":"v5"}`), 400, "invalid-input")
		if !strings.Contains(msg, "name can not be changed") {
			t.Errorf("message = %q", msg)
		}
	})
	t.Run("a var that does not exist is a 404", func(t *testing.T) {
		wantError(t, do(t, e, "PUT", seedVars+"/MISSING", e.Admin, `{"value":"x"}`), 404, "record-not-found")
		wantError(t, do(t, e, "PUT", "/v2/acts/nobody~nothing/versions/9.9/env-vars/MISSING", e.Admin, `{"value":"x"}`), 404, "record-not-found")
		if n := nativeVar(t, e, "acts/nobody~nothing/versions/9.9", "MISSING"); n != nil {
			t.Errorf("a PUT of a missing var created it")
		}
	})
}

func TestDeleteAnswers204AndTheVarIsGone(t *testing.T) {
	e := newEnv(t, testenv.Options{})
	wantStatus(t, do(t, e, "POST", seedVars, e.Admin, `{"name":"MY_ENV_VAR","value":"v"}`), 201)
	r := do(t, e, "DELETE", seedVar, e.Admin, "")
	wantStatus(t, r, 204)
	if len(r.Body) != 0 {
		t.Errorf("204 with a body: %s", r.Body)
	}
	wantError(t, do(t, e, "GET", seedVar, e.Admin, ""), 404, "record-not-found")
	if n := nativeVar(t, e, seedScope, "MY_ENV_VAR"); n != nil {
		t.Errorf("native still has %v", n)
	}
	r = e.Do(t, "GET", "/v1/audit?scope="+seedScope, e.Admin, "")
	if !strings.Contains(string(r.Body), `"action":"var.delete"`) || !strings.Contains(string(r.Body), `"action":"var.set"`) {
		t.Errorf("the audit lacks the dialect's writes: %s", r.Body)
	}
}

func TestANativeWriteIsReadBackThroughTheDialect(t *testing.T) {
	e := newEnv(t, testenv.Options{})
	wantStatus(t, e.Do(t, "PATCH", "/v1/scopes/"+seedScope+"/-/vars", e.Admin, `{"PLAIN":"p","HIDDEN":{"value":"h-secret-value","secret":true}}`), 200)
	wantBody(t, do(t, e, "GET", seedVars, e.Admin, ""), 200,
		`{"data":{"total":2,"items":[{"name":"HIDDEN","isSecret":true},{"name":"PLAIN","value":"p","isSecret":false}]}}`)
	wantBody(t, do(t, e, "GET", seedVars+"/PLAIN", e.Admin, ""), 200, `{"data":{"name":"PLAIN","value":"p","isSecret":false}}`)
}

func TestTheTokenWorksAsBearerAndAsQueryParameter(t *testing.T) {
	e := newEnv(t, testenv.Options{})
	wantStatus(t, e.Do(t, "GET", seedVars, e.Admin, ""), 200)
	wantStatus(t, e.Do(t, "GET", seedVars+"?token="+e.Admin, "", ""), 200)
	wantStatus(t, e.Do(t, "POST", seedVars+"?token="+e.Admin, "", `{"name":"VIA_QUERY","value":"q"}`), 201)

	// Apify's reference documents token-not-valid for every 401.
	t.Run("no token is token-not-valid, saying none was given", func(t *testing.T) {
		msg := wantError(t, e.Do(t, "GET", seedVars, "", ""), 401, "token-not-valid")
		if msg != "Authentication token was not provided." {
			t.Errorf("message = %q", msg)
		}
	})
	t.Run("a bad token is token-not-valid", func(t *testing.T) {
		wantError(t, e.Do(t, "GET", seedVars, "envy_nope", ""), 401, "token-not-valid")
		wantError(t, e.Do(t, "GET", seedVars+"?token=envy_nope", "", ""), 401, "token-not-valid")
	})
}

func TestPermissionsAreTheNativeOnes(t *testing.T) {
	e := newEnv(t, testenv.Options{})
	wantStatus(t, do(t, e, "POST", seedVars, e.Admin, `{"name":"MY_ENV_VAR","value":"v","isSecret":true}`), 201)
	elsewhere := e.Token(t, "elsewhere", envy.Grant{Scopes: "other/**", Actions: []envy.Action{envy.ActRead}})
	writer := e.Token(t, "writer", envy.Grant{Scopes: "acts/**", Actions: []envy.Action{envy.ActRead, envy.ActWrite}})
	reader := e.Token(t, "reader", envy.Grant{Scopes: "acts/*/versions/*", Actions: []envy.Action{envy.ActRead}})

	t.Run("a token that may not read the scope gets record-not-found", func(t *testing.T) {
		wantError(t, do(t, e, "GET", seedVars, elsewhere, ""), 404, "record-not-found")
		wantError(t, do(t, e, "GET", seedVar, elsewhere, ""), 404, "record-not-found")
		wantError(t, do(t, e, "PUT", seedVar, elsewhere, `{"value":"x"}`), 404, "record-not-found")
		wantError(t, do(t, e, "POST", seedVars, elsewhere, `{"name":"NEW","value":"x"}`), 404, "record-not-found")
		wantError(t, do(t, e, "DELETE", seedVar, elsewhere, ""), 404, "record-not-found")
	})
	t.Run("a token that may read but not write gets permission-denied", func(t *testing.T) {
		wantStatus(t, do(t, e, "GET", seedVar, reader, ""), 200)
		wantError(t, do(t, e, "PUT", seedVar, reader, `{"value":"x"}`), 403, "permission-denied")
		wantError(t, do(t, e, "DELETE", seedVar, reader, ""), 403, "permission-denied")
	})
	t.Run("turning a secret into a plain var needs reveal, as natively", func(t *testing.T) {
		wantError(t, do(t, e, "PUT", seedVar, writer, `{"isSecret":false}`), 403, "permission-denied")
		wantStatus(t, do(t, e, "PUT", seedVar, writer, `{"value":"w"}`), 200)
	})
	if n := nativeVar(t, e, seedScope, "MY_ENV_VAR"); n["value"] != "w" || n["secret"] != true {
		t.Errorf("native read back = %v", n)
	}
}

func TestBadInputIsInvalidInputNeverA500(t *testing.T) {
	e := newEnv(t, testenv.Options{})
	wantStatus(t, do(t, e, "POST", seedVars, e.Admin, `{"name":"MY_ENV_VAR","value":"v"}`), 201)
	long := strings.Repeat("x", envy.MaxValueLen+1)
	cases := []struct {
		name, method, path, body, message string
	}{
		{"a value of 65,537 characters on create", "POST", seedVars, `{"name":"LONG","value":"` + long + `"}`, "Invalid input: value is longer than 65536 characters"},
		{"a value of 65,537 characters on update", "PUT", seedVar, `{"value":"` + long + `"}`, "Invalid input: value is longer than 65536 characters"},
		{"a name the model forbids", "POST", seedVars, `{"name":"MY-VAR","value":"v"}`, "Invalid input: name must match ^[A-Za-z_][A-Za-z0-9_]*$"},
		{"a name the model forbids in the URL", "GET", seedVars + "/9LIVES", ``, "Invalid input: name must match ^[A-Za-z_][A-Za-z0-9_]*$"},
		{"a missing value", "POST", seedVars, `{"name":"A"}`, "Invalid input: value is required"},
		{"a value that is not a string", "PUT", seedVar, `{"value":1}`, "Invalid input: value must be a string"},
		{"a null value", "PUT", seedVar, `{"value":null}`, "Invalid input: value must be a string"},
		{"an isSecret that is not a boolean", "POST", seedVars, `{"name":"A","value":"v","isSecret":"yes"}`, "Invalid input: isSecret must be a boolean or null"},
		{"an unknown member", "POST", seedVars, `{"name":"A","value":"v","secret":true}`, `Invalid input: unknown field "secret"`},
		{"a body that is not an object", "PUT", seedVar, `"v"`, "Invalid input: the request body must be a JSON object"},
		{"an empty body", "PUT", seedVar, ``, "Invalid input: The request body is empty; it must be a JSON object."},
		{"a lone surrogate", "PUT", seedVar, `{"value":"\udc00"}`, "Invalid input: the request body holds text that is not valid UTF-8"},
		{"an actorId that smuggles a slash", "GET", "/v2/acts/a%2Fb/versions/0.1/env-vars", ``, "Invalid input: actorId must match [A-Za-z0-9][A-Za-z0-9._~-]{0,99}"},
		{"a versionNumber that is no scope segment", "POST", "/v2/acts/janedoe~my-actor/versions/.1/env-vars", `{"name":"A","value":"v"}`, "Invalid input: versionNumber must match [A-Za-z0-9][A-Za-z0-9._~-]{0,99}"},
	}
	for _, c := range cases {
		t.Run(c.name+" is a 400 invalid-input", func(t *testing.T) {
			r := do(t, e, c.method, c.path, e.Admin, c.body)
			if msg := wantError(t, r, 400, "invalid-input"); msg != c.message {
				t.Errorf("message = %q, want %q", msg, c.message)
			}
			if strings.Contains(string(r.Body), "xxxxxxxx") {
				t.Error("the error holds the value")
			}
		})
	}
	if n := nativeVar(t, e, seedScope, "MY_ENV_VAR"); n["value"] != "v" {
		t.Error("a refused write changed the value")
	}
	if r := e.Do(t, "GET", "/v1/scopes/acts/a/b/versions/0.1/-/vars", e.Admin, ""); r.Status != 404 {
		t.Errorf("the slash reached a scope: %d", r.Status)
	}
	if strings.Contains(e.Logs.String(), "xxxxxxxx") {
		t.Error("the server log holds a value")
	}
}

func TestOtherMethodsAreMethodNotAllowed(t *testing.T) {
	e := newEnv(t, testenv.Options{})
	r := do(t, e, "DELETE", seedVars, e.Admin, "")
	msg := wantError(t, r, 405, "method-not-allowed")
	if msg != "This API endpoint can only be accessed using the following HTTP methods: GET, POST" || r.Header.Get("Allow") != "GET, POST" {
		t.Errorf("message = %q, Allow = %q", msg, r.Header.Get("Allow"))
	}
	wantError(t, do(t, e, "PATCH", seedVar, e.Admin, `{}`), 405, "method-not-allowed")
}

func TestRateLimitsAreTheNativeOnes(t *testing.T) {
	e := newEnv(t, testenv.Options{HTTP: envyhttp.Options{RateLimit: 1}})
	var r testenv.Response
	for i := 0; i < 5; i++ {
		if r = do(t, e, "GET", seedVars, e.Admin, ""); r.Status == 429 {
			break
		}
	}
	wantError(t, r, 429, "rate-limit-exceeded")
	if r.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}

func TestActorsIsTheCanonicalPathAndActsItsAlias(t *testing.T) {
	e := newEnv(t, testenv.Options{})
	actors := "/v2/actors/janedoe~my-actor/versions/0.1/env-vars"
	r := do(t, e, "POST", actors, e.Admin, `{"name":"VIA_ACTORS","value":"a"}`)
	wantStatus(t, r, 201)
	if loc := r.Header.Get("Location"); loc != actors+"/VIA_ACTORS" {
		t.Errorf("Location = %q", loc)
	}
	wantStatus(t, do(t, e, "POST", seedVars, e.Admin, `{"name":"VIA_ACTS","value":"b"}`), 201)
	want := `{"data":{"total":2,"items":[{"name":"VIA_ACTORS","value":"a","isSecret":false},{"name":"VIA_ACTS","value":"b","isSecret":false}]}}`
	wantBody(t, do(t, e, "GET", actors, e.Admin, ""), 200, want)
	wantBody(t, do(t, e, "GET", seedVars, e.Admin, ""), 200, want)
	wantBody(t, do(t, e, "PUT", actors+"/VIA_ACTS", e.Admin, `{"value":"c"}`), 200, `{"data":{"name":"VIA_ACTS","value":"c","isSecret":false}}`)
	wantStatus(t, do(t, e, "DELETE", actors+"/VIA_ACTORS", e.Admin, ""), 204)
	if n := nativeVar(t, e, seedScope, "VIA_ACTS"); n["value"] != "c" {
		t.Errorf("native = %v", n)
	}
	if n := nativeVar(t, e, seedScope, "VIA_ACTORS"); n != nil {
		t.Errorf("native still has %v", n)
	}
}

func TestListsHonourOffsetLimitAndDesc(t *testing.T) {
	e := newEnv(t, testenv.Options{})
	for _, n := range []string{"A", "B", "C", "D"} {
		wantStatus(t, do(t, e, "POST", seedVars, e.Admin, `{"name":"`+n+`","value":"v"}`), 201)
	}
	names := func(r testenv.Response) string {
		t.Helper()
		wantStatus(t, r, 200)
		d := data(t, r)
		var out []string
		for _, it := range d["items"].([]any) {
			out = append(out, it.(map[string]any)["name"].(string))
		}
		if d["total"] != float64(4) {
			t.Errorf("total = %v, want all 4", d["total"])
		}
		return strings.Join(out, ",")
	}
	for q, want := range map[string]string{
		"":                         "A,B,C,D",
		"?limit=2":                 "A,B",
		"?offset=1&limit=2":        "B,C",
		"?offset=3":                "D",
		"?offset=9":                "",
		"?desc=true":               "D,C,B,A",
		"?desc=1&offset=1&limit=2": "C,B",
		"?limit=0":                 "A,B,C,D",
	} {
		if got := names(do(t, e, "GET", seedVars+q, e.Admin, "")); got != want {
			t.Errorf("%s: %s, want %s", q, got, want)
		}
	}
	for _, q := range []string{"?offset=-1", "?limit=x", "?desc=maybe"} {
		wantError(t, do(t, e, "GET", seedVars+q, e.Admin, ""), 400, "invalid-input")
	}
}

// A plain var that refers to a secret is masked on reads as a secret is,
// and the dialect shows it as a secret: isSecret true, no value (never a
// plain var without a value, which Apify never answers).
func TestAVarThatRefersToASecretIsShownAsASecret(t *testing.T) {
	e := newEnv(t, testenv.Options{})
	do(t, e, "POST", seedVars, e.Admin, `{"name":"S","value":"sk-very-secret-42","isSecret":true}`)
	if r := e.Do(t, "PUT", "/v1/scopes/"+seedScope+"/-/vars/A", e.Admin, `{"value":"x-${S}-y"}`); r.Status/100 != 2 {
		t.Fatalf("native set: %d %s", r.Status, r.Body)
	}
	wantBody(t, do(t, e, "GET", seedVars+"/A", e.Admin, ""), 200, `{"data":{"name":"A","isSecret":true}}`)
	r := do(t, e, "GET", seedVars, e.Admin, "")
	if !strings.Contains(string(r.Body), `{"name":"A","isSecret":true}`) || strings.Contains(string(r.Body), "sk-very") {
		t.Errorf("list: %s", r.Body)
	}
}
