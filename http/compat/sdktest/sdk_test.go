// Package sdktest drives envy's seed dialects with the platforms' own
// SDKs, unchanged, from npm: apify-client (the newest and 2.23), auth0 (v7
// and v4) and @onelogin/sdk. The SDKs are installed with `npm ci` from the
// lockfile in this directory into a temp dir, once per test run, and run
// with the machine's Node.js. Without Node.js the tests skip, and fail
// under CI=true. The user secrets and containers dialects have no SDK on
// npm; their tests replay requests in their platforms' shapes instead.
// The platforms' official Go SDKs (go-auth0 v1 and v3, onelogin-go-sdk
// v4) are test dependencies of the module, from go.sum (gosdk_test.go).
package sdktest

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"maps"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/envy-dev/envy"
	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/http/compat/apify"
	"github.com/envy-dev/envy/http/compat/containers"
	"github.com/envy-dev/envy/http/compat/hooksecrets"
	"github.com/envy-dev/envy/http/compat/smarthooks"
	"github.com/envy-dev/envy/http/compat/usersecrets"
	"github.com/envy-dev/envy/internal/testenv"
	"github.com/envy-dev/envy/service"
)

// values go through every SDK and come back unchanged.
var values = map[string]string{
	"SDK_QUOTES":   `say "hi", 'bye' and \"escaped\"`,
	"SDK_NEWLINES": "line one\nline two\r\nline three\n",
	"SDK_UNICODE":  "héllo wörld 🙂 日本語 \u2028 end",
	// No "${": a value's ${NAME} is a reference, resolved on read
	// (docs/api.md, References); a literal "${" is written "$${".
	"SDK_DOLLAR": "$HOME $PATH $(id) `id` \\$x $",
	"SDK_HASH":   "a#b # not a comment #",
	// 64 KiB: the largest value envy takes, and over the 1 KiB from which
	// apify-client compresses request bodies.
	"SDK_BIG": strings.Repeat("0123456789abcdef", 4096),
}

var (
	installOnce sync.Once
	modules     string // node_modules of the installed SDKs
	installErr  error
)

// node returns the node binary and the SDKs' node_modules, installing
// them the first time; it skips the test without Node.js or npm, unless
// CI=true.
func node(t *testing.T) (string, string) {
	t.Helper()
	nodeBin, err := exec.LookPath("node")
	if err == nil {
		_, err = exec.LookPath("npm")
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the SDK tests need Node.js and npm: %v", err)
		}
		t.Skipf("skipping the SDK tests: Node.js and npm are not installed (%v); CI=true makes this a failure", err)
	}
	installOnce.Do(func() { modules, installErr = install() })
	if installErr != nil {
		t.Fatalf("installing the SDKs: %v", installErr)
	}
	return nodeBin, modules
}

// install runs `npm ci` from this directory's lockfile in a temp dir.
func install() (string, error) {
	dir, err := os.MkdirTemp("", "envy-sdktest-")
	if err != nil {
		return "", err
	}
	for _, f := range []string{"package.json", "package-lock.json"} {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			return "", err
		}
	}
	cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", &installError{err, string(out)}
	}
	return filepath.Join(dir, "node_modules"), nil
}

type installError struct {
	err error
	out string
}

func (e *installError) Error() string { return e.err.Error() + ": " + e.out }

func TestMain(m *testing.M) {
	code := m.Run()
	if modules != "" {
		os.RemoveAll(filepath.Dir(modules))
	}
	os.Exit(code)
}

// run runs a driver with node and decodes the JSON object it prints.
func run(t *testing.T, env []string, driver string, args ...string) map[string]any {
	t.Helper()
	nodeBin, mods := node(t)
	cmd := exec.Command(nodeBin, append([]string{filepath.Join("drivers", driver)}, args...)...)
	valuesJSON, _ := json.Marshal(values)
	cmd.Env = append(os.Environ(), append(env, "NODE_PATH="+mods, "SDKTEST_VALUES="+string(valuesJSON), "SDKTEST_UPDATE="+updated)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var out map[string]any
	if jerr := json.Unmarshal(stdout.Bytes(), &out); jerr != nil || err != nil {
		t.Fatalf("node %s %v: %v\nstdout: %s\nstderr: %s", driver, args, err, stdout.String(), stderr.String())
	}
	return out
}

func newEnv(t *testing.T) *testenv.Env {
	return testenv.New(t, testenv.Options{Setup: func(api *envyhttp.Server, svc *service.Service) {
		smarthooks.Register(api, svc)
		apify.Register(api, svc)
		hooksecrets.Register(api, svc)
	}})
}

// wantStored checks each value through the native API, revealed.
func wantStored(t *testing.T, e *testenv.Env, scope string, want map[string]string) {
	t.Helper()
	for name, value := range want {
		r := e.Do(t, "GET", "/v1/scopes/"+scope+"/-/vars/"+name+"?reveal=true", e.Admin, "")
		if got, _ := r.JSON(t)["value"].(string); got != value {
			t.Errorf("%s in %s: %d, %.80q, want %.80q", name, scope, r.Status, got, value)
		}
	}
}

func want(t *testing.T, out map[string]any, key string, v any) {
	t.Helper()
	got, _ := json.Marshal(out[key])
	exp, _ := json.Marshal(v)
	if !bytes.Equal(got, exp) {
		t.Errorf("%s = %s, want %s", key, got, exp)
	}
}

func allTrue(names []string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

func names() []string {
	out := make([]string, 0, len(values))
	for n := range values {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// updated is the name whose value the drivers update, adding " (updated)".
const updated = "SDK_QUOTES"

// storedValues are the values as the drivers leave them.
func storedValues() map[string]string {
	m := maps.Clone(values)
	m[updated] += " (updated)"
	return m
}

func TestApifyClient(t *testing.T) {
	for _, pkg := range []string{"apify-client", "apify-client-2-23"} {
		t.Run(pkg, func(t *testing.T) {
			e := newEnv(t)
			out := run(t, []string{"ENVY_URL=" + e.URL, "ENVY_TOKEN=" + e.Admin}, "apify.js", pkg)
			if out["error"] != nil {
				t.Fatalf("%s: %v", pkg, out)
			}
			want(t, out, "created", allTrue(names()))
			want(t, out, "got", allTrue(names()))
			want(t, out, "total", len(values))
			want(t, out, "names", names())
			want(t, out, "secret", map[string]bool{"created": true, "hasValue": false})
			want(t, out, "updated", true)
			want(t, out, "afterDelete", true)
			want(t, out, "duplicate", map[string]any{"status": 409, "type": "record-not-unique"})
			want(t, out, "badToken", map[string]any{"status": 401, "type": "token-not-valid"})
			stored := storedValues()
			wantStored(t, e, apify.ScopeOf("janedoe~sdk-actor", "0.1"), stored)
		})
	}
}

func TestAuth0(t *testing.T) {
	e := newEnv(t)
	// The auth0 SDKs speak https only: serve the same handler over TLS and
	// trust its certificate.
	ts := httptest.NewUnstartedServer(e.API.Handler())
	ts.StartTLS()
	t.Cleanup(ts.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	cert := ts.TLS.Certificates[0].Certificate[0]
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert}), 0o600); err != nil {
		t.Fatal(err)
	}
	domain := strings.TrimPrefix(ts.URL, "https://")
	// The SDKs' own sign-in: client credentials at /oauth/token, the
	// client secret an envy token named auth0-sdk.
	secret := e.Token(t, "auth0-sdk", envy.Grant{Scopes: "hooks/**", Actions: []envy.Action{envy.ActRead, envy.ActWrite}})
	for i, c := range []struct{ pkg, login string }{{"auth0", ""}, {"auth0-v4", ""}, {"auth0", "auth0-sdk"}, {"auth0-v4", "auth0-sdk"}} {
		pkg := c.pkg
		name := pkg
		if c.login != "" {
			name += "/client-credentials"
		}
		t.Run(name, func(t *testing.T) {
			hook := []string{"hook-v7", "hook-v4", "create", "create"}[i]
			if hook != "create" { // else the SDK creates it
				if r := e.Do(t, "PUT", "/v1/scopes/hooks/"+hook, e.Admin, `{}`); r.Status != 201 {
					t.Fatalf("creating the hook: %d %s", r.Status, r.Body)
				}
			}
			env := []string{"ENVY_DOMAIN=" + domain, "ENVY_TOKEN=" + e.Admin, "NODE_EXTRA_CA_CERTS=" + ca}
			if c.login != "" {
				env = []string{"ENVY_DOMAIN=" + domain, "ENVY_CLIENT_ID=" + c.login, "ENVY_TOKEN=" + secret, "NODE_EXTRA_CA_CERTS=" + ca}
			}
			out := run(t, env, "auth0.js", pkg, hook)
			if out["error"] != nil {
				t.Fatalf("%s: %v", pkg, out)
			}
			want(t, out, "names", names())
			want(t, out, "allHidden", true)
			want(t, out, "duplicate", 409)
			want(t, out, "missing", 404)
			want(t, out, "afterDelete", false)
			want(t, out, "badToken", 401)
			if hook == "create" {
				// The SDK created the hook, ran the secrets flow in it, then
				// renamed, disabled and deleted it (with its secrets).
				want(t, out, "listed", true)
				want(t, out, "gotName", "sdk-hook-"+pkg)
				want(t, out, "updated", "sdk-renamed-"+pkg)
				want(t, out, "updatedEnabled", false)
				want(t, out, "afterHookDelete", 404)
				return
			}
			stored := storedValues()
			wantStored(t, e, "hooks/"+hook, stored)
		})
	}
}

func TestOneLoginSDK(t *testing.T) {
	e := newEnv(t)
	out := run(t, []string{"ENVY_URL=" + e.URL, "ENVY_TOKEN=" + e.Admin}, "onelogin.js")
	if out["error"] != nil {
		t.Fatalf("%v", out)
	}
	want(t, out, "created", allTrue(names()))
	want(t, out, "got", allTrue(names()))
	all := names()
	want(t, out, "page1", map[string]any{"names": all[:2], "total": "6", "after": "bGltaXQ9MiZwYWdlPTI="})
	want(t, out, "page2", all[2:4])
	want(t, out, "names", all)
	want(t, out, "updated", true)
	want(t, out, "afterDelete", 404)
	want(t, out, "badToken", 401)
	stored := storedValues()
	last := lastName()
	delete(stored, last)
	wantStored(t, e, smarthooks.Scope, stored)
	r := e.Do(t, "GET", "/v1/scopes/"+smarthooks.Scope+"/-/vars/"+last, e.Admin, "")
	if r.Status != 404 {
		t.Errorf("%s not deleted: %d", last, r.Status)
	}
}

// lastName is the name the OneLogin driver deletes: the last in order.
func lastName() string {
	n := names()
	return n[len(n)-1]
}

func TestRecordedRequestsOfThePlatformsWithoutAnSDK(t *testing.T) {
	e := testenv.New(t, testenv.Options{Setup: func(api *envyhttp.Server, svc *service.Service) {
		usersecrets.Register(api, svc)
		containers.Register(api, svc)
	}})
	if r := e.Do(t, "PUT", "/v1/scopes/containers/cnt_sdktest", e.Admin, `{}`); r.Status != 201 {
		t.Fatalf("creating the container: %d %s", r.Status, r.Body)
	}
	out := run(t, []string{"ENVY_URL=" + e.URL, "ENVY_TOKEN=" + e.Admin}, "recorded.js")
	if out["error"] != nil {
		t.Fatalf("%v", out)
	}
	want(t, out, "secrets", allTrue(names()))
	want(t, out, "secretsList", map[string]any{"status": 200, "total": len(values), "names": names()})
	want(t, out, "secretsUpdate", 200)
	want(t, out, "secretsDelete", []any{204, 404, "not_found_error"})
	want(t, out, "containers", map[string]any{"merge": []any{200, "Environment variables updated"}, "set": 200, "list": true, "remove": []any{200, false}})
	stored := storedValues()
	delete(stored, "SDK_HASH")
	wantStored(t, e, "users/admin", stored)
	wantStored(t, e, "containers/cnt_sdktest", stored)
}
