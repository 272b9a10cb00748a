package auditstream

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// A spec names one stream, as --audit-stream takes it:
//
//	file:/var/log/envy/audit.jsonl   a file, rotated by size, mode 0600
//	stdout                           the server's standard output
//	syslog:                          the local syslog daemon (/dev/log)
//	syslog://host:port               remote syslog over UDP (port 514 by default)
//	syslog+udp://host:port           the same
//	syslog+tcp://host:port           remote syslog over TCP, octet-counted (RFC 6587)
//	unix:/run/siem.sock              a unix socket, stream or datagram
type spec struct {
	kind string // file, stdout, syslog, unix
	// path is the file's or the socket's path; for syslog, the local
	// socket ("" for a remote one).
	path string
	// network and addr are a remote syslog's ("udp" or "tcp", host:port).
	network, addr string
}

// localSyslogSockets are where a local syslog daemon listens, in the order
// tried (Linux, macOS, the BSDs).
var localSyslogSockets = []string{"/dev/log", "/var/run/syslog", "/var/run/log"}

// parseSpec parses one --audit-stream value. Its errors say what is wrong
// and what is wanted; they quote the spec, which holds no secret (a path
// or an address).
func parseSpec(s string) (spec, error) {
	bad := func(why string, args ...any) (spec, error) {
		return spec{}, fmt.Errorf("invalid --audit-stream %q: %s", s, fmt.Sprintf(why, args...))
	}
	const want = "want file:PATH, stdout, syslog:, syslog://HOST:PORT, syslog+tcp://HOST:PORT or unix:PATH"
	switch {
	case s == "":
		return bad("empty; %s", want)
	case strings.ContainsAny(s, "\x00\n\r"):
		return bad("holds a control character")
	case s == "stdout":
		return spec{kind: "stdout"}, nil
	case strings.HasPrefix(s, "file:"):
		p := strings.TrimPrefix(s, "file:")
		if strings.HasPrefix(p, "//") {
			return bad("give the path after file: (file:/var/log/envy/audit.jsonl), not a URL")
		}
		if p == "" || strings.HasSuffix(p, "/") {
			return bad("file: needs the path of a file")
		}
		return spec{kind: "file", path: filepath.Clean(p)}, nil
	case strings.HasPrefix(s, "unix:"):
		p := strings.TrimPrefix(s, "unix:")
		if p == "" || strings.HasPrefix(p, "//") {
			return bad("unix: needs the path of a socket (unix:/run/siem.sock)")
		}
		return spec{kind: "unix", path: filepath.Clean(p)}, nil
	case s == "syslog:" || s == "syslog":
		for _, p := range localSyslogSockets {
			if fi, err := os.Stat(p); err == nil && fi.Mode()&os.ModeSocket != 0 {
				return spec{kind: "syslog", path: p}, nil
			}
		}
		return bad("no local syslog socket (tried %s); give syslog://HOST:PORT for a remote one", strings.Join(localSyslogSockets, ", "))
	case strings.HasPrefix(s, "syslog://"), strings.HasPrefix(s, "syslog+udp://"), strings.HasPrefix(s, "syslog+tcp://"):
		u, err := url.Parse(s)
		if err != nil {
			return bad("not a URL")
		}
		if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return bad("give only the host and port (syslog://HOST:PORT)")
		}
		network := "udp"
		if u.Scheme == "syslog+tcp" {
			network = "tcp"
		}
		host, port := u.Hostname(), u.Port()
		if host == "" {
			return bad("no host")
		}
		if port == "" {
			port = "514"
		}
		n, err := parsePort(port)
		if err != nil || n == 0 {
			return bad("the port must be a number from 1 to 65535")
		}
		// One spelling of an address, so that the same stream given
		// twice is seen as such: a host name in lower case, an IP address
		// as netip writes it ([0:0::1] is [::1]), the port without
		// leading zeros.
		if a, err := netip.ParseAddr(host); err == nil {
			host = a.String()
		} else {
			host = strings.ToLower(host)
		}
		return spec{kind: "syslog", network: network, addr: net.JoinHostPort(host, strconv.Itoa(n))}, nil
	}
	return bad(want)
}

// key is what two specs of the same stream share, however spelled: its
// kind, its path made absolute, or its network and address.
func (sp spec) key() string {
	p := sp.path
	if a, err := filepath.Abs(p); err == nil && p != "" {
		p = a
	}
	return sp.kind + "\x00" + p + "\x00" + sp.network + "\x00" + sp.addr
}

func givenTwice(raw, first string) error {
	if raw == first {
		return fmt.Errorf("invalid --audit-stream %q: given twice", raw)
	}
	return fmt.Errorf("invalid --audit-stream %q: the same stream as %q, given twice", raw, first)
}

func parsePort(p string) (int, error) {
	n := 0
	if p == "" || len(p) > 5 {
		return 0, fmt.Errorf("bad port")
	}
	for _, c := range p {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("bad port")
		}
		n = n*10 + int(c-'0')
	}
	if n > 65535 {
		return 0, fmt.Errorf("bad port")
	}
	return n, nil
}

// Check reports whether s is a valid --audit-stream value, with an error
// that names it and says why not, without opening anything.
func Check(s string) error {
	_, err := parseSpec(s)
	return err
}
