package service

import (
	"context"

	"github.com/envy-dev/envy"
)

// Visible reports whether the caller holds any grant on the scope, that
// is whether a missing scope should read as empty rather than as hidden.
func (s *Service) Visible(ctx context.Context, path string) bool {
	return envy.Visible(CallerFrom(ctx).Token, path)
}

// Can reports whether the caller in ctx may do a on scope, as the
// service's own checks would decide, without recording anything: for a
// dialect that must know before it acts (say, to answer a dry run or to
// choose between a read and a write path). The service still checks each
// call on its own.
func (s *Service) Can(ctx context.Context, a envy.Action, scope string) bool {
	return envy.Can(CallerFrom(ctx).Token, a, scope)
}

// Authorize decides whether the caller may do a on scope, for every use-case
// and every API that refuses before it reads a body (the one place where
// this is decided): EUnauthenticated without a token, ENotFound when the
// caller can't see the scope at all (a scope it may not see is answered as
// missing), EForbidden when it sees it but may not do a. A refusal is
// recorded in the audit log as action.
func (s *Service) Authorize(ctx context.Context, a envy.Action, scope string, action envy.AuditAction) error {
	t := CallerFrom(ctx).Token
	if t == nil {
		return envy.Errorf(envy.EUnauthenticated, "authentication required")
	}
	if envy.Can(t, a, scope) {
		return nil
	}
	// A token whose check was left to a write is checked before its
	// refusal is recorded.
	if err := s.ConfirmToken(ctx); err != nil {
		return err
	}
	if !envy.Visible(t, scope) {
		s.Refused(ctx, action, scope, envy.OutcomeNotFound)
		return scopeNotFound(scope)
	}
	s.Refused(ctx, action, scope, envy.OutcomeForbidden)
	return envy.Errorf(envy.EForbidden, "token may not %s scope %s", a, scope)
}

// readAuth checks read, and reveal when asked, and records the reveal.
func (s *Service) readAuth(ctx context.Context, path string, action envy.AuditAction, names []string, reveal bool) error {
	if err := validPath(path); err != nil {
		return err
	}
	if err := s.Authorize(ctx, envy.ActRead, path, action); err != nil {
		return err
	}
	if reveal {
		if err := s.Authorize(ctx, envy.ActReveal, path, envy.AuditReveal); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) requireGlobalAdmin(ctx context.Context, action envy.AuditAction) error {
	t := CallerFrom(ctx).Token
	if t == nil {
		return envy.Errorf(envy.EUnauthenticated, "authentication required")
	}
	if !envy.IsGlobalAdmin(t) {
		s.Refused(ctx, action, "", envy.OutcomeForbidden)
		return envy.Errorf(envy.EForbidden, "%s needs the admin permission on **", action)
	}
	return nil
}
