package service

import (
	"context"
	"testing"

	"github.com/envy-dev/envy"
)

func TestCanAnswersForTheCaller(t *testing.T) {
	s := New(nil, nil, Options{})
	defer s.Close()
	tok := &envy.Token{Name: "t", Permissions: []envy.Grant{
		{Scopes: "acme/**", Actions: []envy.Action{envy.ActRead}},
		{Scopes: "acme/web/dev", Actions: []envy.Action{envy.ActWrite}},
		{Scopes: "ops/*", Actions: []envy.Action{envy.ActAdmin}},
	}}
	ctx := WithCaller(context.Background(), &Caller{Token: tok})
	tests := []struct {
		a     envy.Action
		scope string
		want  bool
	}{
		{envy.ActRead, "acme/web/prod", true},
		{envy.ActWrite, "acme/web/prod", false},
		{envy.ActWrite, "acme/web/dev", true},
		{envy.ActReveal, "acme/web/dev", false},
		{envy.ActReveal, "ops/x", true}, // admin implies everything
		{envy.ActWrite, "ops/x/y", false},
		{envy.ActRead, "other", false},
	}
	for _, tt := range tests {
		if got := s.Can(ctx, tt.a, tt.scope); got != tt.want {
			t.Errorf("Can(%s, %s) = %v, want %v", tt.a, tt.scope, got, tt.want)
		}
	}
	if s.Can(context.Background(), envy.ActRead, "acme") {
		t.Error("Can without a caller = true, want false")
	}
}
