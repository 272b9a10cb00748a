// Package skips keeps count of the tests a `go test` run skipped because
// something they need is missing (a PostgreSQL server, Chromium), so that
// the run can end with one line saying so rather than pass in silence: go
// test shows a passing package's skips only with -v.
//
// Every test binary of one `go test` run is a child of the same go
// command, so each records its skips in a file named after that command's
// pid (os.Getppid) under os.TempDir; `go run ./internal/skips/summary`,
// after the run, prints the line of each finished run and removes its
// file. It is for tests only.
package skips

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Prefix starts the name of every record file under os.TempDir.
const Prefix = "envy-test-skips-"

// File is the record file of the go command that ran this test binary.
func File() string {
	return filepath.Join(os.TempDir(), fmt.Sprintf("%s%d", Prefix, os.Getppid()))
}

// Skip records that t is skipped, because of why (one line, the same
// for every test skipped for the same reason), and skips it.
func Skip(t testing.TB, why string) {
	t.Helper()
	record(t.Name(), why)
	t.Skip(why)
}

// record appends "why\ttest" to the run's file: one write of a short line
// with O_APPEND, so that packages running at once don't mix their lines.
func record(test, why string) {
	line := strings.ReplaceAll(why, "\n", " ") + "\t" + test + "\n"
	f, err := os.OpenFile(File(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return // the skip itself still shows with -v
	}
	defer f.Close()
	f.WriteString(line)
}
