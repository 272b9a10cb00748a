package usersecrets_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/envy-dev/envy"
	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/http/compat/usersecrets"
	"github.com/envy-dev/envy/internal/testenv"
	"github.com/envy-dev/envy/service"
)

// The seed's error example, byte for byte.
const seedAuthFailed = `{"code":401,"detail":"Authentication failed","type":"authentication_error"}`

func newEnv(t *testing.T, o testenv.Options) *testenv.Env {
	t.Helper()
	o.Setup = func(api *envyhttp.Server, svc *service.Service) { usersecrets.Register(api, svc) }
	return testenv.New(t, o)
}

const secrets = "/api/v1/user/secrets"

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

type fieldError struct{ Loc, Msg, Type string }

type envelope struct {
	Code   int
	Detail string
	Errors []fieldError
	Type   string
}

// wantError checks the seed's canonical envelope: code equal to the
// status, a detail, the stable type, and no members beyond the seed's.
func wantError(t *testing.T, r testenv.Response, status int, typ string) envelope {
	t.Helper()
	wantStatus(t, r, status)
	m := r.JSON(t)
	for k := range m {
		if k != "code" && k != "detail" && k != "errors" && k != "type" {
			t.Errorf("the envelope has a member %q: %s", k, r.Body)
		}
	}
	var env envelope
	if err := json.Unmarshal(r.Body, &env); err != nil || env.Code != status || env.Type != typ || env.Detail == "" {
		t.Fatalf("error = %s, want {code:%d,detail,type:%s}", r.Body, status, typ)
	}
	return env
}

func wantField(t *testing.T, env envelope, loc, typ string) {
	t.Helper()
	for _, f := range env.Errors {
		if f.Loc == loc && f.Type == typ && f.Msg != "" {
			return
		}
	}
	t.Errorf("errors = %+v, want one at %s of type %s", env.Errors, loc, typ)
}

var (
	seedTime = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)
	seedID   = regexp.MustCompile(`^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$`)
)

// wantSecret checks a reply against the seed's metadata example: exactly
// created_at, id, masked_value, name, provider, updated_at, in that order,
// never the value.
func wantSecret(t *testing.T, r testenv.Response, name, masked string, provider any) map[string]any {
	t.Helper()
	var ordered []string
	dec := json.NewDecoder(strings.NewReader(string(r.Body)))
	dec.Token()
	for dec.More() {
		k, _ := dec.Token()
		ordered = append(ordered, k.(string))
		var skip json.RawMessage
		dec.Decode(&skip)
	}
	if got := strings.Join(ordered, ","); got != "created_at,id,masked_value,name,provider,updated_at" {
		t.Errorf("members = %s, want the seed's created_at,id,masked_value,name,provider,updated_at", got)
	}
	m := r.JSON(t)
	if m["name"] != name || m["masked_value"] != masked || m["provider"] != provider {
		t.Errorf("secret = %s, want name %s, masked_value %s, provider %v", r.Body, name, masked, provider)
	}
	if !seedID.MatchString(m["id"].(string)) {
		t.Errorf("id = %v, want an upper-case UUID as the seed shows", m["id"])
	}
	for _, k := range []string{"created_at", "updated_at"} {
		if !seedTime.MatchString(m[k].(string)) {
			t.Errorf("%s = %v, want the seed's form 2026-04-15T12:00:00Z", k, m[k])
		}
	}
	return m
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

// An API key that masks as "sk-••••9": at most 4 characters shown.
const apiKey = "sk-pro" + "abcdefghijklmnopqrstuvwxyz0123" + "789"

func TestTheSeedsUpdateExampleAnswersMetadataNeverTheValue(t *testing.T) {
	e := newEnv(t, testenv.Options{})
	r := e.Do(t, "POST", secrets, e.Admin, `{"name":"OPENAI_API_KEY","value":"`+apiKey+`","provider":"openai"}`)
	wantStatus(t, r, 201)
	created := wantSecret(t, r, "OPENAI_API_KEY", "sk-••••9", "openai")
	id := created["id"].(string)

	// The seed's curl: PUT …/api/v1/user/secrets/<ID>, Bearer, {"value":"example"}.
	r = e.Do(t, "PUT", secrets+"/"+id, e.Admin, `{ "value": "example" }`)
	wantStatus(t, r, 200)
	v := wantSecret(t, r, "OPENAI_API_KEY", "••••", "openai")
	if v["id"] != id || v["created_at"] != created["created_at"] {
		t.Errorf("update changed id or created_at: %v", v)
	}
	if strings.Contains(string(r.Body), `"example"`) {
		t.Errorf("the reply holds the value: %s", r.Body)
	}
	if n := nativeVar(t, e, "users/admin", "OPENAI_API_KEY"); n["value"] != "example" || n["secret"] != true || n["description"] != "openai" {
		t.Errorf("native read back = %v", n)
	}
	t.Run("the id is matched in any letter case", func(t *testing.T) {
		r := e.Do(t, "GET", secrets+"/"+strings.ToLower(id), e.Admin, "")
		wantStatus(t, r, 200)
		wantSecret(t, r, "OPENAI_API_KEY", "••••", "openai")
	})
}

func TestTheSeedsErrorExampleComesBackByteForByte(t *testing.T) {
	e := newEnv(t, testenv.Options{})
	for _, tok := range []string{"", "envy_unknown", e.Admin[:len(e.Admin)-2]} {
		wantBody(t, e.Do(t, "GET", secrets, tok, ""), 401, seedAuthFailed)
		wantBody(t, e.Do(t, "PUT", secrets+"/2489E9AD-2EE2-8E00-8EC9-32D5F69181C0", tok, `{"value":"example"}`), 401, seedAuthFailed)
	}
	wantBody(t, e.Do(t, "GET", secrets, "", "", "Authorization", "Basic "+e.Admin), 401, seedAuthFailed)
}

func TestListCreateGetDeleteGoThroughTheService(t *testing.T) {
	e := newEnv(t, testenv.Options{})
	t.Run("a user without secrets lists none", func(t *testing.T) {
		wantBody(t, e.Do(t, "GET", secrets, e.Admin, ""), 200, `{"secrets":[],"total":0}`)
	})
	r := e.Do(t, "POST", secrets, e.Admin, `{"name":"GITHUB_TOKEN","value":"ghp_0123456789abcdef"}`)
	wantStatus(t, r, 201)
	gh := wantSecret(t, r, "GITHUB_TOKEN", "ghp••••f", nil)
	r = e.Do(t, "POST", secrets, e.Admin, `{"name":"ANTHROPIC_KEY","value":"`+apiKey+`","provider":"anthropic"}`)
	wantStatus(t, r, 201)

	t.Run("create stores a secret in users/{owner}, provider as description", func(t *testing.T) {
		n := nativeVar(t, e, "users/admin", "ANTHROPIC_KEY")
		if n == nil || n["value"] != apiKey || n["secret"] != true || n["description"] != "anthropic" || n["version"] != float64(1) {
			t.Fatalf("native read back = %v", n)
		}
	})
	t.Run("list answers every secret's metadata by name", func(t *testing.T) {
		r := e.Do(t, "GET", secrets, e.Admin, "")
		wantStatus(t, r, 200)
		// The platform's UserSecretsListResponse: {"secrets":[…],"total":N}.
		var list struct {
			Secrets []map[string]any
			Total   int
		}
		err := json.Unmarshal(r.Body, &list)
		items := list.Secrets
		if err != nil || len(items) != 2 || list.Total != 2 {
			t.Fatalf("list = %s", r.Body)
		}
		if items[0]["name"] != "ANTHROPIC_KEY" || items[0]["masked_value"] != "sk-••••9" || items[1]["id"] != gh["id"] {
			t.Errorf("list = %s", r.Body)
		}
		if strings.Contains(string(r.Body), apiKey) || strings.Contains(string(r.Body), "ghp_0123456789abcdef") {
			t.Errorf("the list holds a value: %s", r.Body)
		}
	})
	t.Run("a taken name is a 409", func(t *testing.T) {
		env := wantError(t, e.Do(t, "POST", secrets, e.Admin, `{"name":"GITHUB_TOKEN","value":"other-value"}`), 409, "conflict_error")
		if !strings.Contains(env.Detail, "GITHUB_TOKEN") || strings.Contains(env.Detail, "other-value") {
			t.Errorf("detail = %q", env.Detail)
		}
	})
	t.Run("writing back the masked_value is refused, as natively", func(t *testing.T) {
		env := wantError(t, e.Do(t, "PUT", secrets+"/"+gh["id"].(string), e.Admin, `{"value":"ghp••••f"}`), 422, "validation_error")
		wantField(t, env, "body.value", "masked_value_write")
	})
	t.Run("delete answers 204 and the secret is gone from both APIs", func(t *testing.T) {
		id := gh["id"].(string)
		r := e.Do(t, "DELETE", secrets+"/"+id, e.Admin, "")
		wantStatus(t, r, 204)
		if len(r.Body) != 0 {
			t.Errorf("204 with a body: %s", r.Body)
		}
		wantError(t, e.Do(t, "GET", secrets+"/"+id, e.Admin, ""), 404, "not_found_error")
		wantError(t, e.Do(t, "PUT", secrets+"/"+id, e.Admin, `{"value":"x"}`), 404, "not_found_error")
		wantError(t, e.Do(t, "DELETE", secrets+"/"+id, e.Admin, ""), 404, "not_found_error")
		if n := nativeVar(t, e, "users/admin", "GITHUB_TOKEN"); n != nil {
			t.Errorf("native still has %v", n)
		}
	})
	t.Run("every write is audited as the native one", func(t *testing.T) {
		r := e.Do(t, "GET", "/v1/audit?scope=users/admin", e.Admin, "")
		if !strings.Contains(string(r.Body), `"action":"var.delete"`) || !strings.Contains(string(r.Body), `"action":"var.set"`) {
			t.Errorf("the audit lacks the dialect's writes: %s", r.Body)
		}
	})
}

func TestANativeWriteIsReadBackThroughTheDialect(t *testing.T) {
	e := newEnv(t, testenv.Options{})
	r := e.Do(t, "PUT", "/v1/scopes/users/admin/-/vars/NATIVE", e.Admin, `{"value":"native-plain-value","description":"aws"}`)
	wantStatus(t, r, 201)
	id := strings.ToUpper(r.JSON(t)["id"].(string))
	r = e.Do(t, "GET", secrets+"/"+id, e.Admin, "")
	wantStatus(t, r, 200)
	// A plain var is masked all the same: the dialect never shows a value.
	wantSecret(t, r, "NATIVE", "nat••••e", "aws")
}

func TestEachOwnerHasTheirOwnSecrets(t *testing.T) {
	e := newEnv(t, testenv.Options{})
	rw := []envy.Action{envy.ActRead, envy.ActWrite}
	alice := e.Token(t, "alice", envy.Grant{Scopes: "users/alice", Actions: rw})
	bob := e.Token(t, "bob", envy.Grant{Scopes: "users/bob", Actions: rw})

	r := e.Do(t, "POST", secrets, alice, `{"name":"KEY","value":"alice-value"}`)
	wantStatus(t, r, 201)
	aliceID := r.JSON(t)["id"].(string)
	wantStatus(t, e.Do(t, "POST", secrets, bob, `{"name":"KEY","value":"bob-value"}`), 201)

	if n := nativeVar(t, e, "users/alice", "KEY"); n["value"] != "alice-value" {
		t.Errorf("users/alice = %v", n)
	}
	if n := nativeVar(t, e, "users/bob", "KEY"); n["value"] != "bob-value" {
		t.Errorf("users/bob = %v", n)
	}
	wantError(t, e.Do(t, "GET", secrets+"/"+aliceID, bob, ""), 404, "not_found_error")
	wantError(t, e.Do(t, "DELETE", secrets+"/"+aliceID, bob, ""), 404, "not_found_error")
	r = e.Do(t, "GET", secrets, bob, "")
	if strings.Contains(string(r.Body), aliceID) {
		t.Errorf("bob lists alice's secret: %s", r.Body)
	}
}

func TestPermissionsAreTheNativeOnes(t *testing.T) {
	e := newEnv(t, testenv.Options{})
	elsewhere := e.Token(t, "carol", envy.Grant{Scopes: "other/**", Actions: []envy.Action{envy.ActRead}})
	reader := e.Token(t, "dave", envy.Grant{Scopes: "users/dave", Actions: []envy.Action{envy.ActRead}})
	r := e.Do(t, "PUT", "/v1/scopes/users/dave/-/vars/KEY", e.Admin, `{"value":"dave-value","secret":true}`)
	wantStatus(t, r, 201)
	daveID := r.JSON(t)["id"].(string)

	t.Run("a token that may not read its owner's scope gets not found", func(t *testing.T) {
		wantError(t, e.Do(t, "GET", secrets, elsewhere, ""), 404, "not_found_error")
		wantError(t, e.Do(t, "POST", secrets, elsewhere, `{"name":"K","value":"v"}`), 404, "not_found_error")
		wantError(t, e.Do(t, "GET", secrets+"/"+daveID, elsewhere, ""), 404, "not_found_error")
	})
	t.Run("a token that may read but not write gets 403", func(t *testing.T) {
		wantStatus(t, e.Do(t, "GET", secrets+"/"+daveID, reader, ""), 200)
		wantError(t, e.Do(t, "PUT", secrets+"/"+daveID, reader, `{"value":"x"}`), 403, "permission_error")
		wantError(t, e.Do(t, "DELETE", secrets+"/"+daveID, reader, ""), 403, "permission_error")
		wantError(t, e.Do(t, "POST", secrets, reader, `{"name":"K","value":"v"}`), 403, "permission_error")
	})
	t.Run("an owner that is not one scope segment gets a clear 403", func(t *testing.T) {
		all := []envy.Action{envy.ActRead, envy.ActWrite}
		for _, owner := range []string{"jane doe", "a/b", ".hidden"} {
			tok := e.Token(t, owner, envy.Grant{Scopes: "users/**", Actions: all})
			env := wantError(t, e.Do(t, "POST", secrets, tok, `{"name":"K","value":"v"}`), 403, "permission_error")
			wantField(t, env, "token.owner", "invalid_owner")
			wantError(t, e.Do(t, "GET", secrets, tok, ""), 403, "permission_error")
		}
		if n := nativeVar(t, e, "users/a/b", "K"); n != nil {
			t.Error("an owner with a slash reached users/a/b")
		}
	})
	if n := nativeVar(t, e, "users/dave", "KEY"); n["value"] != "dave-value" {
		t.Error("a refused write changed the value")
	}
}

func TestBadInputIsTheSeedsEnvelopeNeverA500(t *testing.T) {
	e := newEnv(t, testenv.Options{})
	r := e.Do(t, "POST", secrets, e.Admin, `{"name":"KEY","value":"v"}`)
	wantStatus(t, r, 201)
	id := r.JSON(t)["id"].(string)
	long := strings.Repeat("x", envy.MaxValueLen+1)
	cases := []struct {
		name, method, path, body string
		status                   int
		typ, loc, fieldType      string
	}{
		{"a value of 65,537 characters on create", "POST", "", `{"name":"LONG","value":"` + long + `"}`, 422, "validation_error", "body.value", "too_long"},
		{"a value of 65,537 characters on update", "PUT", id, `{"value":"` + long + `"}`, 422, "validation_error", "body.value", "too_long"},
		{"a name the model forbids", "POST", "", `{"name":"my-key","value":"v"}`, 422, "validation_error", "body.name", "invalid_name"},
		{"a provider longer than a description may be", "POST", "", `{"name":"P","value":"v","provider":"` + strings.Repeat("p", 1025) + `"}`, 422, "validation_error", "body.provider", "too_long"},
		{"a missing value", "POST", "", `{"name":"A"}`, 422, "validation_error", "body.value", "missing"},
		{"a value that is not a string", "PUT", id, `{"value":true}`, 422, "validation_error", "body.value", "string_type"},
		{"a provider that is not a string", "POST", "", `{"name":"A","value":"v","provider":1}`, 422, "validation_error", "body.provider", "string_type"},
		{"a provider in an update", "PUT", id, `{"value":"v","provider":"x"}`, 422, "validation_error", "body.provider", "extra_forbidden"},
		{"a body that is not an object", "POST", "", `[]`, 422, "validation_error", "body", "dict_type"},
		{"an empty body", "PUT", id, ``, 422, "validation_error", "body", "missing"},
		{"a lone surrogate", "PUT", id, `{"value":"\ud800"}`, 422, "validation_error", "body", "invalid_utf8"},
		{"an id that is not a UUID", "PUT", "not-a-uuid", `{"value":"v"}`, 422, "validation_error", "path.id", "uuid_parsing"},
		{"malformed JSON", "POST", "", `{"name":`, 400, "invalid_request_error", "body", "json_invalid"},
	}
	for _, c := range cases {
		t.Run(c.name+" is refused", func(t *testing.T) {
			path := secrets
			if c.path != "" {
				path += "/" + c.path
			}
			r := e.Do(t, c.method, path, e.Admin, c.body)
			wantField(t, wantError(t, r, c.status, c.typ), c.loc, c.fieldType)
			if strings.Contains(string(r.Body), "xxxxxxxx") || strings.Contains(string(r.Body), "pppppppp") {
				t.Error("the error holds the value")
			}
		})
	}
	if n := nativeVar(t, e, "users/admin", "KEY"); n["value"] != "v" {
		t.Error("a refused write changed the value")
	}
	if strings.Contains(e.Logs.String(), "xxxxxxxx") {
		t.Error("the server log holds a value")
	}
}

func TestOtherMethodsAre405InTheEnvelope(t *testing.T) {
	e := newEnv(t, testenv.Options{})
	r := e.Do(t, "DELETE", secrets, e.Admin, "")
	wantError(t, r, 405, "invalid_request_error")
	if r.Header.Get("Allow") != "GET, POST" {
		t.Errorf("Allow = %q", r.Header.Get("Allow"))
	}
	wantError(t, e.Do(t, "PATCH", secrets+"/2489E9AD-2EE2-8E00-8EC9-32D5F69181C0", e.Admin, `{}`), 405, "invalid_request_error")
}

func TestRateLimitsAreTheNativeOnes(t *testing.T) {
	e := newEnv(t, testenv.Options{HTTP: envyhttp.Options{RateLimit: 1}})
	var r testenv.Response
	for i := 0; i < 5; i++ {
		if r = e.Do(t, "GET", secrets, e.Admin, ""); r.Status == 429 {
			break
		}
	}
	wantError(t, r, 429, "rate_limit_error")
	if r.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}

func TestAStoreThatIsDownAnswersInTheEnvelope(t *testing.T) {
	e := newEnv(t, testenv.Options{})
	e.Store.Close()
	r := e.Do(t, "GET", secrets, e.Admin, "")
	wantError(t, r, 503, "service_unavailable_error")
	if r.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
}
