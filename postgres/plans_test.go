package postgres

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/pgtest"
)

// A batch reads the scopes it writes through their keys, whatever plan
// PostgreSQL caches for its statements. After a few runs of a prepared
// statement PostgreSQL may keep a generic plan, made for any list of
// paths: for the read of the batch's scopes and their vars, that plan
// joined a guess of ten paths with a scan of every var in the database,
// in every batch, so that writes slowed as the database grew. The test
// forces the generic plans and counts the scans of vars.
func TestBatchesReadTheirScopesByKeyUnderGenericPlans(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	ctx := context.Background()
	write := func(s *Store, scope string, changes ...envy.VarChange) {
		t.Helper()
		if _, err := s.Write(ctx, envy.Write{Scope: scope, Actor: "tester", CreateScope: true, Changes: changes}); err != nil {
			t.Fatalf("write %s: %v", scope, err)
		}
	}
	seed, err := Open(ctx, dbURL, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	for i := range 100 {
		changes := make([]envy.VarChange, 40)
		for j := range changes {
			changes[j] = setChange(fmt.Sprintf("V_%02d", j), "value", nil)
		}
		write(seed, fmt.Sprintf("app/s%03d", i), changes...)
	}
	seed.Close()

	admin, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, `ANALYZE`); err != nil {
		t.Fatalf("ANALYZE: %v", err)
	}
	before := seqScans(t, admin, "vars")

	u, _ := url.Parse(dbURL)
	q := u.Query()
	q.Set("plan_cache_mode", "force_generic_plan")
	u.RawQuery = q.Encode()
	s, err := Open(ctx, u.String(), Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	for i := range 20 {
		scope := fmt.Sprintf("app/s%03d", i*5)
		write(s, scope, setChange("NEW", "value", nil))
		// The reads that serve and check a cached scope, too.
		tree, err := s.ScopeTree(ctx, scope)
		if err != nil {
			t.Fatalf("ScopeTree(%s): %v", scope, err)
		}
		if _, _, err := s.Check(ctx, []string{scope}, []int64{tree[scope].Scope.Revision}, ""); err != nil {
			t.Fatalf("Check(%s): %v", scope, err)
		}
	}
	s.Close()
	if after := seqScans(t, admin, "vars"); after != before {
		t.Fatalf("20 single-var writes and reads scanned the whole vars table %d times under generic plans; want none (each scope's vars read by key)", after-before)
	}
}

// seqScans returns how many sequential scans of table the database has
// counted, once every other session on it has ended (a session reports
// its counts when it ends, at the latest).
func seqScans(t *testing.T, c *pgx.Conn, table string) int64 {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var others int
		if err := c.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&others); err != nil {
			t.Fatalf("pg_stat_activity: %v", err)
		}
		if others == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d other sessions still on the database after 15s", others)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var n int64
	if _, err := c.Exec(ctx, `SELECT pg_stat_clear_snapshot()`); err != nil {
		t.Fatalf("pg_stat_clear_snapshot: %v", err)
	}
	if err := c.QueryRow(ctx, `SELECT seq_scan FROM pg_stat_user_tables WHERE relname = $1`, table).Scan(&n); err != nil {
		t.Fatalf("seq_scan of %s: %v", table, err)
	}
	return n
}
