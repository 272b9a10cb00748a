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
	dir, keyPath, done := keyedDataDir(t, nil)
	done()
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

// TestARetiredMasterKeyIsToldApartFromAWrongOne: after `keys rotate`, a
// server (or `envy server admin-token`) started with the key it retired
// says the data was sealed with a newer key, to be installed; one started
// with a key that never opened the data gets the other hint.
func TestARetiredMasterKeyIsToldApartFromAWrongOne(t *testing.T) {
	dir, keyPath, done := keyedDataDir(t, func(keys *crypto.Keyring) {
		newer, _, err := crypto.OpenMasterKeyFile(filepath.Join(t.TempDir(), "new.key"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := keys.Rotate(context.Background(), newer, false); err != nil {
			t.Fatal(err)
		}
	})
	done()

	const retired = "this data was sealed with a newer master key: install the rotated key"
	for _, args := range [][]string{
		{"server", "--data-dir", dir, "--listen", "127.0.0.1:0"},
		{"server", "admin-token", "--data-dir", dir},
	} {
		code, out, errOut := runEnvy(t, env{}, "", args...)
		if code == 0 || out != "" || !strings.Contains(errOut, retired) || strings.Contains(errOut, "sharing a database") {
			t.Fatalf("envy %s with the retired key: exit %d, stdout %q, stderr %q; want %q", strings.Join(args[:2], " "), code, out, errOut, retired)
		}
	}
	// A key that never opened this data is not called retired.
	if err := os.Remove(keyPath); err != nil {
		t.Fatal(err)
	}
	other, _, err := crypto.OpenMasterKeyFile(keyPath) // a new random key
	if err != nil {
		t.Fatal(err)
	}
	other.Close()
	code, _, errOut := runEnvy(t, env{}, "", "server", "--data-dir", dir, "--listen", "127.0.0.1:0")
	if code == 0 || strings.Contains(errOut, retired) || !strings.Contains(errOut, "every server sharing a database needs the same master key") {
		t.Fatalf("envy server with a wrong key: exit %d, stderr %q", code, errOut)
	}
}

// keyedDataDir makes a data dir whose database holds data key 1, wrapped
// by the master key in its master.key; then does what with the keyring.
// done closes the keyring, the key and the store.
func keyedDataDir(t *testing.T, what func(*crypto.Keyring)) (dir, keyPath string, done func()) {
	t.Helper()
	ctx := context.Background()
	dir = filepath.Join(t.TempDir(), "data")
	store, err := sqlite.Open(ctx, filepath.Join(dir, "envy.db"))
	if err != nil {
		t.Fatal(err)
	}
	keyPath = filepath.Join(dir, "master.key")
	mk, _, err := crypto.OpenMasterKeyFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := crypto.OpenKeyring(ctx, mk, store) // stores data key 1
	if err != nil {
		t.Fatal(err)
	}
	if what != nil {
		what(keys)
	}
	return dir, keyPath, func() {
		keys.Close()
		mk.Close()
		store.Close()
	}
}
