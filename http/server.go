// Package http serves envy's native JSON API (docs/api.md) over
// a *service.Service: routing, middleware (request ids, recovery, access log,
// metrics), authentication and rate limits, request decoding, and the one
// table that maps domain error codes to HTTP statuses and problem details.
//
// Handlers are thin: decode, call the service, encode. Validation and
// permission checks live in the service, so that every dialect gets them.
// Dialect adapters (http/compat/<name>) mount their routes on the same
// Server with Handle and authenticate with Authenticate, sharing the
// middleware, the rate limits and the audit of refusals.
//
// This package imports the domain and never a storage or crypto package
// (its tests may).
package http

import (
	"context"
	_ "embed"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/http/wire"
	"github.com/envy-dev/envy/internal/opt"
	"github.com/envy-dev/envy/service"
)

// Defaults of Options.
const (
	DefaultMaxBody   = wire.DefaultLimit
	DefaultRateLimit = 1000
	// Failed authentication is limited per client address.
	DefaultAuthFailRate = 10
	// Bytes of request bodies held at once, across all requests.
	DefaultMaxBodyBytesInFlight = 256 << 20
	// Watch streams one token may hold open: a deploy token may well
	// watch from a thousand workloads, but not from five thousand.
	DefaultMaxWatchesPerToken = 1000
	DefaultAuthFailBurst      = 50
)

// keepAliveInterval is how often a watch stream sends a comment line, so
// that proxies and clients see the connection is alive.
const keepAliveInterval = 15 * time.Second

// Options configure a Server. Zero fields take the defaults, except
// RateLimit, whose zero turns the per-token limit off.
type Options struct {
	// MaxBody is the largest request body accepted (413 beyond);
	// 0 means DefaultMaxBody.
	MaxBody int64
	// RateLimit is each token's request rate per second, with a burst of
	// twice as many; 0 turns the limit off, as `--rate-limit 0` does.
	// DefaultRateLimit is the flag's default.
	RateLimit float64
	// AuthFailRate limits failed authentications per client address per
	// second (burst 5×); 0 means DefaultAuthFailRate.
	AuthFailRate float64
	// AuthFailBurst is the burst of that limit; 0 means five times the
	// rate (DefaultAuthFailBurst at the default rate).
	AuthFailBurst int
	// Logger receives the access log and internal errors; nil discards.
	Logger *slog.Logger
	// Registry receives the metrics and is served at /metrics; nil makes a
	// new one.
	Registry *prometheus.Registry
	// Ready answers /readyz; nil uses the service's Ready.
	Ready func(ctx context.Context) error
	// BodyTimeout bounds the time to read a request body (400 beyond);
	// 0 means wire.DefaultTimeout.
	BodyTimeout time.Duration
	// MaxBodyBytesInFlight bounds the bytes of request bodies that all
	// requests hold at once (503 with Retry-After for a body that finds
	// no room within BodyTimeout); 0 means DefaultMaxBodyBytesInFlight.
	MaxBodyBytesInFlight int64
	// MaxWatchesPerToken bounds the watch streams one token holds open
	// (429 beyond); 0 means DefaultMaxWatchesPerToken.
	MaxWatchesPerToken int
	// MaxConns bounds the connections served at once (see Listener);
	// 0 means DefaultMaxConns(), from the process's file handle limit.
	MaxConns int
	// MaxConnsPerClient bounds the connections one client address (an
	// IPv6 /64) holds at once (see Listener); 0 means
	// DefaultMaxConnsPerClient.
	MaxConnsPerClient int
}

// Server is the native API over a Service. Create it with NewServer.
type Server struct {
	svc            *service.Service
	opts           Options
	log            *slog.Logger
	mux            *http.ServeMux
	handler        http.Handler
	body           *wire.Body   // reads request bodies
	budget         *wire.Budget // of request body bytes, for every API
	watches        watchCounts
	metrics        *metrics
	metricsHandler http.Handler // serves /metrics
	authFail       *limiters    // per client address
	perToken       *limiters    // per token id; nil when off
	keepAlive      time.Duration
	envelopes      []envelope // error writers of path prefixes (dialects)
	now            func() time.Time
	// scopes serves every path under /v1/scopes/ (routes); scopesShared
	// is set once Handle mounts a pattern that could match such a path
	// too, after which they go through the mux (serveClean).
	scopes       *wire.ScopeMux
	scopesShared bool
}

// NewServer returns the native API over svc.
func NewServer(svc *service.Service, opts Options) *Server {
	opt.Default(&opts.MaxBody, DefaultMaxBody)
	opt.Default(&opts.MaxBodyBytesInFlight, DefaultMaxBodyBytesInFlight)
	// One body at the limit always fits.
	opts.MaxBodyBytesInFlight = max(opts.MaxBodyBytesInFlight, opts.MaxBody)
	opt.Default(&opts.MaxConns, DefaultMaxConns())
	opt.Default(&opts.MaxConnsPerClient, DefaultMaxConnsPerClient)
	opt.Default(&opts.MaxWatchesPerToken, DefaultMaxWatchesPerToken)
	opt.Default(&opts.AuthFailRate, DefaultAuthFailRate)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	if opts.Ready == nil {
		opts.Ready = svc.Ready
	}
	s := &Server{
		svc:            svc,
		opts:           opts,
		log:            opts.Logger,
		mux:            http.NewServeMux(),
		budget:         wire.NewBudget(opts.MaxBodyBytesInFlight),
		metrics:        newMetrics(opts.Registry),
		metricsHandler: promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{}),
		keepAlive:      keepAliveInterval,
		now:            time.Now,
	}
	if opts.AuthFailBurst <= 0 {
		opts.AuthFailBurst = max(1, int(opts.AuthFailRate*DefaultAuthFailBurst/DefaultAuthFailRate))
	}
	s.authFail = newLimiters(opts.AuthFailRate, opts.AuthFailBurst)
	if opts.RateLimit > 0 {
		s.perToken = newLimiters(opts.RateLimit, max(1, int(opts.RateLimit*2)))
	}
	s.body = s.NewBody(nativeWords)
	s.body.RequireJSON, s.body.KeepInvalidText = true, true
	register(opts.Registry, newCacheCollector(svc.CacheStats))
	register(opts.Registry, newWebhookCollector(svc.WebhookStats))
	s.routes()
	s.handler = http.HandlerFunc(s.serve)
	return s
}

// Handler returns the http.Handler that serves every route, the native
// ones and those mounted with Handle.
func (s *Server) Handler() http.Handler { return s.handler }

// MaxBody returns the largest request body the server accepts, for the
// routes mounted with Handle that read their own bodies.
func (s *Server) MaxBody() int64 { return s.opts.MaxBody }

// NewBody returns a body reader with the server's limits (MaxBody,
// BodyTimeout, the bytes in flight shared by every API) and an API's
// words, for the routes mounted with Handle.
func (s *Server) NewBody(words wire.Words) *wire.Body {
	return &wire.Body{Limit: s.opts.MaxBody, Timeout: s.opts.BodyTimeout, Budget: s.budget, Words: words}
}

// ParseForm reads a form body (r.ParseForm) of at most limit bytes as
// sent (and never more than MaxBody; limit <= 0 means MaxBody), as the
// API reads its bodies: within the server's BodyTimeout, so that a
// dashboard form holds its connection no longer than an API body does,
// and taking room in the bytes in flight that every API shares
// (MaxBodyBytesInFlight), held until the request ends. A form that says
// it is larger than limit is refused before a byte of it is read. It
// answers ETooLarge (naming the limit), EUnavailable with a RetryAfter (no
// room for the body within BodyTimeout), EBadRequest (the body did not
// arrive in time, or is not a form); after a failure the connection is
// closed.
func (s *Server) ParseForm(w http.ResponseWriter, r *http.Request, limit int64) error {
	if limit <= 0 || limit > s.opts.MaxBody {
		limit = s.opts.MaxBody
	}
	if r.ContentLength > limit {
		w.Header().Set("Connection", "close")
		return formTooLarge(limit)
	}
	timeout := s.opts.BodyTimeout
	if timeout <= 0 {
		timeout = wire.DefaultTimeout
	}
	start := time.Now()
	rc := http.NewResponseController(w)
	deadline := rc.SetReadDeadline(start.Add(timeout)) == nil
	if r.Body != nil && r.Body != http.NoBody {
		// Under MaxBytesReader, whose type tells r.ParseForm that the
		// body is bounded already (it reads at most 10 MB of any other).
		r.Body = http.MaxBytesReader(w, readCloser{s.budget.Reader(r.Context(), r.Body, start.Add(timeout)), r.Body}, limit)
	}
	err := r.ParseForm()
	if err != nil {
		w.Header().Set("Connection", "close")
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			return formTooLarge(tooBig.Limit)
		case errors.Is(err, wire.ErrNoRoom):
			return wire.NoRoom()
		case errors.Is(err, os.ErrDeadlineExceeded):
			return envy.Errorf(envy.EBadRequest, "the form did not arrive within %s", timeout)
		}
		return envy.Errorf(envy.EBadRequest, "the form could not be read")
	}
	if deadline {
		rc.SetReadDeadline(time.Time{})
	}
	return nil
}

// formTooLarge refuses a form larger than limit bytes.
func formTooLarge(limit int64) error {
	return envy.Errorf(envy.ETooLarge, "the form is larger than this server accepts (%d bytes)", limit)
}

// readCloser reads from one reader and closes another: a request body
// read through a wrapper.
type readCloser struct {
	io.Reader
	io.Closer
}

// Logger returns the server's logger, for the routes mounted with Handle
// that log their own internal errors.
func (s *Server) Logger() *slog.Logger { return s.log }

// Handle mounts h at pattern (a net/http ServeMux pattern such as
// "GET /v2/acts/{actorId}/env-vars") on the server's mux, behind the same
// middleware as the native routes: request id, recovery, access log and
// metrics (whose route label is the pattern). h does its own
// authentication, with Authenticate, and writes its own errors. Call it
// before serving; a pattern that conflicts with a native route panics, as
// ServeMux does. Paths that no pattern matches get the native 404 (or 405)
// problem; a dialect that wants its own envelope for those mounts a
// catch-all of its own, such as "/v2/".
func (s *Server) Handle(pattern string, h http.Handler) {
	s.scopesShared = s.scopesShared || underScopes(pattern)
	s.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		infoFrom(r.Context()).route = pattern
		h.ServeHTTP(w, r)
	}))
}

// envelope is the error writer of the paths under a prefix.
type envelope struct {
	prefix string
	write  func(w http.ResponseWriter, r *http.Request, err error)
}

// HandleErrors makes write answer the errors that the server itself
// finds in requests under prefix (such as a path it refuses), so that a
// dialect's clients read them in its envelope. Call it before serving.
func (s *Server) HandleErrors(prefix string, write func(w http.ResponseWriter, r *http.Request, err error)) {
	s.envelopes = append(s.envelopes, envelope{prefix, write})
}

// errorWriter returns the error writer of r's path: the longest prefix's,
// else the native problem.
func (s *Server) errorWriter(r *http.Request) func(w http.ResponseWriter, r *http.Request, err error) {
	write, n := s.writeError, 0
	for _, e := range s.envelopes {
		if len(e.prefix) > n && strings.HasPrefix(r.URL.Path, e.prefix) {
			write, n = e.write, len(e.prefix)
		}
	}
	return write
}

// serveClean refuses a path that has a "." or ".." segment or an empty
// one, judged after percent-decoding, instead of letting the mux clean it
// and redirect: a client would follow the redirect into another scope
// than the one it named. Other paths go to the mux.
func (s *Server) serveClean(w http.ResponseWriter, r *http.Request) {
	if s.overCap(w, r) {
		return
	}
	p := strings.TrimPrefix(r.URL.Path, "/")
	for { // over the segments, without allocating: this runs on every request
		seg, rest, more := strings.Cut(p, "/")
		if seg == "." || seg == ".." || seg == "" && more {
			CloseUnread(w, r)
			s.errorWriter(r)(w, r, envy.Invalid(envy.Field("path", "unclean_path",
				"path %s has a %q segment; envy does not clean paths: send the path you mean", strconv.Quote(r.URL.Path), seg)))
			return
		}
		if !more {
			break
		}
		p = rest
	}
	if !s.scopesShared && r.URL.RawPath == "" && r.Method != http.MethodConnect {
		if path, ok := strings.CutPrefix(r.URL.Path, "/v1/scopes/"); ok {
			// What the mux does for "/v1/scopes/{path...}", the one
			// pattern that matches here: without its walk of the pattern
			// tree, which allocates at each segment (its wildcard
			// matches), about 10 allocations a request. With RawPath
			// empty the path has no escape of its own, so the mux's
			// unescaped wildcard is the rest of Path.
			r.SetPathValue("path", path)
			s.scopes.ServeHTTP(w, r)
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

// underScopes reports whether a ServeMux pattern could match a path under
// /v1/scopes/: its first segment is a wildcard, or it is "v1" and the
// second is "scopes" or a wildcard (or missing, as in "/" or "/v1/").
func underScopes(pattern string) bool {
	_, path, ok := strings.Cut(pattern, "/")
	if !ok {
		return true // not a pattern ServeMux takes; it panics on it
	}
	seg1, rest, _ := strings.Cut(path, "/")
	seg2, _, _ := strings.Cut(rest, "/")
	wild := func(seg string) bool { return seg == "" || strings.HasPrefix(seg, "{") }
	return wild(seg1) || seg1 == "v1" && (wild(seg2) || seg2 == "scopes")
}

// CloseUnread asks for the connection to be closed after a reply to a
// request whose body was not read (refused before reading it), so that
// the server does not wait to discard the body of a slow client.
func CloseUnread(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
		w.Header().Set("Connection", "close")
	}
}

// Permit refuses, before the request's body is read, a caller who may not
// do a on scope: the service decides (service.Service.Authorize: not found
// when the caller may not see the scope, forbidden otherwise) and records
// the refusal as action. A scope path that is not valid is left to the
// service to refuse.
func (s *Server) Permit(r *http.Request, a envy.Action, scope string, action envy.AuditAction) error {
	if envy.ValidateScopePath("path", scope) != nil {
		return nil
	}
	return s.svc.Authorize(r.Context(), a, scope, action)
}

// reqInfo is what the middleware learns from the inner handlers.
type reqInfo struct {
	route string // the route pattern, for logs and metrics
}

type infoKey struct{}

func infoFrom(ctx context.Context) *reqInfo {
	if i, ok := ctx.Value(infoKey{}).(*reqInfo); ok {
		return i
	}
	return &reqInfo{}
}

// The middleware around every route: Handler serves each request through
// serve, which does in one step, with one allocation of per-request state,
// what RequestID(Observe(Recover(serveClean))) does. The three stay exported so
// that a handler served beside the API (such as a dashboard) can use the
// same, and RequireToken authenticates.

// reqState is what the middleware keeps for one request, allocated once:
// the caller (for the service), what the route tells the log and the
// metrics, the recording response writer and the context that carries
// them.
type reqState struct {
	caller service.Caller
	info   reqInfo
	rw     responseWriter
	ctx    reqCtx
	body   trackedBody
	id     [1]string // the X-Request-Id header's values
}

// reqCtx carries a request's reqInfo beside its parent's values, so that
// the info needs no context of its own; and, under serve, the caller that
// serve made, which Authenticate completes in place, answered under
// service.CallerKey as service.WithCaller's context would.
type reqCtx struct {
	context.Context
	info   *reqInfo
	caller *service.Caller // nil unless serve made it
}

type reqCtxKey struct{}

func (c *reqCtx) Value(k any) any {
	switch k.(type) {
	case infoKey:
		return c.info
	case reqCtxKey:
		return c
	case service.CallerKey:
		if c.caller != nil {
			return c.caller
		}
	}
	return c.Context.Value(k)
}

// ownCaller returns the caller in ctx when serve made it for this request
// and no one has replaced it since, so that it may be changed in place.
func ownCaller(ctx context.Context) *service.Caller {
	rc, ok := ctx.Value(reqCtxKey{}).(*reqCtx)
	if !ok || rc.caller == nil || service.CallerFrom(ctx) != rc.caller {
		return nil
	}
	return rc.caller
}

// serve is RequestID(Observe(Recover(serveClean))) in one function.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	st := &reqState{info: reqInfo{route: "unmatched"}}
	st.caller = service.Caller{RequestID: requestID(w, r, &st.id), Client: clientAddr(r)}
	st.ctx = reqCtx{Context: r.Context(), info: &st.info, caller: &st.caller}
	r = r.WithContext(&st.ctx)
	st.rw.ResponseWriter = w
	if r.Body != nil && r.Body != http.NoBody {
		st.body.ReadCloser = r.Body
		r.Body = &st.body
		st.rw.body = &st.body
	} else {
		// The server's ReadTimeout bounds a request's head and body; a
		// request without a body is done reading, and must not have its
		// context cancelled when a long reply (a watch, a backup)
		// outlasts it.
		setReadDeadline(w, time.Time{})
	}
	defer s.observed(r, &st.rw, &st.info, start)
	defer leaveUnread(&st.rw)
	defer s.recovered(&st.rw, r)
	s.serveClean(&st.rw, r)
}

// trackedBody is a request body that knows whether it was read to its
// end.
type trackedBody struct {
	io.ReadCloser
	eof bool
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

// unread reports whether a body was sent and not read to its end.
func (b *trackedBody) unread() bool { return b != nil && b.ReadCloser != nil && !b.eof }

// leaveUnread runs when a handler has returned. A body it left unread
// (a reply before the body: 401, 404, 405, 413, /healthz) is not waited
// for: net/http would read up to 256 KiB of it, without a deadline, to
// keep the connection, so that a client sending a byte a second holds
// the connection as long as it likes. The reply closes the connection
// instead (responseWriter sets Connection: close when its header goes
// out), and a read deadline in the past ends the discard at once.
func leaveUnread(rw *responseWriter) {
	if !rw.body.unread() {
		return
	}
	if !rw.wroteHeader {
		rw.Header().Set("Connection", "close")
	}
	setReadDeadline(rw.ResponseWriter, time.Now())
}

// setReadDeadline sets the read deadline of w's connection, as
// http.ResponseController does (through the writers that wrap it), but
// without allocating one: every request runs it.
func setReadDeadline(w http.ResponseWriter, t time.Time) {
	for {
		switch x := w.(type) {
		case interface{ SetReadDeadline(time.Time) error }:
			_ = x.SetReadDeadline(t)
			return
		case interface{ Unwrap() http.ResponseWriter }:
			w = x.Unwrap()
		default:
			return
		}
	}
}

// requestID is the request's id, its X-Request-Id when that is short and
// plain, else a new one; it answers the id in X-Request-Id, whose values
// are kept in header (the request's own: net/http never changes a
// header's values, and Set or Add replace the slice).
func requestID(w http.ResponseWriter, r *http.Request, header *[1]string) string {
	id := r.Header.Get("X-Request-Id")
	if !validRequestID(id) {
		id = newRequestID()
	}
	header[0] = id
	w.Header()["X-Request-Id"] = header[:]
	return id
}

// newRequestID returns a random UUID (version 4). Request ids need to be
// unique, not secret: math/rand/v2's generator, seeded by the runtime and
// per thread, makes them without a system call or a lock.
func newRequestID() string {
	var u [16]byte
	binary.LittleEndian.PutUint64(u[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(u[8:], rand.Uint64())
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}

// RequestID gives each request an id, its X-Request-Id when that is short
// and plain, else a new one, answered in X-Request-Id; and a context whose
// service.Caller holds the id and the client's address, for the service's
// audit and the logs.
func RequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := service.WithCaller(r.Context(), &service.Caller{RequestID: requestID(w, r, new([1]string)), Client: clientAddr(r)})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// Observe writes the access log and the metrics of each request, labelled
// with the route pattern that served it (never the raw path).
func (s *Server) Observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &reqInfo{route: "unmatched"}
		r = r.WithContext(&reqCtx{Context: r.Context(), info: info})
		rw := &responseWriter{ResponseWriter: w}
		defer s.observed(r, rw, info, start)
		next.ServeHTTP(rw, r)
	})
}

// observed writes the access log line and the metrics of a request.
func (s *Server) observed(r *http.Request, rw *responseWriter, info *reqInfo, start time.Time) {
	status := rw.status
	if status == 0 {
		status = http.StatusOK
	}
	dur := time.Since(start)
	s.metrics.observe(info.route, r.Method, status, dur)
	// Successful requests log at debug level: at thousands of reads a
	// second an info line each would cost more than the read; the audit
	// log records every write and reveal anyway.
	level := slog.LevelDebug
	if status >= 400 && status != StatusClientClosed {
		level = slog.LevelInfo
	}
	ctx := r.Context()
	if !s.log.Enabled(ctx, level) {
		return
	}
	s.log.LogAttrs(ctx, level, "http request",
		slog.String("method", r.Method),
		slog.String("route", info.route),
		slog.Int("status", status),
		slog.Duration("duration", dur),
		slog.String("request_id", service.CallerFrom(ctx).RequestID),
	)
}

// Recover answers a panic of next as a 500 problem (unless the reply had
// begun) and logs it; http.ErrAbortHandler goes on up, as net/http means.
func (s *Server) Recover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw, ok := w.(*responseWriter)
		if !ok {
			rw = &responseWriter{ResponseWriter: w}
		}
		defer s.recovered(rw, r)
		next.ServeHTTP(rw, r)
	})
}

// recovered is Recover's deferred half; it must be deferred itself, as
// recover only works there.
func (s *Server) recovered(rw *responseWriter, r *http.Request) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v)
	}
	ctx := r.Context()
	s.log.ErrorContext(ctx, "http: panic in handler",
		"request_id", service.CallerFrom(ctx).RequestID, "route", infoFrom(ctx).route, "panic", v)
	if !rw.wroteHeader {
		s.writeError(rw, r, envy.Errorf(envy.EInternal, "Internal error"))
	}
}

// RequireToken authenticates each request with the token that tokenOf
// finds in it (see Authenticate: the rate limits and the audit of
// refusals apply) before next serves it; onError answers a refusal, in
// the envelope of whoever serves next (nil: the native problem).
func (s *Server) RequireToken(tokenOf func(*http.Request) string, onError func(http.ResponseWriter, *http.Request, error)) func(http.Handler) http.Handler {
	return s.requireToken(tokenOf, onError, checkFirst)
}

// requireToken is RequireToken; at is authenticate's.
func (s *Server) requireToken(tokenOf func(*http.Request) string, onError func(http.ResponseWriter, *http.Request, error), at checkAt) func(http.Handler) http.Handler {
	if onError == nil {
		onError = s.writeError
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Cache-Control"] = []string{"no-store"}
			ar, err := s.authenticate(r, tokenOf(r), at)
			if err != nil {
				CloseUnread(w, r)
				onError(w, r, err)
				return
			}
			next.ServeHTTP(w, ar)
		})
	}
}

// WriteError answers err as the native API's problem details.
func (s *Server) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	s.writeError(w, r, err)
}

// validRequestID accepts an incoming X-Request-Id only when it is short and
// plain, so that it can't inject anything into logs or the audit.
func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// clientAddr is the client's IP address. Proxy headers are not trusted.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// responseWriter records the status for logs and metrics and whether the
// header went out. Unwrap lets http.ResponseController reach Flush and
// deadlines of the connection.
type responseWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	body        *trackedBody // the request's, nil without one
}

func (w *responseWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status = code
		w.wroteHeader = code >= 200
		// A reply that goes out before its request's body was read
		// closes the connection rather than wait to discard the body.
		if w.wroteHeader && w.body.unread() {
			w.Header().Set("Connection", "close")
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *responseWriter) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// route is one native route. The table (routeTable) is the one list used
// both to register the routes and, by a test, to check the OpenAPI
// document.
type route struct {
	Method string
	Path   string // OpenAPI form: "/v1/scopes/{path}/-/vars/{name}"
	Public bool   // no token needed
	// Action, on a scope route with a body, is what the caller must be
	// allowed on the scope before the body is read; Audit names the
	// refusal in the audit log.
	Action envy.Action
	Audit  envy.AuditAction
	// Check is where the check of the caller's cached token against a
	// shared store is made (authenticate): before the handler, unless the
	// route says otherwise. checkAtWrite marks a route whose handler reads
	// nothing of the store before it writes vars, and answers nothing but
	// that write's reply or an error (service.Service.SetVar, MergeVars,
	// ReplaceVars: each through Service.write, whose every success is a
	// store write): the check is left to the write's transaction
	// (service.Service.AuthenticateWrite). checkAtReveal marks one whose
	// every answer but an error is a reveal of a scope's resolved env
	// (service.Service.EnvReplyRaw): the check of the token and of the
	// scope's cached tree is left to the reveal's audit entry
	// (service.Service.AuthenticateReveal).
	Check checkAt
	h     func(s *Server, w http.ResponseWriter, r *http.Request) error
}

// scopePrefix is where scope routes start; the rest of their path, after
// the scope path, is their template in a wire.ScopeMux.
const scopePrefix = "/v1/scopes/{path}"

// routes registers the route table on the mux. The routes under
// scopePrefix are served by one ServeMux pattern, "/v1/scopes/{path...}",
// whose wire.ScopeMux splits the path at "/-/" (serveClean hands it most
// such paths itself, without the mux).
func (s *Server) routes() {
	scopes := &wire.ScopeMux{NotFound: s.notFound, MethodNotAllowed: s.methodNotAllowed}
	for _, rt := range routeTable {
		if rest, ok := strings.CutPrefix(rt.Path, scopePrefix); ok {
			scopes.Handle(rt.Method, rest, s.wrap(rt))
			continue
		}
		s.mux.Handle(rt.Method+" "+rt.Path, s.wrap(rt))
	}
	s.mux.Handle("/v1/scopes/{path...}", scopes)
	s.mux.Handle("/", http.HandlerFunc(s.notFound))
	s.scopes = scopes
}

// wrap turns a route into an http.Handler: it names the route for logs and
// metrics, authenticates unless the route is public, and writes the
// handler's error as a problem.
func (s *Server) wrap(rt route) http.Handler {
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rt.Action != "" {
			if err := s.Permit(r, rt.Action, r.PathValue("path"), rt.Audit); err != nil {
				CloseUnread(w, r)
				s.writeError(w, r, s.confirmed(r, err))
				return
			}
		}
		if err := rt.h(s, w, r); err != nil {
			s.writeError(w, r, s.confirmed(r, err))
		}
	})
	if !rt.Public {
		h = s.requireToken(bearer, nil, rt.Check)(h)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		infoFrom(r.Context()).route = rt.Path
		h.ServeHTTP(w, r)
	})
}

// bearer is the native API's token: "Authorization: Bearer <token>".
func bearer(r *http.Request) string {
	token, _ := BearerToken(r)
	return token
}

// notFound answers every path that no route serves.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	// A path served with another method is 405, as ServeMux would answer
	// without the catch-all.
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodPatch, http.MethodPost, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		r2 := r.Clone(r.Context())
		r2.Method = m
		if _, pat := s.mux.Handler(r2); pat != "" && pat != "/" && !strings.HasPrefix(pat, "/v1/scopes/{path") {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		s.methodNotAllowed(w, r, allow)
		return
	}
	s.writeError(w, r, envy.Errorf(envy.ENotFound, "no such route"))
}

func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request, allow []string) {
	w.Header().Set("Allow", strings.Join(allow, ", "))
	s.writeProblem(w, r, problem{
		Type:   "method_not_allowed",
		Title:  "Method not allowed",
		Status: http.StatusMethodNotAllowed,
		Detail: "the route does not serve method " + r.Method,
	})
}

// Public routes.

// healthzReply is what writeJSON gives {"status": "ok"}: /healthz is the
// cost of the middleware alone, so it encodes nothing, and its headers
// are made once.
var healthzReply = wire.NewFixed(wire.ContentTypeJSON, []byte(`{"status":"ok"}`+"\n"))

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) error {
	healthzReply.Write(w, http.StatusOK)
	return nil
}

func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if err := s.opts.Ready(ctx); err != nil {
		if cerr := r.Context().Err(); cerr != nil {
			// The prober gave up first (its timeout is shorter than
			// ours): a client gone, not a store's error nor a 503.
			return cerr
		}
		s.log.WarnContext(ctx, "http: not ready", "request_id", service.CallerFrom(ctx).RequestID, "error", err)
		e := envy.AsError(err)
		if e == nil || e.Code != envy.EUnavailable {
			msg := "the server is not ready"
			if e != nil {
				msg = e.Message
			}
			e = &envy.Error{Code: envy.EUnavailable, Message: msg}
		}
		return e
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) error {
	s.metricsHandler.ServeHTTP(w, r)
	return nil
}

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(openAPIDoc)
	return nil
}

//go:embed openapi.json
var openAPIDoc []byte
