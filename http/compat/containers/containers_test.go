package containers_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/envy-dev/envy"
	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/http/compat/containers"
	"github.com/envy-dev/envy/internal/testenv"
	"github.com/envy-dev/envy/service"
)

// The request and response examples of seed 003, as the page shows them.
const (
	seedGetReply = `{
"statusCode": 200,
"message": "Environment variables retrieved",
"data": {
"environment_vars": {
"DATABASE_URL": "postgres://app_user:s3cret@db.internal:5432/production",
"NODE_ENV": "production",
"LOG_LEVEL": "info",
"REDIS_HOST": "cache.internal"
}
}
}`
	seedPatchBody = `{
"DATABASE_URL": "postgres://app_user:s3cret@db.internal:5432/production",
"LOG_LEVEL": "info",
"REDIS_HOST": "cache.internal"
}`
	seedPatchReply = `{
"statusCode": 200,
"message": "Environment variables updated",
"data": {
"environment_vars": {
"DATABASE_URL": "postgres://app_user:s3cret@db.internal:5432/production",
"LOG_LEVEL": "info",
"REDIS_HOST": "cache.internal"
},
"synced": true
}
}`
	seedPutBody  = `{ "value": "debug" }`
	seedPutReply = `{
"statusCode": 200,
"message": "Environment variable updated",
"data": {
"environment_vars": {
"LOG_LEVEL": "debug"
},
"synced": false
}
}`
	seedDeleteReply = `{
"statusCode": 200,
"message": "Environment variable deleted",
"data": {
"environment_vars": {
"DATABASE_URL": "postgres://app_user:s3cret@db.internal:5432/production",
"REDIS_HOST": "cache.internal"
},
"synced": true
}
}`
)

func newEnv(t *testing.T, o ...testenv.Options) *testenv.Env {
	t.Helper()
	var opts testenv.Options
	if len(o) > 0 {
		opts = o[0]
	}
	opts.Setup = func(api *envyhttp.Server, svc *service.Service) { containers.Register(api, svc) }
	return testenv.New(t, opts)
}

// createContainer creates the container's scope through the native API, as
// containers are created.
func createContainer(t *testing.T, e *testenv.Env, id string) {
	t.Helper()
	if r := e.Do(t, "PUT", "/v1/scopes/containers/"+id, e.Admin, ""); r.Status != 201 {
		t.Fatalf("create container %s: %d %s", id, r.Status, r.Body)
	}
}

func envPath(id string) string { return "/api/v1/containers/" + id + "/env" }

// decode returns the body as generic JSON.
func decode(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %v: %s", err, b)
	}
	return v
}

// wantReply checks the status and that the body equals want, field by field.
func wantReply(t *testing.T, r testenv.Response, status int, want string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	if got, w := decode(t, r.Body), decode(t, []byte(want)); !reflect.DeepEqual(got, w) {
		t.Errorf("reply\n%s\nwant\n%s", r.Body, want)
	}
}

// wantError checks the dialect's error envelope: exactly statusCode,
// message and the seed's error code.
func wantError(t *testing.T, r testenv.Response, status int, code string) map[string]any {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	m, ok := decode(t, r.Body).(map[string]any)
	if !ok || len(m) != 3 || m["statusCode"] != float64(status) || m["error"] != code {
		t.Fatalf("error envelope %s, want statusCode %d and error %s", r.Body, status, code)
	}
	if msg, _ := m["message"].(string); msg == "" {
		t.Errorf("error without a message: %s", r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	return m
}

// nativeVars reads a scope's vars back through the native API, revealed.
func nativeVars(t *testing.T, e *testenv.Env, scope string) map[string]string {
	t.Helper()
	r := e.Do(t, "GET", "/v1/scopes/"+scope+"/-/vars?reveal=true", e.Admin, "")
	if r.Status != 200 {
		t.Fatalf("native list: %d %s", r.Status, r.Body)
	}
	out := map[string]string{}
	for _, it := range r.JSON(t)["items"].([]any) {
		v := it.(map[string]any)
		out[v["name"].(string)] = v["value"].(string)
	}
	return out
}

func revision(t *testing.T, e *testenv.Env, scope string) int64 {
	t.Helper()
	r := e.Do(t, "GET", "/v1/scopes/"+scope, e.Admin, "")
	if r.Status != 200 {
		t.Fatalf("native get scope: %d %s", r.Status, r.Body)
	}
	return int64(r.JSON(t)["revision"].(float64))
}

// reportConsumer reports, as `envy run` does, that a workload of the
// container runs revision rev.
func reportConsumer(t *testing.T, e *testenv.Env, id, consumer string, rev int64) {
	t.Helper()
	r := e.Do(t, "PUT", "/v1/scopes/containers/"+id+"/-/consumers/"+consumer, e.Admin, fmt.Sprintf(`{"revision":%d}`, rev))
	if r.Status != 200 && r.Status != 201 {
		t.Fatalf("report consumer: %d %s", r.Status, r.Body)
	}
}

func synced(t *testing.T, r testenv.Response) bool {
	t.Helper()
	if r.Status != 200 {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	m := decode(t, r.Body).(map[string]any)
	s, ok := m["data"].(map[string]any)["synced"].(bool)
	if !ok {
		t.Fatalf("no synced in %s", r.Body)
	}
	return s
}

func TestTheSeedsExamplesReplayFieldForField(t *testing.T) {
	e := newEnv(t)

	t.Run("GET lists the container's variables, and says they are synced", func(t *testing.T) {
		createContainer(t, e, "cnt_abc123def456")
		r := e.Do(t, "PATCH", envPath("cnt_abc123def456"), e.Admin, `{"DATABASE_URL":"postgres://app_user:s3cret@db.internal:5432/production","NODE_ENV":"production","LOG_LEVEL":"info","REDIS_HOST":"cache.internal"}`)
		if r.Status != 200 {
			t.Fatalf("seed the container: %d %s", r.Status, r.Body)
		}
		r = e.Do(t, "GET", envPath("cnt_abc123def456"), e.Admin, "")
		// The seed's GET example shows no synced; envy adds the real one.
		if !synced(t, r) {
			t.Errorf("no consumer runs the container, yet it is not synced: %s", r.Body)
		}
		got := decode(t, r.Body).(map[string]any)
		delete(got["data"].(map[string]any), "synced")
		if want := decode(t, []byte(seedGetReply)); !reflect.DeepEqual(got, want) {
			t.Errorf("reply\n%s\nwant\n%s", r.Body, seedGetReply)
		}
	})

	t.Run("PATCH merges the seed's body", func(t *testing.T) {
		createContainer(t, e, "cnt_patch")
		wantReply(t, e.Do(t, "PATCH", envPath("cnt_patch"), e.Admin, seedPatchBody), 200, seedPatchReply)
	})

	t.Run("PUT sets LOG_LEVEL while a consumer still runs the older revision", func(t *testing.T) {
		createContainer(t, e, "cnt_put")
		reportConsumer(t, e, "cnt_put", "web-1", revision(t, e, "containers/cnt_put"))
		wantReply(t, e.Do(t, "PUT", envPath("cnt_put")+"/LOG_LEVEL", e.Admin, seedPutBody), 200, seedPutReply)
	})

	t.Run("DELETE removes LOG_LEVEL and lists what remains", func(t *testing.T) {
		createContainer(t, e, "cnt_delete")
		if r := e.Do(t, "PATCH", envPath("cnt_delete"), e.Admin, seedPatchBody); r.Status != 200 {
			t.Fatalf("seed the container: %d %s", r.Status, r.Body)
		}
		wantReply(t, e.Do(t, "DELETE", envPath("cnt_delete")+"/LOG_LEVEL", e.Admin, ""), 200, seedDeleteReply)
		// Idempotent: the same reply when the key is already gone.
		wantReply(t, e.Do(t, "DELETE", envPath("cnt_delete")+"/LOG_LEVEL", e.Admin, ""), 200, seedDeleteReply)
	})
}

func TestEveryErrorTheSeedListsIsAnsweredInItsShape(t *testing.T) {
	e := newEnv(t)
	createContainer(t, e, "c1")
	if r := e.Do(t, "PATCH", envPath("c1"), e.Admin, `{"KEEP":"1"}`); r.Status != 200 {
		t.Fatalf("seed: %d %s", r.Status, r.Body)
	}
	before := revision(t, e, "containers/c1")
	reader := e.Token(t, "reader", envy.Grant{Scopes: "containers/c1", Actions: []envy.Action{envy.ActRead}})
	stranger := e.Token(t, "stranger", envy.Grant{Scopes: "containers/other", Actions: []envy.Action{envy.ActRead, envy.ActWrite}})

	many := map[string]string{}
	for i := range containers.MaxMergeKeys + 1 {
		many[fmt.Sprintf("K%d", i)] = "v"
	}
	tooMany, _ := json.Marshal(many)
	long := strings.Repeat("x", envy.MaxValueLen+1)

	cases := []struct {
		name, method, path, token, body string
		status                          int
		code                            string
	}{
		{"a GET without a token is MISSING_TOKEN", "GET", envPath("c1"), "", "", 401, "MISSING_TOKEN"},
		{"a PATCH without a token is MISSING_TOKEN", "PATCH", envPath("c1"), "", `{"A":"1"}`, 401, "MISSING_TOKEN"},
		{"a PUT without a token is MISSING_TOKEN", "PUT", envPath("c1") + "/A", "", `{"value":"1"}`, 401, "MISSING_TOKEN"},
		{"a DELETE without a token is MISSING_TOKEN", "DELETE", envPath("c1") + "/KEEP", "", "", 401, "MISSING_TOKEN"},

		{"a PATCH by a token that may only read is RESOURCE_ACCESS_DENIED", "PATCH", envPath("c1"), reader, `{"A":"1"}`, 403, "RESOURCE_ACCESS_DENIED"},
		{"a PUT by a token that may only read is RESOURCE_ACCESS_DENIED", "PUT", envPath("c1") + "/A", reader, `{"value":"1"}`, 403, "RESOURCE_ACCESS_DENIED"},
		{"a DELETE by a token that may only read is RESOURCE_ACCESS_DENIED", "DELETE", envPath("c1") + "/KEEP", reader, "", 403, "RESOURCE_ACCESS_DENIED"},

		{"a GET of a container that does not exist is CONTAINER_NOT_FOUND", "GET", envPath("nope"), e.Admin, "", 404, "CONTAINER_NOT_FOUND"},
		{"a PATCH of a container that does not exist is CONTAINER_NOT_FOUND", "PATCH", envPath("nope"), e.Admin, `{"A":"1"}`, 404, "CONTAINER_NOT_FOUND"},
		{"a PUT into a container that does not exist is CONTAINER_NOT_FOUND", "PUT", envPath("nope") + "/A", e.Admin, `{"value":"1"}`, 404, "CONTAINER_NOT_FOUND"},
		{"a DELETE in a container that does not exist is CONTAINER_NOT_FOUND", "DELETE", envPath("nope") + "/A", e.Admin, "", 404, "CONTAINER_NOT_FOUND"},
		{"a container id that no container can have is CONTAINER_NOT_FOUND", "GET", envPath("-bad"), e.Admin, "", 404, "CONTAINER_NOT_FOUND"},
		{"a GET by a token that may not read the container is CONTAINER_NOT_FOUND", "GET", envPath("c1"), stranger, "", 404, "CONTAINER_NOT_FOUND"},
		{"a PATCH by a token that may not read the container is CONTAINER_NOT_FOUND", "PATCH", envPath("c1"), stranger, `{"A":"1"}`, 404, "CONTAINER_NOT_FOUND"},
		{"a PUT by a token that may not read the container is CONTAINER_NOT_FOUND", "PUT", envPath("c1") + "/A", stranger, `{"value":"1"}`, 404, "CONTAINER_NOT_FOUND"},
		{"a DELETE by a token that may not read the container is CONTAINER_NOT_FOUND", "DELETE", envPath("c1") + "/KEEP", stranger, "", 404, "CONTAINER_NOT_FOUND"},

		{"malformed JSON is VALIDATION_ERROR", "PATCH", envPath("c1"), e.Admin, `{"A":`, 400, "VALIDATION_ERROR"},
		{"an empty body is VALIDATION_ERROR", "PATCH", envPath("c1"), e.Admin, " ", 400, "VALIDATION_ERROR"},
		{"a body that is not an object is VALIDATION_ERROR", "PATCH", envPath("c1"), e.Admin, `[["A","1"]]`, 400, "VALIDATION_ERROR"},
		{"a merge of no keys is VALIDATION_ERROR", "PATCH", envPath("c1"), e.Admin, `{}`, 400, "VALIDATION_ERROR"},
		{"a merge of 201 keys is VALIDATION_ERROR", "PATCH", envPath("c1"), e.Admin, string(tooMany), 400, "VALIDATION_ERROR"},
		{"a null value is VALIDATION_ERROR, as values are strings", "PATCH", envPath("c1"), e.Admin, `{"KEEP":null}`, 400, "VALIDATION_ERROR"},
		{"a number value is VALIDATION_ERROR", "PATCH", envPath("c1"), e.Admin, `{"A":1}`, 400, "VALIDATION_ERROR"},
		{"a merged value of 65,537 characters is VALIDATION_ERROR", "PATCH", envPath("c1"), e.Admin, `{"A":"` + long + `"}`, 400, "VALIDATION_ERROR"},
		{"a set value of 65,537 characters is VALIDATION_ERROR", "PUT", envPath("c1") + "/A", e.Admin, `{"value":"` + long + `"}`, 400, "VALIDATION_ERROR"},
		{"a value with a NUL character is VALIDATION_ERROR", "PUT", envPath("c1") + "/A", e.Admin, `{"value":"a\u0000b"}`, 400, "VALIDATION_ERROR"},
		{"a PUT without value is VALIDATION_ERROR", "PUT", envPath("c1") + "/A", e.Admin, `{}`, 400, "VALIDATION_ERROR"},
		{"a PUT with another field is VALIDATION_ERROR", "PUT", envPath("c1") + "/A", e.Admin, `{"value":"1","secret":true}`, 400, "VALIDATION_ERROR"},
		{"a PUT whose value is not a string is VALIDATION_ERROR", "PUT", envPath("c1") + "/A", e.Admin, `{"value":["1"]}`, 400, "VALIDATION_ERROR"},

		{"a merged key that starts with a digit is INVALID_ENV_KEY", "PATCH", envPath("c1"), e.Admin, `{"1A":"1"}`, 400, "INVALID_ENV_KEY"},
		{"a merged key with a dash is INVALID_ENV_KEY", "PATCH", envPath("c1"), e.Admin, `{"MY-KEY":"1"}`, 400, "INVALID_ENV_KEY"},
		{"a set key with a dot is INVALID_ENV_KEY", "PUT", envPath("c1") + "/A.B", e.Admin, `{"value":"1"}`, 400, "INVALID_ENV_KEY"},
		{"a deleted key with a dash is INVALID_ENV_KEY", "DELETE", envPath("c1") + "/MY-KEY", e.Admin, "", 400, "INVALID_ENV_KEY"},

		{"a merged HOODY_ key is RESERVED_ENV_PREFIX", "PATCH", envPath("c1"), e.Admin, `{"A":"1","HOODY_TOKEN":"1"}`, 400, "RESERVED_ENV_PREFIX"},
		{"a set HOODY_ key is RESERVED_ENV_PREFIX", "PUT", envPath("c1") + "/HOODY_TOKEN", e.Admin, `{"value":"1"}`, 400, "RESERVED_ENV_PREFIX"},
		{"a deleted HOODY_ key is RESERVED_ENV_PREFIX", "DELETE", envPath("c1") + "/HOODY_TOKEN", e.Admin, "", 400, "RESERVED_ENV_PREFIX"},
		{"envy's own reserved ENVY_ prefix is RESERVED_ENV_PREFIX too", "PUT", envPath("c1") + "/ENVY_ADDR", e.Admin, `{"value":"1"}`, 400, "RESERVED_ENV_PREFIX"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.Do(t, c.method, c.path, c.token, c.body)
			m := wantError(t, r, c.status, c.code)
			if c.status == 400 && strings.Contains(m["message"].(string), long[:100]) {
				t.Errorf("the message holds the value")
			}
		})
	}
	if after := revision(t, e, "containers/c1"); after != before {
		t.Errorf("refused requests changed the container: revision %d, then %d", before, after)
	}
	if got := nativeVars(t, e, "containers/c1"); !reflect.DeepEqual(got, map[string]string{"KEEP": "1"}) {
		t.Errorf("refused requests changed the vars: %v", got)
	}
}

func TestAnInvalidTokenIsRefusedAsInvalidNotAsMissing(t *testing.T) {
	e := newEnv(t)
	createContainer(t, e, "c1")
	wantError(t, e.Do(t, "GET", envPath("c1"), "envy_"+strings.Repeat("0", 43), ""), 401, "INVALID_TOKEN")
	wantError(t, e.Do(t, "GET", envPath("c1"), "", "", "Authorization", "Basic dXNlcjpwdw=="), 401, "MISSING_TOKEN")
}

func TestAWriteThroughTheDialectReadsBackThroughTheNativeAPI(t *testing.T) {
	e := newEnv(t)
	createContainer(t, e, "c1")
	multiline := "line 1\nline \"2\" <b>&amp;</b> ünïcødé 🚀"
	body, _ := json.Marshal(map[string]string{"A": "1", "MULTI": multiline, "EMPTY": ""})
	if r := e.Do(t, "PATCH", envPath("c1"), e.Admin, string(body)); r.Status != 200 {
		t.Fatalf("patch: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "PUT", envPath("c1")+"/B", e.Admin, `{"value":"2"}`); r.Status != 200 {
		t.Fatalf("put: %d %s", r.Status, r.Body)
	}
	want := map[string]string{"A": "1", "B": "2", "MULTI": multiline, "EMPTY": ""}
	if got := nativeVars(t, e, "containers/c1"); !reflect.DeepEqual(got, want) {
		t.Errorf("native read back %v, want %v", got, want)
	}
	if r := e.Do(t, "DELETE", envPath("c1")+"/A", e.Admin, ""); r.Status != 200 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	delete(want, "A")
	if got := nativeVars(t, e, "containers/c1"); !reflect.DeepEqual(got, want) {
		t.Errorf("native read back after delete %v, want %v", got, want)
	}

	// The same history and audit as native writes: one revision per
	// request, by the token that made it.
	r := e.Do(t, "GET", "/v1/scopes/containers/c1/-/history", e.Admin, "")
	var ops []string
	for _, it := range r.JSON(t)["items"].([]any) {
		c := it.(map[string]any)
		if c["actor"] != "admin" {
			t.Errorf("history actor %v", c["actor"])
		}
		ops = append(ops, fmt.Sprintf("%s %s", c["op"], c["name"]))
	}
	sort.Strings(ops)
	if w := []string{"delete A", "set A", "set B", "set EMPTY", "set MULTI"}; !reflect.DeepEqual(ops, w) {
		t.Errorf("history %v, want %v", ops, w)
	}
	r = e.Do(t, "GET", "/v1/audit?scope=containers/c1", e.Admin, "")
	var actions []string
	for _, it := range r.JSON(t)["items"].([]any) {
		// An entry may stand for several requests (reveals of one
		// second coalesce): each counts.
		for range int(it.(map[string]any)["count"].(float64)) {
			actions = append(actions, it.(map[string]any)["action"].(string))
		}
	}
	sort.Strings(actions)
	if w := []string{"reveal", "reveal", "scope.put", "var.delete", "var.set", "vars.merge"}; !reflect.DeepEqual(actions, w) {
		t.Errorf("audit actions %v, want %v", actions, w)
	}
}

func TestANativeWriteReadsBackThroughTheDialect(t *testing.T) {
	e := newEnv(t)
	createContainer(t, e, "c1")
	if r := e.Do(t, "PATCH", "/v1/scopes/containers/c1/-/vars", e.Admin, `{"PLAIN":"hello","API_KEY":{"value":"sk-proj-0123456789abcdef","secret":true}}`); r.Status != 200 {
		t.Fatalf("native merge: %d %s", r.Status, r.Body)
	}
	r := e.Do(t, "GET", "/v1/scopes/containers/c1/-/vars/API_KEY", e.Admin, "")
	masked, _ := r.JSON(t)["masked_value"].(string)
	if masked == "" {
		t.Fatalf("native get: %s", r.Body)
	}
	r = e.Do(t, "GET", envPath("c1"), e.Admin, "")
	env := decode(t, r.Body).(map[string]any)["data"].(map[string]any)["environment_vars"].(map[string]any)
	if env["PLAIN"] != "hello" {
		t.Errorf("PLAIN = %v", env["PLAIN"])
	}
	if env["API_KEY"] != masked {
		t.Errorf("a secret read without reveal shows %v, want its masked_value", env["API_KEY"])
	}
	r = e.Do(t, "GET", envPath("c1")+"?reveal=true", e.Admin, "")
	env = decode(t, r.Body).(map[string]any)["data"].(map[string]any)["environment_vars"].(map[string]any)
	if env["API_KEY"] != "sk-proj-0123456789abcdef" {
		t.Errorf("a revealed secret shows %v", env["API_KEY"])
	}

	// Revealing needs the reveal permission, as natively.
	reader := e.Token(t, "reader", envy.Grant{Scopes: "containers/**", Actions: []envy.Action{envy.ActRead}})
	wantError(t, e.Do(t, "GET", envPath("c1")+"?reveal=true", reader, ""), 403, "RESOURCE_ACCESS_DENIED")
	if r := e.Do(t, "GET", envPath("c1"), reader, ""); r.Status != 200 {
		t.Errorf("a reader lists: %d %s", r.Status, r.Body)
	}

	// Writing a secret's masked_value back is refused, as natively.
	r = e.Do(t, "PATCH", envPath("c1"), e.Admin, `{"API_KEY":"`+masked+`"}`)
	wantError(t, r, 400, "VALIDATION_ERROR")
	if msg := r.JSON(t)["message"].(string); !strings.Contains(msg, "body.API_KEY:") {
		t.Errorf("the message names %q, want the key as this dialect's body has it (body.API_KEY)", msg)
	}
}

func TestSyncedIsFalseWhileALiveConsumerRunsAnOlderRevision(t *testing.T) {
	e := newEnv(t)
	createContainer(t, e, "c1")
	if !synced(t, e.Do(t, "PATCH", envPath("c1"), e.Admin, `{"A":"1"}`)) {
		t.Fatal("with no consumer, a write is synced")
	}
	rev1 := revision(t, e, "containers/c1")
	reportConsumer(t, e, "c1", "web-1", rev1)
	if !synced(t, e.Do(t, "GET", envPath("c1"), e.Admin, "")) {
		t.Error("the consumer runs the current revision, yet GET says not synced")
	}

	if synced(t, e.Do(t, "PUT", envPath("c1")+"/A", e.Admin, `{"value":"2"}`)) {
		t.Error("a PUT while the consumer runs the older revision says synced")
	}
	if synced(t, e.Do(t, "GET", envPath("c1"), e.Admin, "")) {
		t.Error("GET says synced while the consumer runs the older revision")
	}
	rev2 := revision(t, e, "containers/c1")
	reportConsumer(t, e, "c1", "web-1", rev2)
	if !synced(t, e.Do(t, "GET", envPath("c1"), e.Admin, "")) {
		t.Error("the consumer reported the new revision, yet GET says not synced")
	}

	if synced(t, e.Do(t, "PATCH", envPath("c1"), e.Admin, `{"B":"1"}`)) {
		t.Error("a PATCH while the consumer runs the older revision says synced")
	}
	reportConsumer(t, e, "c1", "web-1", revision(t, e, "containers/c1"))
	if synced(t, e.Do(t, "DELETE", envPath("c1")+"/A", e.Admin, "")) {
		t.Error("a DELETE while the consumer runs the older revision says synced")
	}
	// Deleting a key that is not there changes nothing, so it takes no
	// revision; once the consumer runs the newest, it is synced.
	reportConsumer(t, e, "c1", "web-1", revision(t, e, "containers/c1"))
	if !synced(t, e.Do(t, "DELETE", envPath("c1")+"/A", e.Admin, "")) {
		t.Error("an idempotent DELETE with the consumer up to date says not synced")
	}
}

func TestATokenThatMayNotReadTheContainerGetsTheSameAnswerAsForAMissingOne(t *testing.T) {
	e := newEnv(t)
	createContainer(t, e, "secret-project")
	createContainer(t, e, "mine")
	tok := e.Token(t, "other", envy.Grant{Scopes: "containers/mine", Actions: []envy.Action{envy.ActRead}})
	hidden := e.Do(t, "GET", envPath("secret-project"), tok, "")
	missing := e.Do(t, "GET", envPath("never-made"), tok, "")
	wantError(t, hidden, 404, "CONTAINER_NOT_FOUND")
	if string(hidden.Body) != string(missing.Body) {
		t.Errorf("a hidden container answers %s, a missing one %s", hidden.Body, missing.Body)
	}
}

func TestAValueOfOver65536CharactersIsAValidationErrorAndNeverLogged(t *testing.T) {
	e := newEnv(t)
	createContainer(t, e, "c1")
	marker := "TOPSECRETMARKER"
	fits := strings.Repeat("é", envy.MaxValueLen) // code points, not bytes
	if r := e.Do(t, "PUT", envPath("c1")+"/FITS", e.Admin, `{"value":"`+fits+`"}`); r.Status != 200 {
		t.Fatalf("a value of exactly 65,536 characters: %d %.200s", r.Status, r.Body)
	}
	long := marker + strings.Repeat("x", envy.MaxValueLen+1-len(marker))
	for _, r := range []testenv.Response{
		e.Do(t, "PUT", envPath("c1")+"/LONG", e.Admin, `{"value":"`+long+`"}`),
		e.Do(t, "PATCH", envPath("c1"), e.Admin, `{"LONG":"`+long+`"}`),
	} {
		m := wantError(t, r, 400, "VALIDATION_ERROR")
		if msg := m["message"].(string); !strings.Contains(msg, "65536") || strings.Contains(msg, marker) {
			t.Errorf("message %q", msg)
		}
	}
	if strings.Contains(e.Logs.String(), marker) {
		t.Error("the log holds the value")
	}
}

func TestTextThatIsNotUTF8IsRefusedRatherThanAltered(t *testing.T) {
	e := newEnv(t)
	createContainer(t, e, "c1")
	for name, body := range map[string]string{
		"a lone surrogate escape": `{"A":"x\ud800y"}`,
		"a raw invalid byte":      "{\"A\":\"x\xffy\"}",
	} {
		t.Run(name, func(t *testing.T) {
			wantError(t, e.Do(t, "PATCH", envPath("c1"), e.Admin, body), 400, "VALIDATION_ERROR")
		})
	}
	// A valid pair and an escaped backslash before a u are fine.
	if r := e.Do(t, "PATCH", envPath("c1"), e.Admin, `{"A":"\ud83d\ude80","B":"\\ud800"}`); r.Status != 200 {
		t.Fatalf("valid text refused: %d %s", r.Status, r.Body)
	}
	if got := nativeVars(t, e, "containers/c1"); got["A"] != "🚀" || got["B"] != `\ud800` {
		t.Errorf("stored %q", got)
	}
}

func TestRateLimitedRequestsAnswerInTheSeedsShapeWithRetryAfter(t *testing.T) {
	e := newEnv(t, testenv.Options{HTTP: envyhttp.Options{RateLimit: 1}})
	createContainer(t, e, "c1")
	var last testenv.Response
	for range 5 {
		if last = e.Do(t, "GET", envPath("c1"), e.Admin, ""); last.Status == 429 {
			break
		}
	}
	wantError(t, last, 429, "RATE_LIMITED")
	if last.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
}

func TestAMethodTheRouteDoesNotServeAnswersInTheSeedsShape(t *testing.T) {
	e := newEnv(t)
	r := e.Do(t, "POST", envPath("c1"), e.Admin, `{"A":"1"}`)
	wantError(t, r, 405, "METHOD_NOT_ALLOWED")
	if r.Header.Get("Allow") != "GET, PATCH" {
		t.Errorf("Allow %q", r.Header.Get("Allow"))
	}
	wantError(t, e.Do(t, "GET", envPath("c1")+"/A", e.Admin, ""), 405, "METHOD_NOT_ALLOWED")
}

func TestConcurrentMergesEachTakeOneRevision(t *testing.T) {
	e := newEnv(t)
	createContainer(t, e, "c1")
	before := revision(t, e, "containers/c1")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`{"A%d":"1","B%d":"2"}`, i, i)
			if r := e.Do(t, "PATCH", envPath("c1"), e.Admin, body); r.Status != 200 {
				t.Errorf("patch: %d %s", r.Status, r.Body)
			}
		}()
	}
	wg.Wait()
	if got := nativeVars(t, e, "containers/c1"); len(got) != 16 {
		t.Errorf("vars %v", got)
	}
	// The store's revision is global, so only count this scope's changes.
	r := e.Do(t, "GET", "/v1/scopes/containers/c1/-/history?limit=100", e.Admin, "")
	revs := map[float64]int{}
	for _, it := range r.JSON(t)["items"].([]any) {
		if rv := it.(map[string]any)["revision"].(float64); int64(rv) > before {
			revs[rv]++
		}
	}
	if len(revs) != 8 {
		t.Errorf("8 merges took %d revisions", len(revs))
	}
	for rv, n := range revs {
		if n != 2 {
			t.Errorf("revision %v holds %d changes, want the merge's 2", rv, n)
		}
	}
}

// A write-only token's delete happens (audited as var.delete) and is
// answered as done, in the seed's shape, without the vars it may not
// read: never a 403 for what it did.
func TestAWriteOnlyTokensDeleteIsAnsweredAsDoneWithoutTheVarsItMayNotRead(t *testing.T) {
	e := newEnv(t)
	createContainer(t, e, "c1")
	if r := e.Do(t, "PATCH", envPath("c1"), e.Admin, `{"KEEPME":"x","OTHER":"y"}`); r.Status != 200 {
		t.Fatalf("merge: %d %s", r.Status, r.Body)
	}
	tok := e.Token(t, "writer", envy.Grant{Scopes: "containers/c1", Actions: []envy.Action{envy.ActWrite}})
	r := e.Do(t, "DELETE", envPath("c1")+"/KEEPME", tok, "")
	if r.Status != 200 {
		t.Fatalf("a write-only token's delete that deleted the var answered %d, not the 200 of a done delete: %s", r.Status, r.Body)
	}
	wantReply(t, r, 200, `{"statusCode":200,"message":"Environment variable deleted","data":{"environment_vars":{},"synced":true}}`)
	if _, ok := nativeVars(t, e, "containers/c1")["KEEPME"]; ok {
		t.Fatal("the var is still there")
	}
	// A missing container is still 404 to it, and a reader still gets the list.
	wantError(t, e.Do(t, "DELETE", envPath("never-made")+"/KEEPME", tok, ""), 404, "CONTAINER_NOT_FOUND")
	wantReply(t, e.Do(t, "DELETE", envPath("c1")+"/KEEPME", e.Admin, ""), 200,
		`{"statusCode":200,"message":"Environment variable deleted","data":{"environment_vars":{"OTHER":"y"},"synced":true}}`)
}
