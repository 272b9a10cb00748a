package envy

import (
	"context"
	"strings"
)

// Visible reports whether the caller holds any grant on the scope, that
// is whether a missing scope should read as empty rather than as hidden.
func (s *Service) Visible(ctx context.Context, path string) bool {
	return visible(CallerFrom(ctx).Token, path)
}

// Can reports whether the caller in ctx may do a on scope, as the
// service's own checks would decide, without recording anything: for a
// dialect that must know before it acts (say, to answer a dry run or to
// choose between a read and a write path). The service still checks each
// call on its own.
func (s *Service) Can(ctx context.Context, a Action, scope string) bool {
	return can(CallerFrom(ctx).Token, a, scope)
}

func grantAllows(g Grant, a Action) bool {
	for _, x := range g.Actions {
		if x == a || x == ActAdmin || (a == ActRead && x == ActReveal) {
			return true
		}
	}
	return false
}

// can reports whether the token may do a on scope. Reveal implies read;
// admin implies everything.
func can(t *Token, a Action, scope string) bool {
	if t == nil {
		return false
	}
	for _, g := range t.Permissions {
		if grantAllows(g, a) && MatchGlob(g.Scopes, scope) {
			return true
		}
	}
	return false
}

// visible reports whether the token holds any grant on scope; a scope it
// can't see is answered as missing.
func visible(t *Token, scope string) bool {
	if t == nil {
		return false
	}
	for _, g := range t.Permissions {
		if len(g.Actions) > 0 && MatchGlob(g.Scopes, scope) {
			return true
		}
	}
	return false
}

// isGlobalAdmin reports whether the token holds admin over every scope.
func isGlobalAdmin(t *Token) bool {
	if t == nil {
		return false
	}
	for _, g := range t.Permissions {
		if g.Scopes == "**" && grantAllows(g, ActAdmin) {
			return true
		}
	}
	return false
}

// authorize checks that the caller may do a on scope: ENotFound when it
// can't see the scope at all, EForbidden when it sees it but may not do a.
// Refusals are audited.
func (s *Service) authorize(ctx context.Context, a Action, scope, action string) error {
	t := CallerFrom(ctx).Token
	if t == nil {
		return Errorf(EUnauthenticated, "authentication required")
	}
	if can(t, a, scope) {
		return nil
	}
	if !visible(t, scope) {
		s.Refused(ctx, action, scope, 404)
		return scopeNotFound(scope)
	}
	s.Refused(ctx, action, scope, 403)
	return Errorf(EForbidden, "token may not %s scope %s", a, scope)
}

// readAuth checks read, and reveal when asked, and records the reveal.
func (s *Service) readAuth(ctx context.Context, path, action string, names []string, reveal bool) error {
	if err := validPath(path); err != nil {
		return err
	}
	if err := s.authorize(ctx, ActRead, path, action); err != nil {
		return err
	}
	if reveal {
		if err := s.authorize(ctx, ActReveal, path, "reveal"); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) requireGlobalAdmin(ctx context.Context, action string) error {
	t := CallerFrom(ctx).Token
	if t == nil {
		return Errorf(EUnauthenticated, "authentication required")
	}
	if !isGlobalAdmin(t) {
		s.Refused(ctx, action, "", 403)
		return Errorf(EForbidden, "%s needs the admin permission on **", action)
	}
	return nil
}

// holds reports whether the token holds action a on every scope glob g matches.
func holds(t *Token, g string, a Action) bool {
	for _, own := range t.Permissions {
		if grantAllows(own, a) && globCovers(own.Scopes, g) {
			return true
		}
	}
	return false
}

func validAction(a Action) bool {
	switch a {
	case ActRead, ActWrite, ActReveal, ActAdmin:
		return true
	}
	return false
}

// MatchGlob reports whether a scope path matches a glob: "*" matches one
// segment, "**" any number of segments, none included.
func MatchGlob(glob, path string) bool {
	// Every request checks a few globs: walk the segments in place rather
	// than split both strings.
	return matchSegs(segs{s: glob}, segs{s: path})
}

// segs is what is left of a path's segments, as strings.Split would give
// them: "" is one empty segment; done, none.
type segs struct {
	s    string
	done bool
}

func (x segs) next() (string, segs) {
	if i := strings.IndexByte(x.s, '/'); i >= 0 {
		return x.s[:i], segs{s: x.s[i+1:]}
	}
	return x.s, segs{done: true}
}

func matchSegs(g, p segs) bool {
	for !g.done {
		head, rest := g.next()
		if head == "**" {
			if rest.done {
				return true
			}
			for q := p; ; _, q = q.next() {
				if matchSegs(rest, q) {
					return true
				}
				if q.done {
					return false
				}
			}
		}
		if p.done {
			return false
		}
		seg, prest := p.next()
		if head != "*" && head != seg {
			return false
		}
		g, p = rest, prest
	}
	return p.done
}

// globCovers reports whether every path that glob a matches is matched by
// glob b, treating a's wildcards as what they may match.
func globCovers(b, a string) bool {
	return coverSegs(strings.Split(b, "/"), strings.Split(a, "/"))
}

func coverSegs(b, a []string) bool {
	if len(b) == 0 {
		return len(a) == 0
	}
	if b[0] == "**" {
		for i := 0; i <= len(a); i++ {
			if coverSegs(b[1:], a[i:]) {
				return true
			}
		}
		return false
	}
	if len(a) == 0 || a[0] == "**" {
		return false
	}
	if b[0] == "*" || b[0] == a[0] && a[0] != "*" {
		return coverSegs(b[1:], a[1:])
	}
	return false
}
