package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// --max-webhooks out of range is refused before the server starts, naming
// the flag and its range.
func TestServerRefusesMaxWebhooksOutOfRange(t *testing.T) {
	for _, v := range []string{"0", "-1", "100001"} {
		dir := filepath.Join(t.TempDir(), "data")
		code, out, errOut := runEnvy(t, env{}, "", "server", "--data-dir", dir, "--max-webhooks", v)
		if want := "envy: invalid --max-webhooks " + v + ": must be from 1 to 100000"; code == 0 || !strings.HasPrefix(errOut, want) || out != "" {
			t.Errorf("--max-webhooks %s: exit %d, stdout %q, stderr %q\nwant it to start with %q", v, code, out, errOut, want)
		}
	}
}
