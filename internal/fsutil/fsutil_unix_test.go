//go:build unix

package fsutil

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestMkdirPrivateSetsTheModeWhateverTheUmask(t *testing.T) {
	base := t.TempDir()
	for _, umask := range []int{0, 0o022, 0o277} {
		old := syscall.Umask(umask)
		dir := filepath.Join(base, "u", string(rune('a'+umask%26)), "data")
		err := MkdirPrivate(dir)
		syscall.Umask(old)
		if err != nil {
			t.Fatalf("umask %04o: %v", umask, err)
		}
		for d := dir; d != base; d = filepath.Dir(d) {
			fi, err := os.Stat(d)
			if err != nil || fi.Mode().Perm() != 0o700 {
				t.Errorf("umask %04o: %s: %v, %v; want mode 0700", umask, d, fi.Mode().Perm(), err)
			}
		}
	}
	// A directory that existed keeps its mode.
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := MkdirPrivate(base); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(base); fi.Mode().Perm() != 0o755 {
		t.Errorf("an existing directory's mode changed to %04o", fi.Mode().Perm())
	}
}
