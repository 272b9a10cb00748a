package skips

import (
	"os"
	"strings"
	"testing"
)

// TestASkipIsRecordedForTheRunsSummary: a test skipped through Skip
// leaves its reason and name in the run's file, which the summary reads.
func TestASkipIsRecordedForTheRunsSummary(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	t.Run("needs-postgres", func(t *testing.T) { Skip(t, "no server") })
	data, err := os.ReadFile(File())
	if err != nil {
		t.Fatalf("no record of the skip: %v", err)
	}
	if got := string(data); got != "no server\tTestASkipIsRecordedForTheRunsSummary/needs-postgres\n" {
		t.Fatalf("record %q", got)
	}
	if !strings.HasPrefix(File(), os.TempDir()) {
		t.Fatalf("record file %s is not under %s", File(), os.TempDir())
	}
}
