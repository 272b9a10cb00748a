package web

import (
	"bytes"
	"context"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/crypto"
	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/internal/pgtest"
	"github.com/envy-dev/envy/postgres"
	"github.com/envy-dev/envy/service"
)

// startServer starts one more server, with the dashboard, over store and
// the master key in keyFile: a server of its own (keyring, service, API,
// dashboard), sharing nothing in memory with any other, as another
// process, or the same one after a restart, would.
func startServer(t *testing.T, store envy.Store, keyFile string, opts Options) *testEnv {
	t.Helper()
	ctx := context.Background()
	mk, err := crypto.ReadMasterKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mk.Close() })
	keys, err := crypto.OpenKeyring(ctx, mk, store.(crypto.KeyStore))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keys.Close() })
	svc := service.New(store, keys, service.Options{})
	api := envyhttp.NewServer(svc, envyhttp.Options{Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry()})
	c := &clock{}
	if opts.Now == nil {
		opts.Now = c.Now
	}
	h := Mount(api, svc, opts)
	ts := httptest.NewServer(api.Handler())
	t.Cleanup(func() {
		svc.CloseWatches()
		ts.Close()
		svc.Close()
	})
	return &testEnv{URL: ts.URL, Svc: svc, Web: h, Clock: c}
}

// on returns a browser with b's cookies that sends its requests to e.
func (b *browser) on(e *testEnv) *browser {
	return &browser{t: b.t, base: e.URL, client: b.client}
}

// sessionID returns the id the browser's session cookie holds.
func (b *browser) sessionID() string {
	u, _ := url.Parse(b.base + Prefix)
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == sessionCookie {
			return c.Value
		}
	}
	b.t.Fatal("no session cookie")
	return ""
}

// testSessionsAcrossServers checks that a session made on a is known to b
// (which may be a after a restart), ends on both when b signs out, and
// ends when its token is revoked through either; holds reports whether
// the database holds a string anywhere in its sessions.
func testSessionsAcrossServers(t *testing.T, a, b *testEnv, store envy.Store, admin string, holds func(s string) bool) {
	t.Run("a session made on one server is known to the other, and signing out on it ends it on both", func(t *testing.T) {
		onA := a.browser(t)
		onA.signIn(admin)
		onB := onA.on(b)
		p := onB.get("/ui/scopes")
		if p.Status != http.StatusOK {
			t.Fatalf("the other server: %d %q", p.Status, p.Header.Get("Location"))
		}
		csrf := field(t, p.Body, "csrf")
		// A form made on one server is taken by the other: the CSRF token
		// is the session's, wherever it is served.
		if res := onB.post("/ui/scopes", url.Values{"csrf": {csrf}, "path": {"made/onb"}}); res.Status != http.StatusSeeOther {
			t.Fatalf("a form on the other server: %d\n%s", res.Status, res.Body)
		}
		if res := onA.post("/ui/scopes", url.Values{"csrf": {csrf}, "path": {"made/ona"}}); res.Status != http.StatusSeeOther {
			t.Fatalf("the same form back on the first server: %d\n%s", res.Status, res.Body)
		}
		id := onA.sessionID()
		if res := onB.post("/ui/signout", url.Values{"csrf": {csrf}}); res.Status != http.StatusSeeOther {
			t.Fatalf("sign out on the other server: %d", res.Status)
		}
		if _, err := store.GetSession(t.Context(), hashOf(id)); envy.ErrorCode(err) != envy.ENotFound {
			t.Fatalf("the session is still stored after signing out: %v", err)
		}
		// The first server refuses the cookie, even sent again as it was.
		replay := a.browser(t)
		u, _ := url.Parse(a.URL + Prefix)
		replay.client.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: id, Path: Prefix}})
		res := replay.get("/ui/scopes")
		if res.Status != http.StatusSeeOther || !strings.Contains(res.Header.Get("Location"), "why=expired") {
			t.Fatalf("the first server after signing out on the other: %d %q", res.Status, res.Header.Get("Location"))
		}
	})

	t.Run("the store holds the session's id hash and sealed token, never the id or the token", func(t *testing.T) {
		_, plain := a.mint(t, "sealed", "** read")
		br := a.browser(t)
		csrf := br.signIn(plain)
		id := br.sessionID()
		row, err := store.GetSession(t.Context(), hashOf(id))
		if err != nil {
			t.Fatalf("the session is not stored: %v", err)
		}
		if len(row.Sealed) == 0 || bytes.Contains(row.Sealed, []byte(plain)) {
			t.Fatalf("the sealed token: %q", row.Sealed)
		}
		if !holds(csrf) { // kept as is: the scan would see a token in clear
			t.Fatal("the scan of the database does not find the CSRF token it holds")
		}
		for _, s := range []string{plain, id} {
			if holds(s) {
				t.Fatalf("the database holds %q in clear", s)
			}
		}
	})

	t.Run("revoking the token through the other server ends the session on its next request", func(t *testing.T) {
		tok, plain := a.mint(t, "revoked", "** read")
		onA := a.browser(t)
		onA.signIn(plain)
		if p := onA.on(b).get("/ui/scopes"); p.Status != http.StatusOK {
			t.Fatalf("the other server before revocation: %d", p.Status)
		}
		id := onA.sessionID()
		if err := b.Svc.RevokeToken(b.asToken(t, admin), tok.ID); err != nil {
			t.Fatal(err)
		}
		res := onA.get("/ui/scopes")
		if res.Status != http.StatusSeeOther || !strings.Contains(res.Header.Get("Location"), "why=ended") {
			t.Fatalf("after revocation: %d %q", res.Status, res.Header.Get("Location"))
		}
		if _, err := store.GetSession(t.Context(), hashOf(id)); envy.ErrorCode(err) != envy.ENotFound {
			t.Fatalf("the session is still stored after its token was revoked: %v", err)
		}
	})
}

// hashOf is the store's key of a session id.
func hashOf(id string) []byte { return envy.HashToken(id) }

func TestSessionsLiveInTheStore(t *testing.T) {
	a := newTestEnv(t, false, Options{})
	keyFile := filepath.Join(a.Env.Dir, "master.key")
	holds := func(s string) bool { // in any file of the database, WAL included
		found := false
		filepath.WalkDir(a.Env.Dir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasPrefix(d.Name(), "envy.db") {
				b, _ := os.ReadFile(path)
				found = found || bytes.Contains(b, []byte(s))
			}
			return nil
		})
		return found
	}
	t.Run("two servers over one store", func(t *testing.T) {
		b := startServer(t, a.Env.Store, keyFile, Options{})
		b.Admin = a.Admin
		testSessionsAcrossServers(t, a, b, a.Env.Store, a.Admin, holds)
	})
	t.Run("a restart keeps the session", func(t *testing.T) {
		br := a.browser(t)
		br.signIn(a.Admin)
		restarted := startServer(t, a.Env.Store, keyFile, Options{})
		if p := br.on(restarted).get("/ui/scopes"); p.Status != http.StatusOK {
			t.Fatalf("after a restart: %d %q", p.Status, p.Header.Get("Location"))
		}
	})
}

func TestSessionsAreSharedByServersOnOnePostgresDatabase(t *testing.T) {
	ctx := context.Background()
	dbURL := pgtest.NewDatabase(t)
	keyFile := filepath.Join(t.TempDir(), "master.key")
	mk, _, err := crypto.OpenMasterKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	mk.Close()
	open := func() *postgres.Store {
		st, err := postgres.Open(ctx, dbURL, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	stA := open()
	a := startServer(t, stA, keyFile, Options{})
	admin, _, err := a.Svc.Bootstrap(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	a.Admin = admin
	b := startServer(t, open(), keyFile, Options{})
	b.Admin = admin
	holds := func(s string) bool {
		conn, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var n int
		if err := conn.QueryRow(ctx, `SELECT COUNT(*) FROM sessions WHERE position($1::text IN csrf) > 0
			OR position($2::bytea IN sealed) > 0 OR position($2::bytea IN id_hash) > 0`, s, []byte(s)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n > 0
	}
	testSessionsAcrossServers(t, a, b, stA, admin, holds)
	t.Run("a restart keeps the session", func(t *testing.T) {
		br := a.browser(t)
		br.signIn(admin)
		restarted := startServer(t, open(), keyFile, Options{})
		if p := br.on(restarted).get("/ui/scopes"); p.Status != http.StatusOK {
			t.Fatalf("after a restart: %d %q", p.Status, p.Header.Get("Location"))
		}
	})
}

func TestSessionExpiryHoldsAcrossServers(t *testing.T) {
	opts := Options{SessionIdle: 10 * time.Minute, SessionMax: time.Hour}
	a := newTestEnv(t, false, opts)
	opts.Now = a.Clock.Now // one clock for both servers
	b := startServer(t, a.Env.Store, filepath.Join(a.Env.Dir, "master.key"), opts)
	onA := a.browser(t)
	onA.signIn(a.Admin)
	onB := onA.on(b)
	id := onA.sessionID()
	usedAt := func() time.Time {
		t.Helper()
		row, err := a.Env.Store.GetSession(t.Context(), hashOf(id))
		if err != nil {
			t.Fatal(err)
		}
		return row.UsedAt
	}
	signedIn := usedAt()

	// A use is written at most about once a minute.
	a.Clock.Advance(30 * time.Second)
	if p := onB.get("/ui/scopes"); p.Status != http.StatusOK {
		t.Fatalf("half a minute later: %d", p.Status)
	}
	if got := usedAt(); !got.Equal(signedIn) {
		t.Fatalf("a use half a minute after the last one written was written: %v, then %v", signedIn, got)
	}
	a.Clock.Advance(31 * time.Second)
	if p := onB.get("/ui/scopes"); p.Status != http.StatusOK {
		t.Fatalf("a minute later: %d", p.Status)
	}
	if got := usedAt(); !got.After(signedIn) {
		t.Fatalf("a use a minute after the last one written was not written: %v", got)
	}

	// Used on B only, every 9 minutes: the session stays alive on A,
	// which has not seen it for longer than the idle time.
	for range 3 {
		a.Clock.Advance(9 * time.Minute)
		if p := onB.get("/ui/scopes"); p.Status != http.StatusOK {
			t.Fatalf("used on B: %d", p.Status)
		}
	}
	if p := onA.get("/ui/scopes"); p.Status != http.StatusOK {
		t.Fatalf("A, after uses on B only: %d %q", p.Status, p.Header.Get("Location"))
	}

	// Idle on both: ended on both.
	a.Clock.Advance(11 * time.Minute)
	if res := onB.get("/ui/scopes"); res.Status != http.StatusSeeOther || !strings.Contains(res.Header.Get("Location"), "why=expired") {
		t.Fatalf("idle: %d %q", res.Status, res.Header.Get("Location"))
	}
	if _, err := a.Env.Store.GetSession(t.Context(), hashOf(id)); envy.ErrorCode(err) != envy.ENotFound {
		t.Fatalf("the expired session is still stored: %v", err)
	}

	// Past the maximum, however used, on whichever server.
	onA = a.browser(t)
	onA.signIn(a.Admin)
	onB = onA.on(b)
	for i := range 7 {
		a.Clock.Advance(9 * time.Minute)
		res := []*browser{onA, onB}[i%2].get("/ui/scopes")
		if i < 6 && res.Status != http.StatusOK {
			t.Fatalf("after %d minutes of use: %d", 9*(i+1), res.Status)
		}
		if i == 6 && (res.Status != http.StatusSeeOther || !strings.Contains(res.Header.Get("Location"), "why=expired")) {
			t.Fatalf("past the maximum: %d %q", res.Status, res.Header.Get("Location"))
		}
	}
}

func TestExpiredSessionsAreDeletedOnSignIn(t *testing.T) {
	a := newTestEnv(t, false, Options{SessionIdle: 10 * time.Minute, SessionMax: time.Hour})
	old := a.browser(t)
	old.signIn(a.Admin)
	id := old.sessionID()
	a.Clock.Advance(11 * time.Minute)
	a.browser(t).signIn(a.Admin) // someone else signs in
	if _, err := a.Env.Store.GetSession(t.Context(), hashOf(id)); envy.ErrorCode(err) != envy.ENotFound {
		t.Fatalf("the expired session is still stored after a sign-in: %v", err)
	}
	if len(a.Web.sessions.m) != 1 {
		t.Fatalf("this server keeps %d sessions, want the new one", len(a.Web.sessions.m))
	}
}

// TestExpiredSessionsAreForgottenWithoutASignIn: a server where no one
// signs in still drops, at most once a minute, what it keeps of expired
// sessions, and deletes them from the store.
func TestExpiredSessionsAreForgottenWithoutASignIn(t *testing.T) {
	a := newTestEnv(t, false, Options{SessionIdle: 10 * time.Minute, SessionMax: time.Hour})
	old, fresh := a.browser(t), a.browser(t)
	old.signIn(a.Admin)
	fresh.signIn(a.Admin)
	id := old.sessionID()
	a.Clock.Advance(5 * time.Minute)
	fresh.get("/ui/scopes")
	a.Clock.Advance(6 * time.Minute) // old: 11 minutes unused
	fresh.get("/ui/scopes")
	if n := len(a.Web.sessions.m); n != 1 {
		t.Errorf("this server keeps %d sessions, want only the live one", n)
	}
	if _, err := a.Env.Store.GetSession(t.Context(), hashOf(id)); envy.ErrorCode(err) != envy.ENotFound {
		t.Errorf("the expired session is still stored: %v", err)
	}
}

// TestTheSweepOutlivesTheRequestThatRunsIt: the once-a-minute deletion
// of expired sessions runs in whichever request comes; that browser going
// away does not cancel it.
func TestTheSweepOutlivesTheRequestThatRunsIt(t *testing.T) {
	a := newTestEnv(t, false, Options{SessionIdle: 10 * time.Minute, SessionMax: time.Hour})
	old := a.browser(t)
	old.signIn(a.Admin)
	id := old.sessionID()
	a.Clock.Advance(11 * time.Minute)
	gone, cancel := context.WithCancel(t.Context())
	cancel()
	a.Web.sessions.sweep(gone, a.Clock.Now())
	if _, err := a.Env.Store.GetSession(t.Context(), hashOf(id)); envy.ErrorCode(err) != envy.ENotFound {
		t.Fatalf("the expired session is still stored: %v", err)
	}
}

func TestAnImportPreviewIsAppliedOnlyOnTheServerThatMadeIt(t *testing.T) {
	a := newTestEnv(t, false, Options{})
	b := startServer(t, a.Env.Store, filepath.Join(a.Env.Dir, "master.key"), Options{})
	if _, _, err := a.Svc.SetVar(a.asToken(t, a.Admin), "acme/web", "KEEP", envyVar("1", false), setOpts()); err != nil {
		t.Fatal(err)
	}
	onA := a.browser(t)
	csrf := onA.signIn(a.Admin)
	const pasted = "pasted-value-never-stored-4242"
	preview := onA.post("/ui/scopes/acme/web/-/import", url.Values{"csrf": {csrf}, "dotenv": {"NEW=" + pasted + "\n"}, "mode": {"replace"}})
	if preview.Status != http.StatusOK {
		t.Fatalf("preview: %d\n%s", preview.Status, preview.Body)
	}
	id := regexp1(t, preview.Body, `name="id" value="([^"]+)"`)
	onB := onA.on(b)
	if res := onB.post("/ui/scopes/acme/web/-/import/apply", url.Values{"csrf": {csrf}, "id": {id}}); res.Status != http.StatusSeeOther {
		t.Fatalf("apply on the other server: %d", res.Status)
	}
	if p := onB.get("/ui/scopes/acme/web"); !strings.Contains(p.Body, "no longer pending") || !strings.Contains(p.Body, "another server") {
		t.Fatalf("the other server does not say why it refuses:\n%s", p.Body)
	}
	if l, _ := a.Svc.ListVars(a.asToken(t, a.Admin), "acme/web", false); len(l.Items) != 1 {
		t.Fatalf("the other server imported: %+v", l.Items)
	}
	// The preview's values stay in memory: nothing of them in the database.
	filepath.WalkDir(a.Env.Dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, _ := os.ReadFile(path); bytes.Contains(b, []byte(pasted)) {
				t.Errorf("%s holds a pasted value", d.Name())
			}
		}
		return nil
	})
	// On the server that made it, the preview applies.
	if res := onA.post("/ui/scopes/acme/web/-/import/apply", url.Values{"csrf": {csrf}, "id": {id}}); res.Status != http.StatusSeeOther {
		t.Fatalf("apply: %d", res.Status)
	}
	if l, _ := a.Svc.ListVars(a.asToken(t, a.Admin), "acme/web", false); len(l.Items) != 1 || l.Items[0].Name != "NEW" {
		t.Fatalf("after the import: %+v", l.Items)
	}
}
