package crypto

import (
	"context"
	"path/filepath"
	"testing"
)

// TestUnwrapRefusesEveryTruncation cuts a wrapped data key at every length
// and flips its format byte: each is an error, never a panic and never a
// key. (A mutation-testing run found the length check untested.)
func TestUnwrapRefusesEveryTruncation(t *testing.T) {
	ctx := context.Background()
	mk, _, err := OpenMasterKeyFile(filepath.Join(t.TempDir(), "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	defer mk.Close()
	wrapped, err := mk.Wrap(ctx, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mk.Unwrap(ctx, wrapped); err != nil {
		t.Fatalf("whole: %v", err)
	}
	for n := 0; n < len(wrapped); n++ {
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("Unwrap of %d of %d bytes panicked: %v", n, len(wrapped), p)
				}
			}()
			if dk, err := mk.Unwrap(ctx, wrapped[:n:n]); err == nil {
				t.Fatalf("Unwrap of %d of %d bytes gave a %d-byte key", n, len(wrapped), len(dk))
			}
		}()
	}
	other := append([]byte{wrapped[0] ^ 0xff}, wrapped[1:]...)
	if _, err := mk.Unwrap(ctx, other); err == nil {
		t.Fatal("Unwrap accepted another format byte")
	}
}
