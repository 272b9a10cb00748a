package main

// Backups: `envy backup FILE` writes a consistent snapshot of a store, still
// encrypted, and `envy restore FILE --to …` loads it into an empty store,
// SQLite or PostgreSQL alike. The snapshot is what `envy migrate` moves
// (storeutil.Mover: every table, in one read transaction), written as JSON
// lines:
//
//	{"format":"envy-backup","version":1,"schema":13,"created_at":"…"}
//	{"table":"vars","columns":["scope","name",…],"rows":[[…],…]}   (chunks, tables in order)
//	{"end":true,"tables":{"vars":{"rows":12,"sha256":"…"},…}}
//
// A value is null, a number (an integer), a boolean, a string, or
// {"b64":"…"} for bytes (sealed values, wrapped keys, token hashes). The
// last line counts and digests every table as `envy migrate` does, so a
// cut or altered file is refused before anything is committed, and a
// restore is checked against it once loaded.
//
// schema is the store's schema version (its newest migration): a backup
// of a newer schema than this envy's is refused before anything is
// written. A backup of an older envy (one without schema, or an older
// one) lacks the tables and columns that came later: a table it does not
// list is empty, a column it lacks takes its default, and the check after
// the restore covers only what it holds. One so old that a later
// migration would have filled a column from its rows (tokens.root_id,
// migration 5; scopes.env_revision, migration 6) is refused, saying how
// to bring it up to date.

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/envy-dev/envy/internal/storeutil"
	"github.com/envy-dev/envy/sqlite"
)

const (
	backupFormat  = "envy-backup"
	backupVersion = 1
)

type backupHeader struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	// Schema is the backed-up store's schema version; 0 in a backup of
	// an envy that did not record it.
	Schema    int       `json:"schema,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// schemaVersion is this envy's schema version: its newest migration, the
// same in both stores.
func schemaVersion() int { return sqlite.SchemaVersion() }

// backfilled are the columns that a migration filled from the rows it
// found (rather than with a default): a backup whose rows of the table
// lack the column can't be restored as it is. since is the migration.
var backfilled = map[string]struct {
	column string
	since  int
}{
	"tokens": {"root_id", 5},
	"scopes": {"env_revision", 6},
}

// backupRead is what readBackup found in a backup.
type backupRead struct {
	Schema int                 // 0: not recorded (an older envy's)
	Tables map[string]tableSum // every moved table; the ones the backup lacks are empty
	// Columns are the columns of each table that has rows in the
	// backup: the check after a restore covers only these.
	Columns map[string][]string
}

type backupChunk struct {
	Table   string   `json:"table"`
	Columns []string `json:"columns"`
	Rows    [][]any  `json:"rows"`
}

type backupTrailer struct {
	End    bool                `json:"end"`
	Tables map[string]tableSum `json:"tables"`
}

// writeBackup writes a snapshot of m to w.
func writeBackup(ctx context.Context, m storeutil.Mover, w io.Writer) (map[string]tableSum, error) {
	schema := schemaVersion()
	if sv, ok := m.(interface {
		StoredSchemaVersion(context.Context) (int, error)
	}); ok {
		v, err := sv.StoredSchemaVersion(ctx)
		if err != nil {
			return nil, err
		}
		schema = v
	}
	enc := json.NewEncoder(w)
	if err := enc.Encode(backupHeader{Format: backupFormat, Version: backupVersion, Schema: schema, CreatedAt: time.Now().UTC()}); err != nil {
		return nil, err
	}
	d := newDigests()
	err := m.Dump(ctx, func(r storeutil.Rows) error {
		d.add(r)
		c := backupChunk{Table: r.Table, Columns: r.Columns, Rows: make([][]any, len(r.Values))}
		for i, row := range r.Values {
			out := make([]any, len(row))
			for j, v := range row {
				if b, ok := v.([]byte); ok {
					v = map[string]string{"b64": base64.StdEncoding.EncodeToString(b)}
				}
				out[j] = v
			}
			c.Rows[i] = out
		}
		return enc.Encode(c)
	})
	if err != nil {
		return nil, err
	}
	tables := d.tables()
	return tables, enc.Encode(backupTrailer{End: true, Tables: tables})
}

// readBackup reads a backup, calling put with each chunk, and returns what
// it holds once it has checked that the rows it read match the last line.
// A file without that line (cut short) or that does not match is an
// error, and so is a backup of a newer schema than this envy's, refused
// from its first line.
func readBackup(r io.Reader, put func(storeutil.Rows) error) (*backupRead, error) {
	dec := json.NewDecoder(bufio.NewReaderSize(r, 1<<16))
	dec.UseNumber()
	var h backupHeader
	if err := dec.Decode(&h); err != nil || h.Format != backupFormat {
		return nil, errors.New("not an envy backup (its first line is not an envy-backup header)")
	}
	if h.Version != backupVersion {
		return nil, fmt.Errorf("an envy backup of version %d; this envy reads version %d", h.Version, backupVersion)
	}
	if cur := schemaVersion(); h.Schema > cur {
		return nil, fmt.Errorf("a backup of a newer envy (schema version %d; this envy's is %d): restore it with an envy as new as the one that wrote it, or newer", h.Schema, cur)
	}
	d := newDigests()
	cols := map[string][]string{}
	for {
		var line struct {
			backupChunk
			backupTrailer
		}
		if err := dec.Decode(&line); err != nil {
			if errors.Is(err, io.EOF) {
				return nil, errors.New("the backup is cut short: its last line is missing (was the backup interrupted?)")
			}
			return nil, fmt.Errorf("the backup is damaged: %v", err)
		}
		if line.End {
			// An older envy's backup lists fewer tables: those it
			// lacks are empty. Every table it holds rows of is listed.
			want := d.tables()
			for name, t := range line.Tables {
				if want[name] != t {
					return nil, fmt.Errorf("the backup is damaged: table %s does not match its digest", name)
				}
			}
			for name, n := range d.rows {
				if _, ok := line.Tables[name]; !ok && n > 0 {
					return nil, fmt.Errorf("the backup is damaged: its last line does not list table %s", name)
				}
			}
			return &backupRead{Schema: h.Schema, Tables: want, Columns: cols}, nil
		}
		if bf, ok := backfilled[line.Table]; ok && len(line.Rows) > 0 && !slices.Contains(line.Columns, bf.column) {
			return nil, fmt.Errorf("a backup of an envy older than schema version %d (its %s have no %s), which this envy can't restore as it is: "+
				"restore it with the envy that wrote it, start a server of this envy on that store once (it brings the schema up to date), and back it up again",
				bf.since, line.Table, bf.column)
		}
		if _, ok := cols[line.Table]; !ok {
			cols[line.Table] = line.Columns
		}
		rows := storeutil.Rows{Table: line.Table, Columns: line.Columns, Values: make([][]any, len(line.Rows))}
		for i, row := range line.Rows {
			if len(row) != len(line.Columns) {
				return nil, fmt.Errorf("the backup is damaged: a row of %s has %d values for %d columns", line.Table, len(row), len(line.Columns))
			}
			vals := make([]any, len(row))
			for j, v := range row {
				x, err := backupValue(v)
				if err != nil {
					return nil, fmt.Errorf("the backup is damaged: %s.%s: %v", line.Table, line.Columns[j], err)
				}
				vals[j] = x
			}
			rows.Values[i] = vals
		}
		d.add(rows)
		if err := put(rows); err != nil {
			return nil, err
		}
	}
}

// backupValue turns a decoded JSON value back into a moved value.
func backupValue(v any) (any, error) {
	switch x := v.(type) {
	case nil, bool, string:
		return x, nil
	case json.Number:
		return x.Int64()
	case map[string]any:
		if s, ok := x["b64"].(string); ok && len(x) == 1 {
			return base64.StdEncoding.DecodeString(s)
		}
	}
	return nil, fmt.Errorf("unexpected value %T", v)
}

func (a *app) newBackupCmd() *cobra.Command {
	var from string
	cmd := &cobra.Command{
		Use:   "backup FILE",
		Short: "Write a consistent, still encrypted snapshot of a running server to FILE",
		Long: "Writes every scope, var, version, history entry, token, audit entry, consumer, wrapped data key, trust,\n" +
			"OIDC provider, rollout policy, webhook and retired master key's check (not sessions nor webhook queues),\n" +
			"read in one transaction while the server serves, to FILE (JSON lines, mode 0600). Values stay sealed:\n" +
			"restoring needs the master key the server used. Without --from it asks the server at ENVY_ADDR (an\n" +
			"admin token); with --from it reads a stopped server's data dir or a PostgreSQL database directly.",
		Example: "  envy backup envy-$(date +%F).jsonl\n  envy backup --from postgres://envy@db/envy envy.jsonl",
		Args:    exactArgs(1, "FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runBackup(cmd.Context(), args[0], from)
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "read this store directly instead of asking the server: sqlite:DIR (stopped) or postgres://…")
	return cmd
}

func (a *app) runBackup(ctx context.Context, file, from string) error {
	dir := filepath.Dir(file)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(file)+".*")
	if err != nil {
		return fmt.Errorf("cannot write %s: %v", file, err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	defer tmp.Close()
	w := bufio.NewWriterSize(tmp, 1<<16)
	if from != "" {
		src, name, err := openEndpoint(ctx, "from", from, true)
		if err != nil {
			return err
		}
		defer src.Close()
		if _, err := writeBackup(ctx, src, w); err != nil {
			return fmt.Errorf("reading %s: %v", name, err)
		}
	} else {
		c, err := a.client()
		if err != nil {
			return err
		}
		fw := &failWriter{w: w}
		if err := c.Backup(ctx, fw); err != nil {
			if fw.err != nil { // the file, not the server
				return fmt.Errorf("cannot write %s: %v", file, fw.err)
			}
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("cannot write %s: %v", file, err)
	}
	// Read it back: a backup that can't be restored is worse than none.
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	read, err := readBackup(tmp, func(storeutil.Rows) error { return nil })
	if err != nil {
		return fmt.Errorf("the backup written to %s does not read back: %v", file, err)
	}
	tables := read.Tables
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("cannot write %s: %v", file, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("cannot write %s: %v", file, err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fmt.Errorf("cannot write %s: %v", file, err)
	}
	if a.jsonOut() {
		return a.printJSON(nil, map[string]any{"file": file, "tables": tables})
	}
	printTables(a.stdout, tables)
	a.notef("\nWrote %s. Values are still sealed: keep the master key too (not in the same place).\n", file)
	return nil
}

// failWriter keeps the first error of its writer's.
type failWriter struct {
	w   io.Writer
	err error
}

func (f *failWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err != nil && f.err == nil {
		f.err = err
	}
	return n, err
}

func printTables(w io.Writer, tables map[string]tableSum) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tROWS")
	for _, t := range storeutil.MoveTables {
		fmt.Fprintf(tw, "%s\t%d\n", t.Name, tables[t.Name].Rows)
	}
	tw.Flush()
}

func (a *app) newRestoreCmd() *cobra.Command {
	var to string
	cmd := &cobra.Command{
		Use:   "restore FILE --to sqlite:DIR|postgres://…",
		Short: "Load a backup into an empty store",
		Long: "Loads a backup written by `envy backup` into an empty store (a new data dir, or an empty PostgreSQL\n" +
			"database), in one transaction, and checks every table against the backup's digests. A backup of a\n" +
			"SQLite server restores into PostgreSQL and the other way round. Start the server on it with the\n" +
			"master key the backed-up server used.",
		Example: "  envy restore envy.jsonl --to sqlite:/var/lib/envy\n  envy restore envy.jsonl --to postgres://envy@db/envy",
		Args:    exactArgs(1, "FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runRestore(cmd.Context(), args[0], to)
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the empty store to fill: sqlite:DIR or postgres://…")
	return cmd
}

func (a *app) runRestore(ctx context.Context, file, to string) error {
	if to == "" {
		return usageErrorf("envy restore needs --to sqlite:DIR or --to postgres://…")
	}
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("cannot read the backup: %v", err)
	}
	defer f.Close()
	// Check the whole file before touching the store.
	if _, err := readBackup(f, func(storeutil.Rows) error { return nil }); err != nil {
		return fmt.Errorf("%s: %v", file, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	dst, name, err := openEndpoint(ctx, "to", to, false)
	if err != nil {
		return err
	}
	defer dst.Close()
	var read *backupRead
	err = dst.Load(ctx, func(put func(storeutil.Rows) error) error {
		var err error
		read, err = readBackup(f, put)
		return err
	})
	if errors.Is(err, storeutil.ErrNotEmpty) {
		return fmt.Errorf("--to %s: %v", name, err)
	}
	if err != nil {
		return fmt.Errorf("restoring into %s: %v (it is left as it was)", name, err)
	}
	// Compare what the backup holds: an older envy's backup lacks
	// columns, which the restore filled with their defaults.
	tables := read.Tables
	// The load is committed: whatever fails now, the store holds the data.
	got, err := summarizeColumns(ctx, dst, read.Columns)
	if err != nil {
		return fmt.Errorf("%s now holds the restored data, but reading it back for the comparison failed: %v", name, err)
	}
	for _, t := range storeutil.MoveTables {
		if got[t.Name] != tables[t.Name] {
			return fmt.Errorf("%s now holds the restored data, but its table %s does not match the backup: to restore again, empty it (a new database or data dir) first", name, t.Name)
		}
	}
	if a.jsonOut() {
		return a.printJSON(nil, map[string]any{"to": name, "tables": tables})
	}
	printTables(a.stdout, tables)
	a.notef("\nRestored into %s; every table matches the backup. Start the server on it with the master key the backed-up server used.\n", name)
	return nil
}
