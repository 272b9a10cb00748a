package auditstream

import (
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/envy-dev/envy"
)

// namesView is a view of an entry's request id and names.
func namesView(e envy.AuditEntry) any {
	return struct {
		RequestID string   `json:"request_id"`
		Names     []string `json:"names"`
	}{e.RequestID, e.Names}
}

func manyNames() []string {
	var names []string
	for k := range 1000 {
		names = append(names, fmt.Sprintf("V%04d_%s", k, strings.Repeat("X", 249)))
	}
	return names
}

// recordAll reserves, sends and waits for each entry in turn.
func recordAll(t *testing.T, s *Set, entries ...envy.AuditEntry) {
	t.Helper()
	for _, e := range entries {
		send, _, err := s.Reserve(1)
		if err != nil {
			t.Fatalf("%s: %v", e.RequestID, err)
		}
		select {
		case err := <-send([]envy.AuditEntry{e}):
			if err != nil {
				t.Fatalf("%s: %v", e.RequestID, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s not written", e.RequestID)
		}
	}
}

// cutEntry parses a message's JSON: its request id, names and
// names_truncated, and nothing else.
func cutEntry(t *testing.T, b []byte) (id string, names []string, cut int) {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.DisallowUnknownFields()
	var x struct {
		RequestID string   `json:"request_id"`
		Names     []string `json:"names"`
		Cut       int      `json:"names_truncated"`
	}
	if err := d.Decode(&x); err != nil {
		t.Fatalf("not the entry's JSON (%d bytes): %v: %.200q", len(b), err, b)
	}
	return x.RequestID, x.Names, x.Cut
}

// syslog: over a datagram socket cuts an entry too long for a datagram
// as the other datagram streams do, in a valid BSD message.
func TestLocalSyslogCutsAnEntryTooLongForADatagram(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "log")
	pc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	was := localSyslogSockets
	localSyslogSockets = []string{sock}
	defer func() { localSyslogSockets = was }()

	s, err := Open([]string{"syslog:"}, Options{View: namesView, Retry: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(t.Context())
	all := manyNames()
	recordAll(t, s, envy.AuditEntry{RequestID: "req-1", Names: all}, envy.AuditEntry{RequestID: "req-2", Names: []string{"PORT"}})
	_ = pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	bsd := regexp.MustCompile(`^<86>[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d envy\[\d+\]: (.*)$`)
	b := make([]byte, 1<<20)
	for i, want := range []string{"req-1", "req-2"} {
		n, err := pc.Read(b)
		if err != nil {
			t.Fatal(err)
		}
		if n > maxDatagram {
			t.Fatalf("a datagram of %d bytes", n)
		}
		m := bsd.FindSubmatch(b[:n])
		if m == nil {
			t.Fatalf("not a BSD syslog message: %.200q", b[:n])
		}
		id, names, cut := cutEntry(t, m[1])
		if i == 0 && (cut == 0 || len(names)+cut != len(all) || !slices.Equal(names, all[:len(names)])) {
			t.Fatalf("the long entry came with %d names, names_truncated %d", len(names), cut)
		}
		if id != want || i == 1 && (cut != 0 || len(names) != 1) {
			t.Fatalf("datagram %d: %s, %d names, names_truncated %d", i+1, id, len(names), cut)
		}
	}
}

// A datagram the socket refuses as too long (EMSGSIZE; here a bound set
// beyond UDP's) is cut further and sent: that entry's problem, not the
// stream's, which stays up.
func TestADatagramRefusedAsTooLongIsCutFurtherNotRetriedForEver(t *testing.T) {
	was := maxDatagram
	maxDatagram = 1 << 20
	defer func() { maxDatagram = was }()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	s, err := Open([]string{"syslog://" + pc.LocalAddr().String()}, Options{View: namesView, Retry: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(t.Context())
	all := manyNames()
	recordAll(t, s, envy.AuditEntry{RequestID: "req-1", Names: all}, envy.AuditEntry{RequestID: "req-2", Names: []string{"PORT"}})
	if err := s.Ready(); err != nil {
		t.Fatal(err)
	}
	_ = pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 1<<20)
	for i, want := range []string{"req-1", "req-2"} {
		n, _, err := pc.ReadFrom(b)
		if err != nil {
			t.Fatal(err)
		}
		f := strings.SplitN(string(b[:n]), " ", 8)
		if len(f) != 8 || f[0] != "<86>1" {
			t.Fatalf("not an RFC 5424 message: %.200q", b[:n])
		}
		id, names, cut := cutEntry(t, []byte(f[7]))
		if id != want || i == 0 && (cut == 0 || len(names)+cut != len(all)) {
			t.Fatalf("datagram %d: %s, %d names, names_truncated %d", i+1, id, len(names), cut)
		}
	}
}

func TestFitCutsNamesAndCountsThem(t *testing.T) {
	st := &stream{set: &Set{opts: Options{View: namesView}}}
	a, b, c := strings.Repeat("A", 30), strings.Repeat("B", 30), strings.Repeat("C", 30)
	e := envy.AuditEntry{RequestID: "r", Names: []string{a, b, c}}
	whole := st.line(e)
	if got := st.fit(e, len(whole)); string(got) != string(whole) {
		t.Fatalf("a line that fits: %s", got)
	}
	two := `{"request_id":"r","names":["` + a + `","` + b + `"],"names_truncated":1}`
	one := `{"request_id":"r","names":["` + a + `"],"names_truncated":2}`
	none := `{"request_id":"r","names":[],"names_truncated":3}`
	for _, c := range []struct {
		max  int
		want string
	}{
		{len(whole) - 1, two}, {len(two), two}, {len(two) - 1, one}, {len(one), one}, {len(one) - 1, none},
		{10, none}, // as short as it gets
	} {
		if got := st.fit(e, c.max); string(got) != c.want {
			t.Errorf("fit(%d) = %s, want %s", c.max, got, c.want)
		}
	}
	if e.Names[2] != c {
		t.Error("fit changed the entry's names")
	}
	if got := withField([]byte(`{}`), "n", 2); string(got) != `{"n":2}` {
		t.Errorf("withField of {}: %s", got)
	}
}
