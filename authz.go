package envy

import "strings"

// MaxGrants bounds the grants (permissions) given to a token, a JWT trust
// or one role of an OIDC provider: more is refused (422 too_many naming
// the field), and so is an action given twice in one grant
// (duplicate_action). Checking that a creator holds what it grants costs
// the product of both counts of grants, and every request a token makes
// costs its count. Tokens stored before the bound keep working.
const MaxGrants = 64

// The permission rules: what a token may do on a scope. They are pure
// predicates; the decision a request gets, and the audit of a refusal,
// are the service's (service.Service.Authorize).

// GrantAllows reports whether grant g allows action a, on the scopes it
// matches: reveal implies read; admin implies everything.
func GrantAllows(g Grant, a Action) bool {
	for _, x := range g.Actions {
		if x == a || x == ActAdmin || (a == ActRead && x == ActReveal) {
			return true
		}
	}
	return false
}

// Can reports whether the token may do a on scope. Reveal implies read;
// admin implies everything.
func Can(t *Token, a Action, scope string) bool {
	if t == nil {
		return false
	}
	for _, g := range t.Permissions {
		if GrantAllows(g, a) && MatchGlob(g.Scopes, scope) {
			return true
		}
	}
	return false
}

// Visible reports whether the token holds any grant on scope; a scope it
// can't see is answered as missing.
func Visible(t *Token, scope string) bool {
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

// IsGlobalAdmin reports whether the token holds admin over every scope.
func IsGlobalAdmin(t *Token) bool {
	if t == nil {
		return false
	}
	for _, g := range t.Permissions {
		if g.Scopes == "**" && GrantAllows(g, ActAdmin) {
			return true
		}
	}
	return false
}

// Holds reports whether the token holds action a on every scope glob g matches.
func Holds(t *Token, g string, a Action) bool {
	for _, own := range t.Permissions {
		if GrantAllows(own, a) && globCovers(own.Scopes, g) {
			return true
		}
	}
	return false
}

// ValidAction reports whether a is one of the actions.
func ValidAction(a Action) bool {
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
	return matchSegs(segs{s: glob}, segs{s: path}, false)
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

// matchSegs matches glob g against path p in time linear in their
// product: "*" and literal segments match one segment each, "**" any run
// of them. A mismatch goes back only to the last "**" seen, one segment
// further along the path (the classic two-pointer wildcard match): any
// match that an earlier "**" could find, the last one finds too, so no
// split is tried twice. cover matches a glob against a glob instead (see
// globCovers): a "*" of g never matches a "**" of p, a literal only the
// same literal.
func matchSegs(g, p segs, cover bool) bool {
	var starG, starP segs
	star := false
	for {
		if !g.done {
			head, grest := g.next()
			if head == "**" {
				if grest.done {
					return true
				}
				// Runs of "**" collapse: each resets the retry point.
				star, starG, starP = true, grest, p
				g = grest
				continue
			}
			if !p.done {
				seg, prest := p.next()
				if segMatches(head, seg, cover) {
					g, p = grest, prest
					continue
				}
			}
		} else if p.done {
			return true
		}
		if !star || starP.done {
			return false
		}
		_, starP = starP.next()
		g, p = starG, starP
	}
}

// segMatches reports whether glob segment head (not "**") matches segment
// seg: of a path, or of a glob when cover is set.
func segMatches(head, seg string, cover bool) bool {
	if !cover {
		return head == "*" || head == seg
	}
	if seg == "**" {
		return false
	}
	return head == "*" || head == seg && seg != "*"
}

// globCovers reports whether every path that glob a matches is matched by
// glob b, treating a's wildcards as what they may match.
func globCovers(b, a string) bool {
	return matchSegs(segs{s: b}, segs{s: a}, true)
}
