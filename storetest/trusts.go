package storetest

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/envy-dev/envy"
)

// testTrusts: JWT trusts are created, replaced, read, listed and deleted
// with their audit entries, and a token minted by a login keeps its trust
// and subject, so that the trust's live tokens are found by its name.
func testTrusts(t *testing.T, s envy.Store) {
	ts, ok := s.(envy.TrustStore)
	if !ok {
		t.Skip("the store is no envy.TrustStore")
	}
	ctx := t.Context()
	ci := envy.JWTTrust{Name: "ci", Issuer: "https://token.actions.githubusercontent.com", Audience: "envy",
		BoundClaims: map[string]string{"repository": "acme/web", "ref": "refs/heads/*"}, SubjectClaim: "sub",
		Permissions: []envy.Grant{{Scopes: "acme/web/**", Actions: []envy.Action{envy.ActRead, envy.ActReveal}}},
		TTL:         15 * time.Minute, MaxAge: time.Hour, CreatedAt: t0, CreatedBy: "admin", CreatorID: "a1"}
	created, err := ts.PutTrust(ctx, ci, []envy.AuditEntry{{Actor: "admin", Action: envy.AuditTrustPut, Names: []string{"ci"}, Status: envy.OutcomeCreated}})
	if err != nil || !created {
		t.Fatalf("PutTrust(new) = %v, %v; want created", created, err)
	}
	got, err := ts.GetTrust(ctx, "ci")
	if err != nil || !reflect.DeepEqual(got, ci) {
		t.Fatalf("GetTrust = %+v, %v; want %+v", got, err, ci)
	}
	k8s := ci
	k8s.Name, k8s.Issuer, k8s.JWKSURL, k8s.BoundClaims = "k8s", "https://kubernetes.default.svc", "https://k8s.example/openid/v1/jwks", nil
	if created, err := ts.PutTrust(ctx, k8s, nil); err != nil || !created {
		t.Fatalf("PutTrust(k8s) = %v, %v", created, err)
	}
	ci.TTL = 5 * time.Minute
	if created, err := ts.PutTrust(ctx, ci, nil); err != nil || created {
		t.Fatalf("PutTrust(replace) = %v, %v; want replaced, not created", created, err)
	}
	if got, _ := ts.GetTrust(ctx, "ci"); got.TTL != 5*time.Minute {
		t.Fatalf("replaced trust has TTL %v", got.TTL)
	}
	if _, err := ts.GetTrust(ctx, "nope"); envy.ErrorCode(err) != envy.ENotFound {
		t.Fatalf("GetTrust(missing) = %v, want not found", err)
	}
	list, err := ts.ListTrusts(ctx, "", 10)
	if err != nil || len(list) != 2 || list[0].Name != "ci" || list[1].Name != "k8s" {
		t.Fatalf("ListTrusts = %+v, %v", list, err)
	}
	if list, _ := ts.ListTrusts(ctx, "ci", 10); len(list) != 1 || list[0].Name != "k8s" {
		t.Fatalf("ListTrusts after ci = %+v", list)
	}
	if list, _ := ts.ListTrusts(ctx, "", 1); len(list) != 1 {
		t.Fatalf("ListTrusts limit 1 = %+v", list)
	}

	// Tokens minted by logins keep their lineage.
	mint := func(id, trust, subject string) {
		t.Helper()
		tok := envy.Token{ID: id, Name: "jwt:" + trust + ":" + subject, Owner: id, Hash: envy.HashToken("secret-" + id),
			Permissions: ci.Permissions, CreatedAt: t0, CreatedBy: "jwt:" + trust, Trust: trust, Subject: subject}
		if _, err := s.CreateToken(ctx, tok, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	mint("t1", "ci", "repo:acme/web:ref:refs/heads/main")
	mint("t2", "ci", "repo:acme/web:ref:refs/heads/main")
	mint("t3", "k8s", "system:serviceaccount:web:api")
	if _, err := s.CreateToken(ctx, noticeToken("plain", ""), false, nil); err != nil {
		t.Fatal(err)
	}
	tok, err := s.GetToken(ctx, "t1")
	if err != nil || tok.Trust != "ci" || tok.Subject != "repo:acme/web:ref:refs/heads/main" {
		t.Fatalf("GetToken(t1) = %+v, %v: lineage lost", tok, err)
	}
	if tok, _ := s.TokenByHash(ctx, envy.HashToken("secret-t3")); tok.Trust != "k8s" || tok.Subject != "system:serviceaccount:web:api" {
		t.Fatalf("TokenByHash(t3) = %+v: lineage lost", tok)
	}
	if tok, _ := s.GetToken(ctx, "plain"); tok.Trust != "" || tok.Subject != "" {
		t.Fatalf("a plain token has lineage %q %q", tok.Trust, tok.Subject)
	}
	ids, err := ts.TrustTokens(ctx, "ci")
	if err != nil || !slices.Equal(ids, []string{"t1", "t2"}) {
		t.Fatalf("TrustTokens(ci) = %v, %v", ids, err)
	}
	if err := s.RevokeToken(ctx, "t1", t0, nil); err != nil {
		t.Fatal(err)
	}
	if ids, _ := ts.TrustTokens(ctx, "ci"); !slices.Equal(ids, []string{"t2"}) {
		t.Fatalf("TrustTokens(ci) after revoking t1 = %v, want [t2]", ids)
	}

	// The sweep deletes the logins' tokens that ended before a time: t1
	// (revoked at t0) and an expired one, not t2 (live), t3 (another
	// trust's, live), a plain token, or a login's token that minted one.
	expired := t0.Add(-time.Hour)
	tok = envy.Token{ID: "t4", Name: "jwt:ci:old", Owner: "t4", Hash: envy.HashToken("secret-t4"), Permissions: ci.Permissions,
		CreatedAt: t0.Add(-2 * time.Hour), CreatedBy: "jwt:ci", ExpiresAt: &expired, Trust: "ci", Subject: "old"}
	if _, err := s.CreateToken(ctx, tok, false, nil); err != nil {
		t.Fatal(err)
	}
	parent := tok
	parent.ID, parent.Name, parent.Owner, parent.Hash, parent.ExpiresAt = "t5", "jwt:ci:parent", "t5", envy.HashToken("secret-t5"), nil
	if _, err := s.CreateToken(ctx, parent, false, nil); err != nil {
		t.Fatal(err)
	}
	child := noticeToken("t5-child", "t5")
	if _, err := s.CreateToken(ctx, child, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeToken(ctx, "t5", t0, nil); err != nil {
		t.Fatal(err)
	}
	n, err := ts.PruneTrustTokens(ctx, t0.Add(time.Second))
	if err != nil || n != 2 {
		t.Fatalf("PruneTrustTokens = %d, %v; want 2 (t1 and t4)", n, err)
	}
	for id, want := range map[string]bool{"t1": false, "t4": false, "t2": true, "t3": true, "plain": true, "t5": true} {
		if _, err := s.GetToken(ctx, id); (err == nil) != want {
			t.Errorf("token %s after the prune: %v, want kept %v", id, err, want)
		}
	}

	existed, err := ts.DeleteTrust(ctx, "ci", []envy.AuditEntry{{Actor: "admin", Action: envy.AuditTrustDelete, Names: []string{"ci"}, Status: envy.OutcomeDeleted}})
	if err != nil || !existed {
		t.Fatalf("DeleteTrust = %v, %v", existed, err)
	}
	if existed, err := ts.DeleteTrust(ctx, "ci", nil); err != nil || existed {
		t.Fatalf("DeleteTrust again = %v, %v; want absent", existed, err)
	}
	if _, err := ts.GetTrust(ctx, "ci"); envy.ErrorCode(err) != envy.ENotFound {
		t.Fatalf("GetTrust after delete = %v", err)
	}
	auditHas(t, s, envy.AuditTrustPut, envy.AuditTrustDelete)
}

// auditHas fails the test unless the audit log has an entry of each action.
func auditHas(t *testing.T, s envy.Store, want ...envy.AuditAction) {
	t.Helper()
	audit, err := s.ListAudit(t.Context(), envy.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var actions []envy.AuditAction
	for _, e := range audit {
		actions = append(actions, e.Action)
	}
	for _, a := range want {
		if !slices.Contains(actions, a) {
			t.Fatalf("audit actions %v lack %s", actions, a)
		}
	}
}
