package web

import (
	"bytes"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/envy-dev/envy"
	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/http/wire"
	"github.com/envy-dev/envy/service"
)

// view is what every page template gets.
type view struct {
	Title   string
	Section string // the nav entry to mark current
	CSRF    string
	Who     string
	Admin   bool // the token holds admin on every scope: the admin pages show
	Error   string
	Fields  []envy.FieldError
	Flash   string
	Data    any
}

var funcs = template.FuncMap{
	"auditStatus": envyhttp.AuditStatus,
	// scopeURL is the dashboard URL of a scope's page, or of one of its
	// sub-pages ("history", "sync", …).
	"scopeURL": scopeURL,
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"query": func(kv ...string) string {
		q := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] != "" {
				q.Set(kv[i], kv[i+1])
			}
		}
		return q.Encode()
	},
	"join":   strings.Join,
	"plural": plural,
	"sub":    func(a, b int) int { return a - b },
	"deref": func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	},
}

func depthClass(path string) string {
	d := strings.Count(path, "/")
	if d > 6 {
		d = 6
	}
	return "depth-" + strconv.Itoa(d)
}

func leaf(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		return path[i+1:]
	}
	return path
}

func scopeURL(path string, tail ...string) string {
	u := Prefix + "scopes/" + path
	if len(tail) > 0 && tail[0] != "" {
		u += "/-/" + tail[0]
	}
	return u
}

// parsePages parses each page template with the layout.
func parsePages() map[string]*template.Template {
	layout := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html"))
	names, _ := fs.Glob(templateFS, "templates/*.html")
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		pages[base] = template.Must(template.Must(layout.Clone()).ParseFS(templateFS, n))
	}
	return pages
}

// liveHeader marks the requests of a page's live update.
const liveHeader = "X-Envy-Live"

// render writes a page, filling in what every page shows: the CSRF token,
// who is signed in and a flash message left by the last form.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, v *view) {
	if s := sessionFrom(r.Context()); s != nil {
		v.CSRF = s.csrf
		// A page's live update (app.js) fetches it again: the message
		// left for the next page is not its to take.
		var f *flash
		if r.Header.Get(liveHeader) == "" {
			f = s.takeFlash()
		}
		switch {
		case f == nil:
		case f.Error && v.Error == "":
			v.Error, v.Fields = f.Text, f.Fields
		case !f.Error:
			v.Flash = f.Text
		}
	}
	if t := service.CallerFrom(r.Context()).Token; t != nil {
		v.Who = t.Name
		v.Admin = h.svc.Can(r.Context(), envy.ActAdmin, "**")
	}
	var buf bytes.Buffer
	if err := h.pages[name].ExecuteTemplate(&buf, "layout", v); err != nil {
		h.log.ErrorContext(r.Context(), "web: template", "page", name, "error", err.Error(),
			"request_id", service.CallerFrom(r.Context()).RequestID)
		http.Error(w, "Internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (h *Handler) renderError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	h.render(w, r, status, "error", &view{Title: http.StatusText(status), Section: "error", Error: msg, Data: status})
}

// fail renders a service error as a page with the right status; internal
// errors are logged and shown without their text.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if envy.AsError(err) == nil {
		h.log.ErrorContext(r.Context(), "web: internal error", "error", err.Error(),
			"request_id", service.CallerFrom(r.Context()).RequestID)
	}
	status := statusOf(err)
	h.render(w, r, status, "error", &view{Title: http.StatusText(status), Section: "error", Error: envy.ErrorMessage(err), Fields: envy.ErrorFields(err), Data: status})
}

// back sends the browser to url after a form, with a message for it.
func (h *Handler) back(w http.ResponseWriter, r *http.Request, to string, f *flash) {
	if s := sessionFrom(r.Context()); s != nil && f != nil {
		s.setFlash(f)
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// backErr sends the browser back to url with err as the message.
func (h *Handler) backErr(w http.ResponseWriter, r *http.Request, to string, err error) {
	if envy.AsError(err) == nil {
		h.log.ErrorContext(r.Context(), "web: internal error", "error", err.Error(),
			"request_id", service.CallerFrom(r.Context()).RequestID)
	}
	h.back(w, r, to, &flash{Error: true, Text: envy.ErrorMessage(err), Fields: envy.ErrorFields(err)})
}

// statusOf is the HTTP status of err, as the API answers it.
func statusOf(err error) int { return wire.Status(envy.ErrorCode(err)) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
