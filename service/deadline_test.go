package service_test

import (
	"testing"
	"time"
)

// recv returns what ch gives within d, or fails the test now, saying what
// did not happen: a broken guarantee fails fast instead of hanging the
// package until go test's timeout.
func recv[T any](t *testing.T, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("not within %s: %s", d, what)
		panic("unreachable")
	}
}
