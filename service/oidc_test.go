package service_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/crypto"
	"github.com/envy-dev/envy/identity"
	"github.com/envy-dev/envy/identity/oidctest"
	"github.com/envy-dev/envy/service"
)

// openKeyring opens the keyring of store under the master key in keyFile
// (made when missing).
func openKeyring(t *testing.T, store envy.Store, keyFile string) envy.Keyring {
	t.Helper()
	mk, _, err := crypto.OpenMasterKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mk.Close() })
	keys, err := crypto.OpenKeyring(context.Background(), mk, store)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// identityService returns a service over store, with a real keyring and
// a JWT verifier, and its bootstrap admin token.
func identityService(t *testing.T, store envy.Store) (*service.Service, *envy.Token) {
	t.Helper()
	keys := openKeyring(t, store, filepath.Join(t.TempDir(), "master.key"))
	svc := service.New(store, keys, service.Options{Verifier: identity.New(identity.Options{})})
	t.Cleanup(svc.Close)
	plain, _, err := svc.Bootstrap(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := svc.Authenticate(t.Context(), plain)
	if err != nil {
		t.Fatal(err)
	}
	return svc, admin
}

// TestOIDCProvidersAndSignInOnBothStores: a provider's definition is
// validated field by field, bounded by its definer's grants, its client
// secret sealed in the store and never shown back; a person signs in
// through a real provider (the CLI's loopback redirect) and gets the
// grants of the roles that match; the state is bound to its starter;
// deleting the provider revokes the sign-ins' tokens.
func TestOIDCProvidersAndSignInOnBothStores(t *testing.T) {
	for _, st := range revocationStores {
		t.Run(st.name, func(t *testing.T) {
			store := st.open(t)
			svc, admin := identityService(t, store)
			ctx := t.Context()
			as := func(tok *envy.Token) context.Context {
				return service.WithCaller(ctx, &service.Caller{Token: tok, Client: "10.0.0.1"})
			}
			p := oidctest.New(t, []string{"http://127.0.0.1/callback"},
				oidctest.User{Subject: "u-alice", Username: "alice", Email: "alice@acme.example", Claims: map[string]any{"groups": []string{"platform"}}},
				oidctest.User{Subject: "u-dave", Username: "dave", Claims: map[string]any{"groups": []string{"platform", "dba"}}})
			read := []envy.Grant{{Scopes: "acme/web/**", Actions: []envy.Action{envy.ActRead}}}
			in := envy.OIDCInput{Issuer: p.Issuer, ClientID: p.ClientID, ClientSecret: envy.NewSensitive(p.ClientSecret),
				RedirectURIs: []string{"http://127.0.0.1/callback"},
				Roles: []envy.OIDCRole{{Claim: "groups", Value: "platform", Permissions: read},
					{Claim: "groups", Value: "dba", Permissions: []envy.Grant{{Scopes: "acme/db/**", Actions: []envy.Action{envy.ActRead, envy.ActReveal}}}}}}

			for _, c := range []struct {
				edit func(*envy.OIDCInput)
				loc  string
			}{
				{func(in *envy.OIDCInput) { in.Issuer = "http://idp.example" }, "body.issuer"},
				{func(in *envy.OIDCInput) { in.ClientID = "" }, "body.client_id"},
				{func(in *envy.OIDCInput) { in.RedirectURIs = nil }, "body.redirect_uris"},
				{func(in *envy.OIDCInput) { in.RedirectURIs = []string{"http://envy.example/ui/oidc/corp/callback"} }, "body.redirect_uris[0]"},
				{func(in *envy.OIDCInput) { in.Roles = nil }, "body.roles"},
				{func(in *envy.OIDCInput) { in.Roles = []envy.OIDCRole{{Claim: "groups", Permissions: read}} }, "body.roles[0].value"},
				{func(in *envy.OIDCInput) {
					in.Roles = []envy.OIDCRole{{Claim: "groups", Value: "x", Permissions: []envy.Grant{{Scopes: "a", Actions: []envy.Action{"fly"}}}}}
				}, "body.roles[0].permissions[0].actions[0]"},
				{func(in *envy.OIDCInput) { in.SessionTTL = "30d" }, "body.session_ttl"},
				{func(in *envy.OIDCInput) { in.ClientSecret = envy.Sensitive{} }, "body.client_secret"},
			} {
				bad := in
				c.edit(&bad)
				_, _, err := svc.PutOIDC(as(admin), "corp", bad)
				if envy.ErrorCode(err) != envy.EInvalid || len(envy.ErrorFields(err)) == 0 || envy.ErrorFields(err)[0].Loc != c.loc {
					t.Errorf("PutOIDC with a bad %s: %v %+v", c.loc, err, envy.ErrorFields(err))
				}
			}
			sub, _, err := svc.CreateToken(as(admin), envy.TokenInput{Name: "sub", Permissions: []envy.Grant{{Scopes: "acme/web/**", Actions: []envy.Action{envy.ActAdmin}}}})
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := svc.PutOIDC(as(&sub), "corp", in); envy.ErrorCode(err) != envy.EForbidden {
				t.Fatalf("a subtree admin granting acme/db: %v, want forbidden", err)
			}
			got, created, err := svc.PutOIDC(as(admin), "corp", in)
			if err != nil || !created || got.SessionTTL != envy.DefaultOIDCSessionTTL || len(got.SealedSecret) != 0 || got.Scopes[0] != "openid" {
				t.Fatalf("PutOIDC = %+v, %v, %v", got, created, err)
			}
			// Replaced without a secret: the sealed one is kept.
			in.ClientSecret = envy.Sensitive{}
			if _, created, err := svc.PutOIDC(as(admin), "corp", in); err != nil || created {
				t.Fatalf("PutOIDC(replace) = %v, %v", created, err)
			}
			row, err := store.(envy.OIDCStore).GetOIDC(ctx, "corp")
			if err != nil || len(row.SealedSecret) == 0 || strings.Contains(string(row.SealedSecret), p.ClientSecret) {
				t.Fatalf("the stored provider: %v, sealed %d bytes", err, len(row.SealedSecret))
			}
			if shown, err := svc.GetOIDC(as(admin), "corp"); err != nil || len(shown.SealedSecret) != 0 {
				t.Fatalf("GetOIDC shows the secret: %+v %v", shown, err)
			}
			if _, err := svc.GetOIDC(as(&sub), "corp"); envy.ErrorCode(err) != envy.EForbidden {
				t.Fatalf("GetOIDC by another token: %v", err)
			}

			signIn := func(username, binding, finishWith string) (envy.OIDCLogin, error) {
				t.Helper()
				u, err := svc.OIDCAuthURL(ctx, "corp", "http://127.0.0.1:4321/callback", binding)
				if err != nil {
					t.Fatalf("OIDCAuthURL: %v", err)
				}
				back, err := p.SignIn(ctx, u, username)
				if err != nil {
					t.Fatal(err)
				}
				return svc.OIDCCallback(ctx, "corp", back.Query().Get("state"), back.Query().Get("code"), finishWith)
			}
			const binding = "a-client-nonce-of-the-cli"
			if _, err := svc.OIDCAuthURL(ctx, "corp", "http://127.0.0.1:4321/elsewhere", binding); envy.ErrorCode(err) != envy.EInvalid {
				t.Fatalf("a redirect URI not registered: %v", err)
			}
			if _, err := signIn("alice", binding, "another-client-nonce-here"); envy.ErrorCode(err) != envy.EUnauthenticated {
				t.Fatalf("a sign-in finished by another client: %v", err)
			}
			alice, err := signIn("alice", binding, binding)
			if err != nil {
				t.Fatalf("alice: %v", err)
			}
			dave, err := signIn("dave", binding, binding)
			if err != nil {
				t.Fatalf("dave: %v", err)
			}
			if alice.Token.Name != "oidc:corp:u-alice <alice@acme.example>" || alice.Token.Trust != "oidc:corp" || len(alice.Token.Permissions) != 1 ||
				dave.Token.Name != "oidc:corp:u-dave" || len(dave.Token.Permissions) != 2 {
				t.Fatalf("the minted tokens: %+v / %+v", alice.Token, dave.Token)
			}
			tok, err := svc.Authenticate(ctx, alice.Plaintext)
			if err != nil || tok.ExpiresAt.Sub(tok.CreatedAt) != envy.DefaultOIDCSessionTTL {
				t.Fatalf("alice's token: %+v, %v", tok, err)
			}

			if n, err := svc.DeleteOIDC(as(admin), "corp"); err != nil || n != 2 {
				t.Fatalf("DeleteOIDC = %d, %v; want 2 revoked", n, err)
			}
			if _, err := svc.Authenticate(ctx, alice.Plaintext); envy.ErrorCode(err) != envy.EUnauthenticated {
				t.Fatalf("alice's token after the provider's deletion: %v", err)
			}
			all := auditLines(t, svc, as(admin), false)
			for _, want := range []string{"oidc:corp:u-alice <alice@acme.example> oidc.login corp," + p.Issuer + ",u-alice",
				"admin oidc.put corp", "admin oidc.delete corp", "admin token.revoke OIDC provider corp deleted"} {
				if !strings.Contains(all, want) {
					t.Errorf("the audit log lacks %q:\n%s", want, all)
				}
			}
			if strings.Contains(all, p.ClientSecret) {
				t.Fatal("the audit log holds the client secret")
			}
		})
	}
}

// auditLines returns the audit log, a line an entry: actor, action, names
// and, with ids, the token id.
func auditLines(t *testing.T, svc *service.Service, ctx context.Context, ids bool) string {
	t.Helper()
	page, err := svc.Audit(ctx, envy.AuditListQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range page.Items {
		line := e.Actor + " " + string(e.Action) + " " + strings.Join(e.Names, ",")
		if ids {
			line += " " + e.TokenID
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

// TestAResealLeavesTheOIDCSecretsOpenable: a rotation to a new data key
// and a reseal retire the older data keys once no value needs them; the
// providers' client secrets are sealed again first, so that a server
// started afterwards (holding only the newest key) still opens them.
func TestAResealLeavesTheOIDCSecretsOpenable(t *testing.T) {
	store := revocationStores[0].open(t)
	dir := t.TempDir()
	keys := openKeyring(t, store, filepath.Join(dir, "old.key"))
	svc := service.New(store, keys, service.Options{})
	t.Cleanup(svc.Close)
	ctx := t.Context()
	admin := &envy.Token{ID: "admin", Name: "admin", Permissions: []envy.Grant{{Scopes: "**", Actions: []envy.Action{envy.ActAdmin}}}}
	as := service.WithCaller(ctx, &service.Caller{Token: admin})
	in := corpProvider("the-client-secret")
	if _, _, err := svc.PutOIDC(as, "corp", in); err != nil {
		t.Fatal(err)
	}
	kr := rotated(t, keys, filepath.Join(dir, "new.key"))
	if n, err := svc.ResealOIDCSecrets(ctx); err != nil || n != 1 {
		t.Fatalf("ResealOIDCSecrets = %d, %v", n, err)
	}
	if _, err := kr.Reseal(ctx, store.(crypto.Resealer)); err != nil {
		t.Fatal(err)
	}
	fresh := openKeyring(t, store, filepath.Join(dir, "new.key"))
	p, err := store.(envy.OIDCStore).GetOIDC(ctx, "corp")
	if err != nil {
		t.Fatal(err)
	}
	if plain, err := fresh.Open(p.SealedSecret, envy.OIDCSecretAD("corp")); err != nil || string(plain) != "the-client-secret" {
		t.Fatalf("the client secret after the reseal, on a fresh server: %q, %v", plain, err)
	}
}

// corpProvider is an OIDC provider of login.acme.example with the client
// secret secret, whose one role gives the "platform" group read on **.
func corpProvider(secret string) envy.OIDCInput {
	return envy.OIDCInput{Issuer: "https://login.acme.example", ClientID: "envy", ClientSecret: envy.NewSensitive(secret),
		RedirectURIs: []string{"http://127.0.0.1/callback"},
		Roles:        []envy.OIDCRole{{Claim: "groups", Value: "platform", Permissions: []envy.Grant{{Scopes: "**", Actions: []envy.Action{envy.ActRead}}}}}}
}

// rotated rotates keys to the master key in keyFile (made when missing)
// with a new data key, as keys rotate --new-data-key does, and returns
// the keyring.
func rotated(t *testing.T, keys envy.Keyring, keyFile string) *crypto.Keyring {
	t.Helper()
	newMK, _, err := crypto.OpenMasterKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	kr := keys.(*crypto.Keyring)
	if _, err := kr.Rotate(t.Context(), newMK, true); err != nil {
		t.Fatal(err)
	}
	return kr
}
