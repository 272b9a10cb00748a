package runner

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/envy-dev/envy/client"
)

func TestTheFallbackFileOpensOnlyWithTheSameTokenAndScope(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "web.env.enc")
	env := &client.Env{Scope: "acme/web", Revision: 7, Env: map[string]string{"DB_PASSWORD": "hunter2-hunter2", "PORT": "80"}, Secrets: []string{"DB_PASSWORD"}}
	saved := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	if err := saveFallback(path, "envy_token-one", env, saved); err != nil {
		t.Fatal(err)
	}

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	for _, plain := range []string{"hunter2", "DB_PASSWORD", "PORT", "acme/web"} {
		if bytes.Contains(data, []byte(plain)) {
			t.Errorf("the file holds %q in the clear", plain)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("files left beside it: %v", entries)
	}

	got, at, err := loadFallback(path, "envy_token-one", "acme/web")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, env) || !at.Equal(saved) {
		t.Errorf("loaded %+v at %v, want %+v at %v", got, at, env, saved)
	}

	tests := []struct {
		name, token, scope, want string
	}{
		{"another token can't open it", "envy_token-two", "acme/web", "does not open with this token"},
		{"it does not open as another scope", "envy_token-one", "acme/api", "does not open with this token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := loadFallback(path, tc.token, tc.scope)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
	t.Run("a damaged file is refused", func(t *testing.T) {
		data[len(data)-1] ^= 1
		bad := filepath.Join(dir, "bad")
		os.WriteFile(bad, data, 0o600)
		if _, _, err := loadFallback(bad, "envy_token-one", "acme/web"); err == nil {
			t.Error("a flipped bit went unnoticed")
		}
	})
	t.Run("a missing file says so", func(t *testing.T) {
		_, _, err := loadFallback(filepath.Join(dir, "nope"), "envy_token-one", "acme/web")
		if err == nil || !strings.Contains(err.Error(), "does not exist") {
			t.Errorf("err = %v", err)
		}
	})
}

// Two saves of the same env differ: every save has its own salt, so its
// own key, and its own nonce.
func TestEverySaveUsesAFreshKey(t *testing.T) {
	dir := t.TempDir()
	env := &client.Env{Scope: "s", Revision: 1, Env: map[string]string{"A": "1"}}
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, path := range []string{a, b} {
		if err := saveFallback(path, "tok", env, time.Unix(0, 0)); err != nil {
			t.Fatalf("saveFallback %s: %v", path, err)
		}
	}
	da, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	db, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(da) <= 8 || len(db) <= 8 {
		t.Fatalf("saves of %d and %d bytes", len(da), len(db))
	}
	if bytes.Equal(da[8:], db[8:]) {
		t.Error("two saves made the same bytes")
	}
}
