package http

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/netutil"

	"github.com/envy-dev/envy"
)

// ReservedConns are accepted beyond MaxConns for health checks and
// scraping only.
const ReservedConns = 32

// DefaultMaxConnsPerClient is the connections one client holds at once
// when Options.MaxConnsPerClient is 0: far below DefaultMaxConns, so that
// no single client reaches the server's cap.
const DefaultMaxConnsPerClient = 128

// DefaultMaxConns is the connections served at once when Options.MaxConns
// is 0: the process's file handle limit less room for the store's files,
// the reserved connections and the rest (at least 64, at most 65536).
func DefaultMaxConns() int {
	n := fileLimit() - 256
	return min(max(n, 64), 65536)
}

// Listener wraps ln so that at most Options.MaxConns connections are
// served at once. Up to ReservedConns more are accepted, so that /healthz,
// /readyz and /metrics still answer while the server is full; any other
// request on them is answered 503 and its connection closed. Beyond that,
// connections wait in the listen queue (golang.org/x/net/netutil). The
// first connection over the cap, and then one a minute while it lasts, is
// logged. The http.Server must use ConnContext for the reserved
// connections to be told apart.
//
// A client (an IPv4 address, or an IPv6 /64) holds at most
// Options.MaxConnsPerClient connections at once, the reserved ones
// included: one beyond is closed as soon as it is accepted, and logged
// (once a minute while it lasts).
func (s *Server) Listener(ln net.Listener) net.Listener {
	return &capListener{Listener: netutil.LimitListener(ln, s.opts.MaxConns+ReservedConns), s: s, per: map[string]int{}}
}

// clientKey is the address a connection's client is counted under: its
// IPv4 address, or the /64 of its IPv6 address (one host often holds a
// whole /64).
func clientKey(a net.Addr) string {
	var ip net.IP
	switch a := a.(type) {
	case *net.TCPAddr:
		ip = a.IP
	default:
		host, _, err := net.SplitHostPort(a.String())
		if err != nil {
			return a.String()
		}
		ip = net.ParseIP(host)
	}
	if ip4 := ip.To4(); ip4 != nil {
		return ip4.String()
	}
	if ip == nil {
		return a.String()
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// ConnContext marks the context of a connection accepted over the cap;
// set it as the http.Server's ConnContext beside Listener.
func (s *Server) ConnContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if cc, ok := c.(*capConn); ok && cc.over {
		return context.WithValue(ctx, overCapKey{}, true)
	}
	return ctx
}

type overCapKey struct{}

type capListener struct {
	net.Listener
	s          *Server
	open       atomic.Int64
	mu         sync.Mutex
	lastLog    time.Time
	per        map[string]int // open connections by client, under mu
	lastPerLog time.Time
}

func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := clientKey(c.RemoteAddr())
		l.mu.Lock()
		if l.per[key] >= l.s.opts.MaxConnsPerClient {
			l.mu.Unlock()
			c.Close()
			l.logPerClient(key)
			continue
		}
		l.per[key]++
		l.mu.Unlock()
		n := l.open.Add(1)
		cc := &capConn{Conn: c, l: l, key: key, over: n > int64(l.s.opts.MaxConns)}
		if cc.over {
			l.logCap(n)
		}
		return cc, nil
	}
}

func (l *capListener) logPerClient(key string) {
	l.mu.Lock()
	now := time.Now()
	if now.Sub(l.lastPerLog) < time.Minute {
		l.mu.Unlock()
		return
	}
	l.lastPerLog = now
	l.mu.Unlock()
	l.s.log.Warn("http: a client holds as many connections as it may: its new connections are closed until some of its own close",
		"client", key, "max_conns_per_client", l.s.opts.MaxConnsPerClient, "flag", "--max-conns-per-client")
}

func (l *capListener) logCap(n int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if now.Sub(l.lastLog) < time.Minute {
		return
	}
	l.lastLog = now
	l.s.log.Warn("http: connection cap reached: new connections answer only /healthz, /readyz and /metrics until some close",
		"open_connections", n, "max_conns", l.s.opts.MaxConns, "flag", "--max-conns")
}

type capConn struct {
	net.Conn
	l     *capListener
	key   string // the client's, in l.per
	over  bool
	close sync.Once
}

func (c *capConn) Close() error {
	c.close.Do(func() {
		c.l.open.Add(-1)
		c.l.mu.Lock()
		if c.l.per[c.key]--; c.l.per[c.key] <= 0 {
			delete(c.l.per, c.key)
		}
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

// overCap answers a request on a connection accepted over the cap,
// unless it asks for health or metrics; it reports whether it answered.
func (s *Server) overCap(w http.ResponseWriter, r *http.Request) bool {
	if over, _ := r.Context().Value(overCapKey{}).(bool); !over {
		return false
	}
	switch r.URL.Path {
	case "/healthz", "/readyz", "/metrics":
		return false
	}
	w.Header().Set("Connection", "close")
	s.errorWriter(r)(w, r, &envy.Error{Code: envy.EUnavailable, RetryAfter: time.Second,
		Message: "the server serves as many connections as it may (--max-conns); retry"})
	return true
}
