package service_test

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/crypto"
	"github.com/envy-dev/envy/service"
)

// A webhook's or an OIDC provider's secret sealed by a server that had
// not heard of the newest data key yet, written after a reseal retired
// the key it names, is refused as a var's value is (503, try again): stored,
// it would open nowhere once the servers that still hold the key restart.
func TestASecretSealedUnderARetiredKeyIsRefused(t *testing.T) {
	for _, st := range revocationStores {
		t.Run(st.name, func(t *testing.T) {
			store := st.open(t)
			dir := t.TempDir()
			keysA := openKeyring(t, store, filepath.Join(dir, "old.key"))
			keysB := openKeyring(t, store, filepath.Join(dir, "old.key")) // a second server, not yet told of key 2
			opts := service.Options{Webhooks: service.WebhookOptions{AllowPrivate: true}}
			svcA := service.New(store, keysA, opts)
			t.Cleanup(svcA.Close)
			svcB := service.New(store, keysB, opts)
			t.Cleanup(svcB.Close)
			admin := &envy.Token{ID: "tok_admin", Name: "admin", Permissions: []envy.Grant{{Scopes: "**", Actions: []envy.Action{envy.ActAdmin}}}}
			ctx := service.WithCaller(t.Context(), &service.Caller{Token: admin})
			setv(t, svcA, ctx, "app", "X", "1", false)
			kr := rotated(t, keysA, filepath.Join(dir, "new.key"))
			if _, err := svcA.ResealSecrets(ctx); err != nil {
				t.Fatal(err)
			}
			if res, err := kr.Reseal(ctx, store.(crypto.Resealer)); err != nil || !slices.Equal(res.Retired, []uint32{1}) {
				t.Fatalf("reseal: retired %v, %v", res.Retired, err)
			}
			if _, err := svcB.CreateWebhook(ctx, envy.WebhookInput{URL: "http://127.0.0.1:1/hook", Scopes: "**", Events: []string{envy.EventVarsChanged}}); envy.ErrorCode(err) != envy.EUnavailable {
				t.Fatalf("a webhook whose secret is sealed under retired data key 1: %v, want EUnavailable (try again)", err)
			}
			in := corpProvider("s3cret")
			if _, _, err := svcB.PutOIDC(ctx, "corp", in); envy.ErrorCode(err) != envy.EUnavailable {
				t.Fatalf("an OIDC provider whose client secret is sealed under retired data key 1: %v, want EUnavailable (try again)", err)
			}
		})
	}
}
