//go:build unix

package sqlite

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/envy-dev/envy"
)

// TestDatabaseFilesArePrivateWhateverTheUmask opens a database under a
// umask that hides nothing, in a data dir that others may read, and beside
// a file an older version left world-readable: every file of the database
// ends up 0600 and a directory it creates 0700.
func TestDatabaseFilesArePrivateWhateverTheUmask(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)

	open := t.TempDir()
	if err := os.Chmod(open, 0o755); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(open, "fresh", "envy.db")
	legacy := filepath.Join(open, "legacy.db")
	s := openTest(t, legacy)
	s.Close()
	if err := os.Chmod(legacy, 0o644); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, legacy)
	defer s.Close()
	s2 := openTest(t, fresh)
	defer s2.Close()
	// A write, so that the WAL and the shared-memory file exist.
	for _, st := range []*Store{s, s2} {
		if err := st.AppendAudit(t.Context(), envy.AuditEntry{Action: "probe"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{legacy, legacy + "-wal", legacy + "-shm", legacy + ".lock", fresh, fresh + "-wal", fresh + "-shm", fresh + ".lock"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %04o, want 0600", p, fi.Mode().Perm())
		}
	}
	if fi, err := os.Stat(filepath.Dir(fresh)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the data dir it created: %v, %v; want mode 0700", fi.Mode().Perm(), err)
	}
}
