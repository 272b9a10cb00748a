package service

import (
	"context"
	"time"
)

// TakeTurn takes the turn that a write of names in path waits for once
// writers contend (turns.go), for tests.
func (s *Service) TakeTurn(ctx context.Context, path string, names []string, whole bool) (release func(), err error) {
	return s.turns.take(ctx, turnKey(path, names, whole))
}

// SetAuditLinger sets how long the audit loop lingers for more reveals
// (the gap, and the most in all), for tests; call it before any reveal.
func (s *Service) SetAuditLinger(gap, most time.Duration) {
	s.auditLinger = [2]time.Duration{gap, most}
}

// SetAuditOverlapAfter sets how long an audit commit may take before the
// next batch is sent beside it (on a shared store), for tests; call it
// before any reveal.
func (s *Service) SetAuditOverlapAfter(d time.Duration) { s.auditOverlapAfter = d }

// SetAuditStreamWait sets how long a reveal waits for an audit stream to
// write its entry before it is refused, for tests; call it before any
// reveal.
func (s *Service) SetAuditStreamWait(d time.Duration) { s.auditStreamWait = d }

// AuditQueued is how many audit items wait for the audit loop, for tests.
func (s *Service) AuditQueued() int { return len(s.audit) }

// SetBeforeRelink sets the hook a watcher's refresh runs between the read
// of its new dependencies and their linking into the hub, for tests.
func (s *Service) SetBeforeRelink(fn func(stop func())) {
	s.hub.beforeRelink = func(sb *sub) { fn(func() { s.hub.remove(sb) }) }
}

// RefreshWatchers refreshes every watcher of the hub now, on the calling
// goroutine, for tests.
func (s *Service) RefreshWatchers() {
	for _, sb := range s.hub.all() {
		s.hub.refresh(sb)
	}
}

// Watching is how many watchers the hub links under some dependency.
func (s *Service) Watching() int { return len(s.hub.all()) }

// AddEvent is addEvent, which rollouts call.
func (s *Service) AddEvent(ctx context.Context, typ, scope string) error {
	return s.addEvent(ctx, typ, scope)
}

// SetAfterPeek sets the hook resolve runs between its look at the env
// cache's entry for a scope and its use of the entry there then, for
// tests.
func (s *Service) SetAfterPeek(fn func()) { s.afterPeek = fn }
