package postgres

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/pgtest"
)

// TestAppendAuditCheckedRecordsWhatPassesItsCheckAlone appends, in one
// call, reveals whose checks pass and fail every way one can: a token
// revoked or unknown, a dep at another revision, a dep gone, a dep that
// was absent (revision 0) and now is there. Only the entries of the
// checks that pass are recorded, those of one check added up; an entry
// without a check always is.
func TestAppendAuditCheckedRecordsWhatPassesItsCheckAlone(t *testing.T) {
	pgtest.ServerURL(t)
	s := openTest(t, pgtest.NewDatabase(t))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	now := time.Now()
	for _, id := range []string{"tok_live", "tok_revoked"} {
		if _, err := s.CreateToken(ctx, envy.Token{ID: id, Name: id, Owner: "o", Hash: []byte("hash-" + id), CreatedAt: now}, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RevokeToken(ctx, "tok_revoked", time.Time{}, nil); err != nil {
		t.Fatal(err)
	}
	app := set(t, s, "app", "A", "1").Revision
	base := set(t, s, "base", "B", "1").Revision
	set(t, s, "late", "L", "1")

	reveal := func(id string) envy.AuditEntry {
		return envy.AuditEntry{At: now, Actor: "tok", Action: envy.AuditReveal, Scope: "app", Status: envy.OutcomeOK,
			RequestID: id, Client: "127.0.0.1", TokenID: "tok_live", Aggregate: true}
	}
	check := func(token string, deps ...envy.ScopeRev) *envy.AuditCheck {
		return &envy.AuditCheck{Token: token, Deps: deps}
	}
	current := []envy.ScopeRev{{Path: "app", Revision: app}, {Path: "base", Revision: base}, {Path: "nowhere"}}
	cases := []struct {
		id    string
		check *envy.AuditCheck
		want  bool
	}{
		{"r-current", check("tok_live", current...), true},
		{"r-current-again", check("tok_live", current...), true},
		{"r-nocheck", nil, true},
		{"r-tokenless", check("", current...), true},
		{"r-tokenless-older", check("", envy.ScopeRev{Path: "app", Revision: app - 1}), false},
		{"r-revoked", check("tok_revoked", current...), false},
		{"r-unknown", check("tok_nobody", current...), false},
		{"r-older", check("tok_live", envy.ScopeRev{Path: "app", Revision: app - 1}, envy.ScopeRev{Path: "base", Revision: base}), false},
		{"r-gone", check("tok_live", envy.ScopeRev{Path: "app", Revision: app}, envy.ScopeRev{Path: "deleted", Revision: 1}), false},
		{"r-appeared", check("tok_live", envy.ScopeRev{Path: "app", Revision: app}, envy.ScopeRev{Path: "late"}), false},
		{"r-nodeps", check("tok_live"), true},
	}
	var (
		entries []envy.AuditEntry
		checks  []*envy.AuditCheck
	)
	for _, c := range cases {
		entries, checks = append(entries, reveal(c.id)), append(checks, c.check)
	}
	ok, err := s.AppendAuditChecked(ctx, entries, checks)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i, c := range cases {
		if ok[i] != c.want {
			t.Errorf("%s: recorded %v, want %v", c.id, ok[i], c.want)
		}
		if c.want {
			want = append(want, c.id)
		}
	}
	got, err := s.ListAudit(ctx, envy.AuditQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	var rows int
	for _, e := range got {
		if e.Action != envy.AuditReveal {
			continue
		}
		rows++
		ids = append(ids, e.RequestIDs...)
		if len(e.RequestIDs) == 0 {
			ids = append(ids, e.RequestID)
		}
	}
	slices.Sort(ids)
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Fatalf("recorded the reveals %v, want %v", ids, want)
	}
	// The two of one check add up; the unchecked one, the check without
	// a token and the one without deps are rows of their own.
	if rows != 4 {
		t.Fatalf("%d rows of reveals, want 4", rows)
	}
	if ok, err := s.AppendAuditChecked(ctx, entries[:1], nil); err == nil || ok != nil {
		t.Fatal("checks that don't match the entries were taken")
	}
}
