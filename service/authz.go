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

// authorize checks that the caller may do a on scope: ENotFound when it
// can't see the scope at all, EForbidden when it sees it but may not do a.
// Refusals are audited.
func (s *Service) authorize(ctx context.Context, a envy.Action, scope, action string) error {
	t := CallerFrom(ctx).Token
	if t == nil {
		return envy.Errorf(envy.EUnauthenticated, "authentication required")
	}
	if envy.Can(t, a, scope) {
		return nil
	}
	if !envy.Visible(t, scope) {
		s.Refused(ctx, action, scope, 404)
		return scopeNotFound(scope)
	}
	s.Refused(ctx, action, scope, 403)
	return envy.Errorf(envy.EForbidden, "token may not %s scope %s", a, scope)
}

// readAuth checks read, and reveal when asked, and records the reveal.
func (s *Service) readAuth(ctx context.Context, path, action string, names []string, reveal bool) error {
	if err := validPath(path); err != nil {
		return err
	}
	if err := s.authorize(ctx, envy.ActRead, path, action); err != nil {
		return err
	}
	if reveal {
		if err := s.authorize(ctx, envy.ActReveal, path, "reveal"); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) requireGlobalAdmin(ctx context.Context, action string) error {
	t := CallerFrom(ctx).Token
	if t == nil {
		return envy.Errorf(envy.EUnauthenticated, "authentication required")
	}
	if !envy.IsGlobalAdmin(t) {
		s.Refused(ctx, action, "", 403)
		return envy.Errorf(envy.EForbidden, "%s needs the admin permission on **", action)
	}
	return nil
}
