package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Event is a change to a scope's resolved env, as GET …/-/watch reports
// it: the scope and the revision its resolved env now has.
type Event struct {
	Scope    string `json:"scope"`
	Revision int64  `json:"revision"`
	// Wait: the scope has a rollout policy and the watcher (named with
	// WatchConsumer) is to keep running what it has until its Grant
	// comes.
	Wait bool `json:"-"`
	// Grant, when set, is the watcher's turn to restart, to Revision or
	// newer.
	Grant *Grant `json:"-"`
}

// Grant is an instance's turn to restart under a rollout policy: it is to
// be up and healthy again within HealthTimeout, and its slot is freed at
// LeaseExpiresAt at the latest. A zero HealthTimeout is a go with no slot
// to free (the scope's policy went while the instance waited).
type Grant struct {
	HealthTimeout  time.Duration
	LeaseExpiresAt time.Time
}

// Watch defaults.
const (
	DefaultWatchMinWait = 500 * time.Millisecond
	DefaultWatchMaxWait = 30 * time.Second
	// DefaultWatchIdleTimeout is three of the server's 15 s keepalive
	// comments: a stream silent for longer is dead, whatever TCP thinks.
	DefaultWatchIdleTimeout = 45 * time.Second
)

// WatchOption tunes Watch.
type WatchOption func(*watchConfig)

type watchConfig struct {
	minWait, maxWait time.Duration
	idle             time.Duration
	onRetry          func(err error, wait time.Duration)
	onConnect        func()
	consumer         string
}

// WatchConsumer names the watcher as the instance id (its consumer id, as
// ReportConsumer names it): a change of a scope with a rollout policy then
// comes as an Event with Wait, and the instance's turn as an Event with a
// Grant.
func WatchConsumer(id string) WatchOption {
	return func(c *watchConfig) { c.consumer = id }
}

// WatchBackoff sets the waits before reconnecting: about min after a
// stream that was up drops, then doubling with each failed attempt up to
// max, each with some jitter so that many watchers don't reconnect in
// step. The defaults are DefaultWatchMinWait and DefaultWatchMaxWait.
func WatchBackoff(min, max time.Duration) WatchOption {
	return func(c *watchConfig) {
		if min > 0 {
			c.minWait = min
		}
		if max >= c.minWait {
			c.maxWait = max
		}
	}
}

// WatchIdleTimeout sets how long a stream may stay silent (no event, no
// keepalive comment) before it is taken as dead and replaced; the default
// is DefaultWatchIdleTimeout.
func WatchIdleTimeout(d time.Duration) WatchOption {
	return func(c *watchConfig) {
		if d > 0 {
			c.idle = d
		}
	}
}

// WatchOnRetry makes the watcher call f each time the stream dropped or an
// attempt to connect failed, before it waits wait and tries again. err
// says why. f runs on the watcher's goroutine: keep it short.
func WatchOnRetry(f func(err error, wait time.Duration)) WatchOption {
	return func(c *watchConfig) { c.onRetry = f }
}

// WatchOnConnect makes the watcher call f each time a stream is
// established: the first time, and after each reconnect. f runs on the
// watcher's goroutine: keep it short.
func WatchOnConnect(f func()) WatchOption {
	return func(c *watchConfig) { c.onConnect = f }
}

// Watcher follows the changes of a scope's resolved env. Create one with
// Client.Watch.
type Watcher struct {
	c      *Client
	scope  string
	cfg    watchConfig
	hc     *http.Client
	events chan Event
	last   int64 // the newest revision delivered or given; only the watcher's goroutine touches it
	// waited is the newest revision told with Wait: it does not move
	// last, so that a reconnect is told of the change again.
	waited int64

	mu  sync.Mutex
	err error
}

// Watch follows GET /v1/scopes/{scope}/-/watch and delivers an Event on
// Events whenever the scope's resolved env changes, including through an
// inherited scope.
//
// lastRevision is the revision the caller already has (0 for none): when
// the scope is newer than that, the first event comes at once with its
// current revision, so that a change made between reading the env and
// calling Watch is not missed. Pass the Revision of the Env you read.
//
// Events coalesce: the channel holds at most one event, the newest, so a
// slow reader gets the current revision rather than a backlog, and
// revisions only ever increase.
//
// When the stream drops (the server restarts, a proxy cuts it, it stays
// silent past the idle timeout) the watcher reconnects with backoff,
// sending Last-Event-ID with the newest revision it has seen, so that the
// server answers a change missed while disconnected with one event
// carrying the current revision. Network errors, 5xx, 408 and 429 are
// retried (after Retry-After when given) for as long as ctx lives.
//
// Watch makes the first connection before it returns. A refusal, such as
// 401 unauthenticated (a revoked token), 403 forbidden or 404 not_found
// (the scope does not exist or the token may not read it), is returned as
// an *Error; the same refusal on a later reconnect ends the watch, closes
// Events and is then reported by Err. When ctx ends, Events closes and Err
// returns nil. A first connection that fails for a transient reason does
// not make Watch fail: it is retried in the background like a dropped
// stream (see WatchOnRetry).
func (c *Client) Watch(ctx context.Context, scope string, lastRevision int64, opts ...WatchOption) (*Watcher, error) {
	cfg := watchConfig{minWait: DefaultWatchMinWait, maxWait: DefaultWatchMaxWait, idle: DefaultWatchIdleTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	// A stream lives for as long as the caller wants, which any overall
	// request timeout of the Client's http.Client would cut short; the idle
	// timeout takes its place.
	hc := *c.hc
	hc.Timeout = 0
	w := &Watcher{c: c, scope: scope, cfg: cfg, hc: &hc, events: make(chan Event, 1), last: lastRevision}

	st, err := w.connect(ctx)
	if err != nil && (final(err) || ctx.Err() != nil) {
		return nil, err
	}
	go w.run(ctx, st, err)
	return w, nil
}

// Events returns the channel of changes. It closes when the watch ends:
// see Err for why.
func (w *Watcher) Events() <-chan Event { return w.events }

// Err returns why the watch ended, once Events is closed: nil when its
// context ended, otherwise the server's refusal as an *Error (401, 403,
// 404, …).
func (w *Watcher) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// final reports whether err is a refusal that retrying can't change: a
// 4xx other than 408 and 429.
func final(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	return e.Status >= 400 && e.Status < 500 && e.Status != http.StatusRequestTimeout && e.Status != http.StatusTooManyRequests
}

// run reads streams and reconnects until ctx ends or the server refuses.
// st is the first connection, or nil with err telling why it failed.
func (w *Watcher) run(ctx context.Context, st *stream, err error) {
	defer close(w.events)
	failures := 0
	if st != nil && w.cfg.onConnect != nil {
		w.cfg.onConnect()
	}
	for {
		if st != nil {
			err = w.read(ctx, st)
			st = nil
			failures = 0
		}
		if ctx.Err() != nil {
			return
		}
		wait := w.backoff(failures, err)
		failures++
		if w.cfg.onRetry != nil {
			w.cfg.onRetry(err, wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		st, err = w.connect(ctx)
		switch {
		case ctx.Err() != nil:
			if st != nil {
				st.close()
			}
			return
		case err != nil && final(err):
			w.mu.Lock()
			w.err = err
			w.mu.Unlock()
			return
		case err == nil && w.cfg.onConnect != nil:
			w.cfg.onConnect()
		}
	}
}

// backoff returns the wait before the next attempt after failures failed
// attempts in a row: min·2^failures, at most max, with jitter in
// [½, 1]×, and at least a Retry-After the server asked for.
func (w *Watcher) backoff(failures int, err error) time.Duration {
	d := w.cfg.minWait
	for i := 0; i < failures && d < w.cfg.maxWait; i++ {
		d *= 2
	}
	d = min(d, w.cfg.maxWait)
	d = d/2 + rand.N(d/2+1)
	var e *Error
	if errors.As(err, &e) && e.RetryAfter > d {
		d = min(e.RetryAfter, max(w.cfg.maxWait, e.RetryAfter))
	}
	return d
}

// stream is one open watch connection. cancel aborts it, also while a
// read is blocked on it.
type stream struct {
	resp   *http.Response
	cancel context.CancelFunc
}

func (st *stream) close() {
	st.cancel()
	st.resp.Body.Close()
}

// connect opens a stream, resuming after w.last.
func (w *Watcher) connect(ctx context.Context) (_ *stream, err error) {
	c := w.c
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		if err != nil {
			cancel()
		}
	}()
	u := c.addr + scopeURL(w.scope, "watch")
	if w.cfg.consumer != "" {
		u += "?consumer=" + url.QueryEscape(w.cfg.consumer)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("envy client: %w", err)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	c.identify(req.Header)
	if w.last > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(w.last, 10))
	}
	resp, err := w.hc.Do(req)
	if err != nil {
		return nil, c.netError(err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return nil, parseError(resp, body)
	}
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); ct != "text/event-stream" {
		resp.Body.Close()
		// A proxy's page, most likely: worth another try later.
		return nil, &NetError{Addr: c.addr, Err: fmt.Errorf("the watch reply is %q, not an event stream", ct)}
	}
	return &stream{resp: resp, cancel: cancel}, nil
}

// errStreamEnded is a stream that the server ended cleanly, as it does
// when it shuts down.
var errStreamEnded = errors.New("the server ended the watch stream")

// errIdle is a stream that stayed silent past the idle timeout.
var errIdle = errors.New("the watch stream went silent")

// read delivers the events of one stream until it ends, and says why it
// ended.
func (w *Watcher) read(ctx context.Context, st *stream) error {
	defer st.close()
	var idle bool
	var mu sync.Mutex
	timer := time.AfterFunc(w.cfg.idle, func() {
		mu.Lock()
		idle = true
		mu.Unlock()
		st.cancel() // unblocks the read below
	})
	defer timer.Stop()

	br := bufio.NewReaderSize(st.resp.Body, 4096)
	var (
		event string
		data  strings.Builder
		id    string
	)
	for {
		line, err := readLine(br, 1<<20)
		if err != nil {
			mu.Lock()
			wasIdle := idle
			mu.Unlock()
			switch {
			case ctx.Err() != nil:
				return ctx.Err()
			case wasIdle:
				return errIdle
			case errors.Is(err, io.EOF):
				return errStreamEnded
			}
			return w.c.netError(err)
		}
		timer.Reset(w.cfg.idle)
		if line == "" { // dispatch
			if (event == "change" || event == "grant") && data.Len() > 0 {
				w.deliver(event, data.String(), id)
			}
			event = ""
			data.Reset()
			continue
		}
		if line[0] == ':' {
			continue // a comment: the keepalive
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			event = value
		case "data":
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(value)
		case "id":
			if !strings.ContainsRune(value, 0) {
				id = value
			}
		case "retry":
			if ms, err := strconv.Atoi(value); err == nil && ms > 0 {
				w.cfg.minWait = time.Duration(ms) * time.Millisecond
				w.cfg.maxWait = max(w.cfg.maxWait, w.cfg.minWait)
			}
		}
	}
}

// deliver sends the event that data describes, when it is newer than
// what the reader has, replacing an older one still waiting.
func (w *Watcher) deliver(event, data, id string) {
	var wire struct {
		Event
		Rollout        string    `json:"rollout"`
		HealthTimeout  string    `json:"health_timeout"`
		LeaseExpiresAt time.Time `json:"lease_expires_at"`
	}
	if err := json.Unmarshal([]byte(data), &wire); err != nil {
		return // not ours to understand; the next event brings the revision
	}
	ev := wire.Event
	if ev.Revision == 0 {
		ev.Revision, _ = strconv.ParseInt(id, 10, 64)
	}
	if ev.Scope == "" {
		ev.Scope = w.scope
	}
	switch {
	case event == "grant":
		g := &Grant{LeaseExpiresAt: wire.LeaseExpiresAt}
		g.HealthTimeout, _ = time.ParseDuration(wire.HealthTimeout)
		ev.Grant = g
		ev.Revision = max(ev.Revision, w.last, w.waited)
	case wire.Rollout == "wait":
		if ev.Revision <= max(w.last, w.waited) {
			return
		}
		ev.Wait, w.waited = true, ev.Revision
	case ev.Revision <= w.last:
		return
	}
	if !ev.Wait {
		w.last = max(w.last, ev.Revision)
	}
	select {
	case old := <-w.events: // drop the older event nobody has read yet
		if old.Grant != nil && ev.Grant == nil {
			ev.Grant, ev.Wait = old.Grant, false // the turn still stands
		}
	default:
	}
	w.events <- ev // never blocks: this goroutine is the only sender
}

// readLine reads one line without its "\n" or "\r\n", failing on a line
// longer than max bytes.
func readLine(br *bufio.Reader, max int) (string, error) {
	var buf []byte
	for {
		chunk, isPrefix, err := br.ReadLine()
		if err != nil {
			return "", err
		}
		buf = append(buf, chunk...)
		if len(buf) > max {
			return "", errors.New("a watch stream line is too long")
		}
		if !isPrefix {
			return string(buf), nil
		}
	}
}
