package wire

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// scopeMuxServer is a ScopeMux under "/p/{path...}" whose handlers and
// refusals write what they were given: the route's name and its path
// values, "404 <path>", or "405 <allowed methods>".
func scopeMuxServer(emptyTail bool) http.Handler {
	m := &ScopeMux{
		NotFound: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte("404 path=" + r.PathValue("path")))
		},
		MethodNotAllowed: func(w http.ResponseWriter, r *http.Request, allow []string) {
			w.WriteHeader(http.StatusMethodNotAllowed)
			_, _ = w.Write([]byte("405 " + strings.Join(allow, ",")))
		},
	}
	route := func(name string, values ...string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			out := name + " path=" + r.PathValue("path")
			for _, v := range values {
				out += " " + v + "=" + r.PathValue(v)
			}
			_, _ = w.Write([]byte(out))
		})
	}
	m.Handle("GET", "", route("scope"))
	m.Handle("PUT", "", route("put-scope"))
	m.Handle("GET", "/-/vars", route("vars"))
	m.Handle("PATCH", "/-/vars", route("merge-vars"))
	m.Handle("GET", "/-/vars/{name}", route("var", "name"))
	m.Handle("DELETE", "/-/vars/{name}", route("delete-var", "name"))
	m.Handle("PUT", "/-/consumers/{id}", route("consumer", "id"))
	m.Handle("POST", "/-/import/apply", route("apply"))
	m.Handle("POST", "/-/import/{step}", route("import", "step"))
	m.Handle("POST", "/-/rollback", route("rollback"))
	if emptyTail {
		m.Handle("GET", "/-/", route("empty-tail"))
	}
	mux := http.NewServeMux()
	mux.Handle("/p/{path...}", m)
	return mux
}

func TestScopeMux(t *testing.T) {
	cases := []struct {
		method, path string
		emptyTail    bool
		want         string
	}{
		// The scope itself, and the split at "/-/".
		{"GET", "/p/acme/web", false, "scope path=acme/web"},
		{"PUT", "/p/acme/web", false, "put-scope path=acme/web"},
		{"GET", "/p/acme/web/-/vars", false, "vars path=acme/web"},
		{"PATCH", "/p/acme/web/-/vars", false, "merge-vars path=acme/web"},
		{"GET", "/p/acme/web/-/vars/PORT", false, "var path=acme/web name=PORT"},
		{"DELETE", "/p/acme/web/-/vars/PORT", false, "delete-var path=acme/web name=PORT"},
		{"PUT", "/p/a/-/consumers/web-1", false, "consumer path=a id=web-1"},
		// HEAD is served as GET.
		{"HEAD", "/p/acme/web", false, "scope path=acme/web"},
		{"HEAD", "/p/acme/web/-/vars/PORT", false, "var path=acme/web name=PORT"},
		// The first route that matches serves, literal before "{step}".
		{"POST", "/p/a/-/import/apply", false, "apply path=a"},
		{"POST", "/p/a/-/import/preview", false, "import path=a step=preview"},
		// Scope paths with segments of their own made of "-": only a
		// segment that is "-" alone splits.
		{"GET", "/p/-/x/-/vars", false, "vars path=-/x"},
		{"GET", "/p/a/--/-b/c-/-/vars/N", false, "var path=a/--/-b/c- name=N"},
		{"GET", "/p/acme/-", false, "scope path=acme/-"},
		{"GET", "/p/acme/-/-/vars", false, "404 path=acme/-/-/vars"}, // the tail is "-/vars"
		{"GET", "/p/a/-/vars/-/x", false, "404 path=a/-/vars/-/x"},
		{"GET", "/p/", false, "scope path="},
		// An empty tail matches "/-/" and nothing else.
		{"GET", "/p/acme/-/", false, "404 path=acme/-/"},
		{"GET", "/p/acme/-/", true, "empty-tail path=acme"},
		{"PUT", "/p/acme/-/", true, "405 GET"},
		// A "{name}" segment is one segment, never empty.
		{"GET", "/p/acme/-/vars/", false, "404 path=acme/-/vars/"},
		{"GET", "/p/acme/-/vars/A/B", false, "404 path=acme/-/vars/A/B"},
		{"GET", "/p/acme/-/nope", false, "404 path=acme/-/nope"},
		{"GET", "/p/acme/-/VARS", false, "404 path=acme/-/VARS"},
		// 405 names the methods the path is served with, in route order.
		{"DELETE", "/p/acme/-/vars", false, "405 GET,PATCH"},
		{"POST", "/p/acme", false, "405 GET,PUT"},
		{"PUT", "/p/acme/-/vars/X", false, "405 GET,DELETE"},
		{"HEAD", "/p/acme/-/rollback", false, "405 POST"},
		{"GET", "/p/acme/-/consumers/c", false, "405 PUT"},
	}
	for _, c := range cases {
		h := scopeMuxServer(c.emptyTail)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(c.method, c.path, nil))
		if got := rec.Body.String(); got != c.want {
			t.Errorf("%s %s (empty tail route %v) = %q, want %q", c.method, c.path, c.emptyTail, got, c.want)
		}
		wantStatus := http.StatusOK
		switch {
		case strings.HasPrefix(c.want, "404 "):
			wantStatus = http.StatusNotFound
		case strings.HasPrefix(c.want, "405 "):
			wantStatus = http.StatusMethodNotAllowed
		}
		if rec.Code != wantStatus {
			t.Errorf("%s %s: status %d, want %d", c.method, c.path, rec.Code, wantStatus)
		}
	}
}

func TestScopeMuxHandleRefusesTemplate(t *testing.T) {
	for _, tmpl := range []string{"vars", "/vars", "-/vars", "/-"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Handle(%q) did not panic", tmpl)
				}
			}()
			new(ScopeMux).Handle("GET", tmpl, http.NotFoundHandler())
		}()
	}
}
