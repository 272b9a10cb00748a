package dialect_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"

	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/http/compat/apify"
	"github.com/envy-dev/envy/http/compat/containers"
	"github.com/envy-dev/envy/http/compat/hooksecrets"
	"github.com/envy-dev/envy/http/compat/smarthooks"
	"github.com/envy-dev/envy/http/compat/usersecrets"
	"github.com/envy-dev/envy/internal/testenv"
	"github.com/envy-dev/envy/service"
)

func allDialects(t *testing.T, maxBody int64) *testenv.Env {
	o := testenv.Options{Setup: func(api *envyhttp.Server, svc *service.Service) {
		smarthooks.Register(api, svc)
		apify.Register(api, svc)
		usersecrets.Register(api, svc)
		containers.Register(api, svc)
		hooksecrets.Register(api, svc)
	}}
	o.HTTP.MaxBody = maxBody
	return testenv.New(t, o)
}

// A dialect's envelope is told by its members.
var envelopes = map[string][]string{
	"smarthooks":  {"message", "name", "statusCode"},
	"apify":       {"error"},
	"usersecrets": {"code", "detail", "type"},
	"containers":  {"error", "message", "statusCode"},
	"hooksecrets": {"error", "errorCode", "message", "statusCode"},
}

func wantEnvelope(t *testing.T, dialect string, r testenv.Response, status int) {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("%s: %d %s is not JSON", dialect, r.Status, r.Body)
	}
	var keys []string
	for k := range m {
		if k != "errors" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	if r.Status != status || !slices.Equal(keys, envelopes[dialect]) {
		t.Errorf("%s: %d %s, want %d in the envelope %v", dialect, r.Status, r.Body, status, envelopes[dialect])
	}
}

func TestEveryReplyUnderADialectsPrefixIsInItsEnvelope(t *testing.T) {
	e := allDialects(t, 0)
	for _, tc := range []struct{ dialect, method, path string }{
		{"smarthooks", "GET", "/api/2/hooks/nope"},
		{"smarthooks", "GET", "/api/2/hooks/envs/a/b"},
		{"apify", "GET", "/v2/nope"},
		{"apify", "GET", "/v2/acts/a/versions/0.1/env-vars/A/extra"},
		{"apify", "POST", "/v2/actors/a/versions/0.1"},
		{"usersecrets", "GET", "/api/v1/user/nope"},
		{"containers", "GET", "/api/v1/containers/c1"},
		{"containers", "DELETE", "/api/v1/containers/c1/env/A/B"},
		{"hooksecrets", "GET", "/api/v2/hooks/h1/nope"}, // /api/v2/hooks itself is served
		{"hooksecrets", "GET", "/api/v2/clients"},
	} {
		// With a token or without, an unknown path is not found.
		wantEnvelope(t, tc.dialect, e.Do(t, tc.method, tc.path, e.Admin, ""), 404)
		wantEnvelope(t, tc.dialect, e.Do(t, tc.method, tc.path, "", ""), 404)
	}
	// The native API keeps its own.
	if r := e.Do(t, "GET", "/v1/nope", e.Admin, ""); r.Status != 404 || r.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("native: %d %s", r.Status, r.Body)
	}
}

func brotlied(t *testing.T, s string) string {
	var buf bytes.Buffer
	w := brotli.NewWriter(&buf)
	w.Write([]byte(s))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestEveryDialectReadsCompressedBodies(t *testing.T) {
	e := allDialects(t, 64<<10)
	for _, path := range []string{"/v1/scopes/containers/c1", "/v1/scopes/hooks/h1"} {
		if r := e.Do(t, "PUT", path, e.Admin, `{}`); r.Status != 201 {
			t.Fatalf("PUT %s: %d %s", path, r.Status, r.Body)
		}
	}
	value := strings.Repeat(`q"uote \n é $X #`, 100)
	v, _ := json.Marshal(value)
	for _, tc := range []struct {
		dialect, method, path, body string
		status                      int
		scope, name                 string
	}{
		{"smarthooks", "POST", "/api/2/hooks/envs", `{"name":"SH","value":` + string(v) + `}`, 201, "smart-hooks", "SH"},
		{"apify", "POST", "/v2/actors/a1/versions/0.1/env-vars", `{"name":"AP","value":` + string(v) + `}`, 201, "acts/a1/versions/0.1", "AP"},
		{"usersecrets", "POST", "/api/v1/user/secrets", `{"name":"US","value":` + string(v) + `}`, 201, "users/admin", "US"},
		{"containers", "PATCH", "/api/v1/containers/c1/env", `{"CO":` + string(v) + `}`, 200, "containers/c1", "CO"},
		{"hooksecrets", "POST", "/api/v2/hooks/h1/secrets", `{"HS":` + string(v) + `}`, 201, "hooks/h1", "HS"},
	} {
		t.Run(tc.dialect, func(t *testing.T) {
			r := e.Do(t, tc.method, tc.path, e.Admin, brotlied(t, tc.body), "Content-Encoding", "br")
			if r.Status != tc.status {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
			r = e.Do(t, "GET", "/v1/scopes/"+tc.scope+"/-/vars/"+tc.name+"?reveal=true", e.Admin, "")
			if got := r.JSON(t)["value"]; got != value {
				t.Errorf("read back %q", got)
			}
			bomb := brotlied(t, `{"A":"`+strings.Repeat("0", 1<<20)+`"}`)
			wantEnvelope(t, tc.dialect, e.Do(t, tc.method, tc.path, e.Admin, bomb, "Content-Encoding", "br"), tooLarge[tc.dialect])
			r = e.Do(t, tc.method, tc.path, e.Admin, tc.body, "Content-Encoding", "zstd")
			wantEnvelope(t, tc.dialect, r, unsupported[tc.dialect])
			if !strings.Contains(string(r.Body), "zstd") {
				t.Errorf("the refusal does not name the encoding: %s", r.Body)
			}
		})
	}
	r := e.Do(t, "POST", "/v2/acts/a1/versions/0.1/env-vars", e.Admin, `{}`, "Content-Encoding", "zstd")
	if !strings.Contains(string(r.Body), `"type":"unsupported-content-encoding"`) {
		t.Errorf("apify: %s, want Apify's unsupported-content-encoding", r.Body)
	}
}

// The statuses each platform answers a body too large and an encoding it
// can't read with.
var (
	tooLarge    = map[string]int{"smarthooks": 413, "apify": 413, "usersecrets": 400, "containers": 413, "hooksecrets": 413}
	unsupported = map[string]int{"smarthooks": 415, "apify": 415, "usersecrets": 400, "containers": 415, "hooksecrets": 415}
)
