// Package fsutil creates envy's files and directories private to their
// owner, whatever the umask: a umask can take mode bits away (0700 under a
// umask of 0277 is 0500, which the owner can't write into), so modes are
// set explicitly after creation.
package fsutil

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// MkdirPrivate creates dir and any missing parents with mode 0700 and
// makes sure each directory it created has exactly that mode. Directories
// that existed are left as they are.
func MkdirPrivate(dir string) error {
	var created []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil || !errors.Is(err, fs.ErrNotExist) {
			break
		}
		created = append(created, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, d := range created {
		if err := os.Chmod(d, 0o700); err != nil {
			return err
		}
	}
	return nil
}

// MakePrivate sets mode 0600 on each file that exists.
func MakePrivate(paths ...string) error {
	for _, p := range paths {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}
