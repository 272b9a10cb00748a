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

// TestHistoryTellsAChangeThatKeptTheValue: a version that only set the
// description says so (SameValue), with its description; of a secret
// only to a caller who may reveal it, and a plain version after a secret
// one not to a caller who may not (it would tell the secret's value).
func TestHistoryTellsAChangeThatKeptTheValue(t *testing.T) {
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "envy.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	svc, admin := newService(t, store)
	set := func(name, value string, secret bool, desc string) {
		t.Helper()
		in := envy.VarInput{Secret: &secret, Description: &desc}
		if value != "" {
			v := envy.NewSensitive(value)
			in.Value = &v
		}
		if _, _, err := svc.SetVar(admin, "app", name, in, envy.SetOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	set("P", "one", false, "")
	set("P", "", false, "the port")    // v2: description only
	set("P", "two", false, "the port") // v3: a new value
	set("S", "sk_secret_value_0123", true, "")
	set("S", "", true, "the key")                      // v2: description only
	set("S", "sk_secret_value_0123", false, "the key") // v3: unmarked, the same value
	as := func(actions ...envy.Action) context.Context {
		return service.WithCaller(context.Background(), &service.Caller{Token: &envy.Token{ID: "t", Name: "t", Permissions: []envy.Grant{{Scopes: "app", Actions: actions}}}})
	}
	for _, tt := range []struct {
		who  context.Context
		name string
		want map[string]bool // "P2" → SameValue of P's version 2
	}{
		{admin, "an admin", map[string]bool{"P1": false, "P2": true, "P3": false, "S1": false, "S2": true, "S3": true}},
		{as(envy.ActRead), "a reader without reveal", map[string]bool{"P1": false, "P2": true, "P3": false, "S1": false, "S2": false, "S3": false}},
	} {
		page, err := svc.History(tt.who, "app", envy.HistoryQuery{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page.Items {
			key := c.Name + string(rune('0'+c.Version))
			if c.SameValue != tt.want[key] {
				t.Errorf("%s: %s version %d SameValue = %v, want %v", tt.name, c.Name, c.Version, c.SameValue, tt.want[key])
			}
			if key == "P2" && c.Description != "the port" {
				t.Errorf("%s: P version 2 has description %q", tt.name, c.Description)
			}
		}
	}
}
