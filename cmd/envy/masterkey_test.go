package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/envy-dev/envy/crypto"
	"github.com/envy-dev/envy/sqlite"
)

// TestServerRefusesToReplaceAMissingMasterKey starts a server over a
// database that holds data keys wrapped by a master key whose file is
// gone: it must stop with "master key file missing" and write no new key.
func TestServerRefusesToReplaceAMissingMasterKey(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	store, err := sqlite.Open(ctx, filepath.Join(dir, "envy.db"))
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, "master.key")
	mk, _, err := crypto.OpenMasterKeyFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := crypto.OpenKeyring(ctx, mk, store); err != nil { // stores data key 1
		t.Fatal(err)
	}
	mk.Close()
	store.Close()
	if err := os.Remove(keyPath); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := runEnvy(t, env{}, "", "server", "--data-dir", dir, "--listen", "127.0.0.1:0")
	if code == 0 || !strings.Contains(errOut, "master key file missing") || out != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q; want a failure saying the master key file is missing", code, out, errOut)
	}
	if _, err := os.Stat(keyPath); !os.IsNotExist(err) {
		t.Fatalf("a new master key was written (%v)", err)
	}
}
