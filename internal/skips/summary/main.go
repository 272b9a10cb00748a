// Command summary prints, after `go test ./...`, one line per finished
// run that skipped tests for want of a PostgreSQL server or Chromium
// (package skips), or says that no test was skipped so, and removes the
// record files it read. The README's test command ends with it.
package main

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/envy-dev/envy/internal/skips"
)

func main() {
	files, _ := filepath.Glob(filepath.Join(os.TempDir(), skips.Prefix+"*"))
	printed := false
	for _, f := range files {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(f), skips.Prefix))
		if err != nil || running(pid) {
			continue // another go test that has not finished yet
		}
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		os.Remove(f)
		count := map[string]int{}
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			why, _, _ := strings.Cut(line, "\t")
			if why != "" {
				count[why]++
			}
		}
		type reason struct {
			why string
			n   int
		}
		var rs []reason
		for why, n := range count {
			rs = append(rs, reason{why, n})
		}
		slices.SortFunc(rs, func(a, b reason) int { return cmp.Or(b.n-a.n, strings.Compare(a.why, b.why)) })
		parts := make([]string, len(rs))
		for i, r := range rs {
			parts[i] = fmt.Sprintf("%d skipped: %s", r.n, r.why)
		}
		fmt.Printf("go test (pid %d) did not run every test: %s\n", pid, strings.Join(parts, "; "))
		printed = true
	}
	if !printed {
		fmt.Println("go test skipped no test for want of PostgreSQL or Chromium")
	}
}

// running reports whether the process pid is still there.
func running(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	return p.Signal(syscallZero) == nil
}
