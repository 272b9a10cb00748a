package web

import (
	"strings"

	"github.com/envy-dev/envy"
)

// refLink is a reference in a value, as the scope page links it: to the
// scope it names, or to the page's own scope for ${NAME}.
type refLink struct {
	Text string // as written between the braces
	URL  string
}

// refLinks links the references of a var of scope path's env.
func refLinks(refs []string, path string) []refLink {
	out := make([]refLink, 0, len(refs))
	for _, r := range refs {
		target := path
		if k := strings.LastIndexByte(r, ':'); k >= 0 {
			target = r[:k]
		}
		out = append(out, refLink{Text: r, URL: scopeURL(target)})
	}
	return out
}

// addRefs gives the own rows the references of their vars, and the error
// of a reference that does not resolve.
func addRefs(rows []varRow, vars []envy.ResolvedVarView, path string) {
	by := make(map[string]*envy.ResolvedVarView, len(vars))
	for i := range vars {
		by[vars[i].Name] = &vars[i]
	}
	for i := range rows {
		if v := by[rows[i].Name]; v != nil {
			rows[i].Refs, rows[i].RefError = refLinks(v.References, path), v.RefError
		}
	}
}
