package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/envy-dev/envy/internal/pgtest"
	"github.com/envy-dev/envy/postgres"
	"github.com/envy-dev/envy/sqlite"
)

// TestMoveNeverUpgradesItsSource: envy backup --from and envy migrate
// --from read a source of another schema version than their own neither
// by upgrading it (the backup taken before an upgrade is what a downgrade
// restores, with the old envy) nor at all: they refuse it, saying which
// side is newer, and leave it as it was.
func TestMoveNeverUpgradesItsSource(t *testing.T) {
	ctx := context.Background()
	cur := schemaVersion()
	for _, c := range []struct {
		name string
		sql  []string
		want string
		ver  int
	}{
		{"older", []string{`DROP TABLE retired_master_keys`, fmt.Sprintf(`DELETE FROM schema_migrations WHERE version = %d`, cur)},
			fmt.Sprintf("has schema version %d, older than this envy's %d", cur-1, cur), cur - 1},
		{"newer", []string{fmt.Sprintf(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (%d, 'future.sql', 0)`, cur+1)},
			fmt.Sprintf("has schema version %d, newer than this envy's %d", cur+1, cur), cur + 1},
	} {
		t.Run("sqlite "+c.name, func(t *testing.T) {
			dir := t.TempDir()
			src := filepath.Join(dir, "src")
			st, err := sqlite.Open(ctx, filepath.Join(src, "envy.db"))
			if err != nil {
				t.Fatal(err)
			}
			st.Close()
			db, err := sql.Open("sqlite", filepath.Join(src, "envy.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			for _, q := range c.sql {
				if _, err := db.Exec(q); err != nil {
					t.Fatal(err)
				}
			}
			for _, args := range [][]string{
				{"backup", "--from", "sqlite:" + src, filepath.Join(dir, "b.jsonl")},
				{"migrate", "--from", "sqlite:" + src, "--to", "sqlite:" + filepath.Join(dir, "dst")},
			} {
				var stdout, stderr bytes.Buffer
				if code := run(args, strings.NewReader(""), &stdout, &stderr, func(string) string { return "" }); code == 0 {
					t.Fatalf("envy %s succeeded", args[0])
				}
				if !strings.Contains(stderr.String(), c.want) {
					t.Fatalf("envy %s said %q, want %q", args[0], stderr.String(), c.want)
				}
				if v, err := sqlite.ReadSchemaVersion(ctx, filepath.Join(src, "envy.db")); err != nil || v != c.ver {
					t.Fatalf("after envy %s the source has schema version %d (%v), want %d: it was upgraded", args[0], v, err, c.ver)
				}
			}
		})
	}
	t.Run("postgres older", func(t *testing.T) {
		pgtest.ServerURL(t)
		url := pgtest.NewDatabase(t)
		st, err := postgres.Open(ctx, url, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		st.Close()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, fmt.Sprintf(`DROP TABLE retired_master_keys; DELETE FROM schema_migrations WHERE version = %d`, cur)); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		if code := run([]string{"migrate", "--from", url, "--to", "sqlite:" + t.TempDir()}, strings.NewReader(""), &stdout, &stderr, func(string) string { return "" }); code == 0 {
			t.Fatal("envy migrate succeeded")
		}
		if want := fmt.Sprintf("has schema version %d, older than this envy's %d", cur-1, cur); !strings.Contains(stderr.String(), want) {
			t.Fatalf("envy migrate said %q, want %q", stderr.String(), want)
		}
		if v, err := postgres.ReadSchemaVersion(ctx, url); err != nil || v != cur-1 {
			t.Fatalf("after envy migrate the source has schema version %d (%v), want %d: it was upgraded", v, err, cur-1)
		}
	})
}
