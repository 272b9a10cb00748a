package sqlite

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/envy-dev/envy"
)

// TestRevealsCoalesceAcrossCommits: on SQLite, where one writer commits
// the batches in turn, the reveals of one key and second add to one row
// whatever commit they came in (PostgreSQL coalesces within a commit).
func TestRevealsCoalesceAcrossCommits(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "envy.db"))
	sec := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	for i := range 3 {
		e := envy.AuditEntry{At: sec.Add(time.Duration(i) * time.Millisecond), Actor: "ci", Action: envy.AuditReveal, Scope: "app",
			Status: envy.OutcomeOK, RequestID: fmt.Sprint("req-", i), Client: "10.0.0.1", TokenID: "tok-1", Count: 1, Aggregate: true}
		if err := s.AppendAudit(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ListAudit(t.Context(), envy.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Count != 3 || fmt.Sprint(got[0].RequestIDs) != "[req-0 req-1 req-2]" || !got[0].LastAt.Equal(sec.Add(2*time.Millisecond)) {
		t.Fatalf("3 reveals of one key in one second, in 3 commits: %+v", got)
	}
}
