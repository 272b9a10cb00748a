package service

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/storecache"
)

// Rolling restarts. An instance (`envy run --watch`) that names itself on
// its watch stream (Service.WatchAs) is told of a change of a scope that has
// a rollout policy with an Event that says Wait, and restarts only when its
// Grant comes. The grants come from rollouts.loop: for each scope some of
// whose instances wait on this server, once the change is Debounce old and
// the rollout is not paused for it, it takes a lease per instance from the
// store (envy.RolloutStore: at most Slots live at once, counted in the
// store, so across every server) and grants it. A lease is freed by the
// instance's report of the new revision (ReportConsumer), its goodbye, or
// its expiry (health_timeout + Options.RolloutLease after the grant). A
// report that the command did not come back healthy pauses the rollout for
// the revision (no more grants, OnRolloutPaused is called), until
// ResumeRollout or a newer change.
//
// What a scope's env depends on is its resolution's (Service.resolve), as
// for every watcher: the hub tells the instances, this file only gates
// them.

// Defaults of the rollout options.
const (
	defaultRolloutLease = 30 * time.Second
	defaultRolloutPoll  = 500 * time.Millisecond
	// policyTTL is how long a scope's policy is trusted from memory when
	// the hub decides whether a change is gated: a policy set on another
	// server takes effect within it.
	policyTTL = time.Second
	// rolloutTimeout bounds one round of grants of a scope.
	rolloutTimeout = 10 * time.Second
)

type rollouts struct {
	s    *Service
	rs   envy.RolloutStore // nil: the store can't coordinate, no instance is gated
	kick chan struct{}
	stop chan struct{}
	done chan struct{}

	mu       sync.Mutex
	policies map[string]cachedPolicy // scope → its policy, as last read
	// seen is, per scope, the newest env revision the loop saw waited
	// for, and when it first saw it: the debounce counts from there.
	seen map[string]seenRev
	// waiters are the watchers told to wait (tell), until granted or
	// gone: what a round looks at, so that a server with no rollout in
	// flight does no work.
	waiters map[*sub]struct{}
}

type cachedPolicy struct {
	p  *envy.RolloutPolicy
	at time.Time
}

type seenRev struct {
	rev int64
	at  time.Time
}

func newRollouts(s *Service, st envy.Store) *rollouts {
	r := &rollouts{s: s, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		policies: map[string]cachedPolicy{}, seen: map[string]seenRev{}, waiters: map[*sub]struct{}{}}
	if c, ok := st.(*storecache.Store); ok {
		st = c.Unwrap()
	}
	if rs, ok := st.(envy.RolloutStore); ok {
		r.rs = rs
	}
	go r.loop()
	return r
}

func (r *rollouts) close() {
	close(r.stop)
	<-r.done
}

// waiting notes that sb was told to wait, and asks for a round.
func (r *rollouts) waiting(sb *sub) {
	r.mu.Lock()
	r.waiters[sb] = struct{}{}
	r.mu.Unlock()
	r.wake()
}

// wake asks the loop for a round now.
func (r *rollouts) wake() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// policy returns scope's policy, from memory when read within policyTTL.
func (r *rollouts) policy(ctx context.Context, scope string) (*envy.RolloutPolicy, error) {
	if r.rs == nil {
		return nil, nil
	}
	now := time.Now()
	r.mu.Lock()
	c, ok := r.policies[scope]
	r.mu.Unlock()
	if ok && now.Sub(c.at) < policyTTL {
		return c.p, nil
	}
	p, err := r.rs.RolloutPolicy(ctx, scope)
	if err != nil {
		return nil, err
	}
	r.setPolicy(scope, p, now)
	return p, nil
}

func (r *rollouts) setPolicy(scope string, p *envy.RolloutPolicy, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.policies) > 10000 {
		clear(r.policies)
	}
	r.policies[scope] = cachedPolicy{p, at}
}

// gated reports whether a change of sb's scope waits for a grant: sb is
// an instance that named itself and the scope has a policy. A policy that
// can't be read gates (the loop tries again): an outage of the store must
// not restart every instance at once.
func (r *rollouts) gated(sb *sub) bool {
	if sb.consumer == "" || r.rs == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p, err := r.policy(ctx, sb.scope)
	return err != nil || p != nil
}

// loop runs a round every Options.RolloutPoll, or at once when woken,
// until close.
func (r *rollouts) loop() {
	defer close(r.done)
	if r.rs == nil {
		<-r.stop
		return
	}
	tick := time.NewTicker(r.s.opts.RolloutPoll)
	defer tick.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-tick.C:
		case <-r.kick:
		}
		r.round()
	}
}

// round grants what it can to the instances waiting on this server.
func (r *rollouts) round() {
	byScope := map[string][]*sub{}
	r.mu.Lock()
	for sb := range r.waiters {
		if !sb.waiting() {
			delete(r.waiters, sb) // granted, or its stream ended
			continue
		}
		byScope[sb.scope] = append(byScope[sb.scope], sb)
	}
	r.mu.Unlock()
	for scope, subs := range byScope {
		ctx, cancel := context.WithTimeout(context.Background(), rolloutTimeout)
		if err := r.grant(ctx, scope, subs); err != nil {
			r.s.log.Warn("rollout: can't grant restarts", "scope", scope, "err", err)
		}
		cancel()
	}
}

// grant grants restarts to scope's waiting instances subs, as many as
// its free slots allow.
func (r *rollouts) grant(ctx context.Context, scope string, subs []*sub) error {
	p, err := r.rs.RolloutPolicy(ctx, scope)
	if err != nil {
		return err
	}
	r.setPolicy(scope, p, time.Now())
	res, _, err := r.s.resolve(ctx, scope)
	if err != nil {
		return err
	}
	target := res.EnvRevision
	if p == nil {
		// The policy went while they waited: each goes now, as without one.
		for _, sb := range subs {
			sb.grant(envy.RolloutGrant{Revision: target})
		}
		return nil
	}
	now := r.s.now()
	r.mu.Lock()
	seen := r.seen[scope]
	if seen.rev != target {
		seen = seenRev{target, now}
		r.seen[scope] = seen
	}
	r.mu.Unlock()
	if now.Sub(seen.at) < p.Debounce {
		return nil // a newer change may come yet: the next round looks again
	}
	if pause, err := r.rs.RolloutPaused(ctx, scope); err != nil {
		return err
	} else if pause != nil && pause.Revision >= target {
		return nil
	}
	live, err := r.s.store.Consumers(ctx, scope, now.Add(-r.s.opts.ConsumerTTL))
	if err != nil {
		return err
	}
	slots := p.Slots(len(live))
	ran := map[string]int64{}
	for _, c := range live {
		ran[c.ID] = c.Revision
	}
	slices.SortFunc(subs, func(a, b *sub) int { return cmpString(a.consumer, b.consumer) })
	for _, sb := range subs {
		if rev, ok := ran[sb.consumer]; ok && rev >= target {
			sb.grant(envy.RolloutGrant{Revision: target}) // it runs the change already: nothing to restart
			continue
		}
		l := envy.RolloutLease{Scope: scope, Consumer: sb.consumer, Revision: target, GrantedAt: now,
			ExpiresAt: now.Add(p.HealthTimeout + r.s.opts.RolloutLease)}
		ok, err := r.rs.AcquireRolloutLease(ctx, l, slots)
		if err != nil {
			return err
		}
		if !ok {
			return nil // every slot is taken: the next round looks again
		}
		sb.grant(envy.RolloutGrant{Revision: target, HealthTimeout: p.HealthTimeout, ExpiresAt: l.ExpiresAt})
	}
	return nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// reported frees the consumer's slot once it reports the revision it was
// granted, or pauses the rollout when it reports that it is not healthy.
func (r *rollouts) reported(ctx context.Context, scope, id string, in envy.ConsumerInput, envRev int64) error {
	if r.rs == nil {
		return nil
	}
	if in.Unhealthy != "" {
		if in.Revision > 0 && in.Revision < envRev {
			// A failure on a revision older than the scope's, reported
			// late (after a newer change, the fix say): it holds back no
			// rollout of the newer one and lifts no pause of it. The
			// instance's restart onto the failed revision is over, so its
			// slot for that revision is free; a lease already moved to a
			// newer revision (a grant of it) stays.
			r.s.log.Info("an instance did not come back healthy on an older revision than its scope's", "scope", scope, "instance", id,
				"revision", in.Revision, "scope_revision", envRev)
			freed, err := r.rs.ReleaseRolloutLease(ctx, scope, id, in.Revision)
			if freed {
				r.wake()
			}
			return err
		}
		failed := envRev
		pause := envy.RolloutPause{Scope: scope, Revision: failed, Failed: []string{id}, At: r.s.now(),
			Reason: fmt.Sprintf("%s did not come back healthy on revision %d: %s", id, in.Revision, in.Unhealthy)}
		if err := r.rs.PauseRollout(ctx, pause); err != nil {
			return err
		}
		// Its slot for the failed revision is free; a lease for a newer
		// one (granted meanwhile, maybe by a server that saw the newer
		// change first) is the newer change's, and stays.
		if _, err := r.rs.ReleaseRolloutLease(ctx, scope, id, max(in.Revision, failed)); err != nil {
			return err
		}
		r.s.log.Warn("rollout paused", "scope", scope, "instance", id, "revision", failed)
		// The webhooks that name rollout.paused hear of it. The event is
		// written after the pause, not in its transaction: should it fail,
		// the pause stands (the status shows it) and the log says so.
		if err := r.s.addEvent(ctx, envy.EventRolloutPaused, scope); err != nil {
			r.s.log.Warn("the rollout.paused event of a pause was not written", "scope", scope, "err", err)
		}
		if f := r.s.opts.OnRolloutPaused; f != nil {
			f(pause)
		}
		return nil
	}
	// Most reports are the periodic ones of an instance that holds no
	// lease: a read tells, and only a release writes.
	leases, err := r.rs.RolloutLeases(ctx, scope, r.s.now())
	if err != nil {
		return err
	}
	for _, l := range leases {
		if l.Consumer == id && l.Revision <= in.Revision {
			if _, err := r.rs.ReleaseRolloutLease(ctx, scope, id, in.Revision); err != nil {
				return err
			}
			r.wake()
		}
	}
	return nil
}

// gone frees the slot of a consumer that said goodbye.
func (r *rollouts) gone(ctx context.Context, scope, id string) error {
	if r.rs == nil {
		return nil
	}
	ok, err := r.rs.ReleaseRolloutLease(ctx, scope, id, math.MaxInt64)
	if ok {
		r.wake()
	}
	return err
}

// status is scope's rollout for its status, nil without a policy.
func (r *rollouts) status(ctx context.Context, scope string, res *envy.Resolution, live []envy.Consumer) (*envy.RolloutStatus, error) {
	if r.rs == nil {
		return nil, nil
	}
	p, err := r.rs.RolloutPolicy(ctx, scope)
	if err != nil || p == nil {
		return nil, err
	}
	st := &envy.RolloutStatus{Policy: *p, State: envy.RolloutDone, Revision: res.EnvRevision, Slots: p.Slots(len(live))}
	for _, c := range live {
		if c.Revision < res.EnvRevision {
			st.State = envy.RolloutRolling
		}
	}
	if st.Leases, err = r.rs.RolloutLeases(ctx, scope, r.s.now()); err != nil {
		return nil, err
	}
	pause, err := r.rs.RolloutPaused(ctx, scope)
	if err != nil {
		return nil, err
	}
	if pause != nil && pause.Revision >= res.EnvRevision {
		st.State, st.Reason, st.Failed = envy.RolloutPaused, pause.Reason, pause.Failed
	}
	return st, nil
}

// rolloutStore returns the store's rollout capability, or an error saying
// that it has none.
func (s *Service) rolloutStore() (envy.RolloutStore, error) {
	if s.rollouts.rs == nil {
		return nil, envy.Errorf(envy.EInternal, "the store can't coordinate rollouts")
	}
	return s.rollouts.rs, nil
}

// ResumeRollout lets a paused rollout of path go on; it reports whether
// it was paused. It needs write on the scope.
func (s *Service) ResumeRollout(ctx context.Context, path string) (bool, error) {
	if err := validPath(path); err != nil {
		return false, err
	}
	if err := s.Authorize(ctx, envy.ActWrite, path, envy.AuditRolloutResume); err != nil {
		return false, err
	}
	rs, err := s.rolloutStore()
	if err != nil {
		return false, err
	}
	res, _, err := s.resolve(ctx, path)
	if err != nil {
		return false, err
	}
	pause, err := rs.RolloutPaused(ctx, path)
	if err != nil {
		return false, err
	}
	// A resume is a write: audited as one, it is refused while no audit
	// stream can record it, and answered once its entry is durable.
	rec, err := s.toStreams(1)
	if err != nil {
		return false, err
	}
	if _, err := rs.ResumeRollout(ctx, path); err != nil {
		rec.release()
		return false, err
	}
	// A pause of an older revision held nothing back: a newer change
	// started a new rollout.
	was := pause != nil && pause.Revision >= res.EnvRevision
	s.rollouts.wake()
	if err := s.recordDone(ctx, rec, s.entry(ctx, envy.AuditRolloutResume, path, nil, envy.OutcomeOK)); err != nil {
		return was, envy.Errorf(envy.EUnavailable, "the rollout of %s resumed, but its audit entry could not be written", path)
	}
	return was, nil
}

// rolloutPolicyPut applies a scope write's rollout field, which the store
// wrote in the scope's transaction, to this server's rollouts.
func (s *Service) rolloutPolicyPut(ctx context.Context, path string, in envy.ScopeInput) (*envy.RolloutPolicy, error) {
	if s.rollouts.rs == nil {
		return nil, nil
	}
	switch {
	case in.Rollout != nil:
		s.rollouts.setPolicy(path, in.Rollout, time.Now())
		return in.Rollout, nil
	case in.ClearRollout:
		s.rollouts.setPolicy(path, nil, time.Now())
		s.rollouts.wake() // the waiting instances go
		return nil, nil
	}
	return s.rollouts.rs.RolloutPolicy(ctx, path)
}

// validRollout checks a scope write's rollout field.
func (s *Service) validRollout(in envy.ScopeInput) []envy.FieldError {
	if in.Rollout == nil {
		return nil
	}
	return envy.ValidateRolloutPolicy("body.rollout", *in.Rollout)
}
