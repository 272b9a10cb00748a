package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/storeutil"
	"github.com/envy-dev/envy/postgres"
	"github.com/envy-dev/envy/sqlite"
)

// newMigrateCmd returns `envy migrate`: move every row of one store into
// another, empty one, sealed values as they are.
func newMigrateCmd() *cobra.Command {
	var from, to string
	cmd := &cobra.Command{
		Use:   "migrate --from sqlite:DIR|postgres://… --to postgres://…|sqlite:DIR",
		Short: "Move all data from one database to another, empty one (SQLite ↔ PostgreSQL)",
		Long: `Move everything (scopes, vars with their ids and versions, history,
tokens, audit log, consumers, data keys, trusts, OIDC providers, rollout
policies, webhooks and retired master keys' checks; not sessions nor
webhook queues) from one database into a new,
empty one, and end by comparing both sides table by table. Values stay
sealed: the destination needs the master key the source was used with.
Stop the servers on the source first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMigrate(cmd.Context(), from, to, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "source: sqlite:DIR (the server's --data-dir) or postgres://…")
	cmd.Flags().StringVar(&to, "to", "", "destination, empty: postgres://… or sqlite:DIR")
	return cmd
}

// moveStore is a store that can be moved from and to.
type moveStore interface {
	envy.Store
	storeutil.Mover
}

// openEndpoint opens one side of a move; flag names it in errors. A source
// (mustExist) must have this envy's schema version: opening a store
// applies its pending migrations, and a source is only read, never
// upgraded (the backup taken before an upgrade is what a downgrade
// restores). Once its version is this envy's, Open applies nothing, and
// refuses one that a newer envy upgraded meanwhile.
func openEndpoint(ctx context.Context, flag, spec string, mustExist bool) (moveStore, string, error) {
	switch {
	case strings.HasPrefix(spec, "sqlite:"):
		dir := strings.TrimPrefix(spec, "sqlite:")
		if dir == "" {
			return nil, "", fmt.Errorf("invalid --%s %q: want sqlite:DIR", flag, spec)
		}
		path := filepath.Join(dir, "envy.db")
		if _, err := os.Stat(path); mustExist && err != nil {
			return nil, "", fmt.Errorf("invalid --%s: no envy database in %s (%v)", flag, dir, err)
		}
		if mustExist {
			v, err := sqlite.ReadSchemaVersion(ctx, path)
			if err != nil {
				return nil, "", fmt.Errorf("--%s: %v", flag, err)
			}
			if err := sameSchema(flag, "sqlite:"+dir, v); err != nil {
				return nil, "", err
			}
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, "", fmt.Errorf("invalid --%s: %v", flag, err)
		}
		s, err := sqlite.Open(ctx, path)
		if errors.Is(err, sqlite.ErrLocked) {
			return nil, "", fmt.Errorf("--%s %s is in use by a running envy server: stop it first", flag, dir)
		}
		if err != nil {
			return nil, "", fmt.Errorf("--%s: %v", flag, err)
		}
		return s, "sqlite:" + dir, nil
	case strings.HasPrefix(spec, "postgres://"), strings.HasPrefix(spec, "postgresql://"):
		if mustExist {
			v, err := postgres.ReadSchemaVersion(ctx, spec)
			if err != nil {
				return nil, "", fmt.Errorf("--%s %s: %v", flag, redactURL(spec), err)
			}
			if err := sameSchema(flag, redactURL(spec), v); err != nil {
				return nil, "", err
			}
		}
		s, err := postgres.Open(ctx, spec, postgres.Options{})
		if err != nil {
			return nil, "", fmt.Errorf("--%s %s: %v", flag, redactURL(spec), err)
		}
		return s, redactURL(spec), nil
	}
	return nil, "", fmt.Errorf("invalid --%s %q: want sqlite:DIR or postgres://…", flag, spec)
}

// sameSchema refuses a source whose schema version v is not this envy's,
// saying which is newer and what to do.
func sameSchema(flag, name string, v int) error {
	cur := schemaVersion()
	switch {
	case v == 0:
		return fmt.Errorf("--%s %s holds no envy database (no schema_migrations)", flag, name)
	case v > cur:
		return fmt.Errorf("--%s %s has schema version %d, newer than this envy's %d: run this with the envy version its servers run (or a newer one)", flag, name, v, cur)
	case v < cur:
		return fmt.Errorf("--%s %s has schema version %d, older than this envy's %d, and a source is never upgraded (the backup taken before an upgrade must stay restorable by the old version): "+
			"run this with the envy version its servers run; or upgrade it first by starting a server of this version on it, then run this again", flag, name, v, cur)
	}
	return nil
}

func runMigrate(ctx context.Context, from, to string, out io.Writer) error {
	if from == "" || to == "" {
		return errors.New("envy migrate needs --from and --to")
	}
	src, srcName, err := openEndpoint(ctx, "from", from, true)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, dstName, err := openEndpoint(ctx, "to", to, false)
	if err != nil {
		return err
	}
	defer dst.Close()

	err = dst.Load(ctx, func(put func(storeutil.Rows) error) error { return src.Dump(ctx, put) })
	if errors.Is(err, storeutil.ErrNotEmpty) {
		return fmt.Errorf("--to %s: %v", dstName, err)
	}
	if err != nil {
		return fmt.Errorf("moving from %s to %s: %v (the destination is left as it was)", srcName, dstName, err)
	}

	// Compare both sides: rows and a digest of their content per table.
	// The move is committed: whatever fails now, the destination holds
	// the data, and a second run would be refused.
	moved := fmt.Sprintf("%s now holds the moved data, but", dstName)
	a, err := summarize(ctx, src)
	if err != nil {
		return fmt.Errorf("%s reading %s back for the comparison failed: %v", moved, srcName, err)
	}
	b, err := summarize(ctx, dst)
	if err != nil {
		return fmt.Errorf("%s reading it back for the comparison failed: %v", moved, err)
	}
	srcRev, err := src.Revision(ctx)
	if err != nil {
		return fmt.Errorf("%s reading %s back for the comparison failed: %v", moved, srcName, err)
	}
	dstRev, err := dst.Revision(ctx)
	if err != nil {
		return fmt.Errorf("%s reading it back for the comparison failed: %v", moved, err)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "TABLE\tFROM %s\tTO %s\t\n", srcName, dstName)
	same := srcRev == dstRev
	for _, t := range storeutil.MoveTables {
		mark := ""
		if a[t.Name] != b[t.Name] {
			mark, same = "DIFFERS", false
		}
		fmt.Fprintf(tw, "%s\t%d rows\t%d rows\t%s\n", t.Name, a[t.Name].Rows, b[t.Name].Rows, mark)
	}
	fmt.Fprintf(tw, "revision\t%d\t%d\t\n", srcRev, dstRev)
	tw.Flush()
	if !same {
		return fmt.Errorf("%s it does not match the source (was the source written to meanwhile?): to move again, empty it (a new database or data dir) first", moved)
	}
	fmt.Fprintf(out, "\nMoved: both sides match, row for row. Values are still sealed: start the servers on %s with the master key that %s used.\n", dstName, srcName)
	return nil
}

// tableSum is a table's row count and the digest of its rows: a backup's
// last line holds one for each table, and `envy migrate` and `envy restore`
// compare them.
type tableSum struct {
	Rows   int    `json:"rows"`
	SHA256 string `json:"sha256"`
}

// summarize counts and digests every moved table of a store, values
// normalized so that the same data digests the same in either store.
func summarize(ctx context.Context, m storeutil.Mover) (map[string]tableSum, error) {
	return summarizeColumns(ctx, m, nil)
}

// summarizeColumns is summarize of only the columns that cols lists of
// each table it names (all columns of the others), in the store's order:
// what a backup of an older schema holds of a store it was restored into.
func summarizeColumns(ctx context.Context, m storeutil.Mover, cols map[string][]string) (map[string]tableSum, error) {
	d := newDigests()
	err := m.Dump(ctx, func(r storeutil.Rows) error {
		if keep, ok := cols[r.Table]; ok {
			r = onlyColumns(r, keep)
		}
		d.add(r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return d.tables(), nil
}

// onlyColumns is r without the columns that keep does not list.
func onlyColumns(r storeutil.Rows, keep []string) storeutil.Rows {
	var idx []int
	out := storeutil.Rows{Table: r.Table, Values: make([][]any, len(r.Values))}
	for i, c := range r.Columns {
		if slices.Contains(keep, c) {
			idx, out.Columns = append(idx, i), append(out.Columns, c)
		}
	}
	for j, row := range r.Values {
		vals := make([]any, len(idx))
		for k, i := range idx {
			vals[k] = row[i]
		}
		out.Values[j] = vals
	}
	return out
}

// digests counts and digests the rows of each table as they come.
type digests struct {
	h    map[string]hash.Hash
	rows map[string]int
}

func newDigests() *digests { return &digests{h: map[string]hash.Hash{}, rows: map[string]int{}} }

func (d *digests) add(r storeutil.Rows) {
	h := d.h[r.Table]
	if h == nil {
		h = sha256.New()
		d.h[r.Table] = h
	}
	for _, row := range r.Values {
		for i, v := range row {
			writeValue(h, r.Columns[i], v)
		}
		d.rows[r.Table]++
	}
}

func (d *digests) tables() map[string]tableSum {
	out := map[string]tableSum{}
	for _, t := range storeutil.MoveTables {
		// A table without rows digests as zeros.
		var sum [sha256.Size]byte
		if h := d.h[t.Name]; h != nil {
			copy(sum[:], h.Sum(nil))
		}
		out[t.Name] = tableSum{Rows: d.rows[t.Name], SHA256: hex.EncodeToString(sum[:])}
	}
	return out
}

// writeValue feeds one column's value to h, unambiguously: its name, a
// type tag and a length-prefixed encoding. A boolean counts as 0 or 1, as
// SQLite keeps it.
func writeValue(h hash.Hash, col string, v any) {
	put := func(tag byte, b []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(col)))
		h.Write(n[:])
		h.Write([]byte(col))
		h.Write([]byte{tag})
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	switch x := v.(type) {
	case nil:
		put('n', nil)
	case bool:
		b := int64(0)
		if x {
			b = 1
		}
		put('i', binary.BigEndian.AppendUint64(nil, uint64(b)))
	case int64:
		put('i', binary.BigEndian.AppendUint64(nil, uint64(x)))
	case string:
		put('s', []byte(x))
	case []byte:
		put('s', x) // SQLite may hand TEXT as bytes and BLOB alike
	default:
		put('?', fmt.Appendf(nil, "%T %v", x, x))
	}
}
