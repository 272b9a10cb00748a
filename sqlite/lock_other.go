//go:build !unix

package sqlite

import "os"

// lockFile is a no-op where flock is missing: one server per data
// directory is then the operator's to ensure.
func lockFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
}
