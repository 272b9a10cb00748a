package e2e

import (
	"encoding/json"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/envy-dev/envy"
)

// Revoking the last admin, with the tokens it minted, is refused unless
// forced; a forced one is recovered on the server's host with
// `envy server admin-token`, which is audited.
func TestTheLastAdminIsNotRevokedSilentlyAndCanBeRecovered(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir, envy.NewTokenValue())
	var self struct{ ID string }
	if err := json.Unmarshal([]byte(s.mustCLI(t, "", "whoami", "-o", "json")), &self); err != nil {
		t.Fatal(err)
	}
	// A second global admin minted by the first ends with it: it does not
	// count as one left.
	s.mustCLI(t, "", "tokens", "create", "deputy", "--grant", "**=admin")

	out, errs, code := s.cli(t, "", "tokens", "revoke", self.ID, "--yes")
	if code != 1 || !strings.Contains(errs, "last live token with admin on **") || !strings.Contains(errs, "and the live token it minted") || !strings.Contains(errs, "nothing revoked") {
		t.Fatalf("revoke of the last admin: exit %d, %q %q; want a 409 naming why", code, out, errs)
	}
	s.mustCLI(t, "", "whoami") // still valid

	// Forced, it ends two tokens: off a terminal that needs --yes.
	_, errs, code = s.cli(t, "", "tokens", "revoke", self.ID, "--force")
	if code != 2 || !strings.Contains(errs, "needs --yes") || !strings.Contains(errs, "(2 tokens)") {
		t.Fatalf("forced revoke of 2 tokens without --yes: exit %d, %q", code, errs)
	}
	s.mustCLI(t, "", "whoami")
	out = s.mustCLI(t, "", "tokens", "revoke", self.ID, "--force", "--yes")
	if !strings.Contains(out, "revoked token "+self.ID+" and the 1 token it minted (2 tokens)") {
		t.Fatalf("forced revoke said %q", out)
	}
	if _, _, code := s.cli(t, "", "whoami"); code == 0 {
		t.Fatal("the revoked admin token still works")
	}

	// Recovery, on the host, with the server stopped (SQLite).
	s.kill9(t)
	rec := exec.Command(envyBin, "server", "admin-token", "--data-dir", dir)
	b, err := rec.CombinedOutput()
	if err != nil {
		t.Fatalf("envy server admin-token: %v: %s", err, b)
	}
	plain := regexp.MustCompile(`envy_[A-Za-z0-9]+`).FindString(string(b))
	if plain == "" {
		t.Fatalf("envy server admin-token printed no token: %s", b)
	}
	// A data dir with no database is refused, and none is made.
	if b, err := exec.Command(envyBin, "server", "admin-token", "--data-dir", dir+"/typo").CombinedOutput(); err == nil || !strings.Contains(string(b), "no envy database") {
		t.Fatalf("admin-token over a missing database: %v %s", err, b)
	}

	s2 := startServer(t, dir, envy.NewTokenValue()) // ignored: tokens exist
	s2.token = plain
	if out := s2.mustCLI(t, "", "whoami"); !strings.Contains(out, "**=admin") {
		t.Fatalf("recovered token: %s", out)
	}
	if out := s2.mustCLI(t, "", "audit", "-o", "json"); !strings.Contains(out, "recovery (envy server admin-token)") {
		t.Fatalf("the recovery is not in the audit log: %s", out)
	}
}
