package auditstream_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/api"
	"github.com/envy-dev/envy/auditstream"
	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/internal/testenv"
)

// deadline bounds every wait: a broken guarantee fails in seconds.
const deadline = 10 * time.Second

func open(t *testing.T, specs []string, o auditstream.Options) *auditstream.Set {
	t.Helper()
	o.View = envyhttp.AuditView
	if o.Retry == 0 {
		o.Retry = 20 * time.Millisecond
	}
	s, err := auditstream.Open(specs, o)
	if err != nil {
		t.Fatalf("Open(%q): %v", specs, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		s.Close(ctx)
	})
	return s
}

func entry(i int) envy.AuditEntry {
	return envy.AuditEntry{At: time.Now(), Actor: "admin", Action: envy.AuditVarSet, Scope: "acme/web", Names: []string{"PORT"},
		Status: envy.OutcomeOK, RequestID: "req-" + strconv.Itoa(i), Client: "127.0.0.1", Revision: int64(i), TokenID: "tok-1", Count: 1}
}

// record reserves and sends one entry and waits for a stream to write it.
func record(t *testing.T, s *auditstream.Set, e envy.AuditEntry) error {
	t.Helper()
	send, _, err := s.Reserve(1)
	if err != nil {
		return err
	}
	select {
	case err := <-send([]envy.AuditEntry{e}):
		return err
	case <-time.After(deadline):
		t.Fatalf("entry %s neither written nor failed within %v", e.RequestID, deadline)
		return nil
	}
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !ok() {
		if time.Now().After(end) {
			t.Fatalf("not within %v: %s", deadline, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// line is an audit stream line as a SIEM reads it: the audit API's entry.
type line = api.AuditEntry

// parseLines parses JSON lines strictly: every line one object with the
// audit API's fields and no other.
func parseLines(t *testing.T, text string) []line {
	t.Helper()
	var out []line
	for i, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if l == "" {
			continue
		}
		d := json.NewDecoder(strings.NewReader(l))
		d.DisallowUnknownFields()
		var x line
		if err := d.Decode(&x); err != nil {
			t.Fatalf("line %d is not an audit entry: %v: %s", i+1, err, l)
		}
		var raw map[string]any
		_ = json.Unmarshal([]byte(l), &raw)
		for _, k := range []string{"id", "at", "actor", "action", "scope", "names", "status", "request_id", "client", "revision", "token_id", "count"} {
			if _, ok := raw[k]; !ok {
				t.Fatalf("line %d lacks %q: %s", i+1, k, l)
			}
		}
		out = append(out, x)
	}
	return out
}

func TestAFileStreamRotatesBySizeAndKeepsItsFiles0600(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "logs", "audit.jsonl")
	// An old file wider than 0600 is narrowed at open.
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	s := open(t, []string{"file:" + path}, auditstream.Options{MaxSize: 4096, Keep: 2})
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the old file after open: %v, %v; want it narrowed to 0600", fi.Mode().Perm(), err)
	}
	for i := 1; i <= 200; i++ {
		if err := record(t, s, entry(i)); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
	}
	var all []line
	for _, p := range []string{path + ".2", path + ".1", path} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(p), err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", filepath.Base(p), fi.Mode().Perm())
		}
		if fi.Size() > 4096 {
			t.Errorf("%s holds %d bytes, beyond the max size 4096", filepath.Base(p), fi.Size())
		}
		b, _ := os.ReadFile(p)
		all = append(all, parseLines(t, string(b))...)
	}
	if _, err := os.Stat(path + ".3"); err == nil {
		t.Error("a third rotated file is kept with --audit-stream-keep 2")
	}
	// The files kept hold the newest entries, in order, none missing.
	if len(all) == 0 || all[len(all)-1].RequestID != "req-200" {
		t.Fatalf("the newest entry is not last: %+v", all[len(all)-1:])
	}
	for i := 1; i < len(all); i++ {
		if all[i].Revision != all[i-1].Revision+1 {
			t.Fatalf("entries out of order or missing across the rotated files: %d then %d", all[i-1].Revision, all[i].Revision)
		}
	}
	if l := all[len(all)-1]; l.Action != "var.set" || l.Status != 200 || l.TokenID == nil || *l.TokenID != "tok-1" || l.Scope != "acme/web" {
		t.Fatalf("the line is not the audit API's entry: %+v", l)
	}
}

// A file stream whose directory becomes a file (which fails for root
// too, unlike a permission) refuses reservations until the directory is
// back, says why, and then writes what waited in its queue.
func TestAFileStreamThatBecomesUnwritableFailsClosedAndRecovers(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "logs")
	path := filepath.Join(sub, "audit.jsonl")
	s := open(t, []string{"file:" + path}, auditstream.Options{})
	if err := record(t, s, entry(1)); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(sub); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sub, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The stream learns it at its next write: that entry's waiter hears
	// that no stream wrote it, and it stays queued.
	err := record(t, s, entry(2))
	if envy.ErrorCode(err) != envy.EUnavailable {
		t.Fatalf("an entry no stream could write: %v, want EUnavailable", err)
	}
	if _, _, err := s.Reserve(1); envy.ErrorCode(err) != envy.EUnavailable {
		t.Fatalf("Reserve while the only stream fails: %v, want EUnavailable", err)
	}
	err = s.Ready()
	if err == nil || !strings.Contains(err.Error(), "file:"+path) || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("Ready does not name the stream and why: %v", err)
	}
	if e := envy.AsError(err); e == nil || e.RetryAfter < time.Second {
		t.Fatalf("the refusal has no Retry-After: %#v", err)
	}
	s.Offer(entry(3)) // a refusal's entry, say: queued while down

	if err := os.Remove(sub); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the stream recovers once its directory can be made again", func() bool { return s.Ready() == nil })
	if err := record(t, s, entry(4)); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	b, _ := os.ReadFile(path)
	var ids []string
	for _, l := range parseLines(t, string(b)) {
		ids = append(ids, l.RequestID)
	}
	if strings.Join(ids, ",") != "req-2,req-3,req-4" {
		t.Fatalf("after recovery the new file holds %v, want the entries that waited, then the new one", ids)
	}
}

func TestTwoStreamsWhereOneFailsKeepServing(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "logs")
	out := &testenv.Buffer{}
	s := open(t, []string{"file:" + filepath.Join(sub, "audit.jsonl"), "stdout"}, auditstream.Options{Stdout: out})
	if err := os.RemoveAll(sub); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sub, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if err := record(t, s, entry(i)); err != nil {
			t.Fatalf("entry %d with stdout working: %v", i, err)
		}
	}
	if err := s.Ready(); err != nil {
		t.Fatalf("Ready with one stream working: %v", err)
	}
	if n := len(parseLines(t, out.String())); n != 3 {
		t.Fatalf("stdout has %d lines, want 3", n)
	}
}

// A stream that falls behind holds at most its queue: beyond, requests
// that must be audited are refused and offered entries dropped and
// counted, never a reserved one.
func TestAStreamThatFallsBehindIsBoundedAndDropsNoReservedEntry(t *testing.T) {
	w := &gate{open: make(chan struct{}), Buffer: &testenv.Buffer{}}
	s := open(t, []string{"stdout"}, auditstream.Options{Stdout: w, Queue: 3, WriteTimeout: 200 * time.Millisecond})
	var once sync.Once
	release := func() { once.Do(func() { close(w.open) }) }
	t.Cleanup(release) // before the Set closes, should the test stop early
	sends := make([]<-chan error, 0, 3)
	for i := 1; i <= 3; i++ {
		send, _, err := s.Reserve(1)
		if err != nil {
			t.Fatalf("reservation %d of a queue of 3: %v", i, err)
		}
		sends = append(sends, send([]envy.AuditEntry{entry(i)}))
	}
	_, _, err := s.Reserve(1)
	if envy.ErrorCode(err) != envy.EUnavailable || !strings.Contains(err.Error(), "behind") {
		t.Fatalf("a fourth reservation: %v, want EUnavailable saying the stream is behind", err)
	}
	s.Offer(entry(99))
	// A write that takes longer than the write timeout makes the stream
	// count as failing, with room or not.
	eventually(t, "a stream stuck in a write is not ready", func() bool {
		err := s.Ready()
		return err != nil && strings.Contains(err.Error(), "stuck")
	})
	release()
	for i, c := range sends {
		select {
		case err := <-c:
			if err != nil {
				t.Fatalf("entry %d: %v", i+1, err)
			}
		case <-time.After(deadline):
			t.Fatalf("entry %d not written", i+1)
		}
	}
	eventually(t, "the three reserved entries are written", func() bool { return strings.Count(w.String(), "\n") == 3 })
	if strings.Contains(w.String(), "req-99") {
		t.Fatal("an offered entry beyond the queue was written")
	}
	if err := record(t, s, entry(4)); err != nil {
		t.Fatalf("once caught up: %v", err)
	}
}

func TestSyslogOverTCPAndUDPToARealListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	s := open(t, []string{"syslog+tcp://" + ln.Addr().String(), "syslog://" + pc.LocalAddr().String()}, auditstream.Options{Hostname: "envy-host"})
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := 1; i <= 2; i++ {
		if err := record(t, s, entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	check := func(transport, msg string, i int) {
		t.Helper()
		// RFC 5424: <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG.
		f := strings.SplitN(msg, " ", 8)
		if len(f) != 8 || f[0] != "<86>1" || f[2] != "envy-host" || f[3] != "envy" || f[5] != "audit" || f[6] != "-" {
			t.Fatalf("%s: not an RFC 5424 message from envy: %q", transport, msg)
		}
		if _, err := time.Parse(time.RFC3339Nano, f[1]); err != nil {
			t.Fatalf("%s: timestamp %q: %v", transport, f[1], err)
		}
		if l := parseLines(t, f[7]); len(l) != 1 || l[0].RequestID != "req-"+strconv.Itoa(i) {
			t.Fatalf("%s: message %d holds %q", transport, i, f[7])
		}
	}
	// TCP: octet-counted frames (RFC 6587).
	r := bufio.NewReader(conn)
	_ = conn.SetReadDeadline(time.Now().Add(deadline))
	for i := 1; i <= 2; i++ {
		var n int
		if _, err := fmt.Fscanf(r, "%d ", &n); err != nil {
			t.Fatalf("tcp frame %d: %v", i, err)
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			t.Fatal(err)
		}
		check("tcp", string(b), i)
	}
	_ = pc.SetReadDeadline(time.Now().Add(deadline))
	for i := 1; i <= 2; i++ {
		b := make([]byte, 65536)
		n, _, err := pc.ReadFrom(b)
		if err != nil {
			t.Fatalf("udp datagram %d: %v", i, err)
		}
		check("udp", string(b[:n]), i)
	}
}

// A unix stream socket gets JSON lines; when its listener goes away the
// stream fails (a reveal would be refused), and it reconnects once a
// listener is back.
func TestAUnixSocketStreamFailsWhenItsListenerClosesAndReconnects(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "siem.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	s := open(t, []string{"unix:" + sock}, auditstream.Options{})
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if err := record(t, s, entry(1)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	_ = conn.SetReadDeadline(time.Now().Add(deadline))
	first, err := r.ReadString('\n')
	if err != nil || parseLines(t, first)[0].RequestID != "req-1" {
		t.Fatalf("read %q, %v", first, err)
	}
	conn.Close()
	ln.Close()
	eventually(t, "an entry to a socket whose listener closed is refused", func() bool {
		return envy.ErrorCode(record(t, s, entry(2))) == envy.EUnavailable
	})
	if err := s.Ready(); err == nil || !strings.Contains(err.Error(), "unix:"+sock) {
		t.Fatalf("Ready: %v", err)
	}
	ln, err = net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	eventually(t, "the stream reconnects", func() bool { return s.Ready() == nil })
	conn, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := record(t, s, entry(3)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(deadline))
	r = bufio.NewReader(conn)
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("req-3 never came: %v", err)
		}
		if parseLines(t, l)[0].RequestID == "req-3" {
			break
		}
	}
}

func TestAUnixDatagramSocketGetsAnEntryPerDatagram(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "siem.dgram")
	pc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	s := open(t, []string{"unix:" + sock}, auditstream.Options{})
	for i := 1; i <= 2; i++ {
		if err := record(t, s, entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	_ = pc.SetReadDeadline(time.Now().Add(deadline))
	for i := 1; i <= 2; i++ {
		b := make([]byte, 65536)
		n, err := pc.Read(b)
		if err != nil {
			t.Fatal(err)
		}
		if l := parseLines(t, string(b[:n])); len(l) != 1 || l[0].RequestID != "req-"+strconv.Itoa(i) {
			t.Fatalf("datagram %d: %q", i, b[:n])
		}
	}
}

func TestBadSpecsAreRefusedNamingTheFlag(t *testing.T) {
	for _, s := range []string{"", "file:", "file:/tmp/dir/", "file://x/y", "unix:", "syslog://", "syslog://host:99999", "syslog+tcp://h:1/path", "kafka://x", "stdout2", "syslog://u:p@host:514"} {
		err := auditstream.Check(s)
		if err == nil || !strings.HasPrefix(err.Error(), "invalid --audit-stream") {
			t.Errorf("Check(%q) = %v, want an error naming --audit-stream", s, err)
		}
	}
	for _, s := range []string{"stdout", "file:/var/log/envy/audit.jsonl", "file:audit.jsonl", "syslog://127.0.0.1", "syslog+tcp://[::1]:6514", "syslog+udp://logs.example:514", "unix:/run/siem.sock"} {
		if err := auditstream.Check(s); err != nil {
			t.Errorf("Check(%q): %v", s, err)
		}
	}
	if _, err := auditstream.Open([]string{"stdout", "stdout"}, auditstream.Options{View: envyhttp.AuditView}); err == nil {
		t.Error("a stream given twice is accepted")
	}
	if _, err := auditstream.Open([]string{"unix:" + filepath.Join(t.TempDir(), "none.sock")}, auditstream.Options{View: envyhttp.AuditView}); err == nil || !strings.Contains(err.Error(), "invalid --audit-stream") {
		t.Errorf("a socket nobody listens on at start: %v", err)
	}
}

func FuzzCheck(f *testing.F) {
	for _, s := range []string{"stdout", "file:/x", "syslog://h:1", "syslog+tcp://h", "unix:/s", "syslog:", "file://", "syslog://[::1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := auditstream.Check(s)
		if err != nil && !strings.HasPrefix(err.Error(), "invalid --audit-stream ") {
			t.Fatalf("an error that does not name the flag: %v", err)
		}
		if err == nil && s != "stdout" && s != "syslog:" && s != "syslog" && !strings.HasPrefix(s, "file:") && !strings.HasPrefix(s, "unix:") && !strings.HasPrefix(s, "syslog") {
			t.Fatalf("accepted %q", s)
		}
	})
}

// gate is a writer that blocks until open is closed: a receiver that
// has stopped reading.
type gate struct {
	open chan struct{}
	*testenv.Buffer
}

func (g *gate) Write(p []byte) (int, error) {
	<-g.open
	return g.Buffer.Write(p)
}

// withdrawal is the stand-in for entry(i) of a request that was not
// answered.
func withdrawal(i int) envy.AuditEntry {
	e := entry(i)
	e.Action, e.Status = envy.AuditRevealWithdrawn, envy.OutcomeUnavailable
	return e
}

// An entry withdrawn while it waits in the queue is never written: its
// stand-in is, in its place. One withdrawn during the write that holds it
// is written, and its stand-in after it. A second withdrawal does
// nothing; the entries after go as ever.
func TestAWithdrawnEntryIsReplacedWhileItWaitsAndFollowedOnceWritten(t *testing.T) {
	w := &testenv.HeldWriter{}
	s := open(t, []string{"stdout"}, auditstream.Options{Stdout: w})
	t.Cleanup(w.Release) // before the Set closes, should the test stop early
	waiting := w.Hold()
	send1, withdraw1, err := s.Reserve(1)
	if err != nil {
		t.Fatal(err)
	}
	send1([]envy.AuditEntry{entry(1)})
	select {
	case <-waiting: // entry 1 is in the write under way
	case <-time.After(deadline):
		t.Fatalf("entry 1 not written within %v", deadline)
	}
	send2, withdraw2, err := s.Reserve(1)
	if err != nil {
		t.Fatal(err)
	}
	send2([]envy.AuditEntry{entry(2)}) // waits in the queue
	withdraw2([]envy.AuditEntry{withdrawal(2)})
	withdraw1([]envy.AuditEntry{withdrawal(1)})
	withdraw2([]envy.AuditEntry{withdrawal(2)})
	w.Release()
	if err := record(t, s, entry(3)); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range parseLines(t, w.String()) {
		got = append(got, fmt.Sprintf("%s %s %d", l.RequestID, l.Action, l.Status))
	}
	want := "req-1 var.set 200, req-2 reveal.withdrawn 503, req-1 reveal.withdrawn 503, req-3 var.set 200"
	if strings.Join(got, ", ") != want {
		t.Fatalf("the stream wrote\n%s\nwant\n%s", strings.Join(got, ", "), want)
	}
}
