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
func (s *Server) Listener(ln net.Listener) net.Listener {
	return &capListener{Listener: netutil.LimitListener(ln, s.opts.MaxConns+ReservedConns), s: s}
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
	s       *Server
	open    atomic.Int64
	mu      sync.Mutex
	lastLog time.Time
}

func (l *capListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	n := l.open.Add(1)
	cc := &capConn{Conn: c, l: l, over: n > int64(l.s.opts.MaxConns)}
	if cc.over {
		l.logCap(n)
	}
	return cc, nil
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
	over  bool
	close sync.Once
}

func (c *capConn) Close() error {
	c.close.Do(func() { c.l.open.Add(-1) })
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
