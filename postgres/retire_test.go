package postgres

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/pgtest"
)

// underKey is a value as crypto seals it under data key id (format 1,
// then the key's id).
func underKey(id uint32, value string) []byte {
	return append([]byte{1, byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}, value...)
}

// waitLocked waits until n backends of the database wait for a lock
// (a row's, the revision row's). It asks on a connection of the pool,
// outside any transaction (one sees the activity as it first read it).
func waitLocked(t *testing.T, s *Store, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting int
		if err := s.pool.QueryRow(context.Background(), `SELECT COUNT(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d backends wait for a lock, want %d", waiting, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A value sealed under a data key is sealed before its write begins, so
// the write and the retirement of that key meet in the database: a write
// that got there first holds the key (FOR KEY SHARE) until it commits,
// and the retirement, waiting for it, then counts its value (EConflict);
// a write that comes while the retirement deletes the key waits for it,
// then finds the key gone and is refused, retryably.
func TestAWriteAndARetirementOfItsKeyMeet(t *testing.T) {
	url := pgtest.NewDatabase(t)
	s := openTest(t, url)
	ctx := context.Background()
	for _, id := range []uint32{1, 2} {
		if err := s.AddDataKey(ctx, envy.DataKey{ID: id, Wrapped: []byte("wrapped")}); err != nil {
			t.Fatal(err)
		}
	}
	write := func(scope string, sealed []byte) chan error {
		done := make(chan error, 1)
		go func() {
			_, err := s.Write(ctx, envy.Write{Scope: scope, Actor: "tester", CreateScope: true,
				Changes: []envy.VarChange{{Name: "V", ID: rand.Text(), Version: 1, Sealed: sealed}}})
			done <- err
		}()
		return done
	}

	t.Run("the write first", func(t *testing.T) {
		// The revision row held elsewhere: the write takes its scope's
		// and its key's locks, then waits for it.
		_, hold := ownTx(t, url)
		if _, err := hold.Exec(ctx, `SELECT revision FROM meta WHERE id = 1 FOR UPDATE`); err != nil {
			t.Fatal(err)
		}
		wrote := write("first", underKey(1, "v"))
		waitLocked(t, s, 1)
		retired := make(chan error, 1)
		go func() {
			_, err := s.RetireDataKeys(ctx, 2)
			retired <- err
		}()
		waitLocked(t, s, 2) // the retirement waits for the write's lock of key 1
		if err := hold.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-wrote; err != nil {
			t.Fatalf("the write: %v", err)
		}
		if err := <-retired; envy.ErrorCode(err) != envy.EConflict {
			t.Fatalf("the retirement of a key that a value committed meanwhile is under: %v, want EConflict", err)
		}
		if dks, err := s.DataKeys(ctx); err != nil || len(dks) != 2 {
			t.Fatalf("data keys after a refused retirement: %d, %v", len(dks), err)
		}
		// Resealed, the value leaves key 1 free to retire.
		for _, q := range []string{`UPDATE vars SET sealed = $1`, `UPDATE history SET sealed = $1 WHERE sealed IS NOT NULL`} {
			if _, err := s.pool.Exec(ctx, q, underKey(2, "v")); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("the retirement first", func(t *testing.T) {
		// A retirement in progress: it has locked and deleted key 1.
		_, tx := ownTx(t, url)
		if _, err := tx.Exec(ctx, `SELECT id FROM data_keys WHERE id <> 2 ORDER BY id FOR UPDATE`); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM data_keys WHERE id <> 2`); err != nil {
			t.Fatal(err)
		}
		wrote := write("second", underKey(1, "late"))
		waitLocked(t, s, 1)
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		err := <-wrote
		if e := envy.AsError(err); e == nil || e.Code != envy.EUnavailable || e.RetryAfter <= 0 || !strings.Contains(e.Message, "was retired; try again") {
			t.Fatalf("a write under a key retired while it waited: %v, want EUnavailable with a Retry-After", err)
		}
		if v := varOf(t, s, "second", "V"); v != nil {
			t.Fatalf("the refused write stored %q", v.Sealed)
		}
		// A value under the kept key goes in.
		if err := <-write("second", underKey(2, "now")); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("the revision row is not held", func(t *testing.T) {
		// The retirement waits only for the writes under the keys it
		// deletes: the writes of every other value go on while it counts,
		// and no write holding a key's lock waits for it the other way.
		_, hold := ownTx(t, url)
		if _, err := hold.Exec(ctx, `SELECT revision FROM meta WHERE id = 1 FOR UPDATE`); err != nil {
			t.Fatal(err)
		}
		defer hold.Rollback(ctx)
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if _, err := s.RetireDataKeys(rctx, 2); err != nil {
			t.Fatalf("a retirement while the revision row is held: %v", err)
		}
	})
}
