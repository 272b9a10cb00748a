// Package client is the Go SDK for envy's native API (/v1): scopes, vars,
// the resolved env, history, tokens, audit, consumer reports, and the
// watch stream of changes (Watch, which reconnects and resumes by itself).
//
// It speaks the API over HTTP and imports nothing but the standard library:
// never the server's packages, so that a program which only reads its
// config from envy does not link a database driver, and so that the SDK is
// a true second implementation of the wire contract.
//
// Every call takes a context first. Errors from the server come back as
// *Error, parsed from the problem+json reply; a server that cannot be
// reached gives a *NetError naming the address.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// DefaultAddr is where envy listens by default.
const DefaultAddr = "http://127.0.0.1:8750"

// Client calls one envy server with one token. It is safe for concurrent
// use.
type Client struct {
	addr      string // scheme://host[:port][/base], no trailing slash
	token     string
	renewed   atomic.Pointer[string] // the token SetToken set, in place of token
	hc        *http.Client
	userAgent string
	tls       *tls.Config
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the Client send its requests with hc (for timeouts,
// TLS settings or a test transport).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// WithTLSConfig makes the Client check the server's certificate with cfg,
// such as one whose RootCAs hold a private CA.
func WithTLSConfig(cfg *tls.Config) Option { return func(c *Client) { c.tls = cfg } }

// WithUserAgent sets the User-Agent header of every request.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// New returns a Client for the server at addr (such as
// "http://127.0.0.1:8750"; a bare host:port means http://) that
// authenticates with token. An empty addr means DefaultAddr.
func New(addr, token string, opts ...Option) *Client {
	c := &Client{
		addr:      normalizeAddr(addr),
		token:     token,
		hc:        &http.Client{Timeout: 60 * time.Second},
		userAgent: "envy-go-client",
	}
	for _, o := range opts {
		o(c)
	}
	// A redirect is never followed: a server that answers one for an API
	// path means another path than the one asked for (a cleaned scope
	// path, a proxy's login page), and the caller must hear of it.
	hc := *c.hc
	if hc.CheckRedirect == nil {
		hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	if c.tls != nil {
		base, ok := hc.Transport.(*http.Transport)
		if !ok || base == nil {
			base = http.DefaultTransport.(*http.Transport)
		}
		t := base.Clone()
		t.TLSClientConfig = c.tls
		hc.Transport = t
	}
	c.hc = &hc
	return c
}

func normalizeAddr(addr string) string {
	addr = strings.TrimSpace(addr)
	if addr == "" {
		addr = DefaultAddr
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	return strings.TrimRight(addr, "/")
}

// Addr returns the server's address as the Client uses it.
func (c *Client) Addr() string { return c.addr }

// WriteOption modifies a write request.
type WriteOption func(*writeOpts)

type writeOpts struct {
	ifMatch int64
}

// WithIfMatch makes a write conditional: the server applies it only while
// the scope's revision is still rev, and answers 412 precondition_failed
// (an *Error) when the scope has moved on.
func WithIfMatch(rev int64) WriteOption { return func(o *writeOpts) { o.ifMatch = rev } }

type captureKey struct{}

// CaptureBody returns a context that makes the next calls made with it
// store the raw body of their reply in *dst (the JSON exactly as the server
// sent it, for a caller that passes it on, such as `envy -o json`). A reply
// without a body (204) leaves *dst nil.
func CaptureBody(ctx context.Context, dst *[]byte) context.Context {
	return context.WithValue(ctx, captureKey{}, dst)
}

// request is one API call.
type request struct {
	method string
	path   string // below the address, starting with /v1/
	query  url.Values
	body   any // encoded as JSON when not nil
	write  []WriteOption
}

// reply is what came back from a successful call.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// do sends req and returns a 2xx reply, or an *Error for any other status,
// or a *NetError when the server could not be reached.
func (c *Client) do(ctx context.Context, req request) (*reply, error) {
	u := c.addr + req.path
	if len(req.query) > 0 {
		u += "?" + req.query.Encode()
	}
	var body io.Reader
	if req.body != nil {
		b, err := json.Marshal(req.body)
		if err != nil {
			return nil, fmt.Errorf("envy client: encoding the request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, u, body)
	if err != nil {
		return nil, fmt.Errorf("envy client: %w", err)
	}
	if req.body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	hr.Header.Set("Accept", "application/json, application/problem+json, text/plain")
	c.identify(hr.Header)
	var wo writeOpts
	for _, o := range req.write {
		o(&wo)
	}
	if wo.ifMatch > 0 {
		hr.Header.Set("If-Match", `"`+strconv.FormatInt(wo.ifMatch, 10)+`"`)
	}
	resp, err := c.hc.Do(hr)
	if err != nil {
		return nil, c.netError(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, c.netError(err)
	}
	if resp.StatusCode >= 300 && resp.StatusCode <= 399 {
		return nil, &RedirectError{Addr: c.addr, Method: req.method, Path: req.path, Status: resp.StatusCode, Location: resp.Header.Get("Location")}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, parseError(resp, data)
	}
	if dst, ok := ctx.Value(captureKey{}).(*[]byte); ok && dst != nil {
		if len(data) == 0 {
			*dst = nil
		} else {
			*dst = append((*dst)[:0], data...)
		}
	}
	return &reply{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// identify sets the headers that say who asks: the token and the user
// agent, when set.
func (c *Client) identify(h http.Header) {
	if t := c.bearer(); t != "" {
		h.Set("Authorization", "Bearer "+t)
	}
	if c.userAgent != "" {
		h.Set("User-Agent", c.userAgent)
	}
}

// call sends req and decodes the JSON reply into out (when out is not nil).
func (c *Client) call(ctx context.Context, req request, out any) (*reply, error) {
	rep, err := c.do(ctx, req)
	if err != nil {
		return nil, err
	}
	if out != nil && rep.status != http.StatusNoContent {
		if err := json.Unmarshal(rep.body, out); err != nil {
			return nil, fmt.Errorf("envy at %s sent a reply that is not the expected JSON (%s %s): %v",
				c.addr, req.method, req.path, err)
		}
	}
	return rep, nil
}

// RedirectError is a reply that sent the request elsewhere. The Client
// never follows one: the server (or a proxy in front of it) means another
// path than the one asked for, such as a cleaned scope path.
type RedirectError struct {
	Addr     string
	Method   string
	Path     string
	Status   int
	Location string
}

func (e *RedirectError) Error() string {
	return oneLine(fmt.Sprintf("envy at %s answered %s %s with a redirect (%d) to %q; not followed: check the address, and that the scope path has no empty, '.' or '..' segment",
		e.Addr, e.Method, e.Path, e.Status, e.Location))
}

// NetError is a request that got no HTTP reply: the server is down, the
// address is wrong, or the context ended.
type NetError struct {
	Addr string
	Err  error
}

func (e *NetError) Error() string {
	return fmt.Sprintf("cannot reach envy at %s: %v", e.Addr, e.Err)
}

func (e *NetError) Unwrap() error { return e.Err }

func (c *Client) netError(err error) error {
	// *url.Error repeats the method and the whole URL; the address is
	// enough, and the rest of the URL may name a scope.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return &NetError{Addr: c.addr, Err: err}
}

// etagRevision reads the revision from an ETag: "<revision>" header.
func etagRevision(h http.Header) int64 {
	v := strings.TrimPrefix(strings.TrimSpace(h.Get("ETag")), "W/")
	n, _ := strconv.ParseInt(strings.Trim(v, `"`), 10, 64)
	return n
}

// scopeURL returns the URL path of a scope, and of what sits below it
// after "/-/". The path goes as the caller typed it, never cleaned: scope
// segments are [A-Za-z0-9._~-], safe in a URL as they are, and the server
// refuses anything else (an empty, '.' or '..' segment included) with an
// error that names the path; nothing is escaped here (escaping '/' would
// change the path).
func scopeURL(scope string, below ...string) string {
	p := "/v1/scopes/" + scope
	if len(below) > 0 {
		p += "/-/" + strings.Join(below, "/")
	}
	return p
}
