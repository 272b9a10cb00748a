package service_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/postgres"
)

// failingAudit is a deaf store whose checked audit appends fail while
// fail is set, and that counts its checks of cached trees and tokens.
type failingAudit struct {
	deafStore
	fail   atomic.Bool
	checks atomic.Int32
}

func (f *failingAudit) AppendAuditChecked(ctx context.Context, entries []envy.AuditEntry, checks []*envy.AuditCheck) ([]bool, error) {
	if f.fail.Load() {
		return nil, envy.Errorf(envy.EUnavailable, "the audit log is down")
	}
	return f.deafStore.AppendAuditChecked(ctx, entries, checks)
}

func (f *failingAudit) Check(ctx context.Context, paths []string, revs []int64, token string) (bool, bool, error) {
	f.checks.Add(1)
	return f.deafStore.Check(ctx, paths, revs, token)
}

// TestAnEnvReadWhoseAuditCantBeWrittenIsRefusedOnce: a read answered
// from the cached token and tree (AuthenticateReveal) whose reveal can't
// be recorded is refused as such (503), not read again from a checked
// tree: that would double every read's wait and load while the audit log
// is down, and answer the check's error instead of the audit's.
func TestAnEnvReadWhoseAuditCantBeWrittenIsRefusedOnce(t *testing.T) {
	fa := &failingAudit{}
	first, second, ctx := serversWith(t, func(st *postgres.Store) envy.Store { fa.deafStore = deafStore{st}; return fa })
	plain, _, err := first.Bootstrap(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	setVar(t, first, ctx, "g/app", "A", "1")

	read := func() error {
		rctx, _ := authenticated(t, second.AuthenticateReveal, plain, "g/app")
		_, err := second.EnvReply(rctx, "g/app", "test", nil, func(b []byte, env envy.Env) ([]byte, error) { return append(b, '.'), nil })
		return err
	}
	for range 2 { // the token and the tree cached on the second server
		if err := read(); err != nil {
			t.Fatal(err)
		}
	}
	fa.fail.Store(true)
	fa.checks.Store(0)
	err = read()
	if e := envy.AsError(err); e == nil || e.Code != envy.EUnavailable || !strings.Contains(e.Message, "audit") {
		t.Fatalf("a read whose reveal can't be recorded: %v, want 503 saying the audit can't be written", err)
	}
	if n := fa.checks.Load(); n != 0 {
		t.Errorf("the read checked the store %d times after its audit failed, want none (made again)", n)
	}
}
