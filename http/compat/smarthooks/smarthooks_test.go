package smarthooks_test

import (
	"encoding/json"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/http/compat/smarthooks"
	"github.com/envy-dev/envy/internal/testenv"
	"github.com/envy-dev/envy/service"
)

// The error bodies the seed shows, byte for byte (the seed shows their
// members; the reply is compact JSON with statusCode first).
const (
	seedInvalidID    = `{"statusCode":400,"name":"BadRequestError","message":"Invalid env record ID"}`
	seedUnauthorized = `{"statusCode":401,"name":"UnauthorizedError","message":"The request requires user authentication."}`
	seedNameInUpdate = `{"statusCode":422,"name":"UnprocessableEntityError","message":"instance additionalProperty \"name\" exists in instance when not allowed"}`
)

func newEnv(t *testing.T, o testenv.Options) *testenv.Env {
	t.Helper()
	o.Setup = func(api *envyhttp.Server, svc *service.Service) { smarthooks.Register(api, svc) }
	return testenv.New(t, o)
}

// do sends a request the way the seed's curl example does:
// "Authorization: bearer <token>" (no header when token is "").
func do(t *testing.T, e *testenv.Env, method, path, token, body string) testenv.Response {
	t.Helper()
	if token == "" {
		return e.Do(t, method, path, "", body)
	}
	return e.Do(t, method, path, "", body, "Authorization", "bearer "+token, "Content-Type", "application/json")
}

func object(t *testing.T, r testenv.Response) map[string]any {
	t.Helper()
	return r.JSON(t)
}

func array(t *testing.T, r testenv.Response) []map[string]any {
	t.Helper()
	var out []map[string]any
	if err := json.Unmarshal(r.Body, &out); err != nil {
		t.Fatalf("body is not a JSON array: %v: %s", err, r.Body)
	}
	return out
}

func keys(m map[string]any) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ",")
}

var seedTime = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

// wantVar checks a reply against the seed's sample response: exactly
// id, name, created_at and updated_at, never a value.
func wantVar(t *testing.T, v map[string]any, name string) {
	t.Helper()
	if got := keys(v); got != "created_at,id,name,updated_at" {
		t.Errorf("reply members = %s, want the seed's id,name,created_at,updated_at: %v", got, v)
	}
	if v["name"] != name {
		t.Errorf("name = %v, want %s", v["name"], name)
	}
	for _, k := range []string{"created_at", "updated_at"} {
		s, _ := v[k].(string)
		if !seedTime.MatchString(s) {
			t.Errorf("%s = %q, want RFC 3339 with milliseconds like 2020-10-22T22:07:48.236Z", k, s)
		}
	}
}

func wantStatus(t *testing.T, r testenv.Response, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d: %s", r.Status, status, r.Body)
	}
}

// wantError checks the seed's error envelope: status, name, and exactly
// the members statusCode, name and message.
func wantError(t *testing.T, r testenv.Response, status int, name string) string {
	t.Helper()
	wantStatus(t, r, status)
	m := object(t, r)
	if keys(m) != "message,name,statusCode" || m["statusCode"] != float64(status) || m["name"] != name {
		t.Fatalf("error = %s, want {statusCode:%d,name:%s,message}", r.Body, status, name)
	}
	return m["message"].(string)
}

func wantBody(t *testing.T, r testenv.Response, status int, body string) {
	t.Helper()
	wantStatus(t, r, status)
	if got := strings.TrimSpace(string(r.Body)); got != body {
		t.Fatalf("body = %s\nwant the seed's %s", got, body)
	}
}

func create(t *testing.T, e *testenv.Env, token, name, value string) map[string]any {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"name": name, "value": value})
	r := do(t, e, "POST", "/api/2/hooks/envs", token, string(body))
	wantStatus(t, r, 201)
	return object(t, r)
}

// nativeVar reads a var back through the native API, revealed.
func nativeVar(t *testing.T, e *testenv.Env, name string) map[string]any {
	t.Helper()
	r := e.Do(t, "GET", "/v1/scopes/smart-hooks/-/vars?reveal=true", e.Admin, "")
	wantStatus(t, r, 200)
	for _, it := range r.JSON(t)["items"].([]any) {
		if v := it.(map[string]any); v["name"] == name {
			return v
		}
	}
	return nil
}

func TestTheSeedsUpdateExampleAnswersTheVarWithoutItsValue(t *testing.T) {
	e := newEnv(t, testenv.Options{})
	created := create(t, e, e.Admin, "SAMPLE_VAR", "first-value")
	wantVar(t, created, "SAMPLE_VAR")
	id := created["id"].(string)
	time.Sleep(5 * time.Millisecond) // so that updated_at moves past created_at

	// The seed's curl: PUT /api/2/hooks/envs/:id, "Authorization: bearer
	// <access_token>", {"value": "helloworld"}.
	r := do(t, e, "PUT", "/api/2/hooks/envs/"+id, e.Admin, "{\n    \"value\": \"helloworld\"\n}")
	wantStatus(t, r, 200)
	v := object(t, r)
	wantVar(t, v, "SAMPLE_VAR")
	if v["id"] != id || v["created_at"] != created["created_at"] {
		t.Errorf("update changed id or created_at: %v, created %v", v, created)
	}
	if v["updated_at"].(string) <= created["updated_at"].(string) {
		t.Errorf("updated_at %v did not move past %v", v["updated_at"], created["updated_at"])
	}
	if strings.Contains(string(r.Body), "helloworld") {
		t.Errorf("the reply holds the value: %s", r.Body)
	}
	if n := nativeVar(t, e, "SAMPLE_VAR"); n["value"] != "helloworld" || n["secret"] != true {
		t.Errorf("native read back = %v, want the new value, secret", n)
	}
}

func TestTheSeedsErrorsComeBackByteForByte(t *testing.T) {
	e := newEnv(t, testenv.Options{})
	id := create(t, e, e.Admin, "SAMPLE_VAR", "v")["id"].(string)

	t.Run("an id that is not a UUID is the seed's 400", func(t *testing.T) {
		for _, bad := range []string{"123", "80f65e4b-4325-4ee6-86af-9e6b8793f12", "80f65e4b_4325_4ee6_86af_9e6b8793f125", "zzzzzzzz-4325-4ee6-86af-9e6b8793f125"} {
			wantBody(t, do(t, e, "PUT", "/api/2/hooks/envs/"+bad, e.Admin, `{"value":"helloworld"}`), 400, seedInvalidID)
			wantBody(t, do(t, e, "GET", "/api/2/hooks/envs/"+bad, e.Admin, ""), 400, seedInvalidID)
			wantBody(t, do(t, e, "DELETE", "/api/2/hooks/envs/"+bad, e.Admin, ""), 400, seedInvalidID)
		}
	})
	t.Run("a missing or malformed Authorization header is the seed's 401", func(t *testing.T) {
		wantBody(t, e.Do(t, "PUT", "/api/2/hooks/envs/"+id, "", `{"value":"helloworld"}`), 401, seedUnauthorized)
		for _, h := range []string{"bearer", "bearer ", "bearer:", "Basic " + e.Admin, "bearer" + e.Admin, "bearer envy_unknown", "bearer:" + wrongLast(e.Admin), e.Admin} {
			r := e.Do(t, "GET", "/api/2/hooks/envs", "", "", "Authorization", h)
			wantBody(t, r, 401, seedUnauthorized)
		}
	})
	t.Run("a name in an update body is the seed's 422, also when it is the var's own", func(t *testing.T) {
		wantBody(t, do(t, e, "PUT", "/api/2/hooks/envs/"+id, e.Admin, `{"name":"OTHER","value":"helloworld"}`), 422, seedNameInUpdate)
		wantBody(t, do(t, e, "PUT", "/api/2/hooks/envs/"+id, e.Admin, `{"name":"SAMPLE_VAR","value":"helloworld"}`), 422, seedNameInUpdate)
		if n := nativeVar(t, e, "SAMPLE_VAR"); n["value"] != "v" {
			t.Errorf("a refused update changed the value")
		}
	})
}

func TestBothBearerFormsWorkInAnyLetterCase(t *testing.T) {
	e := newEnv(t, testenv.Options{})
	for _, h := range []string{"bearer " + e.Admin, "bearer:" + e.Admin, "Bearer " + e.Admin, "BEARER:" + e.Admin, "bearer: " + e.Admin, "bEaReR  " + e.Admin} {
		r := e.Do(t, "GET", "/api/2/hooks/envs", "", "", "Authorization", h)
		if r.Status != 200 {
			t.Errorf("Authorization %q: %d %s", strings.Replace(h, e.Admin, "<token>", 1), r.Status, r.Body)
		}
	}
}

func TestListCreateGetUpdateDeleteGoThroughTheService(t *testing.T) {
	e := newEnv(t, testenv.Options{})

	t.Run("a fresh server lists no vars", func(t *testing.T) {
		r := do(t, e, "GET", "/api/2/hooks/envs", e.Admin, "")
		wantStatus(t, r, 200)
		if strings.TrimSpace(string(r.Body)) != "[]" {
			t.Errorf("list = %s, want []", r.Body)
		}
	})

	a := create(t, e, e.Admin, "API_KEY", "sk-secret-aaaa-1111")
	wantVar(t, a, "API_KEY")
	b := create(t, e, e.Admin, "REDIS_PW", "redis-pw-bbbb")
	id := a["id"].(string)

	t.Run("create is a native secret write in scope smart-hooks", func(t *testing.T) {
		n := nativeVar(t, e, "API_KEY")
		if n == nil || n["id"] != id || n["value"] != "sk-secret-aaaa-1111" || n["secret"] != true || n["version"] != float64(1) {
			t.Fatalf("native read back = %v", n)
		}
		r := e.Do(t, "GET", "/v1/scopes/smart-hooks/-/vars/API_KEY", e.Admin, "")
		if v := r.JSON(t); v["value"] != nil || v["masked_value"] != "sk-••••1" {
			t.Errorf("a native read without reveal shows %v %v", v["value"], v["masked_value"])
		}
	})
	t.Run("list answers every var by name, never a value", func(t *testing.T) {
		r := do(t, e, "GET", "/api/2/hooks/envs", e.Admin, "")
		wantStatus(t, r, 200)
		items := array(t, r)
		if len(items) != 2 || items[0]["id"] != id || items[1]["id"] != b["id"] {
			t.Fatalf("list = %s", r.Body)
		}
		for _, it := range items {
			wantVar(t, it, it["name"].(string))
		}
		if strings.Contains(string(r.Body), "secret-aaaa") || strings.Contains(string(r.Body), "bbbb") {
			t.Errorf("the list holds a value: %s", r.Body)
		}
	})
	t.Run("get finds a var by its id in any letter case", func(t *testing.T) {
		for _, x := range []string{id, strings.ToUpper(id)} {
			r := do(t, e, "GET", "/api/2/hooks/envs/"+x, e.Admin, "")
			wantStatus(t, r, 200)
			v := object(t, r)
			wantVar(t, v, "API_KEY")
			if v["id"] != id {
				t.Errorf("id = %v, want %s", v["id"], id)
			}
		}
	})
	t.Run("creating a name that exists is a 409 ConflictError", func(t *testing.T) {
		msg := wantError(t, do(t, e, "POST", "/api/2/hooks/envs", e.Admin, `{"name":"API_KEY","value":"other-value"}`), 409, "ConflictError")
		if !strings.Contains(msg, "API_KEY") || strings.Contains(msg, "other-value") {
			t.Errorf("message = %q", msg)
		}
		if n := nativeVar(t, e, "API_KEY"); n["value"] != "sk-secret-aaaa-1111" {
			t.Errorf("a refused create changed the value")
		}
	})
	t.Run("update by an upper-case id writes a new version, still secret", func(t *testing.T) {
		r := do(t, e, "PUT", "/api/2/hooks/envs/"+strings.ToUpper(id), e.Admin, `{"value":"sk-rotated-2222"}`)
		wantStatus(t, r, 200)
		n := nativeVar(t, e, "API_KEY")
		if n["value"] != "sk-rotated-2222" || n["version"] != float64(2) || n["secret"] != true || n["id"] != id {
			t.Errorf("native read back = %v", n)
		}
		h := e.Do(t, "GET", "/v1/scopes/smart-hooks/-/history", e.Admin, "")
		if items := h.JSON(t)["items"].([]any); len(items) != 3 || items[0].(map[string]any)["actor"] != "admin" {
			t.Errorf("history = %s", h.Body)
		}
	})
	t.Run("an unknown id is a 404 NotFoundError", func(t *testing.T) {
		unknown := "80f65e4b-4325-4ee6-86af-9e6b8793f125"
		wantError(t, do(t, e, "GET", "/api/2/hooks/envs/"+unknown, e.Admin, ""), 404, "NotFoundError")
		wantError(t, do(t, e, "PUT", "/api/2/hooks/envs/"+unknown, e.Admin, `{"value":"x"}`), 404, "NotFoundError")
		wantError(t, do(t, e, "DELETE", "/api/2/hooks/envs/"+unknown, e.Admin, ""), 404, "NotFoundError")
	})
	t.Run("delete answers 204 and the var is gone from both APIs", func(t *testing.T) {
		r := do(t, e, "DELETE", "/api/2/hooks/envs/"+id, e.Admin, "")
		wantStatus(t, r, 204)
		if len(r.Body) != 0 {
			t.Errorf("204 with a body: %s", r.Body)
		}
		wantError(t, do(t, e, "GET", "/api/2/hooks/envs/"+id, e.Admin, ""), 404, "NotFoundError")
		if n := nativeVar(t, e, "API_KEY"); n != nil {
			t.Errorf("native still has %v", n)
		}
	})
	t.Run("every write is audited as the native one", func(t *testing.T) {
		r := e.Do(t, "GET", "/v1/audit?scope=smart-hooks", e.Admin, "")
		wantStatus(t, r, 200)
		var actions []string
		for _, it := range r.JSON(t)["items"].([]any) {
			actions = append(actions, it.(map[string]any)["action"].(string))
		}
		got := strings.Join(actions, " ")
		for _, want := range []string{"var.delete", "var.set"} {
			if !strings.Contains(got, want) {
				t.Errorf("audit actions %q lack %s", got, want)
			}
		}
	})
}

func TestANativeWriteIsReadBackThroughTheDialect(t *testing.T) {
	e := newEnv(t, testenv.Options{})
	r := e.Do(t, "PUT", "/v1/scopes/smart-hooks/-/vars/NATIVE_VAR", e.Admin, `{"value":"native-value","secret":true}`)
	wantStatus(t, r, 201)
	nativeID := r.JSON(t)["id"].(string)

	r = do(t, e, "GET", "/api/2/hooks/envs", e.Admin, "")
	wantStatus(t, r, 200)
	if items := array(t, r); len(items) != 1 || items[0]["id"] != nativeID {
		t.Fatalf("list = %s", r.Body)
	}
	r = do(t, e, "GET", "/api/2/hooks/envs/"+nativeID, e.Admin, "")
	wantStatus(t, r, 200)
	wantVar(t, object(t, r), "NATIVE_VAR")
	if strings.Contains(string(r.Body), "native-value") {
		t.Errorf("the reply holds the value: %s", r.Body)
	}
}

func TestPermissionsAreTheNativeOnes(t *testing.T) {
	e := newEnv(t, testenv.Options{})
	id := create(t, e, e.Admin, "API_KEY", "sk-secret-value")["id"].(string)
	elsewhere := e.Token(t, "elsewhere", envy.Grant{Scopes: "other/**", Actions: []envy.Action{envy.ActRead}})
	reader := e.Token(t, "reader", envy.Grant{Scopes: "smart-hooks", Actions: []envy.Action{envy.ActRead}})

	t.Run("a token that may not read the scope gets not found", func(t *testing.T) {
		wantError(t, do(t, e, "GET", "/api/2/hooks/envs", elsewhere, ""), 404, "NotFoundError")
		wantError(t, do(t, e, "GET", "/api/2/hooks/envs/"+id, elsewhere, ""), 404, "NotFoundError")
		wantError(t, do(t, e, "PUT", "/api/2/hooks/envs/"+id, elsewhere, `{"value":"x"}`), 404, "NotFoundError")
		wantError(t, do(t, e, "DELETE", "/api/2/hooks/envs/"+id, elsewhere, ""), 404, "NotFoundError")
		wantError(t, do(t, e, "POST", "/api/2/hooks/envs", elsewhere, `{"name":"NEW","value":"x"}`), 404, "NotFoundError")
	})
	t.Run("a token that may read but not write gets 403 on writes", func(t *testing.T) {
		wantStatus(t, do(t, e, "GET", "/api/2/hooks/envs/"+id, reader, ""), 200)
		wantError(t, do(t, e, "PUT", "/api/2/hooks/envs/"+id, reader, `{"value":"x"}`), 403, "ForbiddenError")
		wantError(t, do(t, e, "DELETE", "/api/2/hooks/envs/"+id, reader, ""), 403, "ForbiddenError")
		wantError(t, do(t, e, "POST", "/api/2/hooks/envs", reader, `{"name":"NEW","value":"x"}`), 403, "ForbiddenError")
	})
	t.Run("a revoked token gets the seed's 401", func(t *testing.T) {
		r := e.Do(t, "GET", "/v1/tokens", e.Admin, "")
		var tokID string
		for _, it := range r.JSON(t)["items"].([]any) {
			if it.(map[string]any)["name"] == "reader" {
				tokID = it.(map[string]any)["id"].(string)
			}
		}
		wantStatus(t, e.Do(t, "DELETE", "/v1/tokens/"+tokID, e.Admin, ""), 200)
		wantBody(t, do(t, e, "GET", "/api/2/hooks/envs", reader, ""), 401, seedUnauthorized)
	})
	if n := nativeVar(t, e, "API_KEY"); n["value"] != "sk-secret-value" {
		t.Errorf("a refused write changed the value")
	}
}

func TestBadInputIsTheSeedsErrorNeverA500(t *testing.T) {
	e := newEnv(t, testenv.Options{})
	id := create(t, e, e.Admin, "API_KEY", "v")["id"].(string)
	long := strings.Repeat("x", envy.MaxValueLen+1)
	cases := []struct {
		name, method, path, body string
		status                   int
		errName, message         string
	}{
		{"a value of 65,537 characters is refused on create", "POST", "", `{"name":"LONG","value":"` + long + `"}`, 422, "UnprocessableEntityError", "value is longer than 65536 characters"},
		{"a value of 65,537 characters is refused on update", "PUT", id, `{"value":"` + long + `"}`, 422, "UnprocessableEntityError", "value is longer than 65536 characters"},
		{"a name the model forbids is refused", "POST", "", `{"name":"1BAD-NAME","value":"v"}`, 422, "UnprocessableEntityError", "name must match ^[A-Za-z_][A-Za-z0-9_]*$"},
		{"a reserved prefix is refused", "POST", "", `{"name":"ENVY_X","value":"v"}`, 422, "UnprocessableEntityError", `name starts with the reserved prefix "ENVY_"`},
		{"a missing value is refused as the seed's validator words it", "POST", "", `{"name":"A"}`, 422, "UnprocessableEntityError", `instance requires property "value"`},
		{"a missing name is refused", "POST", "", `{"value":"v"}`, 422, "UnprocessableEntityError", `instance requires property "name"`},
		{"a value that is not a string is refused", "PUT", id, `{"value":42}`, 422, "UnprocessableEntityError", "instance.value is not of a type(s) string"},
		{"a null value is refused", "PUT", id, `{"value":null}`, 422, "UnprocessableEntityError", "instance.value is not of a type(s) string"},
		{"an unknown member is refused", "POST", "", `{"name":"A","value":"v","secret":false}`, 422, "UnprocessableEntityError", `instance additionalProperty "secret" exists in instance when not allowed`},
		{"a body that is not an object is refused", "POST", "", `["A","v"]`, 422, "UnprocessableEntityError", "instance is not of a type(s) object"},
		{"malformed JSON is a 400", "POST", "", `{"name":"A","value":`, 400, "BadRequestError", "The request body is not valid JSON"},
		{"JSON followed by more is a 400", "PUT", id, `{"value":"a"} {}`, 400, "BadRequestError", "The request body is not valid JSON"},
		{"an empty body is a 400", "PUT", id, ``, 400, "BadRequestError", "A JSON request body is required"},
		{"a lone surrogate is refused rather than stored as U+FFFD", "PUT", id, `{"value":"a\ud800b"}`, 422, "UnprocessableEntityError", "instance holds text that is not valid UTF-8"},
		{"bytes that are not UTF-8 are refused", "PUT", id, "{\"value\":\"a\xffb\"}", 422, "UnprocessableEntityError", "instance holds text that is not valid UTF-8"},
		{"a NUL is refused", "PUT", id, `{"value":"a\u0000b"}`, 422, "UnprocessableEntityError", "value contains a NUL character"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := "/api/2/hooks/envs"
			if c.path != "" {
				path += "/" + c.path
			}
			r := do(t, e, c.method, path, e.Admin, c.body)
			if msg := wantError(t, r, c.status, c.errName); msg != c.message {
				t.Errorf("message = %q, want %q", msg, c.message)
			}
			if strings.Contains(string(r.Body), "xxxxxxxx") {
				t.Errorf("the error holds the value")
			}
		})
	}
	t.Run("a value of exactly 65,536 characters is stored", func(t *testing.T) {
		r := do(t, e, "PUT", "/api/2/hooks/envs/"+id, e.Admin, `{"value":"`+long[1:]+`"}`)
		wantStatus(t, r, 200)
	})
	t.Run("a surrogate pair is stored as its character", func(t *testing.T) {
		wantStatus(t, do(t, e, "PUT", "/api/2/hooks/envs/"+id, e.Admin, `{"value":"a\ud83d\ude00b"}`), 200)
		if n := nativeVar(t, e, "API_KEY"); n["value"] != "a😀b" {
			t.Errorf("stored %q", n["value"])
		}
	})
	if strings.Contains(e.Logs.String(), "xxxxxxxx") {
		t.Errorf("the server log holds a value")
	}
}

func TestOtherMethodsAre405InTheSeedsEnvelope(t *testing.T) {
	e := newEnv(t, testenv.Options{})
	r := do(t, e, "PATCH", "/api/2/hooks/envs", e.Admin, `{}`)
	wantError(t, r, 405, "MethodNotAllowedError")
	if r.Header.Get("Allow") != "GET, POST" {
		t.Errorf("Allow = %q", r.Header.Get("Allow"))
	}
	r = do(t, e, "POST", "/api/2/hooks/envs/80f65e4b-4325-4ee6-86af-9e6b8793f125", e.Admin, `{}`)
	wantError(t, r, 405, "MethodNotAllowedError")
}

func TestRateLimitsAreTheNativeOnesIn429Form(t *testing.T) {
	e := newEnv(t, testenv.Options{HTTP: envyhttp.Options{RateLimit: 1}})
	var r testenv.Response
	for i := 0; i < 5; i++ {
		if r = do(t, e, "GET", "/api/2/hooks/envs", e.Admin, ""); r.Status == 429 {
			break
		}
	}
	wantError(t, r, 429, "TooManyRequestsError")
	if r.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}

// wrongLast returns the token with its last character changed: a token of
// the right shape that the server does not know.
func wrongLast(tok string) string {
	last := byte('x')
	if tok[len(tok)-1] == last {
		last = 'y'
	}
	return tok[:len(tok)-1] + string(last)
}

func TestListsArePagedAsOneLoginPagesThem(t *testing.T) {
	e := newEnv(t, testenv.Options{})
	for _, n := range []string{"A", "B", "C", "D", "E"} {
		if r := do(t, e, "POST", "/api/2/hooks/envs", e.Admin, `{"name":"`+n+`","value":"v"}`); r.Status != 201 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	}
	names := func(r testenv.Response) string {
		t.Helper()
		if r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		var out []string
		for _, it := range array(t, r) {
			out = append(out, it["name"].(string))
		}
		return strings.Join(out, ",")
	}
	r := do(t, e, "GET", "/api/2/hooks/envs?limit=2", e.Admin, "")
	if got := names(r); got != "A,B" {
		t.Errorf("first page %s", got)
	}
	h := r.Header
	if h.Get("Total-Count") != "5" || h.Get("Total-Pages") != "3" || h.Get("Current-Page") != "1" || h.Get("Page-Items") != "2" || h.Get("Before-Cursor") != "" {
		t.Errorf("headers %v", h)
	}
	// The cursor is OneLogin's: base64 of the query of the next page.
	if c := h.Get("After-Cursor"); c != "bGltaXQ9MiZwYWdlPTI=" {
		t.Errorf("After-Cursor %q", c)
	}
	r = do(t, e, "GET", "/api/2/hooks/envs?cursor="+url.QueryEscape(h.Get("After-Cursor")), e.Admin, "")
	if got := names(r); got != "C,D" || r.Header.Get("Current-Page") != "2" || r.Header.Get("Before-Cursor") == "" {
		t.Errorf("second page %s %v", got, r.Header)
	}
	r = do(t, e, "GET", "/api/2/hooks/envs?limit=2&page=3", e.Admin, "")
	if got := names(r); got != "E" || r.Header.Get("After-Cursor") != "" {
		t.Errorf("last page %s %v", got, r.Header)
	}
	if got := names(do(t, e, "GET", "/api/2/hooks/envs?limit=2&page=9", e.Admin, "")); got != "" {
		t.Errorf("a page past the end: %s", got)
	}
	if got := names(do(t, e, "GET", "/api/2/hooks/envs", e.Admin, "")); got != "A,B,C,D,E" {
		t.Errorf("no paging: %s", got)
	}
	for _, q := range []string{"limit=0", "limit=1001", "page=0", "page=x", "cursor=!!"} {
		if r := do(t, e, "GET", "/api/2/hooks/envs?"+q, e.Admin, ""); r.Status != 400 || object(t, r)["name"] != "BadRequestError" {
			t.Errorf("%s: %d %s", q, r.Status, r.Body)
		}
	}
}
