package envy

import (
	"context"
	"testing"
)

func TestCanAnswersForTheCaller(t *testing.T) {
	s := NewService(nil, nil, Options{})
	defer s.Close()
	tok := &Token{Name: "t", Permissions: []Grant{
		{Scopes: "acme/**", Actions: []Action{ActRead}},
		{Scopes: "acme/web/dev", Actions: []Action{ActWrite}},
		{Scopes: "ops/*", Actions: []Action{ActAdmin}},
	}}
	ctx := WithCaller(context.Background(), &Caller{Token: tok})
	tests := []struct {
		a     Action
		scope string
		want  bool
	}{
		{ActRead, "acme/web/prod", true},
		{ActWrite, "acme/web/prod", false},
		{ActWrite, "acme/web/dev", true},
		{ActReveal, "acme/web/dev", false},
		{ActReveal, "ops/x", true}, // admin implies everything
		{ActWrite, "ops/x/y", false},
		{ActRead, "other", false},
	}
	for _, tt := range tests {
		if got := s.Can(ctx, tt.a, tt.scope); got != tt.want {
			t.Errorf("Can(%s, %s) = %v, want %v", tt.a, tt.scope, got, tt.want)
		}
	}
	if s.Can(context.Background(), ActRead, "acme") {
		t.Error("Can without a caller = true, want false")
	}
}
