package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/crypto"
	"github.com/envy-dev/envy/internal/storeutil"
	"github.com/envy-dev/envy/postgres"
	"github.com/envy-dev/envy/sqlite"
)

// TestBackupRestoreKeepsOIDCAndRetiredKeys: a backup restored into
// an empty store holds what the source held: its OIDC providers (their
// client secrets still open with the source's keys) and the checks of the
// master keys that rotations retired.
func TestBackupRestoreKeepsOIDCAndRetiredKeys(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src, kr := keyedSource(t)
	sealed, err := kr.Seal([]byte("client-secret"), envy.OIDCSecretAD("corp"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.PutOIDC(ctx, envy.OIDCProvider{Name: "corp", Issuer: "https://idp.example", ClientID: "envy",
		SealedSecret: sealed, RedirectURIs: []string{"http://127.0.0.1/callback"}, Scopes: []string{"openid"},
		SessionTTL: time.Hour, CreatedAt: time.Now(), CreatedBy: "admin", CreatorID: "root"}, nil); err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	mk2, err := crypto.MasterKeyFromBytes(raw, "new key")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kr.Rotate(ctx, mk2, false); err != nil { // retires mk
		t.Fatal(err)
	}
	if rk, err := src.RetiredMasterKeys(ctx); err != nil || len(rk) != 1 {
		t.Fatalf("source's retired master keys = %v, %v", rk, err)
	}

	var buf bytes.Buffer
	if _, err := writeBackup(ctx, src, &buf); err != nil {
		t.Fatal(err)
	}
	dst, err := sqlite.Open(ctx, filepath.Join(dir, "dst", "envy.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if err := dst.Load(ctx, func(put func(storeutil.Rows) error) error {
		_, err := readBackup(bytes.NewReader(buf.Bytes()), put)
		return err
	}); err != nil {
		t.Fatal(err)
	}

	p, err := dst.GetOIDC(ctx, "corp")
	if err != nil {
		t.Errorf("the restored store lost OIDC provider corp: %v", err)
	} else {
		kr2, err := crypto.OpenKeyring(ctx, mk2, dst)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := kr2.Open(p.SealedSecret, envy.OIDCSecretAD("corp")); err != nil || string(got) != "client-secret" {
			t.Errorf("the restored client secret opens to %q, %v", got, err)
		}
	}
	if rk, err := dst.RetiredMasterKeys(ctx); err != nil || len(rk) != 1 {
		t.Errorf("the restored store's retired master keys = %d (%v), want 1: a server started on it with the old key is told the key is wrong, not that it was rotated", len(rk), err)
	}
}

// TestLoadRefusesAStoreWithOnlyAnOIDCProvider: a store that holds nothing
// but an OIDC provider is not empty: a restore into it is refused.
func TestLoadRefusesAStoreWithOnlyAnOIDCProvider(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "envy.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.PutOIDC(ctx, envy.OIDCProvider{Name: "corp", Issuer: "https://idp.example", ClientID: "envy",
		SealedSecret: []byte("sealed"), SessionTTL: time.Hour, CreatedAt: time.Now(), CreatedBy: "admin"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := st.Load(ctx, func(func(storeutil.Rows) error) error { return nil }); !errors.Is(err, storeutil.ErrNotEmpty) {
		t.Fatalf("a Load into a store holding an OIDC provider = %v, want ErrNotEmpty", err)
	}
}

// olderBackup rewrites a backup as an older envy would have written it:
// without the tables in dropTables and without the columns in dropCols
// ("table.column"), its last line counting and digesting what is left.
func olderBackup(t *testing.T, file string, dropTables, dropCols []string) string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(file), "\n")
	out := []string{lines[0]}
	d := newDigests()
	for _, l := range lines[1 : len(lines)-1] {
		var c backupChunk
		dec := json.NewDecoder(strings.NewReader(l))
		dec.UseNumber()
		if err := dec.Decode(&c); err != nil {
			t.Fatal(err)
		}
		if slices.Contains(dropTables, c.Table) {
			continue
		}
		var keep []int
		var cols []string
		for i, col := range c.Columns {
			if !slices.Contains(dropCols, c.Table+"."+col) {
				keep, cols = append(keep, i), append(cols, col)
			}
		}
		nc := backupChunk{Table: c.Table, Columns: cols}
		r := storeutil.Rows{Table: c.Table, Columns: cols}
		for _, row := range c.Rows {
			var nr, vals []any
			for _, i := range keep {
				v, err := backupValue(row[i])
				if err != nil {
					t.Fatal(err)
				}
				nr, vals = append(nr, row[i]), append(vals, v)
			}
			nc.Rows = append(nc.Rows, nr)
			r.Values = append(r.Values, vals)
		}
		d.add(r)
		b, err := json.Marshal(nc)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	tables := d.tables()
	for _, tb := range dropTables {
		delete(tables, tb)
	}
	b, _ := json.Marshal(backupTrailer{End: true, Tables: tables})
	return strings.Join(append(out, string(b)), "\n") + "\n"
}

// TestRestoreOfAnOlderEnvysBackup: a backup that an older envy
// wrote (fewer tables, or fewer columns, as before migrations 0009-0012)
// is still a good backup: the current envy restores it, or refuses it
// before writing anything, saying why. It is neither called damaged nor
// loaded and then called a mismatch.
func TestRestoreOfAnOlderEnvysBackup(t *testing.T) {
	ctx := context.Background()
	src, _ := keyedSource(t)
	if err := src.AppendAudit(ctx, envy.AuditEntry{At: time.Now(), Actor: "admin", Action: "token.create", Names: []string{"x"}, Status: 201}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := writeBackup(ctx, src, &buf); err != nil {
		t.Fatal(err)
	}
	src.Close()

	for _, c := range []struct {
		name         string
		tables, cols []string
	}{
		{"before the rollouts and webhooks tables", []string{"rollout_policies", "rollout_pauses", "webhooks"}, nil},
		{"before audit coalescing's columns", nil, []string{"audit.last_at", "audit.request_ids"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "old.jsonl")
			if err := os.WriteFile(file, []byte(olderBackup(t, buf.String(), c.tables, c.cols)), 0o600); err != nil {
				t.Fatal(err)
			}
			to := filepath.Join(t.TempDir(), "restored")
			var stdout, stderr bytes.Buffer
			code := run([]string{"restore", file, "--to", "sqlite:" + to}, strings.NewReader(""), &stdout, &stderr, func(string) string { return "" })
			if code == 0 {
				return
			}
			msg := stderr.String()
			st, err := sqlite.Open(ctx, filepath.Join(to, "envy.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			keys, _ := st.DataKeys(ctx)
			t.Errorf("envy restore of an older envy's backup failed: %s(the store holds %d data keys afterwards)", msg, len(keys))
		})
	}
}

// TestRestoreRefusesANewerOrTooOldBackupBeforeWriting: a backup of a newer
// schema than this envy's, or one so old that a migration would have
// filled a column from its rows, is refused with a message that says so,
// not "damaged", and the store is left empty, ready for a retry.
func TestRestoreRefusesANewerOrTooOldBackupBeforeWriting(t *testing.T) {
	ctx := context.Background()
	src, _ := keyedSource(t)
	if _, err := src.CreateToken(ctx, envy.Token{ID: "root", Name: "root", Hash: envy.HashToken("secret"),
		Permissions: []envy.Grant{{Scopes: "**", Actions: []envy.Action{envy.ActAdmin}}}, CreatedAt: time.Now()}, false, nil); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := writeBackup(ctx, src, &buf); err != nil {
		t.Fatal(err)
	}
	src.Close()
	good := buf.String()
	schema := fmt.Sprintf(`"schema":%d,`, schemaVersion())
	if !strings.Contains(good, schema) {
		t.Fatalf("the backup's header does not record schema version %d: %s", schemaVersion(), good[:strings.Index(good, "\n")])
	}
	for _, c := range []struct{ name, file, want string }{
		{"a newer schema", strings.Replace(good, schema, fmt.Sprintf(`"schema":%d,`, schemaVersion()+1), 1),
			fmt.Sprintf("a backup of a newer envy (schema version %d; this envy's is %d)", schemaVersion()+1, schemaVersion())},
		{"before tokens.root_id", olderBackup(t, strings.Replace(good, schema, "", 1), nil, []string{"tokens.root_id"}),
			"older than schema version 5 (its tokens have no root_id)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "b.jsonl")
			if err := os.WriteFile(file, []byte(c.file), 0o600); err != nil {
				t.Fatal(err)
			}
			to := filepath.Join(t.TempDir(), "restored")
			var stdout, stderr bytes.Buffer
			if code := run([]string{"restore", file, "--to", "sqlite:" + to}, strings.NewReader(""), &stdout, &stderr, func(string) string { return "" }); code == 0 {
				t.Fatal("envy restore succeeded")
			}
			if msg := stderr.String(); !strings.Contains(msg, c.want) || strings.Contains(msg, "damaged") {
				t.Fatalf("envy restore said %q, want %q", msg, c.want)
			}
			if _, err := os.Stat(filepath.Join(to, "envy.db")); err == nil {
				t.Fatal("envy restore created the store before refusing the backup")
			}
		})
	}
}

// TestReadBackupRefusesALastLineWithoutATableItHolds: a last line may list
// fewer tables (an older envy's), but never leave out one the backup
// holds rows of.
func TestReadBackupRefusesALastLineWithoutATableItHolds(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "envy.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	mk, _, err := crypto.OpenMasterKeyFile(filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := crypto.OpenKeyring(ctx, mk, st); err != nil { // data key 1
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := writeBackup(ctx, st, &buf); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var tr backupTrailer
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &tr); err != nil {
		t.Fatal(err)
	}
	delete(tr.Tables, "data_keys")
	b, _ := json.Marshal(tr)
	lines[len(lines)-1] = string(b)
	_, err = readBackup(strings.NewReader(strings.Join(lines, "\n")+"\n"), func(storeutil.Rows) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "does not list table data_keys") {
		t.Fatalf("a last line without data_keys, which the backup holds = %v", err)
	}
}

// TestBothStoresHaveOneSchemaVersion: a backup's schema version means the
// same tables and columns in either store.
func TestBothStoresHaveOneSchemaVersion(t *testing.T) {
	if s, p := sqlite.SchemaVersion(), postgres.SchemaVersion(); s != p {
		t.Fatalf("SQLite's schema version is %d, PostgreSQL's %d", s, p)
	}
}

// keyedSource is a new SQLite store with its first data key, under a
// master key of its own, and its keyring: what a backup is taken of.
// Both are closed when the test ends.
func keyedSource(t *testing.T) (*sqlite.Store, *crypto.Keyring) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	src, err := sqlite.Open(ctx, filepath.Join(dir, "src", "envy.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	mk, _, err := crypto.OpenMasterKeyFile(filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	kr, err := crypto.OpenKeyring(ctx, mk, src)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kr.Close() })
	return src, kr
}
