package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/storeutil"
)

var _ storeutil.Mover = (*Store)(nil)

// Dump calls put with every table's rows, in chunks, read in one read
// transaction: one snapshot, while writes may go on.
func (s *Store) Dump(ctx context.Context, put func(storeutil.Rows) error) error {
	if s.closed.Load() {
		return storeutil.ErrClosed()
	}
	tx, err := s.readers.BeginTx(ctx, nil)
	if err != nil {
		return dbErr("begin a dump", err)
	}
	defer tx.Rollback()
	for _, t := range storeutil.MoveTables {
		if err := dumpTable(ctx, tx, t.Name, t.OrderBy, put); err != nil {
			return err
		}
	}
	return nil
}

func dumpTable(ctx context.Context, tx *sql.Tx, table, orderBy string, put func(storeutil.Rows) error) error {
	rows, err := tx.QueryContext(ctx, `SELECT * FROM `+table+` ORDER BY `+orderBy)
	if err != nil {
		return dbErr("dump "+table, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return dbErr("dump "+table, err)
	}
	err = storeutil.DumpRows(table, cols, func() ([]any, bool, error) {
		if !rows.Next() {
			return nil, false, rows.Err()
		}
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		return vals, true, rows.Scan(ptrs...)
	}, put)
	if err != nil && envy.AsError(err) == nil {
		return dbErr("dump "+table, err)
	}
	return err
}

// Load fills an empty store with the rows fill puts, in one transaction
// on the writer: all or nothing.
func (s *Store) Load(ctx context.Context, fill func(put func(storeutil.Rows) error) error) error {
	return s.do(ctx, func(t *txn) error {
		var n int64
		if err := t.queryRow(storeutil.NotEmptySQL()).Scan(&n); err != nil {
			return dbErr("check that the database is empty", err)
		}
		if n != 0 {
			return storeutil.ErrNotEmpty
		}
		if _, err := t.exec(`DELETE FROM meta`); err != nil {
			return dbErr("clear meta", err)
		}
		t.forget = true // the rows come in without states of their scopes
		t.b.keys = nil  // and the data keys with them
		err := fill(func(r storeutil.Rows) error {
			q := `INSERT INTO ` + r.Table + ` (` + strings.Join(r.Columns, ", ") + `) VALUES (` +
				strings.TrimSuffix(strings.Repeat("?, ", len(r.Columns)), ", ") + `)`
			for _, row := range r.Values {
				if _, err := t.exec(q, row...); err != nil {
					return dbErr("load "+r.Table, err)
				}
				if r.Table == "meta" {
					for i, c := range r.Columns {
						if rev, ok := row[i].(int64); ok && c == "revision" {
							t.rev = rev // the batch stores it again, and the store counts on from it
						}
					}
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		var metas int
		if err := t.queryRow(`SELECT COUNT(*) FROM meta`).Scan(&metas); err != nil || metas != 1 {
			return fmt.Errorf("sqlite: the moved data has %d meta rows, want 1 (%v)", metas, err)
		}
		return nil
	})
}

// SchemaVersion is the schema version this binary brings a database to:
// its newest migration's.
func SchemaVersion() int {
	ms, err := storeutil.LoadMigrations(migrations, "migrations")
	if err != nil || len(ms) == 0 {
		panic(fmt.Sprintf("sqlite: the built-in migrations: %v", err))
	}
	return ms[len(ms)-1].Version
}

// StoredSchemaVersion is the schema version of the store's database: its
// newest applied migration's. A backup records it.
func (s *Store) StoredSchemaVersion(ctx context.Context) (int, error) {
	if s.closed.Load() {
		return 0, storeutil.ErrClosed()
	}
	var v int
	if err := s.readers.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, dbErr("read the schema version", err)
	}
	return v, nil
}

// ReadSchemaVersion reads the schema version of the database at path (its
// newest applied migration's; 0 for a file envy never set up) without
// opening it as a store: it applies no migration and takes no lock, so
// that a move can refuse a source of another schema than this binary's
// before Open would upgrade it.
func ReadSchemaVersion(ctx context.Context, path string) (int, error) {
	if _, err := os.Stat(path); err != nil {
		return 0, fmt.Errorf("sqlite: %w", err)
	}
	db, err := sql.Open("sqlite", dsn(path,
		"_pragma=busy_timeout("+strconv.FormatInt(busyTimeout.Milliseconds(), 10)+")",
		"_pragma=query_only(1)",
	))
	if err != nil {
		return 0, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	defer db.Close()
	var tables int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&tables); err != nil {
		return 0, fmt.Errorf("sqlite: read the schema version of %s: %w", path, err)
	}
	if tables == 0 {
		return 0, nil
	}
	var v int
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("sqlite: read the schema version of %s: %w", path, err)
	}
	return v, nil
}
