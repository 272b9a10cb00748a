package service_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/identity"
	"github.com/envy-dev/envy/identity/idtest"
	"github.com/envy-dev/envy/service"
	"github.com/envy-dev/envy/sqlite"
)

// TestJWTLoginOnBothStores: a JWT that the trust accepts is traded for a
// token carrying its lineage and the trust's grants for the trust's TTL;
// a refused one is "invalid token" with the precise reason in the audit
// log only; deleting the trust revokes the tokens its logins minted.
func TestJWTLoginOnBothStores(t *testing.T) {
	for _, st := range revocationStores {
		t.Run(st.name, func(t *testing.T) {
			store := st.open(t)
			k := idtest.NewKey(t, "k1", jose.ES256)
			p := idtest.New(t, k)
			svc, admin := identityService(t, store)
			ctx := t.Context()
			as := func(tok *envy.Token) context.Context {
				return service.WithCaller(ctx, &service.Caller{Token: tok, Client: "10.0.0.1"})
			}

			// A subtree admin can't define a trust beyond what it holds.
			sub, subPlain, err := svc.CreateToken(as(admin), envy.TokenInput{Name: "sub", Permissions: []envy.Grant{{Scopes: "acme/**", Actions: []envy.Action{envy.ActAdmin}}}})
			if err != nil || subPlain == "" {
				t.Fatal(err)
			}
			in := envy.TrustInput{Issuer: p.URL, Audience: "envy", BoundClaims: map[string]string{"repository": "acme/web"},
				Permissions: []envy.Grant{{Scopes: "**", Actions: []envy.Action{envy.ActRead}}}, TTL: "10m"}
			if _, _, err := svc.PutTrust(as(&sub), "ci", in); envy.ErrorCode(err) != envy.EForbidden {
				t.Fatalf("a subtree admin defining a trust over **: %v, want forbidden", err)
			}
			in.Permissions = []envy.Grant{{Scopes: "acme/web/**", Actions: []envy.Action{envy.ActRead, envy.ActReveal}}}
			tr, created, err := svc.PutTrust(as(&sub), "ci", in)
			if err != nil || !created || tr.TTL != 10*time.Minute || tr.SubjectClaim != "sub" {
				t.Fatalf("PutTrust = %+v, %v, %v", tr, created, err)
			}
			for _, bad := range []envy.TrustInput{
				{Issuer: "http://issuer.example", Audience: "envy", Permissions: in.Permissions},
				{Issuer: p.URL, Audience: "envy", Permissions: in.Permissions, TTL: "25h"},
				{Issuer: p.URL, Audience: "", Permissions: in.Permissions},
				{Issuer: p.URL, Audience: "envy", Permissions: in.Permissions, JWKSURL: "http://keys.example/jwks"},
			} {
				if _, _, err := svc.PutTrust(as(admin), "bad", bad); envy.ErrorCode(err) != envy.EInvalid {
					t.Fatalf("PutTrust(%+v) = %v, want invalid", bad, err)
				}
			}

			jwtFor := func(sub, repo string) string {
				return idtest.Sign(t, k, p.Claims("envy", sub, time.Now(), map[string]any{"repository": repo}))
			}
			var minted []envy.Token
			for _, subject := range []string{"repo:acme/web", "repo:acme/web"} { // twice at once: replicas
				login, err := svc.LoginJWT(ctx, "ci", jwtFor(subject, "acme/web"))
				if err != nil {
					t.Fatalf("LoginJWT: %v", err)
				}
				tok, err := svc.Authenticate(ctx, login.Plaintext)
				if err != nil {
					t.Fatalf("the minted token: %v", err)
				}
				if tok.Name != "jwt:ci:repo:acme/web" || tok.Trust != "ci" || tok.Subject != "repo:acme/web" ||
					tok.ExpiresAt == nil || tok.ExpiresAt.Sub(tok.CreatedAt) != 10*time.Minute || !slices.EqualFunc(tok.Permissions, in.Permissions, func(a, b envy.Grant) bool { return a.Scopes == b.Scopes }) {
					t.Fatalf("minted token %+v", tok)
				}
				self, _ := svc.Self(as(tok))
				if self.Trust != "ci" || self.Subject != "repo:acme/web" {
					t.Fatalf("Self = %+v: no lineage", self)
				}
				minted = append(minted, *tok)
			}
			bad := jwtFor("repo:evil/web", "evil/web")
			if _, err := svc.LoginJWT(ctx, "ci", bad); envy.ErrorCode(err) != envy.EUnauthenticated || envy.AsError(err).Message != "invalid token" {
				t.Fatalf("a claim mismatch: %v", err)
			}
			if _, err := svc.LoginJWT(ctx, "nope", jwtFor("x", "acme/web")); envy.ErrorCode(err) != envy.EUnauthenticated || envy.AsError(err).Message != "invalid token" {
				t.Fatalf("an unknown trust: %v", err)
			}

			n, err := svc.DeleteTrust(as(admin), "ci")
			if err != nil || n != 2 {
				t.Fatalf("DeleteTrust = %d, %v; want 2 revoked", n, err)
			}
			for _, tok := range minted {
				if got, err := store.GetToken(ctx, tok.ID); err != nil || got.RevokedAt == nil {
					t.Fatalf("token %s after the trust's deletion: %+v, %v", tok.ID, got, err)
				}
			}
			if _, err := svc.LoginJWT(ctx, "ci", jwtFor("repo:acme/web", "acme/web")); envy.ErrorCode(err) != envy.EUnauthenticated {
				t.Fatalf("a login to a deleted trust: %v", err)
			}
			all := auditLines(t, svc, as(admin), true)
			for _, want := range []string{"jwt:ci:repo:acme/web jwt.login ci " + minted[0].ID, "jwt:ci jwt.login ci,refused: claim repository did not match",
				"jwt:nope jwt.login nope,refused: unknown trust", "admin trust.delete ci", "admin token.revoke trust ci deleted", "sub trust.put ci"} {
				if !strings.Contains(all, want) {
					t.Errorf("the audit log lacks %q:\n%s", want, all)
				}
			}
			if strings.Contains(all, bad) || strings.Contains(all, strings.Split(bad, ".")[1]) {
				t.Fatalf("the audit log holds the JWT")
			}
		})
	}
}

// deletingStore deletes a login's trust just before the login's token is
// stored: a deletion that listed the trust's tokens before this one existed.
type deletingStore struct{ *sqlite.Store }

func (d deletingStore) CreateToken(ctx context.Context, tok envy.Token, onlyIfNone bool, audit []envy.AuditEntry) (bool, error) {
	if tok.Trust != "" {
		if _, err := d.Store.DeleteTrust(ctx, tok.Trust, nil); err != nil {
			return false, err
		}
	}
	return d.Store.CreateToken(ctx, tok, onlyIfNone, audit)
}

// TestALoginRacingTheTrustsDeletionLeavesNoLiveToken: a login that read
// its trust before the trust was deleted, and stores its token after the
// deletion listed the trust's tokens, revokes its token itself.
func TestALoginRacingTheTrustsDeletionLeavesNoLiveToken(t *testing.T) {
	inner, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "envy.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inner.Close() })
	store := deletingStore{inner}
	keys := openKeyring(t, store, filepath.Join(t.TempDir(), "master.key"))
	k := idtest.NewKey(t, "k1", jose.EdDSA)
	p := idtest.New(t, k)
	svc := service.New(store, keys, service.Options{Verifier: identity.New(identity.Options{})})
	t.Cleanup(svc.Close)
	ctx := t.Context()
	plain, _, _ := svc.Bootstrap(ctx, "")
	admin, _ := svc.Authenticate(ctx, plain)
	in := envy.TrustInput{Issuer: p.URL, Audience: "envy", Permissions: []envy.Grant{{Scopes: "**", Actions: []envy.Action{envy.ActRead}}}}
	if _, _, err := svc.PutTrust(service.WithCaller(ctx, &service.Caller{Token: admin}), "ci", in); err != nil {
		t.Fatal(err)
	}
	_, err = svc.LoginJWT(ctx, "ci", idtest.Sign(t, k, p.Claims("envy", "s", time.Now(), nil)))
	if envy.ErrorCode(err) != envy.EUnauthenticated {
		t.Fatalf("LoginJWT = %v, want refused", err)
	}
	toks, err := inner.ListTokens(ctx, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range toks {
		if tok.Trust == "ci" && tok.RevokedAt == nil {
			t.Fatalf("token %s of the deleted trust is live", tok.ID)
		}
	}
}

// TestTheSweepDeletesTheLoginsEndedTokens: a day after a login's token
// expired, the sweep deletes it; a live one stays.
func TestTheSweepDeletesTheLoginsEndedTokens(t *testing.T) {
	store := revocationStores[0].open(t)
	keys := openKeyring(t, store, filepath.Join(t.TempDir(), "master.key"))
	k := idtest.NewKey(t, "k1", jose.ES256)
	p := idtest.New(t, k)
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	svc := service.New(store, keys, service.Options{Now: clock, SweepEvery: -1, Verifier: identity.New(identity.Options{})})
	t.Cleanup(svc.Close)
	ctx := t.Context()
	plain, _, _ := svc.Bootstrap(ctx, "")
	admin, _ := svc.Authenticate(ctx, plain)
	in := envy.TrustInput{Issuer: p.URL, Audience: "envy", Permissions: []envy.Grant{{Scopes: "**", Actions: []envy.Action{envy.ActRead}}}, TTL: "1h"}
	if _, _, err := svc.PutTrust(service.WithCaller(ctx, &service.Caller{Token: admin}), "k8s", in); err != nil {
		t.Fatal(err)
	}
	old, err := svc.LoginJWT(ctx, "k8s", idtest.Sign(t, k, p.Claims("envy", "a", time.Now(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(26 * time.Hour)
	mu.Unlock()
	// The JWT is checked against the real clock; the token's life against the service's.
	fresh, err := svc.LoginJWT(ctx, "k8s", idtest.Sign(t, k, p.Claims("envy", "b", time.Now(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := store.GetToken(ctx, old.Token.ID); envy.ErrorCode(err) != envy.ENotFound {
		t.Fatalf("the token that expired 25 h ago: %v, want deleted", err)
	}
	if _, err := store.GetToken(ctx, fresh.Token.ID); err != nil {
		t.Fatalf("the live token: %v", err)
	}
	if _, err := store.GetToken(ctx, admin.ID); err != nil {
		t.Fatalf("the admin token: %v", err)
	}
}

// TestRefusedLoginsOfOneClientAreCappedInTheAuditLog: a client's first
// MaxLoginRefusalRowsPerClient refused logins a minute are a row each
// with the reason; the rest are counted in one aggregated row.
func TestRefusedLoginsOfOneClientAreCappedInTheAuditLog(t *testing.T) {
	store := revocationStores[0].open(t)
	svc := newFrozenService(t, store)
	ctx := t.Context()
	plain, _, _ := svc.Bootstrap(ctx, "")
	admin, _ := svc.Authenticate(ctx, plain)
	p := idtest.New(t)
	in := envy.TrustInput{Issuer: p.URL, Audience: "envy", Permissions: []envy.Grant{{Scopes: "**", Actions: []envy.Action{envy.ActRead}}}}
	if _, _, err := svc.PutTrust(service.WithCaller(ctx, &service.Caller{Token: admin}), "ci", in); err != nil {
		t.Fatal(err)
	}
	attacker := service.WithCaller(ctx, &service.Caller{Client: "203.0.113.9"})
	const n = service.MaxLoginRefusalRowsPerClient + 4
	for range n {
		if _, err := svc.LoginJWT(attacker, "ci", "a.b.c"); envy.ErrorCode(err) != envy.EUnauthenticated {
			t.Fatalf("LoginJWT = %v", err)
		}
	}
	page, err := svc.Audit(service.WithCaller(ctx, &service.Caller{Token: admin}), envy.AuditListQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	detailed, aggregated := 0, int64(0)
	for _, e := range page.Items {
		if e.Action != envy.AuditJWTLogin || e.Client != "203.0.113.9" {
			continue
		}
		if slices.ContainsFunc(e.Names, func(n string) bool { return strings.HasPrefix(n, "refused: ") }) {
			detailed++
		} else {
			aggregated += e.Count
		}
	}
	if detailed != service.MaxLoginRefusalRowsPerClient || aggregated != 4 {
		t.Fatalf("%d detailed rows and %d counted in aggregates, want %d and 4", detailed, aggregated, service.MaxLoginRefusalRowsPerClient)
	}
}

// TestASubjectThatCouldPassForAnotherIsRefused: the subject names the
// token, so it follows a token name's rules.
func TestASubjectThatCouldPassForAnotherIsRefused(t *testing.T) {
	store := revocationStores[0].open(t)
	keys := openKeyring(t, store, filepath.Join(t.TempDir(), "master.key"))
	k := idtest.NewKey(t, "k1", jose.ES256)
	p := idtest.New(t, k)
	svc := service.New(store, keys, service.Options{Verifier: identity.New(identity.Options{})})
	t.Cleanup(svc.Close)
	ctx := t.Context()
	plain, _, _ := svc.Bootstrap(ctx, "")
	admin, _ := svc.Authenticate(ctx, plain)
	in := envy.TrustInput{Issuer: p.URL, Audience: "envy", Permissions: []envy.Grant{{Scopes: "**", Actions: []envy.Action{envy.ActRead}}}}
	if _, _, err := svc.PutTrust(service.WithCaller(ctx, &service.Caller{Token: admin}), "k8s", in); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"", "web:api\u200b", "web:api ", " web:api", "web\u00a0api", "web\napi", strings.Repeat("a", 201)} {
		if _, err := svc.LoginJWT(ctx, "k8s", idtest.Sign(t, k, p.Claims("envy", sub, time.Now(), nil))); envy.ErrorCode(err) != envy.EUnauthenticated {
			t.Errorf("subject %q: %v, want refused", sub, err)
		}
	}
	if _, err := svc.LoginJWT(ctx, "k8s", idtest.Sign(t, k, p.Claims("envy", "system:serviceaccount:web:api "+strings.Repeat("x", 150), time.Now(), nil))); err != nil {
		t.Errorf("a long subject within the bound: %v", err)
	}
}

// TestTheSweepDeletesTheSignInsEndedTokens: a dialect's sign-in mints a
// child of the secret's token that ends with its life; a day later the
// sweep deletes it, and the secret's token stays.
func TestTheSweepDeletesTheSignInsEndedTokens(t *testing.T) {
	store := revocationStores[0].open(t)
	keys := openKeyring(t, store, filepath.Join(t.TempDir(), "master.key"))
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	svc := service.New(store, keys, service.Options{Now: clock, SweepEvery: -1})
	t.Cleanup(svc.Close)
	ctx := t.Context()
	plain, _, _ := svc.Bootstrap(ctx, "")
	admin, _ := svc.Authenticate(ctx, plain)
	actx := service.WithCaller(ctx, &service.Caller{Token: admin})
	secret, _, err := svc.CreateToken(actx, envy.TokenInput{Name: "ci", Permissions: []envy.Grant{{Scopes: "**", Actions: []envy.Action{envy.ActRead}}}})
	if err != nil {
		t.Fatal(err)
	}
	sctx := service.WithCaller(ctx, &service.Caller{Token: &secret})
	if _, _, err := svc.SignIn(sctx, "auth0", "other", time.Hour); envy.ErrorCode(err) != envy.EUnauthenticated {
		t.Fatalf("a wrong client id: %v", err)
	}
	access, _, err := svc.SignIn(sctx, "auth0", "ci", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if access.ParentID != secret.ID || access.Root() != secret.Root() || !access.ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("access token %+v", access)
	}
	mu.Lock()
	now = now.Add(26 * time.Hour)
	mu.Unlock()
	if err := svc.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := store.GetToken(ctx, access.ID); envy.ErrorCode(err) != envy.ENotFound {
		t.Fatalf("the access token that ended 25 h ago: %v, want deleted", err)
	}
	if _, err := store.GetToken(ctx, secret.ID); err != nil {
		t.Fatalf("the secret's token: %v", err)
	}
}
