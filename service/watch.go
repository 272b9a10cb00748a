package service

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/envy-dev/envy"
)

// hub delivers change events to watchers. A watcher costs a small struct
// and a one-slot channel, never a database connection: events coalesce,
// so a slow watcher gets the newest revision rather than a backlog.
//
// A watcher's dependencies are its scope's resolution's deps
// (envy.Resolution.Deps): a change to any of them is an event. A change
// of inherits (a meta notice) may change the deps themselves, so the
// watchers concerned are queued for a refresh, which one goroutine of the
// hub works through: however many watchers and notices, a refresh is
// never run twice at once for one watcher, and the hub never holds more
// than one goroutine for it.
type hub struct {
	s      *Service
	mu     sync.RWMutex
	byDep  map[string]map[*sub]struct{} // scope → watchers whose resolution depends on it
	closed bool

	// pending holds the watchers queued for a refresh; wake tells the
	// refresher there are some. ctx ends the refresher's work at close.
	pending   map[*sub]struct{}
	wake      chan struct{}
	ctx       context.Context
	cancel    context.CancelFunc
	refreshed chan struct{} // closed when the refresher has ended
	// beforeRelink, when set (by tests), runs in a refresh between the
	// read of the new dependencies and their linking into the hub.
	beforeRelink func(*sub)
}

type sub struct {
	scope   string
	tokenID string
	// consumer is the instance that watches, when it named itself
	// (WatchAs): a change of a scope with a rollout policy then waits for
	// its grant (rollout.go).
	consumer string
	deps     []string // guarded by the hub's mu
	removed  bool     // guarded by the hub's mu: never link it again
	mu       sync.Mutex
	ch       chan envy.Event
	sent     int64
	done     bool
	// wait is the newest revision told with Wait and not granted yet
	// (guarded by mu): the instance waits for its turn.
	wait int64
}

// refreshTimeout bounds one refresh's read of a watcher's tree.
const refreshTimeout = 30 * time.Second

func newHub(s *Service) *hub {
	h := &hub{s: s, byDep: map[string]map[*sub]struct{}{}, pending: map[*sub]struct{}{},
		wake: make(chan struct{}, 1), refreshed: make(chan struct{})}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	go h.refresher()
	return h
}

func (sb *sub) notify(rev int64) { sb.send(envy.Event{Scope: sb.scope, Revision: rev}) }

// send puts ev in the channel, replacing a pending event: a newer
// revision, or a grant, wins; a pending grant is kept in the newer event
// that replaces it (it is the instance's turn all the same).
func (sb *sub) send(ev envy.Event) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if sb.done || ev.Grant == nil && ev.Revision <= sb.sent {
		return
	}
	select {
	case old := <-sb.ch: // replace a pending, older event
		if ev.Grant == nil && old.Grant != nil {
			ev.Grant, ev.Wait = old.Grant, false
		}
	default:
	}
	switch {
	case ev.Grant != nil:
		sb.wait = 0
	case ev.Wait:
		sb.wait = ev.Revision
	}
	sb.ch <- ev
	sb.sent = max(sb.sent, ev.Revision)
}

// tell tells sb of revision rev of its scope's env: as a change, or, when
// the change is rolled out under a policy, as a change to wait for a
// grant for.
func (h *hub) tell(sb *sub, rev int64) {
	if h.s.rollouts != nil && h.s.rollouts.gated(sb) {
		sb.send(envy.Event{Scope: sb.scope, Revision: rev, Wait: true})
		h.s.rollouts.waiting(sb)
		return
	}
	sb.notify(rev)
}

// waiting reports whether sb waits for a grant.
func (sb *sub) waiting() bool {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return sb.wait > 0 && !sb.done
}

// grant gives sb its turn to restart, to g.Revision or newer.
func (sb *sub) grant(g envy.RolloutGrant) {
	g.Revision = max(g.Revision, sb.sentRev())
	sb.send(envy.Event{Scope: sb.scope, Revision: g.Revision, Grant: &g})
}

func (sb *sub) sentRev() int64 {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return sb.sent
}

func (sb *sub) stop() {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if !sb.done {
		sb.done = true
		close(sb.ch)
	}
}

// linkLocked puts sb under each of its deps; h.mu is held.
func (h *hub) linkLocked(sb *sub) {
	for _, d := range sb.deps {
		if h.byDep[d] == nil {
			h.byDep[d] = map[*sub]struct{}{}
		}
		h.byDep[d][sb] = struct{}{}
	}
}

// unlinkLocked takes sb from under each of its deps; h.mu is held.
func (h *hub) unlinkLocked(sb *sub) {
	for _, d := range sb.deps {
		delete(h.byDep[d], sb)
		if len(h.byDep[d]) == 0 {
			delete(h.byDep, d)
		}
	}
}

func (h *hub) add(sb *sub) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.linkLocked(sb)
	return true
}

func (h *hub) remove(sb *sub) {
	h.mu.Lock()
	h.unlinkLocked(sb)
	sb.removed = true
	delete(h.pending, sb)
	h.mu.Unlock()
	sb.stop()
}

// publish tells the watchers of every scope whose resolution depends on
// scope about revision rev, and has their dependencies computed again:
// the scope's inherits may have changed (meta), or a value may now refer
// to other scopes (references).
func (h *hub) publish(scope string, rev int64, meta bool) {
	h.mu.RLock()
	subs := make([]*sub, 0, len(h.byDep[scope]))
	for sb := range h.byDep[scope] {
		subs = append(subs, sb)
	}
	h.mu.RUnlock()
	for _, sb := range subs {
		h.tell(sb, rev)
	}
	// A var's new value may refer to other scopes than the old one did
	// (references, refs.go): its watchers' deps are computed again too.
	h.queue(subs...)
}

// queue asks the refresher to refresh each watcher; one queued already
// is refreshed once.
func (h *hub) queue(subs ...*sub) {
	if len(subs) == 0 {
		return
	}
	h.mu.Lock()
	for _, sb := range subs {
		if !sb.removed && !h.closed {
			h.pending[sb] = struct{}{}
		}
	}
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default: // already woken
	}
}

// refresher refreshes the queued watchers, one at a time, until close.
func (h *hub) refresher() {
	defer close(h.refreshed)
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-h.wake:
		}
		for {
			h.mu.Lock()
			var sb *sub
			for p := range h.pending {
				sb = p
				break
			}
			delete(h.pending, sb)
			h.mu.Unlock()
			if sb == nil || h.ctx.Err() != nil {
				break
			}
			h.refresh(sb)
		}
	}
}

// refresh computes a watcher's dependencies again, and tells it the
// current revision of its resolved env in case a change slipped by. A
// watcher removed meanwhile stays removed.
func (h *hub) refresh(sb *sub) {
	ctx, cancel := context.WithTimeout(h.ctx, refreshTimeout)
	defer cancel()
	r, _, err := h.s.resolve(ctx, sb.scope)
	if err != nil {
		return // the scope is gone: keep the old dependencies
	}
	h.tell(sb, r.EnvRevision)
	if h.beforeRelink != nil {
		h.beforeRelink(sb)
	}
	deps := depPaths(r)
	h.mu.Lock()
	if sb.removed || h.closed {
		h.mu.Unlock()
		return
	}
	h.unlinkLocked(sb)
	sb.deps = deps
	h.linkLocked(sb)
	h.mu.Unlock()
	// A change to a new dep between the resolve and the link above had no
	// watcher to tell: read again, now that the links are in place.
	if again, _, err := h.s.resolve(ctx, sb.scope); err == nil {
		h.tell(sb, again.EnvRevision)
		if !slices.Equal(depPaths(again), deps) {
			h.queue(sb)
		}
	}
}

// depPaths returns the paths of r's deps.
func depPaths(r *envy.Resolution) []string {
	out := make([]string, len(r.Deps))
	for i, d := range r.Deps {
		out[i] = d.Path
	}
	return out
}

// revoke ends the streams of every token that is now revoked: a revoked
// token's and those of the tokens it minted, which went with it.
func (h *hub) revoke(ctx context.Context) {
	h.mu.RLock()
	byToken := map[string][]*sub{}
	for _, m := range h.byDep {
		for sb := range m {
			byToken[sb.tokenID] = append(byToken[sb.tokenID], sb)
		}
	}
	h.mu.RUnlock()
	for id, subs := range byToken {
		t, err := h.s.store.GetToken(ctx, id)
		switch {
		case envy.ErrorCode(err) == envy.ENotFound:
			// gone: its streams end
		case err != nil:
			// The store did not answer (a blip, the resync after an
			// outage): no revocation is known, so the streams stay; the
			// next notice or resync looks again.
			continue
		case t.RevokedAt == nil:
			continue
		}
		for _, sb := range subs {
			h.remove(sb)
		}
	}
}

func (h *hub) close() {
	h.cancel()
	h.mu.Lock()
	h.closed = true
	clear(h.pending)
	all := map[*sub]struct{}{}
	for _, m := range h.byDep {
		for sb := range m {
			all[sb] = struct{}{}
		}
	}
	h.byDep = map[string]map[*sub]struct{}{}
	h.mu.Unlock()
	for sb := range all {
		sb.stop()
	}
	<-h.refreshed
}

// Watch returns a channel of events for changes to the resolved env of
// path. When lastRevision is older than the resolved env's, the first
// event brings the current revision. The channel closes when ctx ends, the
// token is revoked or the service closes.
func (s *Service) Watch(ctx context.Context, path string, lastRevision int64) (<-chan envy.Event, error) {
	return s.WatchAs(ctx, path, lastRevision, "")
}

// WatchAs is Watch for an instance that names itself (its consumer id, as
// it reports to /-/consumers/{id}): when path has a rollout policy, a
// change comes as an Event with Wait, and the instance restarts only when
// an Event with its Grant comes (rollout.go). An empty consumer is Watch.
func (s *Service) WatchAs(ctx context.Context, path string, lastRevision int64, consumer string) (<-chan envy.Event, error) {
	if consumer != "" && !envy.ValidSegment(consumer) {
		return nil, envy.Invalid(envy.Field("query.consumer", "invalid_id", "consumer id must match [A-Za-z0-9][A-Za-z0-9._~-]{0,99}"))
	}
	if err := s.readAuth(ctx, path, envy.AuditWatch, nil, false); err != nil {
		return nil, err
	}
	r, _, err := s.resolve(ctx, path)
	if err != nil {
		return nil, err
	}
	if consumer != "" && lastRevision > 0 && s.rollouts.gated(&sub{scope: path, consumer: consumer}) {
		// An instance that was told to wait for a change, and reconnects
		// with that change's id, still runs what it reported: it is told
		// again, so that it waits for (and gets) its grant.
		if cs, err := s.store.Consumers(ctx, path, s.now().Add(-s.opts.ConsumerTTL)); err == nil {
			for _, c := range cs {
				if c.ID == consumer && c.Revision < lastRevision {
					lastRevision = c.Revision
				}
			}
		}
	}
	// A watcher that names no revision has the current one: a resync's
	// refresh (after lost notices) then tells it of no change it did not
	// miss.
	sent := lastRevision
	if sent == 0 {
		sent = r.EnvRevision
	}
	sb := &sub{scope: path, consumer: consumer, ch: make(chan envy.Event, 1), sent: sent, deps: depPaths(r)}
	if t := CallerFrom(ctx).Token; t != nil {
		sb.tokenID = t.ID
	}
	if !s.hub.add(sb) {
		return nil, envy.Errorf(envy.EUnavailable, "the server is shutting down")
	}
	if lastRevision > 0 {
		s.hub.tell(sb, r.EnvRevision) // a change of descriptions only is none
	}
	// A change committed between the read above and add went to the
	// watchers before this one joined them: look once more, and queue a
	// refresh when the deps themselves changed meanwhile.
	if again, _, err := s.resolve(ctx, path); err == nil && again.EnvRevision > r.EnvRevision {
		s.hub.tell(sb, again.EnvRevision)
		s.hub.queue(sb)
	}
	// Likewise a revocation of the token between its check above and add
	// found no stream of it to end: look at the token once more.
	if t := CallerFrom(ctx).Token; t != nil {
		cur, err := s.store.GetToken(ctx, t.ID)
		if err == nil && !cur.LiveAt(s.now()) {
			s.hub.remove(sb)
			return nil, envy.Errorf(envy.EUnauthenticated, "token revoked")
		}
	}
	go func() {
		<-ctx.Done()
		s.hub.remove(sb)
	}()
	return sb.ch, nil
}

// CloseWatches ends every watch stream, as a server does before it shuts
// down, so that open streams don't hold the shutdown up.
func (s *Service) CloseWatches() { s.hub.close() }
