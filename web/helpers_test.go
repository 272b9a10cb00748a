package web

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/internal/testenv"
	"github.com/envy-dev/envy/service"
)

// testEnv is a real server over SQLite and a real keyring in a temp dir,
// the native API with the dashboard mounted, served over loopback.
type testEnv struct {
	URL   string
	Admin string // the bootstrap admin token
	Svc   *service.Service
	Web   *Handler
	Clock *clock
	TLS   bool
	Env   *testenv.Env // the server under it (its store and data dir)
}

// clock is the sessions' clock, moved by tests.
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

func newTestEnv(t testing.TB, useTLS bool, opts Options) *testEnv {
	t.Helper()
	return newTestEnvWith(t, useTLS, opts, testenv.Options{})
}

// newTestEnvWith is newTestEnv with the test server's options (the API's,
// a store wrapper); its Setup is the dashboard's.
func newTestEnvWith(t testing.TB, useTLS bool, opts Options, to testenv.Options) *testEnv {
	t.Helper()
	c := &clock{}
	if opts.Now == nil {
		opts.Now = c.Now
	}
	if opts.StatusEvery == 0 {
		opts.StatusEvery = 200 * time.Millisecond
	}
	var h *Handler
	to.Setup = func(api *envyhttp.Server, svc *service.Service) {
		h = Mount(api, svc, opts)
	}
	env := testenv.New(t, to)
	url := env.URL
	if useTLS {
		ts := httptest.NewTLSServer(env.API.Handler())
		t.Cleanup(func() {
			env.Svc.CloseWatches()
			ts.Close()
		})
		url = ts.URL
	}
	return &testEnv{URL: url, Admin: env.Admin, Svc: env.Svc, Web: h, Clock: c, TLS: useTLS, Env: env}
}

// asToken returns a context whose caller is the given token, for setting
// things up through the service as a client of the API would.
func (e *testEnv) asToken(t testing.TB, token string) context.Context {
	t.Helper()
	ctx := service.WithCaller(context.Background(), &service.Caller{RequestID: "test", Client: "127.0.0.1"})
	tok, err := e.Svc.Authenticate(ctx, token)
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	return service.WithCaller(ctx, &service.Caller{Token: tok, RequestID: "test", Client: "127.0.0.1"})
}

// mint creates a token with the given grants ("glob actions,…").
func (e *testEnv) mint(t testing.TB, name string, grants ...string) (envy.Token, string) {
	t.Helper()
	gs, fields := parseGrants(strings.Join(grants, "\n"))
	if len(fields) > 0 {
		t.Fatalf("grants: %v", fields)
	}
	tok, plain, err := e.Svc.CreateToken(e.asToken(t, e.Admin), envy.TokenInput{Name: name, Permissions: gs})
	if err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
	return tok, plain
}

// browser is a cookie-keeping HTTP client that does not follow redirects.
type browser struct {
	t      testing.TB
	base   string
	client *http.Client
}

func (e *testEnv) browser(t testing.TB) *browser {
	jar, _ := cookiejar.New(nil)
	client := &http.Client{
		Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
		Timeout: 30 * time.Second,
	}
	if e.TLS {
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	}
	return &browser{t: t, base: e.URL, client: client}
}

type page struct {
	Status int
	Header http.Header
	Body   string
}

func (b *browser) do(method, path string, form url.Values, hdr map[string]string) page {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return page{Status: res.StatusCode, Header: res.Header, Body: string(data)}
}

func (b *browser) get(path string) page { return b.do("GET", path, nil, nil) }

func (b *browser) post(path string, form url.Values) page { return b.do("POST", path, form, nil) }

var hiddenRE = regexp.MustCompile(`name="(csrf|signin)" value="([^"]+)"`)

// field returns the value of the hidden field name in a page.
func field(t testing.TB, body, name string) string {
	t.Helper()
	for _, m := range hiddenRE.FindAllStringSubmatch(body, -1) {
		if m[1] == name {
			return m[2]
		}
	}
	t.Fatalf("no hidden field %s in page:\n%s", name, body)
	return ""
}

// signIn signs in with token and returns the session's CSRF token.
func (b *browser) signIn(token string) string {
	b.t.Helper()
	p := b.get("/ui/signin")
	res := b.post("/ui/signin", url.Values{"signin": {field(b.t, p.Body, "signin")}, "token": {token}})
	if res.Status != http.StatusSeeOther || res.Header.Get("Location") != "/ui/scopes" {
		b.t.Fatalf("sign in: status %d, Location %q\n%s", res.Status, res.Header.Get("Location"), res.Body)
	}
	scopes := b.get("/ui/scopes")
	if scopes.Status != http.StatusOK {
		b.t.Fatalf("scopes after sign-in: %d\n%s", scopes.Status, scopes.Body)
	}
	return field(b.t, scopes.Body, "csrf")
}

// regexp1 returns the first group of re's first match in s.
func regexp1(t testing.TB, s, re string) string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no match of %s in:\n%s", re, s)
	}
	return m[1]
}

func envyVar(value string, secret bool) envy.VarInput {
	return envy.VarInput{Value: ptr(envy.NewSensitive(value)), Secret: ptr(secret)}
}

func setOpts() envy.SetOptions { return envy.SetOptions{} }

func auditQuery(scope string) envy.AuditListQuery { return envy.AuditListQuery{Scope: scope} }

func consumerInput(rev int64, host string) envy.ConsumerInput {
	return envy.ConsumerInput{Revision: rev, Hostname: host, PID: 4242}
}

// servePage serves one HTML page on another loopback origin and returns
// its URL.
func servePage(t testing.TB, html string) string {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, html)
	}))
	t.Cleanup(ts.Close)
	return ts.URL
}

// newEvilSite serves a page whose button posts a form to target, on
// another port of 127.0.0.1: another origin but the same site, so the
// browser sends the SameSite=Strict cookie and only the CSRF defences
// stand in the way.
func newEvilSite(t testing.TB, target string) string {
	return servePage(t, `<!doctype html><title>Win a prize</title>
<form method="post" action="`+target+`"><input type="hidden" name="path" value="evil/scope">
<input type="hidden" name="csrf" value="guessed"><button id="go" type="submit">Claim</button></form>`)
}

func envyDesc(desc string) envy.VarInput { return envy.VarInput{Description: &desc} }

// varValue reads a var of acme/app as the admin, revealed.
func varValue(t testing.TB, e *testEnv, name string) string {
	t.Helper()
	v, err := e.Svc.GetVar(e.asToken(t, e.Admin), "acme/app", name, true)
	if err != nil {
		t.Fatalf("GetVar %s: %v", name, err)
	}
	return v.Value.Reveal()
}

// vars reads a scope's own vars as the admin, revealed, by name.
func vars(t testing.TB, e *testEnv, scope string) map[string]envy.VarView {
	t.Helper()
	l, err := e.Svc.ListVars(e.asToken(t, e.Admin), scope, true)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]envy.VarView{}
	for _, v := range l.Items {
		out[v.Name] = v
	}
	return out
}

func actxOf(testing.TB) context.Context {
	return service.WithCaller(context.Background(), &service.Caller{RequestID: "test", Client: "127.0.0.1"})
}
