package envy

import "strings"

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
