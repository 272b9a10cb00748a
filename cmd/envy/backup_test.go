package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/envy-dev/envy/internal/storeutil"
)

// TestReadBackupRefusesWhatWasNotWritten: a backup whose rows were changed,
// that lost its last line, or that is not a backup of this version, is
// refused (restore loads in one transaction, which the error rolls back).
func TestReadBackupRefusesWhatWasNotWritten(t *testing.T) {
	ctx := context.Background()
	st, _ := keyedSource(t) // data key 1
	var buf bytes.Buffer
	if _, err := writeBackup(ctx, st, &buf); err != nil {
		t.Fatal(err)
	}
	good := buf.String()
	discard := func(storeutil.Rows) error { return nil }
	if _, err := readBackup(strings.NewReader(good), discard); err != nil {
		t.Fatalf("a good backup: %v", err)
	}

	i := strings.Index(good, `{"b64":"`) + len(`{"b64":"`)
	flipped := []byte(good)
	if flipped[i] == 'A' {
		flipped[i] = 'B'
	} else {
		flipped[i] = 'A'
	}
	lines := strings.SplitAfter(strings.TrimSuffix(good, "\n"), "\n")
	for _, c := range []struct{ name, file, want string }{
		{"a wrapped key changed", string(flipped), "does not match its digest"},
		{"the last line missing", strings.Join(lines[:len(lines)-1], ""), "cut short"},
		{"cut inside a line", good[:len(good)-10], "damaged"},
		{"not a backup", "{\"scopes\":[]}\n", "not an envy backup"},
		{"a later version", strings.Replace(good, `"version":1`, `"version":2`, 1), "version 2"},
		{"a row too short", strings.Replace(good, `"rows":[[1,0]]`, `"rows":[[1]]`, 1), "1 values for 2 columns"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := readBackup(strings.NewReader(c.file), discard)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error saying %q", err, c.want)
			}
		})
	}
}
