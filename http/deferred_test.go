package http_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/crypto"
	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/internal/pgtest"
	"github.com/envy-dev/envy/internal/testenv"
	"github.com/envy-dev/envy/postgres"
	"github.com/envy-dev/envy/service"
)

// deafStore is a real PostgreSQL store whose notices reach nobody: what
// its server refuses right after a change made through another owes
// nothing to a notice.
type deafStore struct{ *postgres.Store }

func (deafStore) Subscribe(func(envy.Notice)) (cancel func()) { return func() {} }

// sharedService opens the PostgreSQL database at url as one more server
// would, with the master key in keyFile (made when missing).
func sharedService(t *testing.T, url, keyFile string, deaf bool) *service.Service {
	t.Helper()
	ctx := context.Background()
	st, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	mk, _, err := crypto.OpenMasterKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mk.Close() })
	keys, err := crypto.OpenKeyring(ctx, mk, st)
	if err != nil {
		t.Fatal(err)
	}
	var store envy.Store = st
	if deaf {
		store = deafStore{st}
	}
	svc := service.New(store, keys, service.Options{})
	t.Cleanup(svc.Close)
	return svc
}

// deafAPI starts two servers on one new PostgreSQL database: the first a
// service, with an admin caller's context; the second, whose store hears
// no notice, serving the native API with opts.
func deafAPI(t *testing.T, opts envyhttp.Options) (first *service.Service, admin context.Context, e *testenv.Env) {
	t.Helper()
	url := pgtest.NewDatabase(t)
	keyFile := filepath.Join(t.TempDir(), "master.key")
	first = sharedService(t, url, keyFile, false)
	deaf := sharedService(t, url, keyFile, true)
	ctx := context.Background()
	plain, _, err := first.Bootstrap(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	adminTok, err := first.Authenticate(ctx, plain)
	if err != nil {
		t.Fatal(err)
	}
	opts.Registry = prometheus.NewRegistry()
	ts := httptest.NewServer(envyhttp.NewServer(deaf, opts).Handler())
	t.Cleanup(ts.Close)
	return first, service.WithCaller(ctx, &service.Caller{Token: adminTok}), &testenv.Env{URL: ts.URL}
}

// TestATokenRevokedThroughAnotherServerCantWriteWhateverTheWriteDoes: a
// var write on PostgreSQL leaves the check of its cached token to the
// write's own transaction (envy.Write.LiveToken) rather than a round trip
// of its own. A token revoked through another server, with no notice to
// help, must still be refused (401, nothing written) whichever way the
// request ends: a write, one that changes nothing, a merge, a replace, a
// plan refused (an update of a var that does not exist), a body refused,
// a scope refused.
func TestATokenRevokedThroughAnotherServerCantWriteWhateverTheWriteDoes(t *testing.T) {
	first, admin, e := deafAPI(t, envyhttp.Options{})

	for i, c := range []struct {
		name, method, path, body string
		want                     int // with the token live
	}{
		{"a write", "PUT", "/v1/scopes/wr/app/-/vars/A", `{"value":"after"}`, 200},
		{"a write that changes nothing", "PUT", "/v1/scopes/wr/app/-/vars/A", `{"value":"before"}`, 200},
		{"a new var", "PUT", "/v1/scopes/wr/app/-/vars/B", `{"value":"after"}`, 201},
		{"a merge", "PATCH", "/v1/scopes/wr/app/-/vars", `{"A":"after","B":"after"}`, 200},
		{"a replace", "PUT", "/v1/scopes/wr/app/-/vars", `{"B":{"value":"after"}}`, 200},
		{"a merge that changes nothing", "PATCH", "/v1/scopes/wr/app/-/vars", `{"A":"before"}`, 200},
		{"an update of a var that does not exist", "PATCH", "/v1/scopes/wr/app/-/vars/MISSING", `{"value":"after"}`, 404},
		{"a body that is not valid", "PUT", "/v1/scopes/wr/app/-/vars/A", `{"value":7}`, 422},
		{"a scope it may not write", "PUT", "/v1/scopes/other/-/vars/A", `{"value":"after"}`, 404},
	} {
		tok, w, err := first.CreateToken(admin, envy.TokenInput{Name: "writer" + string(rune('a'+i)),
			Permissions: []envy.Grant{{Scopes: "wr/**", Actions: []envy.Action{envy.ActRead, envy.ActWrite, envy.ActReveal}}}})
		if err != nil {
			t.Fatal(err)
		}
		// The token cached on the deaf server, and the scope as it is.
		for range 2 {
			if r := e.Do(t, "PUT", "/v1/scopes/wr/app/-/vars/A", w, `{"value":"before"}`); r.Status/100 != 2 {
				t.Fatalf("%s: a write with the new token: %d %s", c.name, r.Status, r.Body)
			}
		}
		if writes := c.name == "a write" || c.name == "a new var" || c.name == "a merge" || c.name == "a replace"; !writes {
			// What it answers with the token live (it writes nothing): the
			// path the request takes below.
			if r := e.Do(t, c.method, c.path, w, c.body); r.Status != c.want {
				t.Fatalf("%s with the token live: %d %s, want %d", c.name, r.Status, r.Body, c.want)
			}
		}
		if err := first.RevokeToken(admin, tok.ID); err != nil {
			t.Fatal(err)
		}
		if r := e.Do(t, c.method, c.path, w, c.body); r.Status != 401 || !strings.Contains(string(r.Body), "revoked") {
			t.Errorf("%s with a token revoked through another server: %d %s, want 401 saying it is revoked", c.name, r.Status, r.Body)
		}
		vars, err := first.ListVars(admin, "wr/app", true)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vars.Items {
			if v.Name != "A" || v.Value.Reveal() != "before" {
				t.Errorf("%s: wr/app holds %s=%q after the revoked token's request", c.name, v.Name, v.Value.Reveal())
			}
		}
	}
}

// TestATokenRevokedThroughAnotherServerIsNotRateLimitedAsALiveOne: a var
// write whose token's check was left to it, refused by the per-token rate
// limit, checks the token first: a revoked token is 401, not 429 (and its
// refusal is not recorded as a live token's).
func TestATokenRevokedThroughAnotherServerIsNotRateLimitedAsALiveOne(t *testing.T) {
	first, admin, e := deafAPI(t, envyhttp.Options{RateLimit: 0.01})
	tok, w, err := first.CreateToken(admin, envy.TokenInput{Name: "writer",
		Permissions: []envy.Grant{{Scopes: "wr/**", Actions: []envy.Action{envy.ActRead, envy.ActWrite}}}})
	if err != nil {
		t.Fatal(err)
	}
	// The limit's burst: the token cached on the deaf server.
	if r := e.Do(t, "PUT", "/v1/scopes/wr/app/-/vars/A", w, `{"value":"before"}`); r.Status/100 != 2 {
		t.Fatalf("a write with the new token: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "PUT", "/v1/scopes/wr/app/-/vars/A", w, `{"value":"before"}`); r.Status != 429 {
		t.Fatalf("a second write at once with the token live: %d %s, want 429 (the limit this test relies on)", r.Status, r.Body)
	}
	if err := first.RevokeToken(admin, tok.ID); err != nil {
		t.Fatal(err)
	}
	if r := e.Do(t, "PUT", "/v1/scopes/wr/app/-/vars/A", w, `{"value":"after"}`); r.Status != 401 {
		t.Errorf("a write with the token revoked through another server, over its rate limit: %d %s, want 401", r.Status, r.Body)
	}
}
