package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/envy-dev/envy/internal/storeutil"
)

var _ storeutil.Mover = (*Store)(nil)

// Dump calls put with every table's rows, in chunks, read in one
// repeatable-read transaction: one snapshot, while writes may go on. It
// takes as long as the data is large and its reader is slow (a backup
// streamed over a slow link): the request's bounds (statement_timeout,
// idle_in_transaction_session_timeout) don't apply to it; the caller's
// context does.
func (s *Store) Dump(ctx context.Context, put func(storeutil.Rows) error) error {
	if s.closed.Load() {
		return storeutil.ErrClosed()
	}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return s.dbErr("begin a dump", err)
	}
	defer tx.Rollback(context.Background())
	if err := unboundMove(ctx, tx); err != nil {
		return s.dbErr("begin a dump", err)
	}
	for _, t := range storeutil.MoveTables {
		if err := s.dumpTable(ctx, tx, t.Name, t.OrderBy, put); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) dumpTable(ctx context.Context, tx pgx.Tx, table, orderBy string, put func(storeutil.Rows) error) error {
	rows, err := tx.Query(ctx, `SELECT * FROM `+table+` ORDER BY `+orderBy)
	if err != nil {
		return s.dbErr("dump "+table, err)
	}
	defer rows.Close()
	var cols []string
	for _, f := range rows.FieldDescriptions() {
		cols = append(cols, f.Name)
	}
	err = storeutil.DumpRows(table, cols, func() ([]any, bool, error) {
		if !rows.Next() {
			return nil, false, rows.Err()
		}
		vals, err := rows.Values()
		return vals, true, err
	}, put)
	return s.dbErr("dump "+table, err)
}

// unboundMove lifts, for a move's transaction, the bounds of a request's
// (statement_timeout, idle_in_transaction_session_timeout): a move takes
// as long as the data is large, and its other side may pause between
// chunks (a slow disk or link). The caller's context bounds it.
func unboundMove(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `SET LOCAL statement_timeout = 0; SET LOCAL idle_in_transaction_session_timeout = 0`)
	if err == nil && moveTxHook != nil {
		err = moveTxHook(ctx, tx)
	}
	return err
}

// moveTxHook, when set (by tests), runs in each move's transaction once
// its bounds are lifted.
var moveTxHook func(ctx context.Context, tx pgx.Tx) error

// Load fills an empty database with the rows fill puts, in one
// transaction (COPY per chunk), then sets the id sequences of audit and
// retired_master_keys past the ids it loaded. It runs under the caller's
// context, neither under txTimeout nor the request's statement and idle
// timeouts (unboundMove): it takes as long as the data is large.
func (s *Store) Load(ctx context.Context, fill func(put func(storeutil.Rows) error) error) error {
	return s.loadTx(ctx, func(t *txn) error {
		var n int64
		if err := t.QueryRow(t.ctx, storeutil.NotEmptySQL()).Scan(&n); err != nil {
			return err
		}
		if n != 0 {
			return storeutil.ErrNotEmpty
		}
		if _, err := t.Exec(t.ctx, `DELETE FROM meta`); err != nil {
			return err
		}
		bools := map[string]bool{} // "table.column" of boolean columns
		rows, err := t.Query(t.ctx, `SELECT table_name || '.' || column_name FROM information_schema.columns
			WHERE table_schema = current_schema() AND data_type = 'boolean'`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var c string
			if err := rows.Scan(&c); err != nil {
				return err
			}
			bools[c] = true
		}
		if err := rows.Err(); err != nil {
			return err
		}
		err = fill(func(r storeutil.Rows) error {
			for i, c := range r.Columns {
				if !bools[r.Table+"."+c] {
					continue
				}
				for _, row := range r.Values { // SQLite keeps booleans as 0 and 1
					if v, ok := row[i].(int64); ok {
						row[i] = v != 0
					}
				}
			}
			if _, err := t.CopyFrom(t.ctx, pgx.Identifier{r.Table}, r.Columns, pgx.CopyFromRows(r.Values)); err != nil {
				return fmt.Errorf("load %s: %w", r.Table, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		var metas int
		if err := t.QueryRow(t.ctx, `SELECT COUNT(*) FROM meta`).Scan(&metas); err != nil {
			return err
		}
		if metas != 1 {
			return fmt.Errorf("the moved data has %d meta rows, want 1", metas)
		}
		// The tables with serial ids go on from the ids loaded.
		for _, table := range []string{"audit", "retired_master_keys"} {
			if _, err := t.Exec(t.ctx, `SELECT setval(pg_get_serial_sequence('`+table+`', 'id'), COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) FROM `+table); err != nil {
				return err
			}
		}
		return nil
	})
}

// SchemaVersion is the schema version this binary brings a database to:
// its newest migration's.
func SchemaVersion() int {
	ms, err := storeutil.LoadMigrations(migrations, "migrations")
	if err != nil || len(ms) == 0 {
		panic(fmt.Sprintf("postgres: the built-in migrations: %v", err))
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
	if err := s.pool.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, s.dbErr("read the schema version", err)
	}
	return v, nil
}

// ReadSchemaVersion reads the schema version of the database at url (its
// newest applied migration's; 0 for a database envy never set up) on a
// connection of its own, without opening it as a store: it applies no
// migration, so that a move can refuse a source of another schema than
// this binary's before Open would upgrade it.
func ReadSchemaVersion(ctx context.Context, url string) (int, error) {
	cfg, err := ParseURL(url)
	if err != nil {
		return 0, err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		return 0, fmt.Errorf("postgres: connect: %w", err)
	}
	defer conn.Close(context.Background())
	var v int
	err = conn.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	if isCode(err, "42P01") { // undefined_table: envy never set it up
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("postgres: read the schema version: %w", err)
	}
	return v, nil
}

// loadTx runs fn in a transaction under ctx, without the bounds of a
// write's (see Load), and commits it.
func (s *Store) loadTx(ctx context.Context, fn func(t *txn) error) error {
	if s.closed.Load() {
		return storeutil.ErrClosed()
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return s.dbErr("load", err)
	}
	defer tx.Rollback(context.Background())
	if err := unboundMove(ctx, tx); err != nil {
		return s.dbErr("load", err)
	}
	if err := fn(&txn{Tx: tx, ctx: ctx, now: storeutil.Now()}); err != nil {
		return s.dbErr("load", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return s.dbErr("load: commit", err)
	}
	return nil
}
