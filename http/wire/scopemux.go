package wire

import (
	"net/http"
	"strings"
)

// ScopeMux routes the paths that start with a scope path, such as
// "/v1/scopes/acme/web/-/vars/PORT". A scope path has slashes of its own,
// so no ServeMux pattern can tell where it ends: it ends at the first
// "/-/", and what follows it (the tail) names the route. A ScopeMux is
// registered on a ServeMux under a pattern ending in "{path...}", such as
// "/v1/scopes/{path...}", and reads that "path" value.
//
// A route is a method and a template of what follows the scope path: ""
// for the scope itself, or "/-/" and segments, each literal or "{name}".
// A "{name}" segment matches any non-empty segment. "/-/" alone matches a
// separator with nothing after it.
//
// The route served is the first registered whose template matches and
// whose method is the request's (HEAD is served as GET). Before it runs,
// the "path" value is set to the scope path and each "{name}" of its
// template to its segment. The zero ScopeMux is ready for routes, but its
// NotFound and MethodNotAllowed must be set before it serves.
type ScopeMux struct {
	// NotFound answers a path that no template matches.
	NotFound http.HandlerFunc
	// MethodNotAllowed answers a path that some template matches, but
	// with no route for the request's method; allow lists the methods
	// that path is served with, in the order of their routes.
	MethodNotAllowed func(w http.ResponseWriter, r *http.Request, allow []string)

	routes []scopeRoute
}

type scopeRoute struct {
	method string
	tail   []string // the template's segments after "/-/"; nil for the scope itself
	h      http.Handler
}

// Handle registers h for method and template. It panics when the template
// is neither "" nor starts with "/-/".
func (m *ScopeMux) Handle(method, template string, h http.Handler) {
	var tail []string
	if template != "" {
		rest, ok := strings.CutPrefix(template, "/-/")
		if !ok {
			panic("wire: scope route template " + template + ` is neither "" nor starts with "/-/"`)
		}
		tail = strings.Split(rest, "/")
	}
	m.routes = append(m.routes, scopeRoute{method: method, tail: tail, h: h})
}

func (m *ScopeMux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	scope, tail, hasTail := strings.Cut(r.PathValue("path"), "/-/")
	var buf [8]string
	var segs []string
	if hasTail {
		segs = appendSegments(buf[:0], tail)
	}
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	var allow []string
	for _, rt := range m.routes {
		if !matchTail(rt.tail, segs) {
			continue
		}
		if rt.method != method {
			allow = append(allow, rt.method)
			continue
		}
		r.SetPathValue("path", scope)
		for i, t := range rt.tail {
			if name, ok := param(t); ok {
				r.SetPathValue(name, segs[i])
			}
		}
		rt.h.ServeHTTP(w, r)
		return
	}
	if len(allow) > 0 {
		m.MethodNotAllowed(w, r, allow)
		return
	}
	m.NotFound(w, r)
}

// appendSegments appends the segments of tail, split at each "/", to segs.
func appendSegments(segs []string, tail string) []string {
	for {
		seg, rest, more := strings.Cut(tail, "/")
		segs = append(segs, seg)
		if !more {
			return segs
		}
		tail = rest
	}
}

// matchTail reports whether the segments after "/-/" match a template's.
func matchTail(tmpl, segs []string) bool {
	if len(tmpl) != len(segs) {
		return false
	}
	for i, t := range tmpl {
		if _, ok := param(t); ok {
			if segs[i] == "" {
				return false
			}
		} else if t != segs[i] {
			return false
		}
	}
	return true
}

// param returns the name of a "{name}" segment.
func param(seg string) (string, bool) {
	if len(seg) > 2 && seg[0] == '{' && seg[len(seg)-1] == '}' {
		return seg[1 : len(seg)-1], true
	}
	return "", false
}
