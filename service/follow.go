package service

import (
	"context"
	"time"

	"github.com/envy-dev/envy"
)

// follow subscribes the service's caches and its watch hub to the store's
// notices, so that none of them assumes it saw every write itself: another
// server sharing the store writes too. It returns the cancel of the
// subscription.
func (s *Service) follow(n envy.Notifier) (cancel func()) {
	return n.Subscribe(s.onNotice)
}

// onNotice runs on the store's delivery goroutine: quick, and anything that
// reads the store runs on its own goroutine. The scope cache (storecache)
// has evicted what the notice changed before it comes here.
func (s *Service) onNotice(n envy.Notice) {
	switch n.Kind {
	case envy.NoticeScope:
		s.replies.invalidate(n.Scope)
		if !n.MetaOnly { // descriptions only: no env changed, no watcher is told
			s.hub.publish(n.Scope, n.Revision, false)
		}
	case envy.NoticeScopeMeta: // inherits changed, or the scope is gone
		s.envs.invalidate(n.Scope)
		s.replies.invalidate(n.Scope)
		s.noConsumers.Clear() // whose consumers depend on what changed
		if !n.MetaOnly {      // the description only: inherits and envs are as they were
			s.hub.publish(n.Scope, n.Revision, true)
		}
	case envy.NoticeToken:
		// Created or revoked, and by id, while the cache is by hash:
		// token changes are rare, so forget them all. A revocation
		// reaches the cache and the watches only this way, on the server
		// that made it as on the others (RevokeToken); a revoked token's
		// descendants each have their notice.
		s.tokens.invalidateAll()
		go s.endRevokedWatches()
	case envy.NoticeConsumer:
		s.noConsumers.Clear() // it counts for every scope path inherits

	case envy.NoticeResync:
		// Notices were lost: nothing cached can be trusted until it is
		// read again, and every watcher is told where its scope is now.
		s.tokens.invalidateAll()
		s.envs.invalidateAll()
		s.replies.Clear()
		s.noConsumers.Clear()
		s.hub.resync()
		go s.endRevokedWatches() // a lost notice may have been a revocation
	}
}

// resync queues every watcher for a refresh of its dependencies, which
// tells it the current revision of its resolved env, after notices may
// have been lost.
func (h *hub) resync() { h.queue(h.all()...) }

// all returns every watcher linked in the hub.
func (h *hub) all() []*sub {
	h.mu.RLock()
	defer h.mu.RUnlock()
	seen := map[*sub]struct{}{}
	var out []*sub
	for _, m := range h.byDep {
		for sb := range m {
			if _, ok := seen[sb]; !ok {
				seen[sb] = struct{}{}
				out = append(out, sb)
			}
		}
	}
	return out
}

// endRevokedWatches ends the watch streams of every token now revoked:
// the revocation may have been made on another server.
func (s *Service) endRevokedWatches() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s.hub.revoke(ctx)
}
