package service

import (
	"context"

	"github.com/envy-dev/envy"
)

// AdminOp runs op, an operation on the whole server (such as a key
// rotation), for a caller who holds admin on every scope, and records it
// in the audit log as action with names (never a secret) before it
// answers: the audit fails closed, so an operation whose record can't be
// written is reported as failed (EUnavailable) even though it ran. Any
// other caller gets EForbidden, recorded too.
func (s *Service) AdminOp(ctx context.Context, action envy.AuditAction, names []string, op func(ctx context.Context) error) error {
	if err := s.requireGlobalAdmin(ctx, action); err != nil {
		return err
	}
	rec, err := s.toStreams(1)
	if err != nil {
		return err
	}
	opErr := op(ctx)
	outcome := envy.OutcomeOK
	if opErr != nil {
		outcome = envy.OutcomeFailed
		if envy.ErrorCode(opErr) == envy.EConflict {
			outcome = envy.OutcomeConflict
		}
	}
	if err := s.recordDone(ctx, rec, s.entry(ctx, action, "", names, outcome)); err != nil && opErr == nil {
		return envy.Errorf(envy.EUnavailable, "%s ran, but its audit entry could not be written", action)
	}
	return opErr
}

// recordDone appends e, the entry of something done already (an admin
// operation, a rollout's resume), to the store, durably, even when the
// caller went away meanwhile (a backup cut short after most of it went
// out), and hands it to the streams, whose room rec reserved before it
// was done. Its error is the store's, logged.
func (s *Service) recordDone(ctx context.Context, rec streamed, e envy.AuditEntry) error {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditAppendTimeout)
	defer cancel()
	err := s.store.AppendAudit(actx, e)
	if err != nil {
		s.log.Error("an audit entry of something done was not written", "action", e.Action, "scope", e.Scope, "err", err)
	}
	rec.done(nil, 0, e)
	return err
}

// RequireAdmin checks that the caller holds admin on every scope, as
// AdminOp does, so that an API can refuse before it reads a body. A
// refusal is recorded as action.
func (s *Service) RequireAdmin(ctx context.Context, action envy.AuditAction) error {
	return s.requireGlobalAdmin(ctx, action)
}
