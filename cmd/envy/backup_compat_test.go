package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/crypto"
	"github.com/envy-dev/envy/internal/storeutil"
	"github.com/envy-dev/envy/sqlite"
)

// TestBackupRestoreKeepsOIDCAndRetiredKeys: a backup restored into
// an empty store holds what the source held: its OIDC providers (their
// client secrets still open with the source's keys) and the checks of the
// master keys that rotations retired.
func TestBackupRestoreKeepsOIDCAndRetiredKeys(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src, err := sqlite.Open(ctx, filepath.Join(dir, "src", "envy.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	mk, _, err := crypto.OpenMasterKeyFile(filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	kr, err := crypto.OpenKeyring(ctx, mk, src)
	if err != nil {
		t.Fatal(err)
	}
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
