package auditstream

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// A device is where one stream's lines go. Only the stream's writer
// goroutine calls it. A batch is written whole or reported failed; after a
// failure the stream writes the batch again (so a receiver may see an
// entry twice: at least once, never lost).
type device interface {
	// open (re)opens the device; the stream calls it before the first
	// batch and again after a failure, every Options.Retry.
	open() error
	// write writes lines, each one JSON object without its newline. A
	// device whose messages are bounded (a datagram) sends a line too
	// long for one as fit(i, max) gives the ith: cut to at most max
	// bytes, still one entry's JSON object (see stream.fit).
	write(lines [][]byte, fit func(i, max int) []byte) error
	close()
}

// maxDatagram bounds a datagram: the largest UDP payload over IPv4
// (65,535 less the IP and UDP headers; IPv6 allows a little more), which
// a unix datagram socket takes too under Linux's default buffers. A var
// for the tests.
var maxDatagram = 65507

// minDatagram is the least a datagram stream cuts its bound down to when
// the socket refuses datagrams as too long (EMSGSIZE): the 2,048 octets
// RFC 5424 says every syslog receiver should take. An entry cut of all
// its names fits in it.
const minDatagram = 2048

func newDevice(sp spec, o *Options) device {
	switch sp.kind {
	case "file":
		return &fileDevice{path: sp.path, maxSize: o.MaxSize, keep: o.Keep}
	case "stdout":
		return &writerDevice{w: o.Stdout}
	case "unix":
		return &connDevice{dial: dialUnix(sp.path), timeout: o.WriteTimeout, frame: frameLines}
	case "syslog":
		if sp.path != "" { // the local daemon: BSD format, one datagram each
			return &connDevice{dial: dialUnix(sp.path), timeout: o.WriteTimeout, frame: syslogLocal(o.Hostname)}
		}
		frame := syslogUDP(o.Hostname)
		if sp.network == "tcp" {
			frame = syslogTCP(o.Hostname)
		}
		return &connDevice{dial: func(timeout time.Duration) (net.Conn, bool, error) {
			c, err := net.DialTimeout(sp.network, sp.addr, timeout)
			return c, sp.network == "udp", err
		}, timeout: o.WriteTimeout, frame: frame}
	}
	panic("auditstream: unknown kind " + sp.kind)
}

// joinLines is a batch as one buffer, a newline after each line, so that
// a stream of bytes gets it in one write.
func joinLines(lines [][]byte) []byte {
	n := 0
	for _, l := range lines {
		n += len(l) + 1
	}
	b := make([]byte, 0, n)
	for _, l := range lines {
		b = append(append(b, l...), '\n')
	}
	return b
}

// fileDevice appends to a file, rotating it by size. It checks before
// each batch that its path still names the file it holds open, and opens
// the path again when not: a file moved away (logrotate), deleted or
// replaced is followed, and a path that can no longer be written (its
// directory gone, or made a file) is a failure, not a write into an
// unlinked file that nobody will read.
type fileDevice struct {
	path    string
	maxSize int64
	keep    int
	f       *os.File
	size    int64
}

func (d *fileDevice) open() error {
	d.close()
	if err := os.MkdirAll(filepath.Dir(d.path), 0o700); err != nil {
		return err
	}
	// 0600: the audit log says who read which secret when; nobody but the
	// server's user reads it. An existing file wider than that is narrowed.
	f, err := os.OpenFile(d.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return fmt.Errorf("%s is not a regular file", d.path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := f.Chmod(0o600); err != nil {
			f.Close()
			return fmt.Errorf("%s is readable by others (%v) and can't be narrowed to 0600: %v", d.path, fi.Mode().Perm(), err)
		}
	}
	d.f, d.size = f, fi.Size()
	return nil
}

func (d *fileDevice) write(lines [][]byte, _ func(int, int) []byte) error {
	if d.f == nil {
		return errors.New("not open")
	}
	// The path may have been moved, deleted or replaced since the last
	// batch: follow it.
	held, err := d.f.Stat()
	if err != nil {
		return err
	}
	if now, err := os.Stat(d.path); err != nil || !os.SameFile(held, now) {
		if err := d.open(); err != nil {
			return err
		}
	}
	// The file is rotated before any line that would take it past
	// maxSize, within a batch too (a burst of lines never piles into one
	// file); a line longer than maxSize goes alone into a fresh file. The
	// lines between two rotations go in one write.
	var b []byte
	flush := func() error {
		if len(b) == 0 {
			return nil
		}
		n, err := d.f.Write(b)
		d.size += int64(n)
		b = b[:0]
		return err
	}
	for _, l := range lines {
		if held := d.size + int64(len(b)); d.maxSize > 0 && held > 0 && held+int64(len(l))+1 > d.maxSize {
			if err := flush(); err != nil {
				return err
			}
			if err := d.rotate(); err != nil {
				return fmt.Errorf("rotating %s: %v", d.path, err)
			}
		}
		b = append(append(b, l...), '\n')
	}
	return flush()
}

// rotate moves path to path.1 (path.1 to path.2, …, dropping the one
// beyond keep) and opens a new, empty path. The moved files keep their
// mode.
func (d *fileDevice) rotate() error {
	d.close()
	if d.keep <= 0 {
		if err := os.Remove(d.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return d.open()
	}
	old := func(i int) string { return d.path + "." + strconv.Itoa(i) }
	if err := os.Remove(old(d.keep)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for i := d.keep - 1; i >= 1; i-- {
		if err := os.Rename(old(i), old(i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := os.Rename(d.path, old(1)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return d.open()
}

func (d *fileDevice) close() {
	if d.f != nil {
		d.f.Close()
		d.f = nil
	}
}

// sameFile reports whether a and b are file streams that hold the same
// file open (one reached through a link, say).
func sameFile(a, b device) bool {
	fa, ok1 := a.(*fileDevice)
	fb, ok2 := b.(*fileDevice)
	if !ok1 || !ok2 || fa.f == nil || fb.f == nil {
		return false
	}
	sa, err1 := fa.f.Stat()
	sb, err2 := fb.f.Stat()
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// writerDevice writes to a writer it does not own (stdout).
type writerDevice struct{ w io.Writer }

func (d *writerDevice) open() error { return nil }

func (d *writerDevice) write(lines [][]byte, _ func(int, int) []byte) error {
	_, err := d.w.Write(joinLines(lines))
	return err
}

func (d *writerDevice) close() {}

// connDevice writes to a socket: a unix socket, or syslog over a unix
// socket, UDP or TCP. Each write has a deadline, so that a receiver that
// stops reading makes the stream fail rather than hang.
type connDevice struct {
	// dial connects; packet says each message is a datagram of its own.
	dial    func(timeout time.Duration) (c net.Conn, packet bool, err error)
	timeout time.Duration
	// frame turns a batch into the buffers to write: one for a byte
	// stream, one per message on a datagram socket.
	frame  func(lines [][]byte, packet bool) [][]byte
	c      net.Conn
	packet bool
	// max bounds a datagram: maxDatagram, or less once the socket has
	// refused one as too long.
	max int
}

func (d *connDevice) open() error {
	d.close()
	c, packet, err := d.dial(d.timeout)
	if err != nil {
		return err
	}
	d.c, d.packet = c, packet
	return nil
}

func (d *connDevice) write(lines [][]byte, fit func(i, max int) []byte) error {
	if d.c == nil {
		return errors.New("not connected")
	}
	if err := d.c.SetWriteDeadline(time.Now().Add(d.timeout)); err != nil {
		return err
	}
	if d.packet {
		for i, l := range lines {
			if err := d.send(l, func(max int) []byte { return fit(i, max) }); err != nil {
				return err
			}
		}
		return nil
	}
	for _, b := range d.frame(lines, false) {
		if _, err := d.c.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// send sends one line as one datagram, of at most d.max bytes: a longer
// one is sent with its line cut to fit (fit gives it). A datagram the
// socket refuses as too long (EMSGSIZE: a smaller buffer, say) is a
// problem of that message, not of the device: the bound is halved, down
// to minDatagram, and the line cut again. Were it the device's, the
// stream would retry the same batch, down, for ever.
func (d *connDevice) send(line []byte, fit func(max int) []byte) error {
	if d.max <= 0 {
		d.max = maxDatagram
	}
	for {
		m := d.frame([][]byte{line}, true)[0]
		if len(m) > d.max {
			// The framing adds a header of the same length whatever the line.
			m = d.frame([][]byte{fit(d.max - (len(m) - len(line)))}, true)[0]
		}
		_, err := d.c.Write(m)
		if errors.Is(err, syscall.EMSGSIZE) && d.max > minDatagram {
			d.max = max(min(d.max, len(m))/2, minDatagram)
			continue
		}
		return err
	}
}

func (d *connDevice) close() {
	if d.c != nil {
		d.c.Close()
		d.c = nil
	}
}

// dialUnix connects to a unix socket as a stream, or, when the socket is
// a datagram one, as datagrams.
func dialUnix(path string) func(time.Duration) (net.Conn, bool, error) {
	return func(timeout time.Duration) (net.Conn, bool, error) {
		c, err := net.DialTimeout("unix", path, timeout)
		if err == nil {
			return c, false, nil
		}
		if errors.Is(err, syscall.EPROTOTYPE) {
			c, err = net.DialTimeout("unixgram", path, timeout)
			return c, true, err
		}
		return nil, false, err
	}
}

// frameLines is a plain socket's framing: JSON lines on a stream, one
// object per datagram.
func frameLines(lines [][]byte, packet bool) [][]byte {
	if packet {
		return lines
	}
	return [][]byte{joinLines(lines)}
}

// Syslog. envy writes the messages itself rather than through log/syslog:
// that package is frozen, writes RFC 3164 headers with newline framing to
// a remote daemon (a receiver can't tell where a message ends if one ever
// held a newline), reconnects and retries inside Write so that a failure
// can't be told from a success, and sets no write deadline. Remote
// messages are RFC 5424, octet-counted over TCP (RFC 6587), one per
// datagram over UDP; local ones are in the BSD form the local daemon
// (rsyslog, syslog-ng, journald) reads from /dev/log. The facility is
// authpriv (10), the severity info (6): an audit trail of who read which
// secret belongs with the authorization messages.
const syslogPri = 10*8 + 6

func syslogUDP(host string) func([][]byte, bool) [][]byte {
	return func(lines [][]byte, _ bool) [][]byte {
		out := make([][]byte, len(lines))
		for i, l := range lines {
			out[i] = rfc5424(host, l)
		}
		return out
	}
}

func syslogTCP(host string) func([][]byte, bool) [][]byte {
	return func(lines [][]byte, _ bool) [][]byte {
		var b []byte
		for _, l := range lines {
			m := rfc5424(host, l)
			b = append(strconv.AppendInt(b, int64(len(m)), 10), ' ')
			b = append(b, m...)
		}
		return [][]byte{b}
	}
}

func syslogLocal(host string) func([][]byte, bool) [][]byte {
	return func(lines [][]byte, packet bool) [][]byte {
		out := make([][]byte, 0, len(lines))
		for _, l := range lines {
			m := fmt.Appendf(nil, "<%d>%s envy[%d]: %s", syslogPri, time.Now().Format(time.Stamp), os.Getpid(), l)
			if !packet {
				m = append(m, '\n')
			}
			out = append(out, m)
		}
		if !packet {
			return [][]byte{joinFlat(out)}
		}
		return out
	}
}

func joinFlat(bs [][]byte) []byte {
	var b []byte
	for _, x := range bs {
		b = append(b, x...)
	}
	return b
}

// rfc5424 is one RFC 5424 message: PRI VERSION TIMESTAMP HOSTNAME
// APP-NAME PROCID MSGID STRUCTURED-DATA MSG.
func rfc5424(host string, msg []byte) []byte {
	if host == "" {
		host = "-"
	}
	return fmt.Appendf(nil, "<%d>1 %s %s envy %d audit - %s", syslogPri, time.Now().UTC().Format("2006-01-02T15:04:05.000000Z07:00"), host, os.Getpid(), msg)
}
