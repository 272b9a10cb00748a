package storetest

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/envy-dev/envy"
)

// testOIDC: OIDC providers are created, replaced, read, listed and
// deleted with their audit entries, the sealed client secret kept as
// given, and their sign-ins' tokens found by the provider's trust name.
func testOIDC(t *testing.T, s envy.Store) {
	os, ok := s.(envy.OIDCStore)
	if !ok {
		t.Skip("the store is no envy.OIDCStore")
	}
	ctx := t.Context()
	corp := envy.OIDCProvider{Name: "corp", Issuer: "https://login.acme.example", ClientID: "envy", SealedSecret: []byte{0, 1, 2, 0xff},
		RedirectURIs: []string{"https://envy.acme.example/ui/oidc/corp/callback", "http://127.0.0.1/callback"},
		Scopes:       []string{"openid", "email", "groups"},
		Roles: []envy.OIDCRole{{Name: "platform", Claim: "groups", Value: "platform",
			Permissions: []envy.Grant{{Scopes: "acme/**", Actions: []envy.Action{envy.ActRead, envy.ActWrite}}}}},
		SessionTTL: 8 * time.Hour, CreatedAt: t0, CreatedBy: "admin", CreatorID: "a1"}
	created, err := os.PutOIDC(ctx, corp, []envy.AuditEntry{{Actor: "admin", Action: envy.AuditOIDCPut, Names: []string{"corp"}, Status: envy.OutcomeCreated}})
	if err != nil || !created {
		t.Fatalf("PutOIDC(new) = %v, %v; want created", created, err)
	}
	got, err := os.GetOIDC(ctx, "corp")
	if err != nil || !reflect.DeepEqual(got, corp) {
		t.Fatalf("GetOIDC = %+v, %v; want %+v", got, err, corp)
	}
	other := corp
	other.Name = "google"
	if created, err := os.PutOIDC(ctx, other, nil); err != nil || !created {
		t.Fatalf("PutOIDC(google) = %v, %v", created, err)
	}
	corp.SessionTTL = time.Hour
	if created, err := os.PutOIDC(ctx, corp, nil); err != nil || created {
		t.Fatalf("PutOIDC(replace) = %v, %v; want replaced, not created", created, err)
	}
	if got, _ := os.GetOIDC(ctx, "corp"); got.SessionTTL != time.Hour {
		t.Fatalf("replaced provider has session TTL %v", got.SessionTTL)
	}
	if _, err := os.GetOIDC(ctx, "nope"); envy.ErrorCode(err) != envy.ENotFound {
		t.Fatalf("GetOIDC(missing) = %v, want not found", err)
	}
	if list, err := os.ListOIDC(ctx, "", 10); err != nil || len(list) != 2 || list[0].Name != "corp" || list[1].Name != "google" {
		t.Fatalf("ListOIDC = %+v, %v", list, err)
	}
	if list, _ := os.ListOIDC(ctx, "corp", 10); len(list) != 1 || list[0].Name != "google" {
		t.Fatalf("ListOIDC after corp = %+v", list)
	}
	if ts, ok := s.(envy.TrustStore); ok {
		tok := envy.Token{ID: "o1", Name: "oidc:corp:alice <alice@acme.example>", Owner: "oidc:o1", Hash: envy.HashToken("secret-o1"),
			Permissions: corp.Roles[0].Permissions, CreatedAt: t0, CreatedBy: "oidc:corp", Trust: envy.OIDCTrustPrefix + "corp", Subject: "alice"}
		if _, err := s.CreateToken(ctx, tok, false, nil); err != nil {
			t.Fatal(err)
		}
		if ids, err := ts.TrustTokens(ctx, envy.OIDCTrustPrefix+"corp"); err != nil || !slices.Equal(ids, []string{"o1"}) {
			t.Fatalf("TrustTokens(oidc:corp) = %v, %v", ids, err)
		}
	}
	existed, err := os.DeleteOIDC(ctx, "corp", []envy.AuditEntry{{Actor: "admin", Action: envy.AuditOIDCDelete, Names: []string{"corp"}, Status: envy.OutcomeDeleted}})
	if err != nil || !existed {
		t.Fatalf("DeleteOIDC = %v, %v", existed, err)
	}
	if existed, err := os.DeleteOIDC(ctx, "corp", nil); err != nil || existed {
		t.Fatalf("DeleteOIDC again = %v, %v; want absent", existed, err)
	}
	if _, err := os.GetOIDC(ctx, "corp"); envy.ErrorCode(err) != envy.ENotFound {
		t.Fatalf("GetOIDC after delete = %v", err)
	}
	auditHas(t, s, envy.AuditOIDCPut, envy.AuditOIDCDelete)
}
