package auditstream_test

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

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

// truncatedLine parses a line that may carry names_truncated: the audit
// API's entry and that count, and nothing else.
func truncatedLine(t *testing.T, msg []byte) (line, int) {
	t.Helper()
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(msg, &raw); err != nil {
		t.Fatalf("not a JSON object (%d bytes): %v: %.200s…", len(msg), err, msg)
	}
	cut := 0
	if v, ok := raw["names_truncated"]; ok {
		if err := json.Unmarshal(v, &cut); err != nil || cut <= 0 {
			t.Fatalf("names_truncated is %s", v)
		}
		delete(raw, "names_truncated")
	}
	rest, _ := json.Marshal(raw)
	l := parseLines(t, string(rest))
	if len(l) != 1 {
		t.Fatalf("%d entries in one message", len(l))
	}
	return l[0], cut
}

// An entry too long for a datagram (a merge of many vars with long
// names) goes as one datagram all the same, its names cut short and
// counted in names_truncated, every other field kept; the stream stays
// up and the next entry goes as ever. Before, the datagram failed with
// EMSGSIZE and the stream retried it every second, down, for ever: every
// write and reveal refused until a restart.
func TestAnEntryLargerThanADatagramDoesNotWedgeTheStream(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	sock := filepath.Join(t.TempDir(), "siem.dgram")
	ug, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ug.Close()
	udp, unix := make(chan []byte, 100), make(chan []byte, 100)
	go func() {
		b := make([]byte, 1<<20)
		for {
			n, _, err := pc.ReadFrom(b)
			if err != nil {
				return
			}
			udp <- slices.Clone(b[:n])
		}
	}()
	go func() {
		b := make([]byte, 1<<20)
		for {
			n, err := ug.Read(b)
			if err != nil {
				return
			}
			unix <- slices.Clone(b[:n])
		}
	}()
	big := bigEntry(1)
	for _, c := range []struct {
		spec string
		got  chan []byte
		// body is a message's JSON object.
		body func([]byte) []byte
	}{
		{"syslog://" + pc.LocalAddr().String(), udp, func(m []byte) []byte {
			// RFC 5424: <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG.
			f := strings.SplitN(string(m), " ", 8)
			if len(f) != 8 || f[0] != "<86>1" || f[3] != "envy" || f[5] != "audit" {
				t.Fatalf("not an RFC 5424 message from envy: %.200q", m)
			}
			return []byte(f[7])
		}},
		{"unix:" + sock, unix, func(m []byte) []byte { return m }},
	} {
		t.Run(c.spec, func(t *testing.T) {
			s := open(t, []string{c.spec}, auditstream.Options{})
			if err := record(t, s, big); err != nil {
				t.Fatalf("the big entry: %v", err)
			}
			if err := record(t, s, entry(2)); err != nil {
				t.Fatalf("the next entry: %v", err)
			}
			next := func() []byte {
				select {
				case m := <-c.got:
					return m
				case <-time.After(deadline):
					t.Fatalf("no datagram within %v", deadline)
					return nil
				}
			}
			m := next()
			if len(m) > 65507 {
				t.Fatalf("a datagram of %d bytes", len(m))
			}
			l, cut := truncatedLine(t, c.body(m))
			if cut == 0 || len(l.Names)+cut != len(big.Names) || !slices.Equal(l.Names, big.Names[:len(l.Names)]) || len(l.Names) < 100 {
				t.Fatalf("the big entry arrived with %d names and names_truncated %d, want the first names and the count of the %d left out", len(l.Names), cut, len(big.Names)-len(l.Names))
			}
			if l.RequestID != "req-1" || l.Action != "vars.merge" || l.Status != 200 || l.Scope != "acme/web" || l.TokenID == nil || *l.TokenID != "tok-1" || l.Revision != 1 {
				t.Fatalf("the big entry lost a field: %+v", l)
			}
			l, cut = truncatedLine(t, c.body(next()))
			if l.RequestID != "req-2" || cut != 0 || !slices.Equal(l.Names, []string{"PORT"}) {
				t.Fatalf("the next datagram: %+v, names_truncated %d", l, cut)
			}
			if err := s.Ready(); err != nil {
				t.Fatalf("Ready: %v", err)
			}
		})
	}
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
