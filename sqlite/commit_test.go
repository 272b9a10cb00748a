package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/envy-dev/envy"
)

// TestAFailedCommitAcknowledgesNothing makes the COMMIT of a group commit
// fail for real and checks that every write of that group gets an error,
// that none of them is visible, before or after a reopen, and that the
// store goes on to commit the next write.
//
// The failure is a deferred foreign key, which SQLite checks at COMMIT and
// nowhere before: every statement of the batch succeeds, then the COMMIT
// itself is refused, just as it would be on a full disk or an I/O error.
func TestAFailedCommitAcknowledgesNothing(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "envy.db")
	s := openTest(t, path)
	defer func() { s.Close() }()
	mustWrite(t, s, "app", "A", "0")
	if err := s.do(ctx, func(t *txn) error {
		if _, err := t.exec(`CREATE TABLE poison_parent (id INTEGER PRIMARY KEY)`); err != nil {
			return err
		}
		_, err := t.exec(`CREATE TABLE poison (p INTEGER REFERENCES poison_parent (id) DEFERRABLE INITIALLY DEFERRED)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	before, err := s.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}

	release := blockWriter(t, s)
	const n = 12
	errs := make(chan error, n+1)
	for i := range n {
		go func() {
			_, err := s.Write(ctx, envy.Write{Scope: "app", Actor: "tester", Changes: setVars(nil, fmt.Sprintf("V%02d", i), "x")})
			errs <- err
		}()
	}
	go func() {
		errs <- s.do(ctx, func(t *txn) error {
			_, err := t.exec(`INSERT INTO poison (p) VALUES (42)`) // no parent 42: refused at COMMIT
			return err
		})
	}()
	waitQueued(t, s, n+1)
	release()
	for range n + 1 {
		if err := <-errs; err == nil {
			t.Fatal("a write of a batch whose COMMIT failed was acknowledged")
		}
	}

	check := func(when string) {
		t.Helper()
		if rev, err := s.Revision(ctx); err != nil || rev != before {
			t.Fatalf("%s: revision %d (%v), want %d: the failed batch moved it", when, rev, err, before)
		}
		tree, err := s.ScopeTree(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		vars := tree["app"].Vars
		if len(vars) != 1 || vars[0].Name != "A" || string(vars[0].Sealed) != "0" || vars[0].Version != 1 {
			t.Fatalf("%s: app holds %+v, want only A=0 at version 1", when, vars)
		}
	}
	check("after the failed commit")
	s.Close()
	s = openTest(t, path)
	check("after a reopen")
	if res := mustWrite(t, s, "app", "A", "next"); res.Revision != before+1 {
		t.Fatalf("the next write took revision %d, want %d", res.Revision, before+1)
	}
}

// TestTheWritersStatementJournalsStayInMemory: every op of a batch runs
// in a savepoint, whose statement journal SQLite writes to a temporary
// file, a system call a page, unless temp_store is MEMORY on the writer's
// connection (bench/: a tenth of a write's CPU). The readers keep the
// default.
func TestTheWritersStatementJournalsStayInMemory(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "envy.db"))
	defer s.Close()
	var mode int
	if err := s.wconn.QueryRowContext(context.Background(), `PRAGMA temp_store`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != 2 { // 0 default, 1 file, 2 memory
		t.Fatalf("the writer's temp_store is %d, want 2 (MEMORY)", mode)
	}
}

// TestRaisingTheSizeLimitIsNotRefusedForAnotherOpsWantOfSpace queues a
// write that finds the disk full ahead of the call that raises the limit,
// in one batch: SQLite rolls that batch back whole, and the raise must
// still happen rather than fail with the write's error.
func TestRaisingTheSizeLimitIsNotRefusedForAnotherOpsWantOfSpace(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, filepath.Join(t.TempDir(), "envy.db"))
	defer s.Close()
	mustWrite(t, s, "app", "A", "0")
	if err := s.SetMaxSize(ctx, 1); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 4000)
	for i := 0; ; i++ {
		if i > 1000 {
			t.Fatal("no write was refused")
		}
		if _, err := s.Write(ctx, envy.Write{Scope: "app", Actor: "tester", Changes: setVars(nil, fmt.Sprintf("F%d", i), big)}); err != nil {
			if !isDiskFull(err) {
				t.Fatalf("filling: %v", err)
			}
			break
		}
	}

	release := blockWriter(t, s)
	wrote := make(chan error, 1)
	go func() {
		_, err := s.Write(ctx, envy.Write{Scope: "app", Actor: "tester", Changes: setVars(nil, "FULL", big)})
		wrote <- err
	}()
	waitQueued(t, s, 1)
	raised := make(chan error, 1)
	go func() { raised <- s.SetMaxSize(ctx, 1<<30) }()
	waitQueued(t, s, 2)
	release()
	if err := <-wrote; !isDiskFull(err) {
		t.Fatalf("the write queued first: %v, want the disk full", err)
	}
	if err := <-raised; err != nil {
		t.Fatalf("raising the limit in a batch that ran out of room: %v", err)
	}
	if _, err := s.Write(ctx, envy.Write{Scope: "app", Actor: "tester", Changes: setVars(nil, "AFTER", big)}); err != nil {
		t.Fatalf("a write after the limit was raised: %v", err)
	}
}
