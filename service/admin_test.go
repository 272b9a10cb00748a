package service_test

import (
	"context"
	"errors"
	"testing"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/service"
	"github.com/envy-dev/envy/sqlite"
)

// An admin operation whose client goes away while it runs (a backup cut
// short after most of it went out) is in the audit log all the same: it
// ran, and the store's record must say so, as the streams' does.
func TestAnAdminOpCutShortByItsClientIsStillAudited(t *testing.T) {
	svc, admin := newServiceOver(t, service.Options{}, func(db *sqlite.Store) envy.Store { return db })
	ctx, cancel := context.WithCancel(admin)
	err := svc.AdminOp(ctx, envy.AuditBackup, nil, func(ctx context.Context) error {
		cancel()
		return errors.New("write tcp: broken pipe")
	})
	if err == nil {
		t.Fatal("AdminOp: no error")
	}
	page, err := svc.Audit(admin, envy.AuditListQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range page.Items {
		if e.Action == envy.AuditBackup {
			if e.Status != envy.OutcomeFailed {
				t.Fatalf("the backup's entry says %v, want failed", e.Status)
			}
			return
		}
	}
	t.Fatalf("no backup entry in the audit log after a backup that sent data and lost its client; entries: %+v", page.Items)
}
