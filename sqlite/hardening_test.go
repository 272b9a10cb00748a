package sqlite

import (
	"database/sql"
	"fmt"
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

// TestMigrationGivesEveryTokenItsLineagesRoot opens a database of the
// fourth schema: migration 5 sets each token's root, the first token of
// its lineage below a global admin, which the rate limit is counted by.
func TestMigrationGivesEveryTokenItsLineagesRoot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "envy.db")
	ms, err := storeutil.LoadMigrations(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		t.Fatal(err)
	}
	qs := []string{`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`}
	for i := range 4 {
		qs = append(qs, ms[i].SQL, fmt.Sprintf(`INSERT INTO schema_migrations VALUES (%d, '%s', 1)`, i+1, ms[i].Name))
	}
	const global, scoped = `[{"scopes":"**","actions":["read","admin"]}]`, `[{"scopes":"acme/**","actions":["admin"]}]`
	qs = append(qs, `INSERT INTO tokens (id, name, owner, hash, permissions, created_at, created_by, parent_id) VALUES
		('boot', 'boot', 'o', x'01', '`+global+`', 1, 'x', ''),
		('sa', 'sa', 'o', x'02', '`+scoped+`', 2, 'x', 'boot'),
		('c1', 'c1', 'o', x'03', '`+scoped+`', 3, 'x', 'sa'),
		('c2', 'c2', 'o', x'04', '[]', 4, 'x', 'c1'),
		('ga', 'ga', 'o', x'05', '`+global+`', 5, 'x', 'boot'),
		('gac', 'gac', 'o', x'06', '`+scoped+`', 6, 'x', 'ga'),
		('gacc', 'gacc', 'o', x'07', '[]', 7, 'x', 'gac')`)
	for _, q := range qs {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	db.Close()

	s := openTest(t, path)
	defer s.Close()
	for id, want := range map[string]string{"boot": "boot", "sa": "sa", "c1": "sa", "c2": "sa", "ga": "ga", "gac": "gac", "gacc": "gac"} {
		tok, err := s.GetToken(t.Context(), id)
		if err != nil || tok.Root() != want {
			t.Errorf("token %s: root %q, %v; want %q", id, tok.Root(), err, want)
		}
	}
}
