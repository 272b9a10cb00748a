package service

import (
	"context"
	"sync"

	"github.com/envy-dev/envy"
)

// hub delivers change events to watchers. A watcher costs a small struct
// and a one-slot channel, never a database connection: events coalesce,
// so a slow watcher gets the newest revision rather than a backlog.
type hub struct {
	s      *Service
	mu     sync.RWMutex
	byDep  map[string]map[*sub]struct{} // scope → watchers whose resolved env includes it
	closed bool
}

type sub struct {
	scope   string
	tokenID string
	deps    []string
	mu      sync.Mutex
	ch      chan envy.Event
	sent    int64
	done    bool
}

func newHub(s *Service) *hub { return &hub{s: s, byDep: map[string]map[*sub]struct{}{}} }

func (sb *sub) notify(rev int64) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if sb.done || rev <= sb.sent {
		return
	}
	select {
	case <-sb.ch: // replace a pending, older event
	default:
	}
	sb.ch <- envy.Event{Scope: sb.scope, Revision: rev}
	sb.sent = rev
}

func (sb *sub) stop() {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if !sb.done {
		sb.done = true
		close(sb.ch)
	}
}

func (h *hub) add(sb *sub) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	for _, d := range sb.deps {
		if h.byDep[d] == nil {
			h.byDep[d] = map[*sub]struct{}{}
		}
		h.byDep[d][sb] = struct{}{}
	}
	return true
}

func (h *hub) remove(sb *sub) {
	h.mu.Lock()
	for _, d := range sb.deps {
		delete(h.byDep[d], sb)
		if len(h.byDep[d]) == 0 {
			delete(h.byDep, d)
		}
	}
	h.mu.Unlock()
	sb.stop()
}

// publish tells the watchers of every scope whose resolved env includes
// scope about revision rev. When meta is set the scope's inherits may
// have changed, so those watchers' dependencies are computed again.
func (h *hub) publish(scope string, rev int64, meta bool) {
	h.mu.RLock()
	subs := make([]*sub, 0, len(h.byDep[scope]))
	for sb := range h.byDep[scope] {
		subs = append(subs, sb)
	}
	h.mu.RUnlock()
	for _, sb := range subs {
		sb.notify(rev)
		if meta {
			go h.refresh(sb)
		}
	}
}

// refresh computes a watcher's dependencies again, and tells it the
// current revision of its resolved env in case a change slipped by.
func (h *hub) refresh(sb *sub) {
	tree, err := h.s.scopeTree(context.Background(), sb.scope)
	if err != nil {
		return // the scope is gone: keep the old dependencies
	}
	sb.notify(treeRevision(tree))
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, d := range sb.deps {
		delete(h.byDep[d], sb)
	}
	sb.deps = sb.deps[:0]
	for d := range tree {
		sb.deps = append(sb.deps, d)
		if h.byDep[d] == nil {
			h.byDep[d] = map[*sub]struct{}{}
		}
		h.byDep[d][sb] = struct{}{}
	}
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
		if err == nil && t.RevokedAt == nil {
			continue
		}
		for _, sb := range subs {
			h.remove(sb)
		}
	}
}

func (h *hub) close() {
	h.mu.Lock()
	h.closed = true
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
}

// Watch returns a channel of events for changes to the resolved env of
// path. When lastRevision is older than the resolved env's, the first
// event brings the current revision. The channel closes when ctx ends, the
// token is revoked or the service closes.
func (s *Service) Watch(ctx context.Context, path string, lastRevision int64) (<-chan envy.Event, error) {
	if err := s.readAuth(ctx, path, envy.AuditWatch, nil, false); err != nil {
		return nil, err
	}
	tree, err := s.scopeTree(ctx, path)
	if err != nil {
		return nil, err
	}
	sb := &sub{scope: path, ch: make(chan envy.Event, 1), sent: lastRevision}
	if t := CallerFrom(ctx).Token; t != nil {
		sb.tokenID = t.ID
	}
	for d := range tree {
		sb.deps = append(sb.deps, d)
	}
	if !s.hub.add(sb) {
		return nil, envy.Errorf(envy.EUnavailable, "the server is shutting down")
	}
	if lastRevision > 0 {
		sb.notify(treeRevision(tree))
	}
	// A change committed between the read above and add went to the
	// watchers before this one joined them: look once more.
	if again, err := s.scopeTree(ctx, path); err == nil && treeRevision(again) > treeRevision(tree) {
		sb.notify(treeRevision(again))
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
