package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/envy-dev/envy"
)

// TestEnvyRunWatchRestartsOnAReferencedChange: `envy run --watch`, the
// real binary against a real server, restarts its command when a value
// that the scope REFERS TO changes in another scope (the command then
// runs with the new value expanded), and does not when a var of a scope
// the env neither inherits nor refers to changes.
func TestEnvyRunWatchRestartsOnAReferencedChange(t *testing.T) {
	s := startServer(t, t.TempDir(), envy.NewTokenValue())
	s.mustCLI(t, "", "set", "acme/shared", "DB_HOST=db1", "--create")
	s.mustCLI(t, "", "set", "acme/other", "NOISE=1", "--create")
	// Single quotes: the shell leaves ${…} to envy.
	s.mustCLI(t, "", "set", "acme/web", "DATABASE_URL=postgres://${acme/shared:DB_HOST}/app", "--create")

	script := `echo "start URL=$DATABASE_URL"
while :; do sleep 0.05; done`
	_, out, errOut := s.startRun(t, "--scope", "acme/web", "--watch", "--debounce", "0s", "--consumer-id", "web-1", "--", "sh", "-c", script)
	waitOutput(t, out, "start URL=postgres://db1/app\n", 10*time.Second)

	// A var of an unrelated scope: no restart. The next change's restart
	// shows that the watch was live meanwhile.
	s.mustCLI(t, "", "set", "acme/other", "NOISE=2")
	// The referenced value changes in its own scope: the command restarts
	// with the new value expanded.
	s.mustCLI(t, "", "set", "acme/shared", "DB_HOST=db2")
	waitOutput(t, out, "start URL=postgres://db2/app\n", 10*time.Second)
	if n := strings.Count(out.String(), "start URL="); n != 2 {
		t.Errorf("the command started %d times, want 2 (once, then on the referenced change only); stdout:\n%s\nstderr:\n%s", n, out, errOut)
	}
	// Once more, so that a restart for NOISE that came late would show.
	s.mustCLI(t, "", "set", "acme/other", "NOISE=3")
	s.mustCLI(t, "", "set", "acme/shared", "DB_HOST=db3")
	waitOutput(t, out, "start URL=postgres://db3/app\n", 10*time.Second)
	if n := strings.Count(out.String(), "start URL="); n != 3 {
		t.Errorf("the command started %d times, want 3; stdout:\n%s\nstderr:\n%s", n, out, errOut)
	}
	if !strings.Contains(errOut.String(), "restarting") {
		t.Errorf("envy run said nothing of its restarts:\n%s", errOut)
	}
}
