package service

import (
	"context"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/envy-dev/envy"
)

// ReportConsumer records which revision a running workload runs.
func (s *Service) ReportConsumer(ctx context.Context, path, id string, in envy.ConsumerInput) (bool, error) {
	if err := validPath(path); err != nil {
		return false, err
	}
	var fields []envy.FieldError
	if !envy.ValidSegment(id) {
		fields = append(fields, envy.Field("path.id", "invalid_id", "consumer id must match [A-Za-z0-9][A-Za-z0-9._~-]{0,99}"))
	}
	if in.Revision < 0 {
		fields = append(fields, envy.Field("body.revision", "out_of_range", "revision must not be negative"))
	}
	if len(in.Hostname) > 255 || !envy.Printable(in.Hostname) {
		fields = append(fields, envy.Field("body.hostname", "invalid_hostname", "hostname must be at most 255 printable characters"))
	}
	if in.PID < 0 {
		fields = append(fields, envy.Field("body.pid", "out_of_range", "pid must not be negative"))
	}
	if len(in.Unhealthy) > envy.MaxUnhealthyBytes || !envy.Printable(in.Unhealthy) {
		fields = append(fields, envy.Field("body.unhealthy", "invalid", "unhealthy must be at most %d printable characters", envy.MaxUnhealthyBytes))
	}
	if len(fields) > 0 {
		return false, envy.Invalid(fields...)
	}
	if err := s.Authorize(ctx, envy.ActRead, path, envy.AuditConsumerReport); err != nil {
		return false, err
	}
	r, _, err := s.resolve(ctx, path)
	if err != nil {
		return false, err
	}
	if rev := r.Revision; in.Revision > rev {
		// A consumer can't run a revision that does not exist yet; taking
		// one on trust would mark every write unsynced. One the server
		// handed out may be newer than the scope's revision now: a
		// referenced scope's deletion told its watchers of its own
		// revision, and took that scope out of the scope's.
		cur, err := s.store.Revision(ctx)
		if err != nil {
			return false, err // the store did not answer: worth trying again
		}
		if in.Revision > cur {
			return false, envy.Invalid(envy.Field("body.revision", "out_of_range", "revision %d is newer than the scope's current revision %d", in.Revision, rev))
		}
	}
	now := s.now()
	// A consumer id belongs to the token that first reported it: another
	// reader can't speak for it (and make /-/status say synced).
	var tokenID string
	if c := CallerFrom(ctx); c.Token != nil {
		tokenID = c.Token.ID
	}
	fallback := in.FallbackSince
	if fallback.After(now) {
		fallback = now // a consumer's clock ahead of the server's
	}
	s.noConsumers.Clear() // a consumer of path counts for what path inherits too
	created, err := s.store.PutConsumer(ctx, envy.Consumer{Scope: path, ID: id, Hostname: in.Hostname, PID: in.PID, Revision: in.Revision, FirstSeen: now, SeenAt: now, TokenID: tokenID, FallbackSince: fallback},
		envy.ConsumerLimit{Max: s.opts.MaxConsumers, StaleBefore: now.Add(-s.opts.ConsumerTTL)})
	s.noConsumers.Clear() // also after, in case a write's check ran in between
	if e := envy.AsError(err); e != nil && e.Code == envy.EConflict {
		if len(e.Fields) > 0 { // envy.ErrConsumerTaken
			s.Refused(ctx, envy.AuditConsumerReport, path, envy.OutcomeConflict)
			return false, e
		}
		return false, envy.Errorf(envy.EConflict, "scope %s already has %d live consumers, the most it keeps (--max-consumers); a consumer that stops reporting for %s makes room",
			path, s.opts.MaxConsumers, s.opts.ConsumerTTL)
	}
	if err != nil {
		return false, err
	}
	if created {
		// The first report of each consumer is audited (later ones only
		// move its revision and last sighting).
		s.enqueue(auditItem{e: s.entry(ctx, envy.AuditConsumerReport, path, []string{id}, envy.OutcomeCreated)})
	}
	// Its rollout slot, if it holds one, is freed (or the rollout paused).
	return created, s.rollouts.reported(ctx, path, id, in, r.EnvRevision)
}

// DeleteConsumer forgets a consumer of path at once: a workload that stops
// says goodbye (envy run does, on exit), so that status no longer counts
// it until its report expires. It needs what a report needs, read on the
// scope, the same power as reporting the consumer: a token that may
// report a consumer id may also end it. Deleting an absent consumer is no
// error.
func (s *Service) DeleteConsumer(ctx context.Context, path, id string) error {
	if err := validPath(path); err != nil {
		return err
	}
	if !envy.ValidSegment(id) {
		return envy.Invalid(envy.Field("path.id", "invalid_id", "consumer id must match [A-Za-z0-9][A-Za-z0-9._~-]{0,99}"))
	}
	if err := s.Authorize(ctx, envy.ActRead, path, envy.AuditConsumerGone); err != nil {
		return err
	}
	// A consumer id belongs to the token that first reported it (see
	// ReportConsumer): another reader may not make it go away; a writer of
	// the scope may.
	if t := CallerFrom(ctx).Token; !envy.Can(t, envy.ActWrite, path) {
		cs, err := s.store.Consumers(ctx, path, time.Time{})
		if err != nil {
			return err
		}
		for _, c := range cs {
			if c.ID == id && c.TokenID != "" && c.TokenID != t.ID {
				s.Refused(ctx, envy.AuditConsumerGone, path, envy.OutcomeConflict)
				return envy.ErrConsumerTaken(path, id)
			}
		}
	}
	if err := s.store.DeleteConsumer(ctx, path, id); err != nil {
		return err
	}
	return s.rollouts.gone(ctx, path, id)
}

// StatusPage is Status with one page of its consumers; Synced still
// covers them all.
func (s *Service) StatusPage(ctx context.Context, path string, q envy.StatusQuery) (envy.Status, string, error) {
	limit, err := limitOf("query.limit", q.Limit)
	if err != nil {
		return envy.Status{}, "", err
	}
	st, err := s.Status(ctx, path)
	if err != nil {
		return envy.Status{}, "", err
	}
	// Consumers are sorted by id and at most MaxConsumers: paging them in
	// memory costs less than a second query.
	cs := st.Consumers
	if q.Cursor != "" {
		i, _ := slices.BinarySearchFunc(cs, q.Cursor, func(c envy.ConsumerView, id string) int { return strings.Compare(c.ID, id) })
		for i < len(cs) && cs[i].ID <= q.Cursor {
			i++
		}
		cs = cs[i:]
	}
	page, _ := fetchPage(limit, func(int) ([]envy.ConsumerView, error) { return cs, nil }, func(c envy.ConsumerView) string { return c.ID })
	st.Consumers = page.Items
	return st, page.NextCursor, nil
}

// Status tells whether every live consumer of path runs the current
// revision of its resolved env.
func (s *Service) Status(ctx context.Context, path string) (envy.Status, error) {
	if err := s.readAuth(ctx, path, envy.AuditStatus, nil, false); err != nil {
		return envy.Status{}, err
	}
	r, _, err := s.resolve(ctx, path)
	if err != nil {
		return envy.Status{}, err
	}
	cs, err := s.store.Consumers(ctx, path, s.now().Add(-s.opts.ConsumerTTL))
	if err != nil {
		return envy.Status{}, err
	}
	st := envy.Status{Scope: path, Revision: r.Revision, Synced: true, Consumers: make([]envy.ConsumerView, 0, len(cs))}
	for _, c := range cs {
		// Behind: it runs an env older than the newest revision that
		// changed it; a consumer at an older revision whose env is the
		// same (only descriptions changed since) is not.
		behind := c.Revision < r.EnvRevision
		st.Synced = st.Synced && !behind
		st.Consumers = append(st.Consumers, envy.ConsumerView{Consumer: c, Behind: behind})
	}
	if st.Rollout, err = s.rollouts.status(ctx, path, r, cs); err != nil {
		return envy.Status{}, err
	}
	if st.Rollout != nil && st.Rollout.State == envy.RolloutPaused {
		st.Synced = false // an instance failed its health check on the newest env
	}
	return st, nil
}

// synced reports whether every live consumer whose resolved env depends
// on path (a consumer of path, or of any scope that inherits it, directly
// or not) runs rev or newer, and names some of those that don't
// (Store.BehindConsumers: one query, whatever the number of inheritors).
// A scope found with none behind is remembered until a consumer notice
// or a change of inherits, so that writes to scopes nobody consumes cost
// no extra read; not on a shared store, where that notice comes a moment
// after the report.
func (s *Service) synced(ctx context.Context, path string, rev int64) (bool, []envy.Consumer) {
	if _, none := s.noConsumers.Get(path, nil); none && !s.shared {
		return true, nil
	}
	gen := s.noConsumers.Generation()
	since := s.now().Add(-s.opts.ConsumerTTL)
	behind, err := s.store.BehindConsumers(ctx, path, since, rev, envy.MaxBehindShown)
	if err != nil {
		return false, nil
	}
	if len(behind) > 0 {
		return false, behind
	}
	if !s.shared { // another server's consumer must count at once
		// Remembered only when there is no live consumer at all: one
		// that runs rev now is behind the next write.
		if any, err := s.store.BehindConsumers(ctx, path, since, math.MaxInt64, 1); err == nil && len(any) == 0 {
			s.noConsumers.Put(gen, path, struct{}{}, 64+len(path))
		}
	}
	return true, nil
}
