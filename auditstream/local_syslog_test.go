package auditstream

import (
	"encoding/json"
	"net"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/envy-dev/envy"
)

// syslog: finds the local daemon's datagram socket and sends it one
// message a datagram, in the BSD form such daemons read from /dev/log.
func TestLocalSyslogGetsOneBSDMessageADatagram(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "log")
	pc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	was := localSyslogSockets
	localSyslogSockets = []string{filepath.Join(t.TempDir(), "absent"), sock}
	defer func() { localSyslogSockets = was }()

	s, err := Open([]string{"syslog:"}, Options{View: func(e envy.AuditEntry) any { return map[string]string{"request_id": e.RequestID} }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(t.Context())
	send, _, err := s.Reserve(1)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-send([]envy.AuditEntry{{RequestID: "req-1"}}); err != nil {
		t.Fatal(err)
	}
	_ = pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 4096)
	n, err := pc.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`^<86>[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d envy\[\d+\]: (.*)$`).FindSubmatch(b[:n])
	if m == nil {
		t.Fatalf("not a BSD syslog message: %q", b[:n])
	}
	var x map[string]string
	if err := json.Unmarshal(m[1], &x); err != nil || x["request_id"] != "req-1" {
		t.Fatalf("the message is not the entry's JSON: %q", m[1])
	}
}

// syslog: and syslog are the same stream: given both, the start is
// refused rather than every line written twice.
func TestSyslogColonAndSyslogAreOneStream(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "log")
	pc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	was := localSyslogSockets
	localSyslogSockets = []string{sock}
	defer func() { localSyslogSockets = was }()
	view := func(e envy.AuditEntry) any { return e.RequestID }
	s, err := Open([]string{"syslog:", "syslog"}, Options{View: view})
	if err == nil {
		s.Close(t.Context())
	}
	if err == nil || err.Error() != `invalid --audit-stream "syslog": the same stream as "syslog:", given twice` {
		t.Fatalf("syslog: and syslog: %v, want refused as given twice", err)
	}
}
