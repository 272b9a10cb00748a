// Package web is envy's dashboard: server-rendered pages (html/template)
// with a little plain JavaScript, all embedded, served at /ui/ beside the
// native API and behind the same middleware (request id, access log,
// metrics, recovery, authentication with its rate limits and the audit of
// refusals).
//
// A user signs in with an envy token; the dashboard keeps it in a
// server-side session named by an HttpOnly, SameSite=Strict cookie and
// authenticates it again on every request, so a revoked or expired token
// ends its session at once. Every page calls the same service.Service methods
// as the API with the caller in the context: what a user sees and may do is
// what the token permits, decided by the service and nowhere else.
//
// Every form carries a per-session CSRF token, and cross-origin POSTs are
// refused before they reach a handler (net/http's CrossOriginProtection).
// Pages are served with a strict Content-Security-Policy: scripts and
// styles only from /ui/static/, no inline script or style.
package web

import (
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/http/wire"
	"github.com/envy-dev/envy/internal/opt"
	"github.com/envy-dev/envy/service"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is where the dashboard is mounted.
const Prefix = "/ui/"

// Defaults of Options.
const (
	DefaultSessionIdle = 30 * time.Minute
	DefaultSessionMax  = 12 * time.Hour
	DefaultRevealFor   = 30 * time.Second
	// A token's sessions kept by one server; beyond, its oldest end.
	DefaultMaxSessionsPerToken = 16
	// A token's pending import previews; beyond, its oldest end.
	DefaultMaxImportsPerToken = 2
	// Bytes of pending import previews, all sessions (503 beyond).
	DefaultImportBytes = 64 << 20
)

// Options configure the dashboard. Zero fields take the defaults.
type Options struct {
	// Secure marks the session cookie Secure even when a request did not
	// come over TLS (say, behind a TLS-terminating proxy). Requests over
	// TLS always get Secure cookies.
	Secure bool
	// SessionIdle ends a session unused for this long.
	SessionIdle time.Duration
	// SessionMax ends a session this long after sign-in, however used.
	SessionMax time.Duration
	// RevealFor is how long a revealed secret stays shown on a page.
	RevealFor time.Duration
	// StatusEvery is how often the sync page's event stream looks for new
	// consumer reports (changes arrive at once from the watch stream).
	StatusEvery time.Duration
	// Now is the clock of sessions; nil is time.Now.
	Now func() time.Time
	// MaxSessionsPerToken bounds the sessions of one token that this
	// server keeps: signing in beyond ends the token's oldest session.
	MaxSessionsPerToken int
	// MaxImportsPerToken bounds the pending import previews of one token:
	// a preview beyond ends the token's oldest.
	MaxImportsPerToken int
	// ImportBytes bounds the bytes that all pending import previews hold
	// (their pasted values); a preview beyond is refused (503).
	ImportBytes int64
}

// Handler serves the dashboard.
type Handler struct {
	svc      *service.Service
	api      *envyhttp.Server
	opts     Options
	log      *slog.Logger
	sessions *sessions
	pages    map[string]*template.Template
	static   http.Handler
	handler  http.Handler
	sync     syncCache // the scope list's sync column
}

// Mount serves the dashboard at /ui/ on api's mux, behind api's middleware.
func Mount(api *envyhttp.Server, svc *service.Service, opts Options) *Handler {
	h := New(api, svc, opts)
	api.Handle(Prefix, h)
	return h
}

// New returns the dashboard's handler, for paths under /ui/. Mount it on
// api with api.Handle (as Mount does), so that it is behind api's
// middleware.
func New(api *envyhttp.Server, svc *service.Service, opts Options) *Handler {
	opt.Default(&opts.SessionIdle, DefaultSessionIdle)
	opt.Default(&opts.SessionMax, DefaultSessionMax)
	opt.Default(&opts.RevealFor, DefaultRevealFor)
	opt.Default(&opts.StatusEvery, 2*time.Second)
	opt.Default(&opts.MaxSessionsPerToken, DefaultMaxSessionsPerToken)
	opt.Default(&opts.MaxImportsPerToken, DefaultMaxImportsPerToken)
	opt.Default(&opts.ImportBytes, DefaultImportBytes)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h := &Handler{
		svc:      svc,
		api:      api,
		opts:     opts,
		log:      api.Logger(),
		sessions: newSessions(svc, api.Logger(), opts),
		pages:    parsePages(),
	}
	sub, _ := fs.Sub(staticFS, "static")
	h.static = http.StripPrefix(Prefix+"static/", http.FileServerFS(sub))
	h.handler = h.routes()
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w)
	h.handler.ServeHTTP(w, r)
}

// csp allows scripts, styles, images and connections from this origin
// only, no inline script or style, no framing, forms posting only here.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func setSecurityHeaders(w http.ResponseWriter) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", csp)
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
}

func (h *Handler) routes() http.Handler {
	public := http.NewServeMux()
	public.HandleFunc("GET /ui/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix+"scopes", http.StatusSeeOther)
	})
	public.HandleFunc("GET /ui/static/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		h.static.ServeHTTP(w, r)
	})
	public.HandleFunc("GET /ui/signin", h.signInPage)
	public.HandleFunc("POST /ui/signin", h.signIn)
	public.HandleFunc("GET /ui/oidc/{name}/start", h.oidcStart)
	public.HandleFunc("GET /ui/oidc/{name}/callback", h.oidcCallback)

	private := http.NewServeMux()
	private.HandleFunc("POST /ui/signout", h.signOut)
	private.HandleFunc("GET /ui/scopes", h.scopesPage)
	private.HandleFunc("POST /ui/scopes", h.createScope)
	private.Handle("/ui/scopes/{path...}", h.scopeRoutes())
	private.HandleFunc("GET /ui/tokens", h.tokensPage)
	private.HandleFunc("POST /ui/tokens", h.createToken)
	private.HandleFunc("POST /ui/tokens/{id}/revoke", h.revokeToken)
	private.HandleFunc("GET /ui/audit", h.auditPage)
	private.HandleFunc("GET /ui/webhooks", h.webhooksPage)
	private.HandleFunc("GET /ui/webhooks/{id}", h.webhookPage)
	private.HandleFunc("/ui/", h.notFound)
	authed := h.withSession(h.api.RequireToken(sessionToken, h.authFailed)(h.checkCSRF(private)))
	public.Handle("/ui/", authed)

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.renderError(w, r, http.StatusForbidden, "This form was sent from another site, so it was refused.")
	}))
	return cop.Handler(public)
}

// scopeRoutes serves /ui/scopes/<scope path>[/-/<page>], split at "/-/"
// as the API splits its paths. Each handler is given the scope path.
func (h *Handler) scopeRoutes() *wire.ScopeMux {
	m := &wire.ScopeMux{
		NotFound: h.notFound,
		MethodNotAllowed: func(w http.ResponseWriter, r *http.Request, _ []string) {
			h.renderError(w, r, http.StatusMethodNotAllowed, "This page does not take that method.")
		},
	}
	for _, rt := range []struct {
		method, template string
		h                func(w http.ResponseWriter, r *http.Request, scope string)
	}{
		{"GET", "", h.scopePage},
		{"GET", "/-/", h.scopePage}, // a "/-/" with no page after it is the scope's page too
		{"POST", "/-/vars", h.setVar},
		{"POST", "/-/vars/delete", h.deleteVar},
		{"POST", "/-/reveal", h.reveal},
		{"POST", "/-/settings", h.scopeSettings},
		{"POST", "/-/rollout", h.rolloutSettings},
		{"POST", "/-/rollout/resume", h.rolloutResume},
		{"POST", "/-/import", h.importPreview},
		{"POST", "/-/import/apply", h.importApply},
		{"GET", "/-/history", h.historyPage},
		{"GET", "/-/rollback", h.rollbackPage},
		{"POST", "/-/rollback", h.rollback},
		{"GET", "/-/sync", h.syncPage},
		{"GET", "/-/events", h.events},
	} {
		m.Handle(rt.method, rt.template, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rt.h(w, r, r.PathValue("path"))
		}))
	}
	return m
}

// notFound answers a path that no page serves.
func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	h.renderError(w, r, http.StatusNotFound, "There is no such page.")
}
