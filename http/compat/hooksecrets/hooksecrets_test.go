package hooksecrets_test

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
	"github.com/envy-dev/envy/http/compat/hooksecrets"
	"github.com/envy-dev/envy/internal/testenv"
	"github.com/envy-dev/envy/service"
)

// seedSampleBody is the request body of every example on the seed page,
// byte for byte. It is not valid JSON.
const seedSampleBody = `{ [ "HOOK_SECRET_KEY", "HOOK_SECRET_VALUE" ], [ "HOOK_SECRET_KEY", "HOOK_SECRET_VALUE" ] }`

func newEnv(t *testing.T, o ...testenv.Options) *testenv.Env {
	t.Helper()
	var opts testenv.Options
	if len(o) > 0 {
		opts = o[0]
	}
	opts.Setup = func(api *envyhttp.Server, svc *service.Service) { hooksecrets.Register(api, svc) }
	return testenv.New(t, opts)
}

// createHook creates the hook's scope through the native API, as hooks are
// created.
func createHook(t *testing.T, e *testenv.Env, id string) {
	t.Helper()
	if r := e.Do(t, "PUT", "/v1/scopes/hooks/"+id, e.Admin, ""); r.Status != 201 {
		t.Fatalf("create hook %s: %d %s", id, r.Status, r.Body)
	}
}

func secretsPath(id string) string { return "/api/v2/hooks/" + id + "/secrets" }

// seedHeaders are the headers the seed's examples send besides the token.
var seedHeaders = []string{"content-type", "application/json", "cache-control", "no-cache"}

func do(t *testing.T, e *testenv.Env, method, id, token, body string) testenv.Response {
	t.Helper()
	return e.Do(t, method, secretsPath(id), token, body, seedHeaders...)
}

func wantStatus(t *testing.T, r testenv.Response, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %.300s", r.Status, status, r.Body)
	}
}

// wantError checks the Auth0 error envelope: exactly statusCode, error,
// message and errorCode.
func wantError(t *testing.T, r testenv.Response, status int, errorCode string) string {
	t.Helper()
	wantStatus(t, r, status)
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("not JSON: %s", r.Body)
	}
	msg, _ := m["message"].(string)
	if len(m) != 4 || m["statusCode"] != float64(status) || m["errorCode"] != errorCode || msg == "" {
		t.Fatalf("error envelope %s, want statusCode %d and errorCode %s", r.Body, status, errorCode)
	}
	if m["error"] == "" || m["error"] == nil {
		t.Errorf("no error name: %s", r.Body)
	}
	return msg
}

type nativeVar struct {
	Value   string `json:"value"`
	Secret  bool   `json:"secret"`
	Version int64  `json:"version"`
}

// nativeVars reads a scope's vars back through the native API, revealed.
func nativeVars(t *testing.T, e *testenv.Env, scope string) map[string]nativeVar {
	t.Helper()
	r := e.Do(t, "GET", "/v1/scopes/"+scope+"/-/vars?reveal=true", e.Admin, "")
	wantStatus(t, r, 200)
	var l struct {
		Items []struct {
			Name string `json:"name"`
			nativeVar
		} `json:"items"`
	}
	if err := json.Unmarshal(r.Body, &l); err != nil {
		t.Fatal(err)
	}
	out := map[string]nativeVar{}
	for _, it := range l.Items {
		out[it.Name] = it.nativeVar
	}
	return out
}

func revision(t *testing.T, e *testenv.Env, scope string) int64 {
	t.Helper()
	r := e.Do(t, "GET", "/v1/scopes/"+scope, e.Admin, "")
	wantStatus(t, r, 200)
	return int64(r.JSON(t)["revision"].(float64))
}

func values(vars map[string]nativeVar) map[string]string {
	out := map[string]string{}
	for k, v := range vars {
		out[k] = v.Value
	}
	return out
}

func TestTheSeedsSampleBodyIsNotJSONAndGetsA400InAuth0sShape(t *testing.T) {
	e := newEnv(t)
	createHook(t, e, "HOOK_ID")
	for _, method := range []string{"PATCH", "POST", "DELETE"} {
		t.Run(method, func(t *testing.T) {
			r := do(t, e, method, "HOOK_ID", e.Admin, seedSampleBody)
			msg := wantError(t, r, 400, "invalid_body")
			if !strings.HasPrefix(msg, "Invalid request payload JSON format") || r.JSON(t)["error"] != "Bad Request" {
				t.Errorf("reply %s", r.Body)
			}
		})
	}
	if got := nativeVars(t, e, "hooks/HOOK_ID"); len(got) != 0 {
		t.Errorf("the invalid body wrote %v", got)
	}
}

func TestThePatchTheSeedDescribesUpdatesASecretFromAnObjectOfKeyValuePairs(t *testing.T) {
	e := newEnv(t)
	createHook(t, e, "HOOK_ID")
	wantStatus(t, do(t, e, "POST", "HOOK_ID", e.Admin, `{"HOOK_SECRET_KEY":"old"}`), 201)
	r := do(t, e, "PATCH", "HOOK_ID", e.Admin, `{"HOOK_SECRET_KEY":"HOOK_SECRET_VALUE"}`)
	wantStatus(t, r, 201)
	if string(r.Body) != "{}\n" {
		t.Errorf("reply %q", r.Body)
	}
	got := nativeVars(t, e, "hooks/HOOK_ID")
	if v := got["HOOK_SECRET_KEY"]; v.Value != "HOOK_SECRET_VALUE" || !v.Secret || v.Version != 2 {
		t.Errorf("native read back %+v", v)
	}
}

func TestReadsShowEveryValueAsTheSeedsPlaceholder(t *testing.T) {
	e := newEnv(t)
	createHook(t, e, "h1")
	wantStatus(t, do(t, e, "POST", "h1", e.Admin, `{"API_KEY":"sk-live-123","DB_PASSWORD":"hunter2"}`), 201)
	// A native write reads back through the dialect, a non-secret too.
	if r := e.Do(t, "PUT", "/v1/scopes/hooks/h1/-/vars/REGION", e.Admin, `{"value":"eu-west-1"}`); r.Status != 201 {
		t.Fatalf("native put: %d %s", r.Status, r.Body)
	}
	r := do(t, e, "GET", "h1", e.Admin, "")
	wantStatus(t, r, 200)
	var got map[string]string
	if err := json.Unmarshal(r.Body, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"API_KEY": "_VALUE_NOT_SHOWN", "DB_PASSWORD": "_VALUE_NOT_SHOWN", "REGION": "_VALUE_NOT_SHOWN"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("GET %s", r.Body)
	}
	for _, v := range []string{"sk-live-123", "hunter2", "eu-west-1"} {
		if strings.Contains(string(r.Body), v) {
			t.Errorf("GET shows the value %q", v)
		}
	}
}

func TestAWriteThroughTheDialectIsASecretThatTheNativeAPIReadsBack(t *testing.T) {
	e := newEnv(t)
	createHook(t, e, "h1")
	value := "multi\nline \"quoted\" <b>ünïcødé</b> 🚀"
	body, _ := json.Marshal(map[string]string{"A": value, "EMPTY": ""})
	wantStatus(t, do(t, e, "POST", "h1", e.Admin, string(body)), 201)
	got := nativeVars(t, e, "hooks/h1")
	if got["A"] != (nativeVar{Value: value, Secret: true, Version: 1}) || got["EMPTY"] != (nativeVar{Value: "", Secret: true, Version: 1}) {
		t.Errorf("native read back %+v", got)
	}
	wantStatus(t, do(t, e, "DELETE", "h1", e.Admin, `["A"]`), 204)
	if got := nativeVars(t, e, "hooks/h1"); len(got) != 1 {
		t.Errorf("after delete %+v", got)
	}
	// One history entry per change, by the token that made it, and the
	// native audit actions.
	r := e.Do(t, "GET", "/v1/scopes/hooks/h1/-/history", e.Admin, "")
	var ops []string
	for _, it := range r.JSON(t)["items"].([]any) {
		c := it.(map[string]any)
		ops = append(ops, fmt.Sprintf("%s %s by %s", c["op"], c["name"], c["actor"]))
	}
	sort.Strings(ops)
	if w := []string{"delete A by admin", "set A by admin", "set EMPTY by admin"}; !reflect.DeepEqual(ops, w) {
		t.Errorf("history %v, want %v", ops, w)
	}
}

func TestWritingThePlaceholderBackKeepsTheStoredValue(t *testing.T) {
	e := newEnv(t)
	createHook(t, e, "h1")
	wantStatus(t, do(t, e, "POST", "h1", e.Admin, `{"A":"alpha","B":"bravo"}`), 201)
	rev := revision(t, e, "hooks/h1")

	// The seed warns that sending back what GET shows overwrites the
	// values; in envy it keeps them, and writes nothing at all.
	got := do(t, e, "GET", "h1", e.Admin, "")
	wantStatus(t, do(t, e, "PATCH", "h1", e.Admin, string(got.Body)), 201)
	if v := nativeVars(t, e, "hooks/h1"); v["A"] != (nativeVar{"alpha", true, 1}) || v["B"] != (nativeVar{"bravo", true, 1}) {
		t.Errorf("after writing the placeholders back: %+v", v)
	}
	if after := revision(t, e, "hooks/h1"); after != rev {
		t.Errorf("writing only placeholders took revision %d", after)
	}

	// Mixed with a real value, only the real value changes.
	wantStatus(t, do(t, e, "PATCH", "h1", e.Admin, `{"A":"_VALUE_NOT_SHOWN","B":"bravo-2"}`), 201)
	if v := nativeVars(t, e, "hooks/h1"); v["A"] != (nativeVar{"alpha", true, 1}) || v["B"] != (nativeVar{"bravo-2", true, 2}) {
		t.Errorf("after a mixed update: %+v", v)
	}

	// A POST that sends back what GET shows plus a new secret adds the new
	// one and keeps the others, rather than answering 409.
	wantStatus(t, do(t, e, "POST", "h1", e.Admin, `{"A":"_VALUE_NOT_SHOWN","B":"_VALUE_NOT_SHOWN","C":"charlie"}`), 201)
	if v := values(nativeVars(t, e, "hooks/h1")); !reflect.DeepEqual(v, map[string]string{"A": "alpha", "B": "bravo-2", "C": "charlie"}) {
		t.Errorf("after an add with placeholders: %v", v)
	}
}

func TestThePlaceholderForASecretThatDoesNotExistIsRefusedAsThereIsNothingToKeep(t *testing.T) {
	e := newEnv(t)
	createHook(t, e, "h1")
	msg := wantError(t, do(t, e, "POST", "h1", e.Admin, `{"NEW":"_VALUE_NOT_SHOWN","OTHER":"x"}`), 400, "invalid_body")
	if !strings.Contains(msg, "body.NEW") {
		t.Errorf("message %q does not name the secret", msg)
	}
	if got := nativeVars(t, e, "hooks/h1"); len(got) != 0 {
		t.Errorf("a refused add wrote %+v", got)
	}
}

func TestAddingANameThatExistsIs409AndWritesNothing(t *testing.T) {
	e := newEnv(t)
	createHook(t, e, "h1")
	wantStatus(t, do(t, e, "POST", "h1", e.Admin, `{"TAKEN":"v1"}`), 201)
	rev := revision(t, e, "hooks/h1")
	msg := wantError(t, do(t, e, "POST", "h1", e.Admin, `{"FRESH":"new","TAKEN":"v2"}`), 409, "secret_exists")
	if !strings.HasPrefix(msg, "Secret with the same name already exists") || !strings.Contains(msg, "TAKEN") || strings.Contains(msg, "FRESH") {
		t.Errorf("message %q", msg)
	}
	if v := values(nativeVars(t, e, "hooks/h1")); !reflect.DeepEqual(v, map[string]string{"TAKEN": "v1"}) {
		t.Errorf("a refused add changed the secrets: %v", v)
	}
	if after := revision(t, e, "hooks/h1"); after != rev {
		t.Errorf("a refused add took revision %d", after)
	}
}

func TestUpdatingANameThatDoesNotExistIs404AndWritesNothing(t *testing.T) {
	e := newEnv(t)
	createHook(t, e, "h1")
	wantStatus(t, do(t, e, "POST", "h1", e.Admin, `{"KNOWN":"v1"}`), 201)
	msg := wantError(t, do(t, e, "PATCH", "h1", e.Admin, `{"KNOWN":"v2","UNKNOWN":"x"}`), 404, "inexistent_secret")
	if !strings.Contains(msg, "UNKNOWN") || strings.Contains(msg, "KNOWN,") {
		t.Errorf("message %q", msg)
	}
	if v := values(nativeVars(t, e, "hooks/h1")); !reflect.DeepEqual(v, map[string]string{"KNOWN": "v1"}) {
		t.Errorf("a refused update changed the secrets: %v", v)
	}
}

func TestConcurrentAddsOfOneNameLetExactlyOneWin(t *testing.T) {
	e := newEnv(t)
	createHook(t, e, "h1")
	const n = 12
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = do(t, e, "POST", "h1", e.Admin, fmt.Sprintf(`{"SAME":"v%d","OWN_%d":"x"}`, i, i)).Status
		}()
	}
	wg.Wait()
	won := 0
	for i, s := range statuses {
		switch s {
		case 201:
			won++
		case 409:
		default:
			t.Errorf("request %d: status %d", i, s)
		}
	}
	got := nativeVars(t, e, "hooks/h1")
	if won != 1 || len(got) != 2 || got["SAME"].Version != 1 {
		t.Errorf("%d adds won, secrets %+v", won, got)
	}
}

func TestDeleteTakesAJSONArrayOfNamesInOneRevisionAndIsIdempotent(t *testing.T) {
	e := newEnv(t)
	createHook(t, e, "h1")
	wantStatus(t, do(t, e, "POST", "h1", e.Admin, `{"A":"1","B":"2","C":"3"}`), 201)
	before := revision(t, e, "hooks/h1")
	r := do(t, e, "DELETE", "h1", e.Admin, `["A","B","NEVER_THERE"]`)
	wantStatus(t, r, 204)
	if len(r.Body) != 0 {
		t.Errorf("204 with a body %q", r.Body)
	}
	if v := values(nativeVars(t, e, "hooks/h1")); !reflect.DeepEqual(v, map[string]string{"C": "3"}) {
		t.Errorf("after delete %v", v)
	}
	after := revision(t, e, "hooks/h1")
	hist := e.Do(t, "GET", "/v1/scopes/hooks/h1/-/history?limit=2", e.Admin, "").JSON(t)["items"].([]any)
	for _, it := range hist {
		if rv := int64(it.(map[string]any)["revision"].(float64)); rv != after || after <= before {
			t.Errorf("the two deletes are not one revision: %v", hist)
		}
	}
	wantStatus(t, do(t, e, "DELETE", "h1", e.Admin, `["A","B"]`), 204)
	if revision(t, e, "hooks/h1") != after {
		t.Error("deleting absent secrets took a revision")
	}
}

func TestEveryErrorIsAnsweredInAuth0sShape(t *testing.T) {
	e := newEnv(t)
	createHook(t, e, "h1")
	wantStatus(t, do(t, e, "POST", "h1", e.Admin, `{"KEEP":"1"}`), 201)
	before := revision(t, e, "hooks/h1")
	reader := e.Token(t, "reader", envy.Grant{Scopes: "hooks/h1", Actions: []envy.Action{envy.ActRead}})
	stranger := e.Token(t, "stranger", envy.Grant{Scopes: "hooks/other", Actions: []envy.Action{envy.ActRead}})
	long := strings.Repeat("x", envy.MaxValueLen+1)
	tooMany := map[string]string{}
	for i := range envy.MaxBulkKeys + 1 {
		tooMany[fmt.Sprintf("K%d", i)] = "v"
	}
	tooManyBody, _ := json.Marshal(tooMany)

	cases := []struct {
		name, method, id, token, body string
		status                        int
		errorCode                     string
	}{
		{"a GET without a token is 401", "GET", "h1", "", "", 401, "invalid_token"},
		{"a POST with an unknown token is 401", "POST", "h1", "envy_" + strings.Repeat("0", 43), `{"A":"1"}`, 401, "invalid_token"},
		{"a DELETE without a token is 401", "DELETE", "h1", "", `["KEEP"]`, 401, "invalid_token"},

		{"a POST by a token that may only read is 403", "POST", "h1", reader, `{"A":"1"}`, 403, "insufficient_scope"},
		{"a PATCH by a token that may only read is 403", "PATCH", "h1", reader, `{"KEEP":"2"}`, 403, "insufficient_scope"},
		{"a PATCH of placeholders only by a token that may only read is 403", "PATCH", "h1", reader, `{"KEEP":"_VALUE_NOT_SHOWN"}`, 403, "insufficient_scope"},
		{"a DELETE by a token that may only read is 403", "DELETE", "h1", reader, `["KEEP"]`, 403, "insufficient_scope"},

		{"a GET of a hook that does not exist is 404", "GET", "nope", e.Admin, "", 404, "inexistent_hook"},
		{"a POST to a hook that does not exist is 404", "POST", "nope", e.Admin, `{"A":"1"}`, 404, "inexistent_hook"},
		{"a PATCH of a hook that does not exist is 404", "PATCH", "nope", e.Admin, `{"A":"1"}`, 404, "inexistent_hook"},
		{"a DELETE in a hook that does not exist is 404", "DELETE", "nope", e.Admin, `["A"]`, 404, "inexistent_hook"},
		{"a hook id that no hook can have is 404", "GET", "-bad", e.Admin, "", 404, "inexistent_hook"},
		{"a GET by a token that may not read the hook is 404", "GET", "h1", stranger, "", 404, "inexistent_hook"},
		{"a POST by a token that may not read the hook is 404", "POST", "h1", stranger, `{"A":"1"}`, 404, "inexistent_hook"},
		{"a DELETE by a token that may not read the hook is 404", "DELETE", "h1", stranger, `["KEEP"]`, 404, "inexistent_hook"},

		{"an empty body is 400", "POST", "h1", e.Admin, " ", 400, "invalid_body"},
		{"an array for POST is 400", "POST", "h1", e.Admin, `["A"]`, 400, "invalid_body"},
		{"an object for DELETE is 400", "DELETE", "h1", e.Admin, `{"KEEP":"1"}`, 400, "invalid_body"},
		{"an empty array for DELETE is 400", "DELETE", "h1", e.Admin, `[]`, 400, "invalid_body"},
		{"a name that is not a string in DELETE is 400", "DELETE", "h1", e.Admin, `["KEEP",1]`, 400, "invalid_body"},
		{"no secrets to add is 400", "POST", "h1", e.Admin, `{}`, 400, "invalid_body"},
		{"more secrets than one write may hold is 400", "POST", "h1", e.Admin, string(tooManyBody), 400, "invalid_body"},
		{"a null value is 400", "PATCH", "h1", e.Admin, `{"KEEP":null}`, 400, "invalid_body"},
		{"a number value is 400", "POST", "h1", e.Admin, `{"A":1}`, 400, "invalid_body"},
		{"an invalid name is 400", "POST", "h1", e.Admin, `{"my-secret":"1"}`, 400, "invalid_body"},
		{"an invalid name in DELETE is 400", "DELETE", "h1", e.Admin, `["my-secret"]`, 400, "invalid_body"},
		{"a reserved name is 400", "POST", "h1", e.Admin, `{"ENVY_TOKEN":"1"}`, 400, "invalid_body"},
		{"a value of 65,537 characters is 400 when added", "POST", "h1", e.Admin, `{"A":"` + long + `"}`, 400, "invalid_body"},
		{"a value of 65,537 characters is 400 when updated", "PATCH", "h1", e.Admin, `{"KEEP":"` + long + `"}`, 400, "invalid_body"},
		{"a lone surrogate is 400, not stored altered", "POST", "h1", e.Admin, `{"A":"\ud800"}`, 400, "invalid_body"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg := wantError(t, do(t, e, c.method, c.id, c.token, c.body), c.status, c.errorCode)
			if strings.Contains(msg, long[:100]) {
				t.Error("the message holds the value")
			}
		})
	}
	if after := revision(t, e, "hooks/h1"); after != before {
		t.Errorf("refused requests changed the hook: revision %d, then %d", before, after)
	}
	if v := values(nativeVars(t, e, "hooks/h1")); !reflect.DeepEqual(v, map[string]string{"KEEP": "1"}) {
		t.Errorf("refused requests changed the secrets: %v", v)
	}
}

func TestATokenThatMayNotReadTheHookGetsTheSameAnswerAsForAMissingOne(t *testing.T) {
	e := newEnv(t)
	createHook(t, e, "theirs")
	createHook(t, e, "mine")
	tok := e.Token(t, "other", envy.Grant{Scopes: "hooks/mine", Actions: []envy.Action{envy.ActRead}})
	hidden := do(t, e, "GET", "theirs", tok, "")
	missing := do(t, e, "GET", "never-made", tok, "")
	wantError(t, hidden, 404, "inexistent_hook")
	if string(hidden.Body) != string(missing.Body) {
		t.Errorf("a hidden hook answers %s, a missing one %s", hidden.Body, missing.Body)
	}
}

func TestAValueOfOver65536CharactersIsRefusedNeverLoggedAndOneOf65536IsKept(t *testing.T) {
	e := newEnv(t)
	createHook(t, e, "h1")
	fits := strings.Repeat("é", envy.MaxValueLen)
	wantStatus(t, do(t, e, "POST", "h1", e.Admin, `{"FITS":"`+fits+`"}`), 201)
	marker := "TOPSECRETMARKER"
	long := marker + strings.Repeat("x", envy.MaxValueLen+1-len(marker))
	msg := wantError(t, do(t, e, "PATCH", "h1", e.Admin, `{"FITS":"`+long+`"}`), 400, "invalid_body")
	if !strings.HasPrefix(msg, "Payload validation error") || !strings.Contains(msg, "65536") || strings.Contains(msg, marker) {
		t.Errorf("message %q", msg)
	}
	if strings.Contains(e.Logs.String(), marker) {
		t.Error("the log holds the value")
	}
	if nativeVars(t, e, "hooks/h1")["FITS"].Value != fits {
		t.Error("the refused update changed the stored value")
	}
}

func TestRateLimitedRequestsAnswerInAuth0sShapeWithRetryAfter(t *testing.T) {
	e := newEnv(t, testenv.Options{HTTP: envyhttp.Options{RateLimit: 1}})
	createHook(t, e, "h1")
	var last testenv.Response
	for range 5 {
		if last = do(t, e, "GET", "h1", e.Admin, ""); last.Status == 429 {
			break
		}
	}
	wantError(t, last, 429, "too_many_requests")
	if last.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
}

func TestAMethodTheRouteDoesNotServeAnswersInAuth0sShape(t *testing.T) {
	e := newEnv(t)
	r := do(t, e, "PUT", "h1", e.Admin, `{"A":"1"}`)
	wantError(t, r, 405, "method_not_allowed")
	if r.Header.Get("Allow") != "GET, POST, PATCH, DELETE" {
		t.Errorf("Allow %q", r.Header.Get("Allow"))
	}
}
