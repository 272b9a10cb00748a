package auditstream_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/auditstream"
	envyhttp "github.com/envy-dev/envy/http"
)

// bigEntry is the entry of a merge of 1000 vars with long names: some
// 260 KB of JSON, beyond what a datagram can carry.
func bigEntry(i int) envy.AuditEntry {
	e := entry(i)
	e.Action, e.Count = envy.AuditVarsMerge, 1
	e.Names = nil
	for k := range 1000 {
		e.Names = append(e.Names, fmt.Sprintf("V%04d_%s", k, strings.Repeat("X", 249)))
	}
	return e
}

// A file stream rotates before any line that would take its file past
// MaxSize, even within one write of many lines: every file stays within
// it, but a file holding one line longer than MaxSize, alone.
func TestARotatedFileStaysWithinMaxSizeUnderABurst(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	s := open(t, []string{"file:" + path}, auditstream.Options{MaxSize: 4096, Keep: 5})
	var burst []envy.AuditEntry
	for i := 1; i <= 100; i++ {
		burst = append(burst, entry(i))
	}
	s.Offer(burst...) // queued at once: one write of 100 lines of ~280 bytes
	// The queue is written in order: once the next entry is, so is the burst.
	if err := record(t, s, entry(101)); err != nil {
		t.Fatal(err)
	}
	// A line longer than MaxSize goes alone into a fresh file, and the
	// next one into another.
	if err := record(t, s, bigEntry(102)); err != nil {
		t.Fatal(err)
	}
	if err := record(t, s, entry(103)); err != nil {
		t.Fatal(err)
	}
	var all []line
	files := 0
	for _, p := range []string{path + ".5", path + ".4", path + ".3", path + ".2", path + ".1", path} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		files++
		lines := parseLines(t, string(b))
		if len(b) > 4096 && len(lines) != 1 {
			t.Errorf("%s holds %d bytes in %d lines, beyond --audit-stream-max-size 4096", filepath.Base(p), len(b), len(lines))
		}
		all = append(all, lines...)
	}
	if files != 6 {
		t.Errorf("%d files, want audit.jsonl and the 5 rotated ones kept", files)
	}
	var ids []string
	for _, l := range all {
		ids = append(ids, l.RequestID)
	}
	if n := len(ids); n < 3 || ids[n-3] != "req-101" || ids[n-2] != "req-102" || ids[n-1] != "req-103" {
		t.Fatalf("the files end with %v, want req-101, req-102, req-103", ids[max(0, len(ids)-3):])
	}
	if b, _ := os.ReadFile(path + ".1"); len(parseLines(t, string(b))) != 1 {
		t.Errorf("the line beyond the max size does not stand alone in audit.jsonl.1")
	}
	for i := 1; i < len(all); i++ {
		if all[i].Revision != all[i-1].Revision+1 {
			t.Fatalf("entries out of order or missing across the rotated files: %d then %d", all[i-1].Revision, all[i].Revision)
		}
	}
}

// The same stream spelled two ways is refused as given twice: it would
// write every line twice (two rotators sharing one file). Nothing opened
// is left open.
func TestTheSameStreamSpelledTwoWaysIsRefused(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "a"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "a"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	_, port, _ := net.SplitHostPort(pc.LocalAddr().String())
	f := "file:" + filepath.Join(dir, "a", "audit.jsonl")
	for _, pair := range [][2]string{
		{"stdout", "stdout"},
		{f, "file:" + dir + "/a//audit.jsonl"},
		{f, "file:" + dir + "/a/./../a/audit.jsonl"},
		{f, "file:" + filepath.Join(dir, "link", "audit.jsonl")},
		{"syslog://127.0.0.1:" + port, "syslog+udp://127.0.0.1:" + port},
		{"syslog+tcp://LOGS.example:6514", "syslog+tcp://logs.example:06514"},
		{"syslog+tcp://[::1]:6514", "syslog+tcp://[0:0::1]:6514"},
	} {
		s, err := auditstream.Open(pair[:], auditstream.Options{View: envyhttp.AuditView})
		if err == nil {
			s.Close(t.Context())
		}
		if err == nil || !strings.Contains(err.Error(), "given twice") || !strings.Contains(err.Error(), fmt.Sprintf("%q", pair[1])) {
			t.Errorf("Open(%q): %v, want the second refused as given twice", pair, err)
		}
	}
	// Distinct streams still open side by side.
	s := open(t, []string{f, "file:" + filepath.Join(dir, "a", "other.jsonl"), "syslog://127.0.0.1:" + port}, auditstream.Options{})
	if err := record(t, s, entry(1)); err != nil {
		t.Fatal(err)
	}
}
