package service_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/crypto"
	"github.com/envy-dev/envy/service"
	"github.com/envy-dev/envy/sqlite"
	"github.com/envy-dev/envy/webhook"
)

// TestAResealLeavesTheWebhookSecretsSigning: `envy keys rotate
// --new-data-key --reseal` seals the webhooks' signing secrets (the
// secret and, during a rotation's overlap, the previous one) again under
// the new data key before it retires the older one, which it refuses
// while one of them is still sealed under it: a server started afterwards,
// holding the new key alone, still signs the deliveries with both.
func TestAResealLeavesTheWebhookSecretsSigning(t *testing.T) {
	for _, st := range revocationStores {
		t.Run(st.name, func(t *testing.T) { resealedHooksSign(t, st.open(t)) })
	}
}

func resealedHooksSign(t *testing.T, store envy.Store) {
	dir := t.TempDir()
	keys := openKeyring(t, store, filepath.Join(dir, "old.key"))
	// The server that rotates queues deliveries but sends none: it holds
	// the older data key in memory until it restarts.
	svc := service.New(store, keys, service.Options{Webhooks: service.WebhookOptions{AllowPrivate: true}})
	t.Cleanup(svc.Close)
	admin := &envy.Token{ID: "tok_admin", Name: "admin", Permissions: []envy.Grant{{Scopes: "**", Actions: []envy.Action{envy.ActAdmin}}}}
	ctx := service.WithCaller(t.Context(), &service.Caller{Token: admin})
	rc := newReceiver(t)
	h := createHook(t, svc, ctx, rc.srv.URL, "**", envy.EventVarsChanged)
	rot, err := svc.UpdateWebhook(ctx, h.Webhook.ID, envy.WebhookUpdate{RotateSecret: true, Overlap: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	in := corpProvider("the-client-secret")
	if _, _, err := svc.PutOIDC(ctx, "corp", in); err != nil {
		t.Fatal(err)
	}
	setv(t, svc, ctx, "app", "X", "1", false)

	kr := rotated(t, keys, filepath.Join(dir, "new.key"))
	rs := store.(crypto.Resealer)
	// The values and the OIDC providers' secrets resealed, the webhook's
	// not: the older data key stays.
	if _, err := svc.ResealOIDCSecrets(ctx); err != nil {
		t.Fatal(err)
	}
	if res, err := kr.Reseal(ctx, rs); envy.ErrorCode(err) != envy.EConflict {
		t.Fatalf("a reseal while the webhook's secrets are under the older data key retired %v (%v), want a conflict", res.Retired, err)
	}
	// The whole reseal, as `envy keys rotate --reseal` runs it.
	if n, err := svc.ResealSecrets(ctx); err != nil || n != 3 {
		t.Fatalf("ResealSecrets = %d, %v; want 3 (the provider's secret, the webhook's secret and previous secret)", n, err)
	}
	res, err := kr.Reseal(ctx, rs)
	if err != nil || !slices.Equal(res.Retired, []uint32{1}) {
		t.Fatalf("the reseal retired %v (%v), want [1]", res.Retired, err)
	}

	// A server started now holds data key 2 alone, and signs with both
	// secrets during the overlap.
	fresh := openKeyring(t, store, filepath.Join(dir, "new.key"))
	if ids := fresh.(*crypto.Keyring).KeyIDs(); !slices.Equal(ids, []uint32{2}) {
		t.Fatalf("the fresh server's data keys: %v", ids)
	}
	ws := store.(envy.WebhookStore)
	w, err := ws.GetWebhook(ctx, h.Webhook.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, old := range []bool{false, true} {
		sealed := w.Secret
		if old {
			sealed = w.OldSecret
		}
		if _, err := fresh.Open(sealed, envy.WebhookAD(w.ID, old)); err != nil {
			t.Fatalf("the webhook's secret (old: %v) does not open on a server started after the reseal: %v", old, err)
		}
	}
	svc2 := service.New(store, fresh, service.Options{Webhooks: fastHooks(webhook.NewSender(webhook.Options{AllowPrivate: true}))})
	t.Cleanup(svc2.Close)
	rc.setSecrets(rot.Secret.Reveal(), h.Secret.Reveal()) // each alone must verify
	setv(t, svc2, ctx, "app", "X", "2", false)
	rc.wait(1)
	if w, err := svc2.GetWebhook(ctx, h.Webhook.ID); err != nil || w.State() != envy.WebhookActive || w.Failures != 0 {
		t.Fatalf("the webhook after a delivery on the fresh server: %+v, %v", w, err)
	}
}

// racyOIDCStore is a SQLite store on which during runs once, after the
// first page of OIDC providers is read: an admin's change between a
// reseal's read of a provider and its write.
type racyOIDCStore struct {
	*sqlite.Store
	during func()
}

func (s *racyOIDCStore) ListOIDC(ctx context.Context, after string, limit int) ([]envy.OIDCProvider, error) {
	ps, err := s.Store.ListOIDC(ctx, after, limit)
	if f := s.during; f != nil && len(ps) > 0 {
		s.during = nil
		f()
	}
	return ps, err
}

// A provider deleted, or put anew, while a reseal seals its client secret
// again stays as the admin left it: the reseal replaces the secret only
// where it is still the one it read, never the whole provider it read.
func TestResealDoesNotResurrectADeletedOIDCProvider(t *testing.T) {
	inner := openSQLite(t)
	store := &racyOIDCStore{Store: inner}
	keys := openKeyring(t, store, filepath.Join(t.TempDir(), "k.key"))
	svc := service.New(store, keys, service.Options{})
	t.Cleanup(svc.Close)
	ctx := t.Context()
	admin := &envy.Token{ID: "admin", Name: "admin", Permissions: []envy.Grant{{Scopes: "**", Actions: []envy.Action{envy.ActAdmin}}}}
	as := service.WithCaller(ctx, &service.Caller{Token: admin})
	in := corpProvider("s3cret")
	for _, name := range []string{"corp", "google"} {
		if _, _, err := svc.PutOIDC(as, name, in); err != nil {
			t.Fatal(err)
		}
	}
	changed := in
	changed.ClientSecret = envy.NewSensitive("n3w-secret")
	changed.Roles = []envy.OIDCRole{{Claim: "groups", Value: "sre", Permissions: []envy.Grant{{Scopes: "**", Actions: []envy.Action{envy.ActRead}}}}}
	store.during = func() {
		if _, err := svc.DeleteOIDC(as, "corp"); err != nil {
			t.Error(err)
		}
		if _, _, err := svc.PutOIDC(as, "google", changed); err != nil {
			t.Error(err)
		}
	}
	if _, err := svc.ResealOIDCSecrets(ctx); err != nil {
		t.Fatal(err)
	}
	if p, err := inner.GetOIDC(ctx, "corp"); err == nil {
		t.Fatalf("OIDC provider %s, deleted during the reseal, is back", p.Name)
	}
	p, err := inner.GetOIDC(ctx, "google")
	if err != nil {
		t.Fatal(err)
	}
	plain, err := keys.Open(p.SealedSecret, envy.OIDCSecretAD("google"))
	if err != nil || string(plain) != "n3w-secret" || len(p.Roles) != 1 || p.Roles[0].Value != "sre" {
		t.Fatalf("OIDC provider google, put again during the reseal, holds secret %q (%v) and roles %+v: the reseal overwrote it", plain, err, p.Roles)
	}
}
