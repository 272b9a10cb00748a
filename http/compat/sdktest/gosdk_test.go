package sdktest

// The platforms' official Go SDKs, from the module proxy at the versions
// in go.sum, drive the dialects unchanged, with their default sign-in:
// go-auth0 v1 and v3 (client credentials at /oauth/token, then hooks and
// their secrets) and onelogin-go-sdk v4 (its own login at
// /auth/oauth2/v2/token, then the Smart Hooks env vars, and its login
// again after a 401). The SDKs speak https to the platform's host; a test
// HTTPS server serves envy, and the SDKs reach it through their HTTP
// client option (go-auth0) or, where the SDK has none for its login
// (onelogin), through http.DefaultTransport.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	auth0v1 "github.com/auth0/go-auth0"
	mgmtv1 "github.com/auth0/go-auth0/management"
	mgmtv3 "github.com/auth0/go-auth0/v3/management"
	clientv3 "github.com/auth0/go-auth0/v3/management/client"
	corev3 "github.com/auth0/go-auth0/v3/management/core"
	optionv3 "github.com/auth0/go-auth0/v3/management/option"
	"github.com/onelogin/onelogin-go-sdk/v4/pkg/onelogin"
	"golang.org/x/oauth2"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/http/compat/smarthooks"
	"github.com/envy-dev/envy/internal/testenv"
)

// tlsServer serves e's handler over https. Its transport dials it for
// any host and checks its certificate (httptest's, for example.com), and
// records each request's path, bearer token and reply status.
type tlsServer struct {
	*httptest.Server
	env       *testenv.Env
	domain    string
	transport *recorder
}

type recorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	seen []seenRequest
}

type seenRequest struct {
	method, path, bearer string
	status               int
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := r.base.RoundTrip(req)
	s := seenRequest{method: req.Method, path: req.URL.Path, bearer: strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer ")}
	if res != nil {
		s.status = res.StatusCode
	}
	r.mu.Lock()
	r.seen = append(r.seen, s)
	r.mu.Unlock()
	return res, err
}

func (r *recorder) requests() []seenRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seen)
}

func newTLSServer(t *testing.T, e *testenv.Env) *tlsServer {
	t.Helper()
	ts := httptest.NewUnstartedServer(e.API.Handler())
	ts.StartTLS()
	t.Cleanup(ts.Close)
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	addr := ts.Listener.Addr().String()
	base := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "example.com"},
	}
	t.Cleanup(base.CloseIdleConnections)
	return &tlsServer{Server: ts, env: e, domain: strings.TrimPrefix(ts.URL, "https://"), transport: &recorder{base: base}}
}

func (s *tlsServer) client() *http.Client { return &http.Client{Transport: s.transport} }

// hookSecretsFlow is what TestAuth0GoSDKs checks of each SDK, whatever
// its API's shape.
type hookSecretsFlow struct {
	id              string
	secretsHidden   bool     // every secret read back as _VALUE_NOT_SHOWN
	secretNames     []string // as read back after the update
	duplicateStatus int      // adding a secret that exists
	listed          bool     // the hook in the list
	gotName         string   // read back after create
	renamed         string   // read back after the update
	enabled         bool     // read back after the update
	afterDelete     int      // reading the deleted hook
}

func TestAuth0GoSDKs(t *testing.T) {
	e := newEnv(t)
	s := newTLSServer(t, e)
	secret := e.Token(t, "auth0-go", envy.Grant{Scopes: "hooks/**", Actions: []envy.Action{envy.ActRead, envy.ActWrite}})
	for _, c := range []struct {
		name string
		flow func(t *testing.T, ctx context.Context, clientID, secret string) (hookSecretsFlow, error)
	}{
		{"go-auth0 v1", func(t *testing.T, ctx context.Context, id, secret string) (hookSecretsFlow, error) {
			return auth0V1Flow(t, ctx, s, id, secret)
		}},
		{"go-auth0 v3", func(t *testing.T, ctx context.Context, id, secret string) (hookSecretsFlow, error) {
			return auth0V3Flow(t, ctx, s, id, secret)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			// The token endpoint is reached through the context's client,
			// as golang.org/x/oauth2 documents.
			ctx := context.WithValue(t.Context(), oauth2.HTTPClient, s.client())
			before := len(s.transport.requests())
			f, err := c.flow(t, ctx, "auth0-go", secret)
			if err != nil {
				t.Fatal(err)
			}
			if !f.secretsHidden {
				t.Error("a secret was read back with its value, want _VALUE_NOT_SHOWN")
			}
			want := storedValues()
			delete(want, "SDK_HASH")
			if !slices.Equal(f.secretNames, slices.Sorted(maps.Keys(want))) {
				t.Errorf("secrets after the update and delete: %v", f.secretNames)
			}
			if f.duplicateStatus != 409 || !f.listed || f.gotName != "sdk-hook-"+strings.ReplaceAll(c.name, " ", "-") ||
				f.renamed != "sdk-renamed-"+strings.ReplaceAll(c.name, " ", "-") || f.enabled || f.afterDelete != 404 {
				t.Errorf("flow: %+v", f)
			}
			// The SDK signed in itself, once, and used the access token,
			// never the client secret, on the Management API.
			logins, apiCalls := 0, 0
			for _, r := range s.transport.requests()[before:] {
				switch {
				case r.path == "/oauth/token":
					logins++
					if r.status != 200 {
						t.Errorf("POST /oauth/token: %d", r.status)
					}
				case strings.HasPrefix(r.path, "/api/v2/"):
					apiCalls++
					if r.bearer == secret || r.bearer == "" {
						t.Errorf("%s %s sent the client secret or no token", r.method, r.path)
					}
				}
			}
			if logins != 1 || apiCalls < 8 {
				t.Errorf("%d sign-ins and %d Management API calls, want 1 and the flow's", logins, apiCalls)
			}
			// A wrong client secret: the SDK's first call fails with
			// Auth0's 401 from the token endpoint.
			// (v1 returns the token endpoint's error; v3 sends its call
			// without a token, which is answered Auth0's 401 too.)
			before = len(s.transport.requests())
			if _, err = c.flow(t, ctx, "auth0-go", envy.NewTokenValue()); err == nil || !strings.Contains(err.Error(), "401") && !strings.Contains(err.Error(), "access_denied") {
				t.Errorf("a wrong client secret: %v, want a 401", err)
			}
			wantSeen(t, s.transport.requests()[before:], "POST /oauth/token 401")
		})
	}
}

const hookScript = "module.exports = function(client, scope, audience, context, cb) { cb(null, {}); };"

func auth0V1Flow(t *testing.T, ctx context.Context, s *tlsServer, clientID, secret string) (hookSecretsFlow, error) {
	var f hookSecretsFlow
	m, err := mgmtv1.New(s.domain, mgmtv1.WithClientCredentials(ctx, clientID, secret), mgmtv1.WithClient(s.client()), mgmtv1.WithNoRetries())
	if err != nil {
		return f, err
	}
	h := &mgmtv1.Hook{Name: auth0v1.String("sdk-hook-go-auth0-v1"), Script: auth0v1.String(hookScript),
		TriggerID: auth0v1.String("credentials-exchange"), Enabled: auth0v1.Bool(true)}
	if err := m.Hook.Create(ctx, h); err != nil {
		return f, err
	}
	f.id = h.GetID()
	if err := m.Hook.CreateSecrets(ctx, f.id, values); err != nil {
		return f, err
	}
	if err := m.Hook.UpdateSecrets(ctx, f.id, mgmtv1.HookSecrets{updated: values[updated] + " (updated)"}); err != nil {
		return f, err
	}
	err = m.Hook.CreateSecrets(ctx, f.id, mgmtv1.HookSecrets{updated: "again"})
	var me mgmtv1.Error
	if errors.As(err, &me) {
		f.duplicateStatus = me.Status()
	}
	if err := m.Hook.RemoveSecrets(ctx, f.id, []string{"SDK_HASH"}); err != nil {
		return f, err
	}
	got, err := m.Hook.Secrets(ctx, f.id)
	if err != nil {
		return f, err
	}
	f.secretsHidden, f.secretNames = allHidden(got)
	checkStored(t, s, f.id)
	l, err := m.Hook.List(ctx)
	if err != nil {
		return f, err
	}
	for _, x := range l.Hooks {
		f.listed = f.listed || x.GetID() == f.id
	}
	r, err := m.Hook.Read(ctx, f.id)
	if err != nil {
		return f, err
	}
	f.gotName = r.GetName()
	if err := m.Hook.Update(ctx, f.id, &mgmtv1.Hook{Name: auth0v1.String("sdk-renamed-go-auth0-v1"), Enabled: auth0v1.Bool(false)}); err != nil {
		return f, err
	}
	if r, err = m.Hook.Read(ctx, f.id); err != nil {
		return f, err
	}
	f.renamed, f.enabled = r.GetName(), r.GetEnabled()
	if err := m.Hook.Delete(ctx, f.id); err != nil {
		return f, err
	}
	_, err = m.Hook.Read(ctx, f.id)
	if errors.As(err, &me) {
		f.afterDelete = me.Status()
	}
	return f, nil
}

func auth0V3Flow(t *testing.T, ctx context.Context, s *tlsServer, clientID, secret string) (hookSecretsFlow, error) {
	var f hookSecretsFlow
	m, err := clientv3.New(s.domain, optionv3.WithClientCredentials(ctx, clientID, secret), optionv3.WithHTTPClient(s.client()), optionv3.WithoutRetries())
	if err != nil {
		return f, err
	}
	enabled := true
	h, err := m.Hooks.Create(ctx, &mgmtv3.CreateHookRequestContent{Name: "sdk-hook-go-auth0-v3", Script: hookScript,
		TriggerID: mgmtv3.HookTriggerIDEnumCredentialsExchange, Enabled: &enabled})
	if err != nil {
		return f, err
	}
	f.id = h.GetID()
	if err := m.Hooks.Secrets.Create(ctx, f.id, values); err != nil {
		return f, err
	}
	if err := m.Hooks.Secrets.Update(ctx, f.id, map[string]string{updated: values[updated] + " (updated)"}); err != nil {
		return f, err
	}
	err = m.Hooks.Secrets.Create(ctx, f.id, map[string]string{updated: "again"})
	var ae *corev3.APIError
	if errors.As(err, &ae) {
		f.duplicateStatus = ae.StatusCode
	}
	if err := m.Hooks.Secrets.Delete(ctx, f.id, []string{"SDK_HASH"}); err != nil {
		return f, err
	}
	got, err := m.Hooks.Secrets.Get(ctx, f.id)
	if err != nil {
		return f, err
	}
	f.secretsHidden, f.secretNames = allHidden(got)
	checkStored(t, s, f.id)
	page, err := m.Hooks.List(ctx, &mgmtv3.ListHooksRequestParameters{})
	if err != nil {
		return f, err
	}
	for _, x := range page.Results {
		f.listed = f.listed || x.GetID() == f.id
	}
	r, err := m.Hooks.Get(ctx, f.id, &mgmtv3.GetHookRequestParameters{})
	if err != nil {
		return f, err
	}
	f.gotName = r.GetName()
	name, off := "sdk-renamed-go-auth0-v3", false
	if _, err := m.Hooks.Update(ctx, f.id, &mgmtv3.UpdateHookRequestContent{Name: &name, Enabled: &off}); err != nil {
		return f, err
	}
	if r, err = m.Hooks.Get(ctx, f.id, &mgmtv3.GetHookRequestParameters{}); err != nil {
		return f, err
	}
	f.renamed, f.enabled = r.GetName(), r.GetEnabled()
	if err := m.Hooks.Delete(ctx, f.id); err != nil {
		return f, err
	}
	_, err = m.Hooks.Get(ctx, f.id, &mgmtv3.GetHookRequestParameters{})
	if errors.As(err, &ae) {
		f.afterDelete = ae.StatusCode
	}
	return f, nil
}

// allHidden reports whether every secret reads as _VALUE_NOT_SHOWN, and
// their names, sorted.
func allHidden(got map[string]string) (bool, []string) {
	hidden := true
	var names []string
	for n, v := range got {
		hidden = hidden && v == "_VALUE_NOT_SHOWN"
		names = append(names, n)
	}
	slices.Sort(names)
	return hidden, names
}

// checkStored checks the hook's values through the native API: as the
// SDK sent them, the update applied, SDK_HASH removed.
func checkStored(t *testing.T, s *tlsServer, hookID string) {
	t.Helper()
	want := storedValues()
	delete(want, "SDK_HASH")
	wantStored(t, s.env, "hooks/"+hookID, want)
	if r := s.env.Do(t, "GET", "/v1/scopes/hooks/"+hookID+"/-/vars/SDK_HASH", s.env.Admin, ""); r.Status != 404 {
		t.Errorf("SDK_HASH of hook %s after its removal: %d", hookID, r.Status)
	}
}

func TestOneLoginGoSDK(t *testing.T) {
	e := newEnv(t)
	s := newTLSServer(t, e)
	// The SDK's login and its HTTP client both use http.DefaultTransport:
	// it is the one way to point the SDK at envy. Tests of this package
	// do not run in parallel.
	orig := http.DefaultTransport
	http.DefaultTransport = platformHost{suffix: ".onelogin.com", platform: s.transport, other: orig}
	t.Cleanup(func() { http.DefaultTransport = orig })
	secret := e.Token(t, "onelogin-go", envy.Grant{Scopes: smarthooks.Scope, Actions: []envy.Action{envy.ActRead, envy.ActWrite}})
	t.Setenv("ONELOGIN_CLIENT_ID", "onelogin-go")
	t.Setenv("ONELOGIN_CLIENT_SECRET", secret)
	t.Setenv("ONELOGIN_SUBDOMAIN", "envy-test")

	sdk, err := onelogin.NewOneloginSDK() // signs in
	if err != nil {
		t.Fatalf("the SDK's login: %v", err)
	}
	ids := map[string]string{}
	for _, n := range names() {
		out, err := sdk.CreateEnvironmentVariable(map[string]string{"name": n, "value": values[n]})
		if err != nil {
			t.Fatalf("create %s: %v", n, err)
		}
		ids[n], _ = out.(map[string]any)["id"].(string)
	}
	if _, err := sdk.UpdateEnvironmentVariable(ids[updated], map[string]string{"value": values[updated] + " (updated)"}); err != nil {
		t.Fatalf("update: %v", err)
	}
	list, err := sdk.ListEnvironmentVariables()
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	var listed []string
	for _, x := range list.([]any) {
		m := x.(map[string]any)
		if _, ok := m["value"]; ok {
			t.Errorf("the list shows %s's value", m["name"])
		}
		listed = append(listed, m["name"].(string))
	}
	slices.Sort(listed)
	if !slices.Equal(listed, names()) {
		t.Errorf("listed %v, want %v", listed, names())
	}
	got, err := sdk.GetEnvironmentVariable(ids["SDK_HASH"])
	if err != nil || got.(map[string]any)["name"] != "SDK_HASH" {
		t.Errorf("get: %v, %v", got, err)
	}
	if _, err := sdk.DeleteEnvironmentVariable(ids["SDK_HASH"]); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := sdk.GetEnvironmentVariable(ids["SDK_HASH"]); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("get after delete: %v, want the SDK's 404", err)
	}
	stored := storedValues()
	delete(stored, "SDK_HASH")
	wantStored(t, e, smarthooks.Scope, stored)

	// The access token is revoked (as it would expire): the SDK's next
	// call is a 401, after which the SDK signs in again and resends the
	// same request, with the token it had set on it (so it is a 401
	// again: the SDK's own doing) and, for a POST, without its body (the
	// first send read it). envy answers each with OneLogin's 401, and
	// the resent POST writes nothing; the SDK's next calls carry the new
	// token and are served.
	revokeSignIns(t, e, "onelogin-go")
	before := len(s.transport.requests())
	_, err = sdk.CreateEnvironmentVariable(map[string]string{"name": "SDK_AFTER_401", "value": "v"})
	if err == nil {
		t.Fatal("a POST resent without its body after a 401 was answered as done")
	}
	seen := s.transport.requests()[before:]
	wantSeen(t, seen, "POST 401", "POST /auth/oauth2/v2/token 200")
	t.Logf("the POST resent after the new login: %+v", seen[len(seen)-1])
	if last := seen[len(seen)-1]; last.path != "/api/2/hooks/envs" || last.status != 0 && last.status != 401 {
		t.Errorf("the POST resent without its body: %+v, want OneLogin's 401 (or the SDK's client giving up on the body)", last)
	}
	if r := e.Do(t, "GET", "/v1/scopes/"+smarthooks.Scope+"/-/vars/SDK_AFTER_401", e.Admin, ""); r.Status != 404 {
		t.Errorf("SDK_AFTER_401 after the resend: %d %s, want nothing written", r.Status, r.Body)
	}
	if _, err := sdk.CreateEnvironmentVariable(map[string]string{"name": "SDK_AFTER_401", "value": "v"}); err != nil {
		t.Fatalf("a POST after the SDK's new login: %v", err)
	}
	wantStored(t, e, smarthooks.Scope, map[string]string{"SDK_AFTER_401": "v"})
	if _, err := sdk.GetEnvironmentVariable(ids[updated]); err != nil {
		t.Fatalf("a GET after the SDK's new login: %v", err)
	}

	// A wrong client secret: the SDK's login fails.
	t.Setenv("ONELOGIN_CLIENT_SECRET", envy.NewTokenValue())
	if _, err := onelogin.NewOneloginSDK(); err == nil {
		t.Error("the SDK signed in with a wrong client secret")
	}
}

// platformHost sends the requests to the platform's hosts to envy (the
// platform transport), the others (the test's own) as before.
type platformHost struct {
	suffix          string
	platform, other http.RoundTripper
}

func (p platformHost) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasSuffix(req.URL.Hostname(), p.suffix) {
		return p.platform.RoundTrip(req)
	}
	return p.other.RoundTrip(req)
}

// revokeSignIns revokes the access tokens that sign-ins with the client
// secret token named client minted, through the native API.
func revokeSignIns(t *testing.T, e *testenv.Env, client string) {
	t.Helper()
	r := e.Do(t, "GET", "/v1/tokens?limit=1000", e.Admin, "")
	items, _ := r.JSON(t)["items"].([]any)
	n := 0
	for _, x := range items {
		tok := x.(map[string]any)
		name, _ := tok["name"].(string)
		if strings.HasPrefix(name, "signin:") && strings.HasSuffix(name, ":"+client) && tok["revoked_at"] == nil {
			if r := e.Do(t, "DELETE", "/v1/tokens/"+tok["id"].(string), e.Admin, ""); r.Status >= 300 {
				t.Fatalf("revoking %s: %d %s", name, r.Status, r.Body)
			}
			n++
		}
	}
	if n == 0 {
		t.Fatalf("no sign-in token of %s to revoke: %s", client, r.Body)
	}
}

// wantSeen checks that the requests seen hold, in order, each of want:
// "METHOD STATUS" for a Smart Hooks call, or "METHOD PATH STATUS".
func wantSeen(t *testing.T, seen []seenRequest, want ...string) {
	t.Helper()
	i := 0
	for _, r := range seen {
		if i == len(want) {
			break
		}
		w := strings.Fields(want[i])
		ok := r.method == w[0]
		if len(w) == 3 {
			ok = ok && r.path == w[1] && w[2] == strconv.Itoa(r.status)
		} else {
			ok = ok && strings.HasPrefix(r.path, "/api/2/hooks/envs") && w[1] == strconv.Itoa(r.status)
		}
		if ok {
			i++
		}
	}
	if i < len(want) {
		t.Errorf("requests %+v; want, in order, %v (met %d)", seen, want, i)
	}
}
