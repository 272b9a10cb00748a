package postgres

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/envy-dev/envy/internal/pgtest"
	"github.com/envy-dev/envy/internal/storeutil"
)

// withParams is the database URL u with the settings params added.
func withParams(t *testing.T, u string, params map[string]string) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	q := pu.Query()
	for k, v := range params {
		q.Set(k, v)
	}
	pu.RawQuery = q.Encode()
	return pu.String()
}

// TestLoadIsNotBoundByAWritesTimeouts: a Load (envy restore and envy
// migrate into PostgreSQL) takes as long as the data is large. It is not
// bound as a request's write is: idle in the transaction
// (idle_in_transaction_session_timeout) while the source reads its next
// chunk, and in all (txTimeout). The bounds are made short here (300 ms
// idle, 500 ms in all) for a test of a second.
func TestLoadIsNotBoundByAWritesTimeouts(t *testing.T) {
	pgtest.ServerURL(t)
	s := openTest(t, withParams(t, pgtest.NewDatabase(t), map[string]string{"idle_in_transaction_session_timeout": "300ms"}))
	defer func(d time.Duration) { txTimeout = d }(txTimeout)
	txTimeout = 500 * time.Millisecond
	err := s.Load(context.Background(), func(put func(storeutil.Rows) error) error {
		if err := put(storeutil.Rows{Table: "meta", Columns: []string{"id", "revision"}, Values: [][]any{{int64(1), int64(7)}}}); err != nil {
			return err
		}
		for i := int64(1); i <= 2; i++ {
			time.Sleep(400 * time.Millisecond) // the source is slow to give its next chunk
			if err := put(storeutil.Rows{Table: "audit", Columns: []string{"id", "at", "actor", "action", "scope", "names", "status", "request_id", "client", "revision"},
				Values: [][]any{{i, i, "a", "vars.reveal", "s", "[]", int64(200), "r", "c", int64(0)}}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("a Load of 0.8 s whose source paused 0.4 s between chunks (idle timeout 0.3 s, txTimeout 0.5 s): %v", err)
	}
}

// TestMoveTransactionsHaveNoStatementTimeout: the transactions of a Dump
// (envy backup, streamed to a slow reader) and of a Load run without the
// statement and idle timeouts of a request's.
func TestMoveTransactionsHaveNoStatementTimeout(t *testing.T) {
	pgtest.ServerURL(t)
	s := openTest(t, pgtest.NewDatabase(t))
	dst := openTest(t, pgtest.NewDatabase(t))
	var seen []string
	moveTxHook = func(ctx context.Context, tx pgx.Tx) error {
		for _, name := range []string{"statement_timeout", "idle_in_transaction_session_timeout"} {
			var v string
			if err := tx.QueryRow(ctx, `SELECT current_setting($1)`, name).Scan(&v); err != nil {
				return err
			}
			seen = append(seen, name+"="+v)
		}
		return nil
	}
	defer func() { moveTxHook = nil }()
	if err := dst.Load(context.Background(), func(put func(storeutil.Rows) error) error { return s.Dump(context.Background(), put) }); err != nil {
		t.Fatal(err)
	}
	want := []string{"statement_timeout=0", "idle_in_transaction_session_timeout=0"}
	if len(seen) != 4 {
		t.Fatalf("the move's transactions ran with %v, want a Load's and a Dump's each with %v", seen, want)
	}
	for i, v := range seen {
		if v != want[i%2] {
			t.Fatalf("the move's transactions ran with %v, want %v each", seen, want)
		}
	}
}
