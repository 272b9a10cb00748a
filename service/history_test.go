package service_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/service"
	"github.com/envy-dev/envy/sqlite"
)

// TestHistoryMasksEveryVersionOfAVarOnceSecret: a var set plain, marked
// secret, then unmarked reads masked, in all its versions up to the last
// secret one, to a caller without reveal (envy.MaskedChange); a rollback
// by such a caller to a masked version, as a plain var, is refused.
func TestHistoryMasksEveryVersionOfAVarOnceSecret(t *testing.T) {
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "envy.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	svc, admin := newService(t, store)
	var revs []int64
	for _, in := range []struct {
		v      string
		secret bool
	}{{"p1", false}, {"s2", true}, {"p3", false}} {
		val := envy.NewSensitive(in.v)
		_, info, err := svc.SetVar(admin, "app", "A", envy.VarInput{Value: &val, Secret: &in.secret}, envy.SetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		revs = append(revs, info.Revision)
	}
	as := func(actions ...envy.Action) context.Context {
		return service.WithCaller(context.Background(), &service.Caller{Token: &envy.Token{ID: "t", Name: "t", Permissions: []envy.Grant{{Scopes: "app", Actions: actions}}}})
	}
	page, err := svc.History(as(envy.ActRead), "app", envy.HistoryQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range page.Items {
		masked := c.Revision <= revs[1]
		if masked != (c.Value == nil) || masked != c.Secret || masked != (c.MaskedValue != nil) {
			t.Errorf("revision %d: secret %v, value shown %v; want masked %v", c.Revision, c.Secret, c.Value != nil, masked)
		}
	}
	if _, err := svc.Rollback(as(envy.ActRead, envy.ActWrite), "app", revs[0], envy.Cond{}); envy.ErrorCode(err) != envy.EForbidden {
		t.Errorf("a rollback without reveal to a version masked in history: %v, want forbidden", err)
	}
	if _, err := svc.Rollback(as(envy.ActRead, envy.ActWrite, envy.ActReveal), "app", revs[0], envy.Cond{}); err != nil {
		t.Errorf("a rollback with reveal: %v", err)
	}
}
