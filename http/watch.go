package http

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/http/wire"
	"github.com/envy-dev/envy/service"
)

// handleWatch streams the scope's changes as Server-Sent Events:
//
//	id: <revision>
//	event: change
//	data: {"scope":"…","revision":N}
//
// With ?consumer=ID (an instance that names itself, as it reports) and a
// scope with a rollout policy, a change says "rollout":"wait" and the
// instance's turn to restart comes as "event: grant" (rollout.go).
//
// starting after Last-Event-ID when given, with a comment line every
// keepAlive, until the client goes away or the service closes the stream.
func (s *Server) handleWatch(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	tok := service.CallerFrom(ctx).Token
	done, err := s.OpenStream(ctx)
	if err != nil {
		return err
	}
	defer done()
	// A stream ends when its token expires, as it does when it is revoked.
	if tok.ExpiresAt != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, *tok.ExpiresAt)
		defer cancel()
	}
	last, ok := wire.Int(strings.TrimSpace(r.Header.Get("Last-Event-ID")), 0, 0, math.MaxInt64)
	if !ok {
		return envy.Invalid(envy.Field("header.Last-Event-ID", "invalid", "Last-Event-ID must be a revision"))
	}
	events, err := s.svc.WatchAs(ctx, r.PathValue("path"), last, r.URL.Query().Get("consumer"))
	if err != nil {
		return err
	}

	rc := http.NewResponseController(w)
	// A stream outlives any read or write timeout of the server (its
	// request has no body; the connection's end still ends it).
	_ = rc.SetWriteDeadline(time.Time{})
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: don't buffer the stream
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return nil // the connection can't stream; nothing more to say
	}

	bw := bufio.NewWriter(w)
	tick := time.NewTicker(s.keepAlive)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			name, v := watchEvent(ev)
			data, _ := json.Marshal(v)
			bw.WriteString("id: ")
			bw.WriteString(strconv.FormatInt(ev.Revision, 10))
			bw.WriteString("\nevent: " + name + "\ndata: ")
			bw.Write(data)
			bw.WriteString("\n\n")
		case <-tick.C:
			bw.WriteString(": keepalive\n\n")
		}
		if bw.Flush() != nil || rc.Flush() != nil {
			return nil // the client went away
		}
	}
}

func (s *Server) handleReportConsumer(w http.ResponseWriter, r *http.Request) error {
	o, err := s.body.Object(w, r)
	if err != nil {
		return err
	}
	if err := o.Only("revision", "hostname", "pid", "fallback_since", "unhealthy"); err != nil {
		return err
	}
	var in envy.ConsumerInput
	if in.Revision, err = o.RequiredInteger("revision"); err != nil {
		return err
	}
	if in.Hostname, _, err = o.String("hostname"); err != nil {
		return err
	}
	pid, _, err := o.Integer("pid")
	if err != nil {
		return err
	}
	if pid < 0 || pid > 1<<31-1 {
		return envy.Invalid(envy.Field("body.pid", "out_of_range", "pid must be a non-negative 32-bit integer"))
	}
	in.PID = int(pid)
	if at, ok, err := o.String("fallback_since"); err != nil {
		return err
	} else if ok {
		if in.FallbackSince, err = time.Parse(time.RFC3339Nano, at); err != nil || in.FallbackSince.IsZero() {
			return envy.Invalid(envy.Field("body.fallback_since", "invalid", "fallback_since must be an RFC 3339 time"))
		}
	}
	if in.Unhealthy, _, err = o.String("unhealthy"); err != nil {
		return err
	}
	path, id := r.PathValue("path"), r.PathValue("id")
	created, err := s.svc.ReportConsumer(r.Context(), path, id, in)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, consumerReportJSON{Scope: path, ID: id, Hostname: in.Hostname, PID: in.PID, Revision: in.Revision})
	return nil
}

func (s *Server) handleDeleteConsumer(w http.ResponseWriter, r *http.Request) error {
	if err := s.svc.DeleteConsumer(r.Context(), r.PathValue("path"), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) error {
	limit, err := queryLimit(r)
	if err != nil {
		return err
	}
	st, next, err := s.svc.StatusPage(r.Context(), r.PathValue("path"), envy.StatusQuery{Cursor: r.URL.Query().Get("cursor"), Limit: limit})
	return writeRead(w, st.Revision, statusView(st, next), err)
}

// OpenStream counts a long-lived stream (a watch, or the dashboard's
// event stream) of the authenticated caller in ctx against
// --max-watches-per-token: ERateLimited when its token holds as many
// already; else done, to call when the stream ends.
func (s *Server) OpenStream(ctx context.Context) (done func(), err error) {
	tok := service.CallerFrom(ctx).Token
	if tok == nil {
		return nil, envy.Errorf(envy.EUnauthenticated, "authentication required")
	}
	// Counted per lineage (the token and those minted from it, as the rate
	// limit is): a sign-in that mints a child per call does not multiply
	// the streams one token may hold.
	root := tok.Root()
	if !s.watches.open(root, s.opts.MaxWatchesPerToken) {
		return nil, &envy.Error{Code: envy.ERateLimited, RetryAfter: s.keepAlive,
			Message: fmt.Sprintf("this token and the tokens of its lineage hold %d watch streams, as many as one token may (--max-watches-per-token); close one first", s.opts.MaxWatchesPerToken)}
	}
	var once sync.Once
	return func() { once.Do(func() { s.watches.done(root) }) }, nil
}

// watchCounts counts the open watch streams of each token.
type watchCounts struct {
	mu sync.Mutex
	n  map[string]int
}

// open counts a new stream of token, unless it holds max already.
func (c *watchCounts) open(token string, max int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[token] >= max {
		return false
	}
	if c.n == nil {
		c.n = make(map[string]int)
	}
	c.n[token]++
	return true
}

func (c *watchCounts) done(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[token]--; c.n[token] <= 0 {
		delete(c.n, token)
	}
}
