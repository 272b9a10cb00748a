package admin_test

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/envy-dev/envy"
	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/http/admin"
	"github.com/envy-dev/envy/internal/testenv"
	"github.com/envy-dev/envy/service"
)

// newEnv serves the admin routes over a real server whose operations
// fail the test if they run: every case here must be refused first.
func newEnv(t *testing.T) *testenv.Env {
	return testenv.New(t, testenv.Options{Setup: func(api *envyhttp.Server, svc *service.Service) {
		admin.Register(api, svc, admin.Ops{
			Rotate: func(context.Context, admin.RotateRequest) (admin.RotateReply, error) {
				t.Error("the rotation ran")
				return admin.RotateReply{}, nil
			},
			Backup: func(context.Context, io.Writer) error {
				t.Error("the backup ran")
				return nil
			},
		})
	}})
}

func TestAdminRoutesRefuseBeforeTheyRun(t *testing.T) {
	e := newEnv(t)
	reader := e.Token(t, "reader", envy.Grant{Scopes: "**", Actions: []envy.Action{envy.ActRead, envy.ActWrite, envy.ActReveal}})
	scoped := e.Token(t, "scoped-admin", envy.Grant{Scopes: "acme/**", Actions: []envy.Action{envy.ActAdmin}})
	for _, c := range []struct {
		name, method, path, token, body, ctype string
		status                                 int
		loc                                    string
	}{
		{"no token", "POST", "/v1/admin/keys/rotate", "", `{"new_master_key_url":"base64key://x"}`, "application/json", 401, ""},
		{"no token, backup", "GET", "/v1/admin/backup", "", "", "", 401, ""},
		{"not admin", "POST", "/v1/admin/keys/rotate", reader, `{"new_master_key_url":"base64key://x"}`, "application/json", 403, ""},
		{"admin of some scopes only", "GET", "/v1/admin/backup", scoped, "", "", 403, ""},
		{"neither key", "POST", "/v1/admin/keys/rotate", e.Admin, `{"new_data_key":true}`, "application/json", 422, "body.new_master_key_url"},
		{"both keys", "POST", "/v1/admin/keys/rotate", e.Admin, `{"new_master_key_url":"base64key://x","new_master_key_file":"AAAA"}`, "application/json", 422, "body.new_master_key_url"},
		{"a key file of 3 bytes", "POST", "/v1/admin/keys/rotate", e.Admin, `{"new_master_key_file":"AAAA"}`, "application/json", 422, "body.new_master_key_file"},
		{"an empty URL", "POST", "/v1/admin/keys/rotate", e.Admin, `{"new_master_key_url":""}`, "application/json", 422, "body.new_master_key_url"},
		{"an unknown field", "POST", "/v1/admin/keys/rotate", e.Admin, `{"new_master_key_url":"base64key://x","force":true}`, "application/json", 422, "body.force"},
		{"reseal not a boolean", "POST", "/v1/admin/keys/rotate", e.Admin, `{"new_master_key_url":"base64key://x","reseal":1}`, "application/json", 422, "body.reseal"},
		{"new_data_key not a boolean", "POST", "/v1/admin/keys/rotate", e.Admin, `{"new_master_key_url":"base64key://x","new_data_key":"yes"}`, "application/json", 422, "body.new_data_key"},
		{"not JSON", "POST", "/v1/admin/keys/rotate", e.Admin, `new_master_key_url=x`, "text/plain", 415, ""},
		{"malformed JSON", "POST", "/v1/admin/keys/rotate", e.Admin, `{"new_master_key_url":`, "application/json", 400, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var hs []string
			if c.ctype != "" {
				hs = []string{"Content-Type", c.ctype}
			}
			r := e.Do(t, c.method, c.path, c.token, c.body, hs...)
			if r.Status != c.status {
				t.Fatalf("status %d, want %d: %s", r.Status, c.status, r.Body)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("Content-Type %q: %s", ct, r.Body)
			}
			if c.loc != "" && !strings.Contains(string(r.Body), `"loc":"`+c.loc+`"`) {
				t.Fatalf("the problem does not name %s: %s", c.loc, r.Body)
			}
			if strings.Contains(string(r.Body), "base64key://x") {
				t.Fatalf("the reply repeats the key URL: %s", r.Body)
			}
		})
	}
	// The refusals of authenticated callers are in the audit log.
	r := e.Do(t, "GET", "/v1/audit?limit=100", e.Admin, "")
	var list struct {
		Items []struct {
			Action string `json:"action"`
			Actor  string `json:"actor"`
			Status int    `json:"status"`
		} `json:"items"`
	}
	json.Unmarshal(r.Body, &list)
	seen := map[string]bool{}
	for _, it := range list.Items {
		if it.Status == 403 {
			seen[it.Action+" "+it.Actor] = true
		}
	}
	if !seen["keys.rotate reader"] || !seen["backup scoped-admin"] {
		t.Fatalf("the refusals are not in the audit log: %s", r.Body)
	}
}

// TestOpenAPIHasTheAdminRoutes checks the API document against the routes
// this package mounts: each is in it, and each /v1/admin/ operation it
// lists is served (refused without a token, not unknown).
func TestOpenAPIHasTheAdminRoutes(t *testing.T) {
	e := newEnv(t)
	r := e.Do(t, "GET", "/v1/openapi.json", "", "")
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(r.Body, &doc); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"GET /v1/admin/backup", "POST /v1/admin/keys/rotate"} {
		method, path, _ := strings.Cut(want, " ")
		if _, ok := doc.Paths[path][strings.ToLower(method)]; !ok {
			t.Errorf("openapi.json lacks %s", want)
		}
	}
	for path, ops := range doc.Paths {
		if !strings.HasPrefix(path, "/v1/admin/") {
			continue
		}
		for method := range ops {
			if r := e.Do(t, strings.ToUpper(method), path, "", ""); r.Status != 401 {
				t.Errorf("openapi.json has %s %s, which answers %d without a token, not 401: %s", method, path, r.Status, r.Body)
			}
		}
	}
}
