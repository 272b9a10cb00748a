package http_test

import (
	"context"
	"encoding/json"
	"fmt"
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

// TestAnEnvReadThroughADeafServerIsCurrentRecordedOnceAndRefusedRevoked:
// the resolved env on PostgreSQL is answered from the cached token and
// tree, and its reveal's audit entry is recorded only if, as the append
// records it, the token is live and every dep at the revision it was
// resolved from (AuthenticateReveal). With no notice to help: a change to
// the scope or to a scope it inherits, made through another server, is
// read at once; the reveal made from the old tree is not recorded (one
// entry per answered read, none withdrawn); a token revoked through the
// other server is refused (401), its reveal unrecorded, and a refusal
// for what it may not do becomes one for its revocation.
func TestAnEnvReadThroughADeafServerIsCurrentRecordedOnceAndRefusedRevoked(t *testing.T) {
	first, admin, e := deafAPI(t, envyhttp.Options{})
	set := func(scope, name, value string) { t.Helper(); setThrough(t, first, admin, scope, name, value) }
	set("rd/base", "B", "b1")
	set("rd/app", "A", "a1")
	set("hidden", "H", "h1")
	set("rd/leaky", "L", "l1")
	set("rd/healed", "L", "l2")
	set("rd/leaky2", "L", "l3") // never read before the token is revoked: its tree not cached
	for scope, parent := range map[string]string{"rd/app": "rd/base", "rd/leaky": "hidden", "rd/healed": "hidden", "rd/leaky2": "hidden"} {
		inheritThrough(t, first, admin, scope, parent)
	}
	// It may reveal rd/leaky, but not hidden, which rd/leaky inherits.
	tok, reader, err := first.CreateToken(admin, envy.TokenInput{Name: "reader",
		Permissions: []envy.Grant{{Scopes: "rd/**", Actions: []envy.Action{envy.ActRead, envy.ActReveal}}}})
	if err != nil {
		t.Fatal(err)
	}
	answered := 0
	read := func(step, want string) {
		t.Helper()
		env := envOf(t, e, "rd/app", reader, step)
		answered++
		if got := "A=" + env["A"] + " B=" + env["B"]; got != want {
			t.Errorf("%s: the deaf server answers %s, want %s", step, got, want)
		}
	}
	// The token and the tree cached on the deaf server.
	read("first read", "A=a1 B=b1")
	read("cached", "A=a1 B=b1")
	set("rd/app", "A", "a2")
	read("after a change of the scope through the other server", "A=a2 B=b1")
	set("rd/base", "B", "b2")
	read("after a change of the scope it inherits", "A=a2 B=b2")
	read("cached again", "A=a2 B=b2")
	for _, scope := range []string{"rd/leaky", "rd/healed"} {
		if r := e.Do(t, "GET", "/v1/scopes/"+scope+"/-/env", reader, ""); r.Status != 403 {
			t.Fatalf("an env the token may not reveal, live: %d %s", r.Status, r.Body)
		}
	}
	// A refusal worked out from the cached tree is not the answer once
	// the tree changed through the other server: rd/healed no longer
	// inherits hidden.
	none := []string{}
	if _, _, err := first.PutScope(admin, "rd/healed", envy.ScopeInput{Inherits: &none}, envy.Cond{}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if r := e.Do(t, "GET", "/v1/scopes/rd/healed/-/env", reader, ""); r.Status != 200 || !strings.Contains(string(r.Body), `"L":"l2"`) {
			t.Errorf("rd/healed once it no longer inherits hidden: %d %s, want 200 with L=l2", r.Status, r.Body)
		}
		answered++
	}

	if err := first.RevokeToken(admin, tok.ID); err != nil {
		t.Fatal(err)
	}
	// The refusals first, of a tree not cached (read checked, the token
	// left unchecked) and of one cached: once a request found the token
	// revoked, the deaf server no longer has it cached.
	for _, path := range []string{"/v1/scopes/rd/leaky2/-/env", "/v1/scopes/rd/leaky/-/env", "/v1/scopes/rd/app/-/env"} {
		if r := e.Do(t, "GET", path, reader, ""); r.Status != 401 || !strings.Contains(string(r.Body), "revoked") {
			t.Errorf("GET %s with a token revoked through another server: %d %s, want 401 saying it is revoked", path, r.Status, r.Body)
		}
	}
	// A reveal of another token through the deaf server: answered once
	// its entry is durable, after the entries queued before it.
	_, flusher, err := first.CreateToken(admin, envy.TokenInput{Name: "flusher",
		Permissions: []envy.Grant{{Scopes: "rd/**", Actions: []envy.Action{envy.ActRead, envy.ActReveal}}}})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if r := e.Do(t, "GET", "/v1/scopes/rd/app/-/env", flusher, ""); r.Status != 200 {
			t.Fatalf("a read with another token: %d %s", r.Status, r.Body)
		}
	}

	page, err := first.Audit(admin, envy.AuditListQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var reveals, withdrawn, forbidden int64
	for _, it := range page.Items {
		if it.TokenID != tok.ID {
			continue
		}
		switch {
		case it.Action == envy.AuditReveal && it.Status == envy.OutcomeOK:
			reveals += it.Count
		case it.Action == envy.AuditRevealWithdrawn:
			withdrawn += it.Count
		case it.Status == envy.OutcomeForbidden:
			forbidden += it.Count
		}
	}
	if reveals != int64(answered) || withdrawn != 0 {
		t.Errorf("the audit log holds %d reveals and %d withdrawn for %d reads answered, want as many and none", reveals, withdrawn, answered)
	}
	if forbidden != 2 {
		t.Errorf("the audit log holds %d refusals for what the token may not do, want 2 (while it was live, and its tree so)", forbidden)
	}
}

// TestAnEnvWithReferencesReadThroughADeafServerIsOfOneState: g/app and
// g/db both inherit g/base, and g/app refers to a var of g/db. The deaf
// server answers g/app from its cached, unchecked tree while it reads
// g/db's tree checked: after a change of g/base through the other server
// the two disagree on g/base. The reply must be the new state, not the
// cached tree's inherited value beside g/db's new revision (whose check
// would pass), and no resolution mixing the two may be kept for later
// readers.
func TestAnEnvWithReferencesReadThroughADeafServerIsOfOneState(t *testing.T) {
	first, admin, e := deafAPI(t, envyhttp.Options{})
	set := func(scope, name, value string) { t.Helper(); setThrough(t, first, admin, scope, name, value) }
	set("g/base", "B", "b1")
	set("g/db", "D", "d1")
	set("g/app", "R", "${g/db:D}")
	for _, scope := range []string{"g/app", "g/db"} {
		inheritThrough(t, first, admin, scope, "g/base")
	}
	_, reader, err := first.CreateToken(admin, envy.TokenInput{Name: "reader",
		Permissions: []envy.Grant{{Scopes: "g/**", Actions: []envy.Action{envy.ActRead, envy.ActReveal}}}})
	if err != nil {
		t.Fatal(err)
	}
	read := func(step, want string) {
		t.Helper()
		env := envOf(t, e, "g/app", reader, step)
		if got := "B=" + env["B"] + " R=" + env["R"]; got != want {
			t.Errorf("%s: the deaf server answers %s, want %s", step, got, want)
		}
	}
	read("first read", "B=b1 R=d1")
	read("cached", "B=b1 R=d1")
	set("g/base", "B", "b2")
	for i := range 3 {
		read(fmt.Sprintf("read %d after a change of the scope both inherit", i+1), "B=b2 R=d1")
	}
	set("g/db", "D", "d2")
	read("after a change of the scope it refers to", "B=b2 R=d2")
}

// setThrough sets a var through the service svc, as the caller in ctx.
func setThrough(t *testing.T, svc *service.Service, ctx context.Context, scope, name, value string) {
	t.Helper()
	v := envy.NewSensitive(value)
	if _, _, err := svc.SetVar(ctx, scope, name, envy.VarInput{Value: &v}, envy.SetOptions{}); err != nil {
		t.Fatal(err)
	}
}

// inheritThrough makes scope inherit parent alone, through svc.
func inheritThrough(t *testing.T, svc *service.Service, ctx context.Context, scope, parent string) {
	t.Helper()
	parents := []string{parent}
	if _, _, err := svc.PutScope(ctx, scope, envy.ScopeInput{Inherits: &parents}, envy.Cond{}); err != nil {
		t.Fatal(err)
	}
}

// envOf reads the resolved env of scope with token; step names the read
// in a failure.
func envOf(t *testing.T, e *testenv.Env, scope, token, step string) map[string]string {
	t.Helper()
	r := e.Do(t, "GET", "/v1/scopes/"+scope+"/-/env", token, "")
	var env struct {
		Env map[string]string `json:"env"`
	}
	if err := json.Unmarshal(r.Body, &env); err != nil || r.Status != 200 {
		t.Fatalf("%s: %d %s", step, r.Status, r.Body)
	}
	return env.Env
}
