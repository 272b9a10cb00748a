package main

import (
	"strings"
	"testing"
)

// TestAuditShowsEachActorsTokenID: `envy audit` shows an actor with the
// first 8 characters of its token's id.
func TestAuditShowsEachActorsTokenID(t *testing.T) {
	e, ev := server(t)
	admin, err := e.Svc.Authenticate(t.Context(), e.Admin)
	if err != nil {
		t.Fatal(err)
	}
	must(t, ev, "", "vars", "set", "acme/web", "A", "1", "--create")
	out := must(t, ev, "", "audit")
	if !strings.Contains(out, "admin ("+admin.ID[:8]+")") {
		t.Fatalf("envy audit does not show the actor's token id %s:\n%s", admin.ID[:8], out)
	}
}

// TestHistoryShowsEachActorsTokenID: `envy history` likewise.
func TestHistoryShowsEachActorsTokenID(t *testing.T) {
	e, ev := server(t)
	admin, err := e.Svc.Authenticate(t.Context(), e.Admin)
	if err != nil {
		t.Fatal(err)
	}
	must(t, ev, "", "vars", "set", "acme/web", "A", "1", "--create")
	out := must(t, ev, "", "history", "acme/web")
	if !strings.Contains(out, "admin ("+admin.ID[:8]+")") {
		t.Fatalf("envy history does not show the actor's token id %s:\n%s", admin.ID[:8], out)
	}
}

func TestVarsLsShowsEachWritersTokenID(t *testing.T) {
	e, ev := server(t)
	admin, err := e.Svc.Authenticate(t.Context(), e.Admin)
	if err != nil {
		t.Fatal(err)
	}
	must(t, ev, "", "vars", "set", "acme/web", "A", "1", "--create")
	out := must(t, ev, "", "vars", "ls", "acme/web")
	if !strings.Contains(out, "admin ("+admin.ID[:8]+")") {
		t.Fatalf("envy vars ls does not show the writer's token id %s:\n%s", admin.ID[:8], out)
	}
}
