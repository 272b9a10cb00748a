package sqlite

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/envy-dev/envy/internal/storeutil"
)

// TestMigrationKeepsDuplicateTokenNames opens a database made by the first
// schema, which let two live tokens of one owner share a name: the
// migration that makes names unique renames the newer one rather than fail
// or drop it.
func TestMigrationKeepsDuplicateTokenNames(t *testing.T) {
	path := filepath.Join(t.TempDir(), "envy.db")
	ms, err := storeutil.LoadMigrations(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		ms[0].SQL,
		`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`,
		`INSERT INTO schema_migrations VALUES (1, '` + ms[0].Name + `', 1)`,
		`INSERT INTO tokens (id, name, owner, hash, permissions, created_at, created_by) VALUES
			('t1', 'ci', 'team', x'01', '[]', 1, 'admin'),
			('t2', 'ci', 'team', x'02', '[]', 2, 'admin'),
			('t3', 'ci', 'other', x'03', '[]', 3, 'admin')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	db.Close()

	s := openTest(t, path)
	defer s.Close()
	for id, want := range map[string]string{"t1": "ci", "t2": "ci (t2)", "t3": "ci"} {
		tok, err := s.GetToken(t.Context(), id)
		if err != nil || tok.Name != want {
			t.Errorf("token %s: name %q, %v; want %q", id, tok.Name, err, want)
		}
	}
}
