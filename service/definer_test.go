package service_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/identity/idtest"
	"github.com/envy-dev/envy/identity/oidctest"
	"github.com/envy-dev/envy/service"
	"github.com/envy-dev/envy/sqlite"
)

// A trust mints only while the token that defined it is live: a login's
// token is a child of that token, so it never outlives it and goes with
// its revocation, as every token it minted does. A subtree admin about to
// be revoked can't leave a trust behind that mints admin tokens for ever.
func TestATrustMintsOnlyWhileItsDefinerIsLive(t *testing.T) {
	store := revocationStores[0].open(t)
	k := idtest.NewKey(t, "k1", jose.ES256)
	p := idtest.New(t, k)
	svc, admin := identityService(t, store)
	ctx := t.Context()
	as := func(tok *envy.Token) context.Context { return callerAs(ctx, tok) }
	exp := time.Now().Add(time.Hour)
	sub := contractor(t, svc, as(admin), &exp)
	in := envy.TrustInput{Issuer: p.URL, Audience: "envy", Permissions: []envy.Grant{{Scopes: "acme/**", Actions: []envy.Action{envy.ActAdmin}}}, TTL: "24h"}
	if _, _, err := svc.PutTrust(as(&sub), "ci", in); err != nil {
		t.Fatal(err)
	}
	login, err := svc.LoginJWT(ctx, "ci", idtest.Sign(t, k, p.Claims("envy", "me", time.Now(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	if login.Token.ParentID != sub.ID || login.Token.ExpiresAt == nil || login.Token.ExpiresAt.After(exp) {
		t.Errorf("the login's token: parent %q, expires %v; want a child of %s expiring by %v", login.Token.ParentID, login.Token.ExpiresAt, sub.ID, exp)
	}
	if err := svc.RevokeToken(as(admin), sub.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Authenticate(ctx, login.Plaintext); err == nil {
		t.Error("the login's token outlives the revocation of the trust's definer")
	}
	if l, err := svc.LoginJWT(ctx, "ci", idtest.Sign(t, k, p.Claims("envy", "me", time.Now(), nil))); err == nil {
		t.Fatalf("the trust of a revoked definer minted %q with %+v", l.Token.Name, l.Token.Permissions)
	}
}

// The same for an OIDC provider: it signs people in only while the token
// that defined it is live.
func TestAnOIDCProviderSignsInOnlyWhileItsDefinerIsLive(t *testing.T) {
	store := revocationStores[0].open(t)
	svc, admin := identityService(t, store)
	ctx := t.Context()
	as := func(tok *envy.Token) context.Context { return callerAs(ctx, tok) }
	p := oidctest.New(t, []string{"http://127.0.0.1/callback"},
		oidctest.User{Subject: "u-mallory", Username: "mallory", Claims: map[string]any{"groups": []string{"anyone"}}})
	grant := []envy.Grant{{Scopes: "acme/**", Actions: []envy.Action{envy.ActAdmin}}}
	sub := contractor(t, svc, as(admin), nil)
	in := envy.OIDCInput{Issuer: p.Issuer, ClientID: p.ClientID, ClientSecret: envy.NewSensitive(p.ClientSecret),
		RedirectURIs: []string{"http://127.0.0.1/callback"}, Roles: []envy.OIDCRole{{Claim: "groups", Value: "*", Permissions: grant}}}
	if _, _, err := svc.PutOIDC(as(&sub), "corp", in); err != nil {
		t.Fatal(err)
	}
	signIn := func() (envy.OIDCLogin, error) { return oidcSignIn(t, svc, p, "corp", "mallory") }
	login, err := signIn()
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.RevokeToken(as(admin), sub.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Authenticate(ctx, login.Plaintext); err == nil {
		t.Error("the sign-in's token outlives the revocation of the provider's definer")
	}
	if l, err := signIn(); err == nil {
		t.Fatalf("the provider of a revoked definer signed in %q with %+v", l.Token.Name, l.Token.Permissions)
	}
}

// An email the provider has not verified (email_verified false, as with a
// provider that lets anyone register) is anyone's to claim: no role
// matches on it, and it names no one. Nor does one the provider sends
// without saying it is verified, unless the provider is defined to trust
// its emails (trust_email); email_verified false is never trusted.
func TestAnUnverifiedEmailMatchesNoRole(t *testing.T) {
	svc, admin := identityService(t, revocationStores[0].open(t))
	ctx := t.Context()
	actx := service.WithCaller(ctx, &service.Caller{Token: admin, Client: "10.0.0.1"})
	p := oidctest.New(t, []string{"http://127.0.0.1/callback"},
		oidctest.User{Subject: "u-ann", Username: "ann", Email: "ann@acme.example"},
		oidctest.User{Subject: "u-mallory", Username: "mallory", Email: "boss@acme.example", EmailUnverified: true},
		oidctest.User{Subject: "u-eve", Username: "eve", Email: "ceo@acme.example", EmailUnverified: true, EmailUnverifiedAsString: true},
		oidctest.User{Subject: "u-sam", Username: "sam", Email: "sam@acme.example", EmailVerifiedUnsaid: true})
	in := envy.OIDCInput{Issuer: p.Issuer, ClientID: p.ClientID, ClientSecret: envy.NewSensitive(p.ClientSecret), RedirectURIs: []string{"http://127.0.0.1/callback"},
		Roles: []envy.OIDCRole{{Claim: "email", Value: "*@acme.example", Permissions: []envy.Grant{{Scopes: "acme/**", Actions: []envy.Action{envy.ActRead}}}}}}
	if _, _, err := svc.PutOIDC(actx, "corp", in); err != nil {
		t.Fatal(err)
	}
	signIn := func(user string) (envy.OIDCLogin, error) { return oidcSignIn(t, svc, p, "corp", user) }
	if l, err := signIn("ann"); err != nil || l.Email != "ann@acme.example" {
		t.Fatalf("a verified email's sign-in: %+v, %v", l, err)
	}
	for _, who := range []string{"mallory", "eve", "sam"} {
		if l, err := signIn(who); envy.ErrorCode(err) != envy.EForbidden {
			t.Fatalf("an unverified email matched a role: %q with %+v, %v", l.Token.Name, l.Token.Permissions, err)
		} else if who == "sam" && !strings.Contains(err.Error(), "trust_email") {
			t.Errorf("the refusal of an email sent without email_verified does not say why: %v", err)
		}
	}
	in.TrustEmail = true
	if _, _, err := svc.PutOIDC(actx, "corp", in); err != nil {
		t.Fatal(err)
	}
	if l, err := signIn("sam"); err != nil || l.Email != "sam@acme.example" || !strings.Contains(l.Token.Name, "<sam@acme.example>") {
		t.Fatalf("trust_email: an email sent without email_verified is not trusted: %+v, %v", l, err)
	}
	for _, who := range []string{"mallory", "eve"} {
		if l, err := signIn(who); envy.ErrorCode(err) != envy.EForbidden {
			t.Fatalf("trust_email trusted an email the provider says is not verified: %q with %+v, %v", l.Token.Name, l.Token.Permissions, err)
		}
	}
}

// A login's token is in its definer's lineage, as a token it mints is: a
// scoped admin's logins share its rate limit (Token.Root), so that a
// trust does not multiply it.
func TestALoginsTokenSharesItsScopedDefinersRoot(t *testing.T) {
	store := revocationStores[0].open(t)
	k := idtest.NewKey(t, "k1", jose.ES256)
	p := idtest.New(t, k)
	svc, admin := identityService(t, store)
	ctx := t.Context()
	as := func(tok *envy.Token) context.Context { return callerAs(ctx, tok) }
	grant := []envy.Grant{{Scopes: "acme/**", Actions: []envy.Action{envy.ActAdmin}}}
	sub := contractor(t, svc, as(admin), nil)
	minted, _, err := svc.CreateToken(as(&sub), envy.TokenInput{Name: "minted", Permissions: grant})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.PutTrust(as(&sub), "ci", envy.TrustInput{Issuer: p.URL, Audience: "envy", Permissions: grant}); err != nil {
		t.Fatal(err)
	}
	login, err := svc.LoginJWT(ctx, "ci", idtest.Sign(t, k, p.Claims("envy", "me", time.Now(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	if login.Token.ParentID != sub.ID || login.Token.Root() != minted.Root() {
		t.Fatalf("the login's token: parent %q, root %q; a token its definer minted has root %q", login.Token.ParentID, login.Token.Root(), minted.Root())
	}
}

// definerRevokingStore revokes the token victim right after a read of it
// (the definer's check): the login's minting then races the revocation.
type definerRevokingStore struct {
	*sqlite.Store
	victim string
}

func (s *definerRevokingStore) GetToken(ctx context.Context, id string) (envy.Token, error) {
	t, err := s.Store.GetToken(ctx, id)
	if err == nil && id == s.victim {
		s.victim = ""
		if rerr := s.Store.RevokeToken(ctx, id, time.Now(), nil); rerr != nil {
			return t, rerr
		}
	}
	return t, err
}

// A login that races its definer's revocation is refused as every login
// is, "invalid token", and never minted.
func TestALoginRacingItsDefinersRevocationIsAnInvalidToken(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "envy.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	store := &definerRevokingStore{Store: st}
	k := idtest.NewKey(t, "k1", jose.ES256)
	p := idtest.New(t, k)
	svc, admin := identityService(t, store)
	ctx := t.Context()
	as := func(tok *envy.Token) context.Context { return callerAs(ctx, tok) }
	grant := []envy.Grant{{Scopes: "acme/**", Actions: []envy.Action{envy.ActAdmin}}}
	sub := contractor(t, svc, as(admin), nil)
	if _, _, err := svc.PutTrust(as(&sub), "ci", envy.TrustInput{Issuer: p.URL, Audience: "envy", Permissions: grant}); err != nil {
		t.Fatal(err)
	}
	store.victim = sub.ID
	_, err = svc.LoginJWT(ctx, "ci", idtest.Sign(t, k, p.Claims("envy", "me", time.Now(), nil)))
	if err == nil {
		t.Fatal("a login minted under a revoked definer")
	}
	if e := envy.AsError(err); e == nil || e.Message != "invalid token" {
		t.Fatalf("a refused login answered %v, not \"invalid token\"", err)
	}
}

// callerAs is ctx acting as tok, from a client address of the tests'.
func callerAs(ctx context.Context, tok *envy.Token) context.Context {
	return service.WithCaller(ctx, &service.Caller{Token: tok, Client: "10.0.0.1"})
}

// oidcSignIn signs user in through provider name of svc, whose identity
// provider is p, as envy login --oidc does, and returns the callback's
// answer.
func oidcSignIn(t *testing.T, svc *service.Service, p *oidctest.Provider, name, user string) (envy.OIDCLogin, error) {
	t.Helper()
	const binding = "a-client-nonce-of-the-cli"
	u, err := svc.OIDCAuthURL(t.Context(), name, "http://127.0.0.1:4321/callback", binding)
	if err != nil {
		t.Fatal(err)
	}
	back, err := p.SignIn(t.Context(), u, user)
	if err != nil {
		t.Fatal(err)
	}
	return svc.OIDCCallback(t.Context(), name, back.Query().Get("state"), back.Query().Get("code"), binding)
}

// contractor is a token with admin on acme/** (a subtree admin), minted
// by the caller of ctx, expiring at exp (nil: never).
func contractor(t *testing.T, svc *service.Service, ctx context.Context, exp *time.Time) envy.Token {
	t.Helper()
	sub, _, err := svc.CreateToken(ctx, envy.TokenInput{Name: "contractor", ExpiresAt: exp,
		Permissions: []envy.Grant{{Scopes: "acme/**", Actions: []envy.Action{envy.ActAdmin}}}})
	if err != nil {
		t.Fatal(err)
	}
	return sub
}
