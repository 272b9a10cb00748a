//go:build !linux

package postgres

import (
	"syscall"
	"time"
)

// setUserTimeout has no TCP_USER_TIMEOUT to set outside Linux: the
// keepalives alone bound a silent connection there.
func setUserTimeout(time.Duration) func(network, address string, c syscall.RawConn) error {
	return nil
}
