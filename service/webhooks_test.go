package service_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/pgtest"
	"github.com/envy-dev/envy/internal/testenv"
	"github.com/envy-dev/envy/service"
	"github.com/envy-dev/envy/sqlite"
	"github.com/envy-dev/envy/webhook"
)

// received is one request a receiver accepted, its signature verified
// with the Standard Webhooks library.
type received struct {
	ID     string
	Body   []byte
	Header http.Header
	Msg    struct {
		Type string `json:"type"`
		Data struct {
			Scope    string          `json:"scope"`
			Source   string          `json:"source"`
			Revision int64           `json:"revision"`
			Vars     []envy.EventVar `json:"vars"`
			Actor    struct {
				TokenID string `json:"token_id"`
				Name    string `json:"name"`
			} `json:"actor"`
		} `json:"data"`
	}
}

// receiver is a real HTTP receiver on loopback. respond decides each
// request's fate (nil: 204); verifiers verify every request, and one that
// fails verification is a test failure.
type receiver struct {
	t   *testing.T
	srv *httptest.Server

	mu        sync.Mutex
	secrets   []string
	got       []received
	attempts  int
	respond   func(n int) (status int, hang bool)
	hangUntil chan struct{}
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, hangUntil: make(chan struct{})}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	t.Cleanup(func() { close(r.hangUntil) })
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.attempts++
	n, respond, secrets := r.attempts, r.respond, r.secrets
	r.mu.Unlock()
	if len(secrets) == 0 {
		r.t.Errorf("the receiver has no secret to verify with")
	}
	for _, s := range secrets {
		v, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			r.t.Errorf("secret %q: %v", "whsec_…", err)
			continue
		}
		if err := v.Verify(body, req.Header); err != nil {
			r.t.Errorf("a request does not verify: %v", err)
		}
	}
	if respond != nil {
		status, hang := respond(n)
		if hang {
			select {
			case <-req.Context().Done():
			case <-r.hangUntil:
			}
			return
		}
		if status != 0 {
			w.WriteHeader(status)
			return
		}
	}
	var rc received
	rc.ID, rc.Body, rc.Header = req.Header.Get("webhook-id"), body, req.Header.Clone()
	if err := json.Unmarshal(body, &rc.Msg); err != nil {
		r.t.Errorf("body %s: %v", body, err)
	}
	r.mu.Lock()
	r.got = append(r.got, rc)
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) setSecrets(s ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secrets = s
}

// wait returns the requests accepted once there are n, failing the test
// after a generous deadline.
func (r *receiver) wait(n int) []received {
	r.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r.mu.Lock()
		got := append([]received(nil), r.got...)
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("the receiver got %d messages, want %d", len(got), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// fastHooks are delivery options for tests: retries within milliseconds.
func fastHooks(sender envy.WebhookSender) service.WebhookOptions {
	return service.WebhookOptions{Sender: sender, AllowPrivate: true, RetryBase: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond,
		Poll: 20 * time.Millisecond, Lease: 10 * time.Second}
}

// newHookService returns a Service over a new SQLite store that delivers
// webhooks with o, and an admin's context.
func newHookService(t *testing.T, o service.WebhookOptions) (*service.Service, context.Context) {
	t.Helper()
	return newHookServiceOn(t, openSQLite(t), o)
}

// openSQLite opens a new SQLite store, closed when the test ends.
func openSQLite(t *testing.T) *sqlite.Store {
	t.Helper()
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "envy.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// newHookServiceOn is newHookService over store.
func newHookServiceOn(t *testing.T, store envy.Store, o service.WebhookOptions) (*service.Service, context.Context) {
	t.Helper()
	return newHookServiceKeyed(t, store, filepath.Join(t.TempDir(), "master.key"), o)
}

// newHookServiceKeyed is newHookServiceOn under the master key in keyFile
// (made when missing): servers sharing a store share it.
func newHookServiceKeyed(t *testing.T, store envy.Store, keyFile string, o service.WebhookOptions) (*service.Service, context.Context) {
	t.Helper()
	var under envy.Store = store
	if g, ok := store.(*gatedRotation); ok {
		under = g.hookStore
	}
	keys := openKeyring(t, under, keyFile)
	svc := service.New(store, keys, service.Options{Webhooks: o})
	t.Cleanup(svc.Close)
	admin := &envy.Token{ID: "tok_admin", Name: "admin", Permissions: []envy.Grant{{Scopes: "**", Actions: []envy.Action{envy.ActAdmin}}}}
	return svc, service.WithCaller(context.Background(), &service.Caller{Token: admin})
}

func setv(t *testing.T, svc *service.Service, ctx context.Context, scope, name, value string, secret bool) envy.WriteInfo {
	t.Helper()
	v := envy.NewSensitive(value)
	_, info, err := svc.SetVar(ctx, scope, name, envy.VarInput{Value: &v, Secret: &secret}, envy.SetOptions{})
	if err != nil {
		t.Fatalf("set %s %s: %v", scope, name, err)
	}
	return info
}

func createHook(t *testing.T, svc *service.Service, ctx context.Context, url, scopes string, events ...string) envy.WebhookSecret {
	t.Helper()
	ws, err := svc.CreateWebhook(ctx, envy.WebhookInput{URL: url, Scopes: scopes, Events: events})
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

func TestWebhooksDeliverSignedEventsInOrderThroughFailuresAndTimeouts(t *testing.T) {
	rc := newReceiver(t)
	// The first attempt fails with 500, the second hangs past the time-out,
	// the third with 503; then every one goes through.
	rc.respond = func(n int) (int, bool) {
		switch n {
		case 1:
			return 500, false
		case 2:
			return 0, true
		case 3:
			return 503, false
		}
		return 0, false
	}
	svc, ctx := newHookService(t, fastHooks(webhook.NewSender(webhook.Options{AllowPrivate: true, Timeout: 300 * time.Millisecond})))
	h := createHook(t, svc, ctx, rc.srv.URL, "acme/**", envy.EventVarsChanged, envy.EventScopeDeleted)
	rc.setSecrets(h.Secret.Reveal())

	var revs []int64
	revs = append(revs, setv(t, svc, ctx, "acme/web", "PORT", "canary-port-qz", false).Revision)
	revs = append(revs, setv(t, svc, ctx, "acme/web", "TOKEN", "canary-value-9f2", true).Revision)
	revs = append(revs, setv(t, svc, ctx, "acme/web", "PORT", "9090", false).Revision)
	setv(t, svc, ctx, "other/web", "PORT", "1", false) // not covered
	if _, err := svc.DeleteScope(ctx, "acme/web", envy.Cond{}); err != nil {
		t.Fatal(err)
	}
	got := rc.wait(4)
	for i, want := range []struct {
		typ, change, name string
		secret            bool
	}{{envy.EventVarsChanged, envy.VarAdded, "PORT", false}, {envy.EventVarsChanged, envy.VarAdded, "TOKEN", true}, {envy.EventVarsChanged, envy.VarChanged, "PORT", false}, {envy.EventScopeDeleted, "", "", false}} {
		m := got[i].Msg
		if m.Type != want.typ || m.Data.Scope != "acme/web" || m.Data.Source != "acme/web" || m.Data.Actor.TokenID != "tok_admin" || m.Data.Actor.Name != "admin" {
			t.Fatalf("message %d: %s", i, got[i].Body)
		}
		if i < 3 && (m.Data.Revision != revs[i] || len(m.Data.Vars) != 1 || m.Data.Vars[0] != (envy.EventVar{Name: want.name, Change: want.change, Secret: want.secret})) {
			t.Fatalf("message %d, want revision %d and %s %s: %s", i, revs[i], want.name, want.change, got[i].Body)
		}
		if strings.Contains(string(got[i].Body), "canary-value-9f2") || strings.Contains(string(got[i].Body), "canary-port-qz") {
			t.Fatalf("a payload holds a value: %s", got[i].Body)
		}
	}
	time.Sleep(100 * time.Millisecond) // a duplicate would show by now; the count below is not a timing
	if n := rc.count(); n != 4 {
		t.Fatalf("the receiver accepted %d messages, want 4 (each once)", n)
	}
	page, err := svc.Deliveries(ctx, h.Webhook.ID, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	first := page.Items[len(page.Items)-1]
	if first.Status != envy.DeliveryDelivered || first.Attempts != 4 || first.ResponseCode != 204 || first.LastError != "" {
		t.Fatalf("the first delivery after three failures: %+v", first)
	}
	for _, d := range page.Items[:len(page.Items)-1] {
		if d.Status != envy.DeliveryDelivered || d.Attempts != 1 {
			t.Fatalf("a later delivery: %+v", d)
		}
	}
}

func TestAnInheritedOrReferencedChangeFiresTheCoveringWebhook(t *testing.T) {
	rc := newReceiver(t)
	svc, ctx := newHookService(t, fastHooks(webhook.NewSender(webhook.Options{AllowPrivate: true})))
	setv(t, svc, ctx, "shared/base", "LOG", "info", false)
	setv(t, svc, ctx, "shared/db", "URL", "postgres://db", false)
	inherits := []string{"shared/base"}
	if _, _, err := svc.PutScope(ctx, "acme/web", envy.ScopeInput{Inherits: &inherits}, envy.Cond{}); err != nil {
		t.Fatal(err)
	}
	setv(t, svc, ctx, "acme/web", "DB", "${shared/db:URL}", false)
	h := createHook(t, svc, ctx, rc.srv.URL, "acme/**", envy.EventVarsChanged)
	rc.setSecrets(h.Secret.Reveal())
	base := setv(t, svc, ctx, "shared/base", "LOG", "debug", false)
	got := rc.wait(1)
	if m := got[0].Msg; m.Data.Scope != "acme/web" || m.Data.Source != "shared/base" || m.Data.Revision != base.Revision || m.Data.Vars[0].Name != "LOG" {
		t.Fatalf("an inherited change: %s", got[0].Body)
	}
	setv(t, svc, ctx, "shared/db", "URL", "postgres://db2", false)
	got = rc.wait(2)
	if m := got[1].Msg; m.Data.Scope != "acme/web" || m.Data.Source != "shared/db" {
		t.Fatalf("a referenced change: %s", got[1].Body)
	}
	setv(t, svc, ctx, "shared/other", "X", "1", false) // nothing covered depends on it
	setv(t, svc, ctx, "acme/web", "Y", "1", false)
	got = rc.wait(3)
	if m := got[2].Msg; m.Data.Source != "acme/web" || len(got) != 3 {
		t.Fatalf("after an unrelated change: %d messages, the last %s", len(got), got[len(got)-1].Body)
	}
}

// Deleting a scope is refused while another inherits it, not while
// another's values refer to it: the referring scope's env changes (its
// references no longer resolve). A webhook covering the referring scope
// hears of it as of a removal of the deleted scope's vars; the deleted
// scope's own webhook hears scope.deleted, as before. Watchers and the
// caches of the referring scope follow too.
func TestDeletingAReferencedScopeFiresTheReferringScopesWebhooks(t *testing.T) {
	deletedReferencedScope(t, openSQLite(t))
}

func TestDeletingAReferencedScopeFiresTheReferringScopesWebhooksOnPostgreSQL(t *testing.T) {
	deletedReferencedScope(t, openShared(t, pgtest.NewDatabase(t)))
}

func deletedReferencedScope(t *testing.T, store envy.Store) {
	dependent, own := newReceiver(t), newReceiver(t)
	svc, ctx := newHookServiceOn(t, store, fastHooks(webhook.NewSender(webhook.Options{AllowPrivate: true})))
	setv(t, svc, ctx, "shared/db", "URL", "postgres://db", false)
	setv(t, svc, ctx, "shared/db", "PASSWORD", "canary-secret-7d1", true)
	setv(t, svc, ctx, "acme/web", "DB", "${shared/db:URL}", false)
	setv(t, svc, ctx, "acme/api", "PORT", "1", false) // refers to nothing
	h := createHook(t, svc, ctx, dependent.srv.URL, "acme/**", envy.EventVarsChanged, envy.EventScopeDeleted, envy.EventScopeChanged)
	dependent.setSecrets(h.Secret.Reveal())
	h2 := createHook(t, svc, ctx, own.srv.URL, "shared/**", envy.EventVarsChanged, envy.EventScopeDeleted)
	own.setSecrets(h2.Secret.Reveal())

	env, err := svc.Env(ctx, "acme/web") // cached from here on
	if err != nil || len(env.Vars) != 1 || env.Vars[0].Value.Reveal() != "postgres://db" {
		t.Fatalf("env before: %+v, %v", env, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ch, err := svc.Watch(wctx, "acme/web", env.Revision)
	if err != nil {
		t.Fatal(err)
	}
	del, err := svc.DeleteScope(ctx, "shared/db", envy.Cond{})
	if err != nil {
		t.Fatalf("deleting a scope that is only referred to: %v", err)
	}
	// The watcher of the referring scope hears of the deletion, and its
	// env (cached before) no longer resolves the reference.
	if ev := recv(t, ch, 20*time.Second, "an event for the deletion of a referenced scope"); ev.Revision != del.Revision {
		t.Fatalf("event at revision %d, want the deletion's %d", ev.Revision, del.Revision)
	}
	if _, err := svc.Env(ctx, "acme/web"); envy.AsError(err) == nil || envy.AsError(err).Fields[0].Type != "broken_reference" {
		t.Fatalf("the env after its referenced scope was deleted: %v, want a broken reference", err)
	}
	after := setv(t, svc, ctx, "acme/web", "Y", "1", false) // what comes after it
	got := dependent.wait(1)
	m := got[0].Msg
	if m.Type != envy.EventVarsChanged || m.Data.Scope != "acme/web" || m.Data.Source != "shared/db" || m.Data.Revision != del.Revision ||
		m.Data.Actor.Name != "admin" || len(m.Data.Vars) != 2 ||
		m.Data.Vars[0] != (envy.EventVar{Name: "PASSWORD", Change: envy.VarRemoved, Secret: true}) ||
		m.Data.Vars[1] != (envy.EventVar{Name: "URL", Change: envy.VarRemoved}) {
		t.Fatalf("the referring scope's webhook, first message: %s; want vars.changed of acme/web from shared/db at revision %d, its vars removed", got[0].Body, del.Revision)
	}
	got = dependent.wait(2)
	if m := got[1].Msg; m.Data.Scope != "acme/web" || m.Data.Revision != after.Revision {
		t.Fatalf("the referring scope's webhook, second message: %s", got[1].Body)
	}
	gotOwn := own.wait(1)
	if m := gotOwn[0].Msg; m.Type != envy.EventScopeDeleted || m.Data.Scope != "shared/db" || m.Data.Source != "shared/db" || len(m.Data.Vars) != 0 {
		t.Fatalf("the deleted scope's webhook: %s", gotOwn[0].Body)
	}
	for _, b := range append([][]byte{gotOwn[0].Body}, got[0].Body) {
		if strings.Contains(string(b), "canary-secret-7d1") || strings.Contains(string(b), "postgres://db") {
			t.Fatalf("a payload holds a value: %s", b)
		}
	}
	time.Sleep(100 * time.Millisecond) // a stray message would show by now; the counts below are not timings
	if dependent.count() != 2 || own.count() != 1 {
		t.Fatalf("messages: %d to the referring scope's webhook (want 2), %d to the deleted scope's (want 1)", dependent.count(), own.count())
	}
}

// A referenced scope may hold no var of its own and pass on those it
// inherits: its deletion changes the referring scopes' envs all the same,
// and their webhooks hear of it, with no var of its own to name.
func TestDeletingAReferencedScopeWithoutVarsOfItsOwnFiresToo(t *testing.T) {
	rc := newReceiver(t)
	svc, ctx := newHookServiceOn(t, openSQLite(t), fastHooks(webhook.NewSender(webhook.Options{AllowPrivate: true})))
	setv(t, svc, ctx, "shared/base", "URL", "postgres://db", false)
	inherits := []string{"shared/base"}
	if _, _, err := svc.PutScope(ctx, "shared/db", envy.ScopeInput{Inherits: &inherits}, envy.Cond{}); err != nil {
		t.Fatal(err)
	}
	setv(t, svc, ctx, "acme/web", "DB", "${shared/db:URL}", false)
	h := createHook(t, svc, ctx, rc.srv.URL, "acme/**", envy.EventVarsChanged)
	rc.setSecrets(h.Secret.Reveal())
	del, err := svc.DeleteScope(ctx, "shared/db", envy.Cond{})
	if err != nil {
		t.Fatal(err)
	}
	got := rc.wait(1)
	if m := got[0].Msg; m.Type != envy.EventVarsChanged || m.Data.Scope != "acme/web" || m.Data.Source != "shared/db" || m.Data.Revision != del.Revision || len(m.Data.Vars) != 0 {
		t.Fatalf("the referring scope's webhook: %s; want vars.changed of acme/web from shared/db at revision %d", got[0].Body, del.Revision)
	}
}

func TestARolledBackChangeSendsNothing(t *testing.T) {
	rc := newReceiver(t)
	svc, ctx := newHookService(t, fastHooks(webhook.NewSender(webhook.Options{AllowPrivate: true})))
	first := setv(t, svc, ctx, "acme/web", "A", "1", false)
	h := createHook(t, svc, ctx, rc.srv.URL, "**", envy.EventVarsChanged)
	rc.setSecrets(h.Secret.Reveal())
	v := envy.NewSensitive("2")
	// Refused by its precondition: nothing commits, so nothing is sent.
	if _, _, err := svc.SetVar(ctx, "acme/web", "A", envy.VarInput{Value: &v}, envy.SetOptions{Cond: envy.Cond{IfRevision: first.Revision + 100}}); envy.ErrorCode(err) != envy.EPrecondition {
		t.Fatalf("a stale If-Match: %v", err)
	}
	// Refused by validation inside the plan (a reference that can't be).
	bad := envy.NewSensitive("${nope:/X}")
	if _, _, err := svc.SetVar(ctx, "acme/web", "B", envy.VarInput{Value: &bad}, envy.SetOptions{}); err == nil {
		t.Fatal("a bad reference was written")
	}
	sentinel := setv(t, svc, ctx, "acme/web", "C", "3", false)
	got := rc.wait(1)
	time.Sleep(100 * time.Millisecond)
	if n := rc.count(); n != 1 || got[0].Msg.Data.Revision != sentinel.Revision {
		t.Fatalf("got %d messages, the first %s; want only the sentinel's", n, got[0].Body)
	}
}

func TestPrivateTargetsAreRefusedUnlessAllowed(t *testing.T) {
	rc := newReceiver(t)
	o := fastHooks(webhook.NewSender(webhook.Options{}))
	o.AllowPrivate = false
	svc, ctx := newHookService(t, o)
	for _, u := range []string{rc.srv.URL, "https://127.0.0.1/x", "https://10.0.0.5/x", "https://[::1]/x", "https://localhost/x", "ftp://example.com/x", "https://user:pw@example.com/x",
		// Internal ranges beyond loopback and private, each refused where
		// it is dialled too (webhook.Private), and a link-local address
		// with its zone.
		"https://100.64.0.1/x", "https://0.0.0.1/x", "https://198.18.0.1/x", "https://[64:ff9b::7f00:1]/x", "https://[2002:7f00:1::]/x",
		"https://[fe80::1%25eth0]/x", "https://[::ffff:10.0.0.1]/x"} {
		_, err := svc.CreateWebhook(ctx, envy.WebhookInput{URL: u, Scopes: "**", Events: []string{envy.EventVarsChanged}})
		e := envy.AsError(err)
		if e == nil || e.Code != envy.EInvalid || len(e.Fields) != 1 || e.Fields[0].Loc != "body.url" {
			t.Fatalf("CreateWebhook(%s) = %v, want invalid body.url", u, err)
		}
	}
	// Allowed by the URL's check (a server with --webhook-allow-private),
	// the address is still checked where it is dialled.
	svc2, ctx2 := newHookService(t, fastHooks(webhook.NewSender(webhook.Options{})))
	h2 := createHook(t, svc2, ctx2, rc.srv.URL, "**", envy.EventVarsChanged)
	setv(t, svc2, ctx2, "acme/web", "A", "1", false)
	deadline := time.Now().Add(20 * time.Second)
	for {
		page, err := svc2.Deliveries(ctx2, h2.Webhook.ID, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) == 1 && page.Items[0].Attempts > 0 {
			if d := page.Items[0]; !strings.Contains(d.LastError, "refused to connect to 127.0.0.1") || d.ResponseCode != 0 || d.Status != envy.DeliveryPending {
				t.Fatalf("delivery to loopback: %+v", d)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no attempt was made")
		}
		time.Sleep(20 * time.Millisecond)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.attempts != 0 {
		t.Fatalf("the private receiver was reached %d times", rc.attempts)
	}
}

func TestARotatedSecretSignsBesideTheOldOneDuringTheOverlap(t *testing.T) {
	rc := newReceiver(t)
	svc, ctx := newHookService(t, fastHooks(webhook.NewSender(webhook.Options{AllowPrivate: true})))
	h := createHook(t, svc, ctx, rc.srv.URL, "**", envy.EventVarsChanged)
	old := h.Secret.Reveal()
	rot, err := svc.UpdateWebhook(ctx, h.Webhook.ID, envy.WebhookUpdate{RotateSecret: true, Overlap: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	if rot.Secret.Reveal() == "" || rot.Secret.Reveal() == old {
		t.Fatal("the rotation made no new secret")
	}
	// The receiver verifies with each secret alone: both must sign.
	rc.setSecrets(old)
	setv(t, svc, ctx, "a", "X", "1", false)
	rc.wait(1)
	rc.setSecrets(rot.Secret.Reveal())
	setv(t, svc, ctx, "a", "X", "2", false)
	rc.wait(2)
	// A rotation without overlap: the old one no longer signs.
	rot2, err := svc.UpdateWebhook(ctx, h.Webhook.ID, envy.WebhookUpdate{RotateSecret: true, Overlap: "0s"})
	if err != nil {
		t.Fatal(err)
	}
	rc.setSecrets(rot2.Secret.Reveal())
	setv(t, svc, ctx, "a", "X", "3", false)
	got := rc.wait(3)
	if v, _ := standardwebhooks.NewWebhook(old); v.Verify(got[2].Body, got[2].Header) == nil {
		t.Fatal("the old secret still signs after a rotation without overlap")
	}
	if _, err := svc.UpdateWebhook(ctx, h.Webhook.ID, envy.WebhookUpdate{Overlap: "1h"}); envy.AsError(err) == nil || envy.AsError(err).Fields[0].Loc != "body.overlap" {
		t.Fatalf("an overlap without a rotation: %v", err)
	}
}

func TestAWebhookIsDisabledAfterFailuresInARowAndResumed(t *testing.T) {
	rc := newReceiver(t)
	rc.respond = func(int) (int, bool) { return 500, false }
	o := fastHooks(webhook.NewSender(webhook.Options{AllowPrivate: true}))
	o.GiveUpAfter, o.MaxFailures = time.Nanosecond, 2 // every failure is final
	svc, ctx := newHookService(t, o)
	h := createHook(t, svc, ctx, rc.srv.URL, "**", envy.EventVarsChanged)
	rc.setSecrets(h.Secret.Reveal())
	for i := range 3 {
		setv(t, svc, ctx, "a", "X", string(rune('1'+i)), false)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		w, err := svc.GetWebhook(ctx, h.Webhook.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !w.DisabledAt.IsZero() {
			if w.Failures != 2 {
				t.Fatalf("disabled with %d failures", w.Failures)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not disabled: %+v", w)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st := svc.WebhookStats(ctx); st.Disabled != 1 || st.Failed != 2 {
		t.Fatalf("stats %+v", st)
	}
	rc.mu.Lock()
	rc.respond = nil
	rc.mu.Unlock()
	resume := false
	if _, err := svc.UpdateWebhook(ctx, h.Webhook.ID, envy.WebhookUpdate{Paused: &resume}); err != nil {
		t.Fatal(err)
	}
	if got := rc.wait(1); got[0].Msg.Data.Vars[0].Name != "X" {
		t.Fatalf("after resuming: %s", got[0].Body)
	}
}

func TestARolloutPausedEventFiresTheWebhooksThatNameIt(t *testing.T) {
	rc := newReceiver(t)
	svc, ctx := newHookService(t, fastHooks(webhook.NewSender(webhook.Options{AllowPrivate: true})))
	h := createHook(t, svc, ctx, rc.srv.URL, "acme/**", envy.EventRolloutPaused)
	rc.setSecrets(h.Secret.Reveal())
	setv(t, svc, ctx, "acme/web", "A", "1", false) // vars.changed: not named
	if err := svc.AddEvent(ctx, envy.EventRolloutPaused, "other/web"); err != nil {
		t.Fatal(err)
	}
	if err := svc.AddEvent(ctx, envy.EventRolloutPaused, "acme/web"); err != nil {
		t.Fatal(err)
	}
	got := rc.wait(1)
	time.Sleep(100 * time.Millisecond)
	if m := got[0].Msg; rc.count() != 1 || m.Type != envy.EventRolloutPaused || m.Data.Scope != "acme/web" || m.Data.Actor.Name != "admin" {
		t.Fatalf("%d messages, the first %s", rc.count(), got[0].Body)
	}
}

func TestTheSweepDeletesDeliveriesDoneLongAgo(t *testing.T) {
	rc := newReceiver(t)
	o := fastHooks(webhook.NewSender(webhook.Options{AllowPrivate: true}))
	o.Retention = time.Nanosecond
	svc, ctx := newHookService(t, o)
	h := createHook(t, svc, ctx, rc.srv.URL, "**", envy.EventVarsChanged)
	rc.setSecrets(h.Secret.Reveal())
	setv(t, svc, ctx, "a", "X", "1", false)
	rc.wait(1)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if err := svc.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		page, err := svc.Deliveries(ctx, h.Webhook.ID, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sweep left %+v", page.Items)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// hookStore is a store that keeps webhooks.
type hookStore interface {
	envy.Store
	envy.WebhookStore
}

// gatedRotation holds the first rotation of a webhook's secret at the
// store, after the service planned it from the secret it read, until
// release is closed; every other update goes through.
type gatedRotation struct {
	hookStore
	once             sync.Once
	arrived, release chan struct{}
}

func (g *gatedRotation) UpdateWebhook(ctx context.Context, id string, p envy.WebhookPatch, audit []envy.AuditEntry) (envy.Webhook, error) {
	if p.Rotate {
		first := false
		g.once.Do(func() { first = true })
		if first {
			close(g.arrived)
			select {
			case <-g.release:
			case <-ctx.Done():
				return envy.Webhook{}, ctx.Err()
			}
		}
	}
	return g.hookStore.UpdateWebhook(ctx, id, p, audit)
}

// Two rotations of one secret at once, on one server or on two: each
// reply's secret signs, the later one's as the secret and the earlier
// one's during the later one's overlap, as if they had run one after the
// other. Neither may plan from the secret the other replaced: its new
// secret would be lost, and the operator who received it would hold a
// secret that signs nothing.
func TestTwoRotationsAtOnceLoseNeitherSecret(t *testing.T) {
	store := openSQLite(t)
	rotationsAtOnce(t, store, store)
}

func TestTwoRotationsAtOnceOnTwoServersLoseNeitherSecret(t *testing.T) {
	url := pgtest.NewDatabase(t)
	rotationsAtOnce(t, openShared(t, url), openShared(t, url))
}

func rotationsAtOnce(t *testing.T, first, second envy.Store) {
	rc := newReceiver(t)
	g := &gatedRotation{hookStore: first.(hookStore), arrived: make(chan struct{}), release: make(chan struct{})}
	o := fastHooks(webhook.NewSender(webhook.Options{AllowPrivate: true}))
	keyFile := filepath.Join(t.TempDir(), "master.key")
	one, ctx := newHookServiceKeyed(t, g, keyFile, o)
	two := one
	if second != first {
		two, _ = newHookServiceKeyed(t, second, keyFile, o)
	}
	h := createHook(t, one, ctx, rc.srv.URL, "**", envy.EventVarsChanged)
	type result struct {
		ws  envy.WebhookSecret
		err error
	}
	held := make(chan result, 1)
	go func() {
		ws, err := one.UpdateWebhook(ctx, h.Webhook.ID, envy.WebhookUpdate{RotateSecret: true, Overlap: "1h"})
		held <- result{ws, err}
	}()
	recv(t, g.arrived, 20*time.Second, "the first rotation at the store")
	later, err := two.UpdateWebhook(ctx, h.Webhook.ID, envy.WebhookUpdate{RotateSecret: true, Overlap: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	close(g.release)
	r := recv(t, held, 20*time.Second, "the first rotation's reply")
	if r.err != nil {
		t.Fatal(r.err)
	}
	// The held rotation committed last: its secret signs, and the other
	// one's does during its overlap. The receiver verifies with each
	// alone; the original secret was replaced by both.
	rc.setSecrets(r.ws.Secret.Reveal())
	setv(t, one, ctx, "a", "X", "1", false)
	rc.wait(1)
	rc.setSecrets(later.Secret.Reveal())
	setv(t, one, ctx, "a", "X", "2", false)
	got := rc.wait(2)
	if v, _ := standardwebhooks.NewWebhook(h.Secret.Reveal()); v.Verify(got[1].Body, got[1].Header) == nil {
		t.Fatal("the secret both rotations replaced still signs")
	}
}

// TestAWebhookDeletedDuringADeliveryIsLoggedAsSuch: a delivery whose
// webhook is deleted while it is sent can't record its outcome, and the
// log says why (the webhook went), not that a lease ran out, which would
// send an operator looking for a stalled server.
func TestAWebhookDeletedDuringADeliveryIsLoggedAsSuch(t *testing.T) {
	rc := newReceiver(t)
	sending, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	rc.respond = func(int) (int, bool) {
		once.Do(func() { close(sending) })
		<-release
		return http.StatusNoContent, false
	}
	logs := &testenv.Buffer{}
	store := openSQLite(t)
	keys := openKeyring(t, store, filepath.Join(t.TempDir(), "master.key"))
	svc := service.New(store, keys, service.Options{Webhooks: fastHooks(webhook.NewSender(webhook.Options{AllowPrivate: true})),
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	t.Cleanup(svc.Close)
	admin := &envy.Token{ID: "tok_admin", Name: "admin", Permissions: []envy.Grant{{Scopes: "**", Actions: []envy.Action{envy.ActAdmin}}}}
	ctx := service.WithCaller(context.Background(), &service.Caller{Token: admin})
	h := createHook(t, svc, ctx, rc.srv.URL, "**", envy.EventVarsChanged)
	rc.setSecrets(h.Secret.Reveal())
	setv(t, svc, ctx, "a", "X", "1", false)
	select {
	case <-sending:
	case <-time.After(20 * time.Second):
		close(release)
		t.Fatal("no delivery was sent within 20 s")
	}
	if err := svc.DeleteWebhook(ctx, h.Webhook.ID); err != nil {
		close(release)
		t.Fatal(err)
	}
	close(release)
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(logs.String(), "during a delivery"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("nothing logged of the delivery's outcome within 20 s; log:\n%s", logs)
		}
	}
	if l := logs.String(); !strings.Contains(l, "the webhook was deleted during a delivery") || strings.Contains(l, "lease ran out") {
		t.Fatalf("the log does not say that the webhook was deleted:\n%s", l)
	}
}
