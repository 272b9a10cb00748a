package web

import (
	"context"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/dotenv"
	"github.com/envy-dev/envy/service"
)

// The cookies. The session cookie names a server-side session; the
// sign-in cookie is the double-submit CSRF token of the sign-in form,
// which comes before any session.
const (
	sessionCookie = "envy_session"
	signInCookie  = "envy_signin"
)

// session is one signed-in browser. The store keeps it (envy.Session), so
// that every server sharing the store knows it and a restart keeps it: its
// id's hash, its token sealed, its CSRF token and when it was made and
// last used. It holds the token so that every request authenticates it
// again: a token revoked or expired ends the session on its next request.
//
// The flash message and the pending import stay in the memory of the
// server that made them: an import preview holds pasted plaintext values,
// which are never written to the database.
type session struct {
	id       string
	token    string
	tokenKey string // the token's hash, to count its sessions and previews
	csrf     string
	created  time.Time

	mu      sync.Mutex
	seen    time.Time // last used on this server, to forget what it keeps here
	flash   *flash
	pending *pendingImport
}

// flash is a message for the next page, after a form's redirect.
type flash struct {
	Text   string
	Error  bool
	Fields []envy.FieldError
}

// pendingImport is a pasted .env file between its preview and its apply:
// kept here, so that its values are not sent back to the browser.
type pendingImport struct {
	id        string
	scope     string
	revision  int64 // the scope's revision the preview was made against
	kvs       []dotenv.KV
	marked    dotenv.Flags // the vars the file marks secret ("# envy:secret")
	newSecret bool
	replace   bool      // the scope's own vars become exactly the file's (else merged)
	size      int64     // the bytes it holds, against Options.ImportBytes
	made      time.Time // the token's oldest preview ends first
}

// importSize is what a pending import's values and names hold, with a
// little for each var's bookkeeping.
func importSize(kvs []dotenv.KV) int64 {
	n := int64(0)
	for _, kv := range kvs {
		n += int64(len(kv.Name)+len(kv.Value)) + 64
	}
	return n
}

// touchEvery is how often, at most, a use of a session is written to the
// store (its used_at): not on every request. The idle expiry counts from
// the last use written, so it may come up to this much early.
const touchEvery = time.Minute

type sessions struct {
	svc       *service.Service
	log       *slog.Logger
	mu        sync.Mutex
	m         map[string]*session // what this server keeps of the sessions used here, by id
	idle, max time.Duration
	now       func() time.Time
	lastSweep time.Time

	perToken     int   // sessions of one token kept here (Options.MaxSessionsPerToken)
	importsPer   int   // pending imports of one token (Options.MaxImportsPerToken)
	importBytes  int64 // bytes of pending imports, all sessions (Options.ImportBytes)
	pendingBytes int64 // held now, under mu
}

func newSessions(svc *service.Service, log *slog.Logger, opts Options) *sessions {
	return &sessions{svc: svc, log: log, m: map[string]*session{}, idle: opts.SessionIdle, max: opts.SessionMax, now: opts.Now,
		perToken: opts.MaxSessionsPerToken, importsPer: opts.MaxImportsPerToken, importBytes: opts.ImportBytes}
}

// create stores a new session for token. At most once a minute, as get
// does, it first deletes the expired sessions, from the store and from
// this server.
func (ss *sessions) create(ctx context.Context, token string) (*session, error) {
	now := ss.now()
	ss.sweep(ctx, now)
	row, err := ss.svc.CreateSession(ctx, token, now)
	if err != nil {
		return nil, err
	}
	return ss.keep(ctx, row, now), nil
}

func (ss *sessions) sweep(ctx context.Context, now time.Time) {
	ss.mu.Lock()
	if now.Sub(ss.lastSweep) <= time.Minute {
		ss.mu.Unlock()
		return
	}
	ss.lastSweep = now
	for id, o := range ss.m {
		o.mu.Lock()
		gone := ss.expired(o.created, o.seen, now)
		o.mu.Unlock()
		if gone {
			ss.unkeepLocked(id, o)
		}
	}
	ss.mu.Unlock()
	// Once a minute, so a browser that goes away must not cancel it, as
	// drop's deletion is not.
	if n, err := ss.svc.PruneSessions(context.WithoutCancel(ctx), now.Add(-ss.idle), now.Add(-ss.max)); err != nil {
		ss.log.Warn("cannot delete expired dashboard sessions", "err", err)
	} else if n > 0 {
		ss.log.Info("deleted expired dashboard sessions", "sessions", n)
	}
}

// keep returns this server's session for row, made when it has none.
// A token keeps at most perToken sessions here: beyond, its oldest
// sessions end (in the store too), so that signing in again and again
// can't pile up what sessions hold.
func (ss *sessions) keep(ctx context.Context, row envy.BrowserSession, now time.Time) *session {
	var ended []string
	ss.mu.Lock()
	s := ss.m[row.ID]
	if s == nil {
		s = &session{id: row.ID, token: row.Token, tokenKey: string(envy.HashToken(row.Token)), csrf: row.CSRF, created: row.CreatedAt}
		var same []*session
		for _, o := range ss.m {
			if o.tokenKey == s.tokenKey {
				same = append(same, o)
			}
		}
		if ss.perToken > 0 && len(same) >= ss.perToken {
			sort.Slice(same, func(i, j int) bool { return same[i].created.Before(same[j].created) })
			for _, o := range same[:len(same)-ss.perToken+1] {
				ss.unkeepLocked(o.id, o)
				ended = append(ended, o.id)
			}
		}
		ss.m[row.ID] = s
	}
	ss.mu.Unlock()
	for _, id := range ended {
		ss.drop(ctx, id)
	}
	if len(ended) > 0 {
		ss.log.Info("ended a token's oldest dashboard sessions: it holds as many as it may (--max-sessions-per-token)",
			"sessions", len(ended), "max_sessions_per_token", ss.perToken)
	}
	s.mu.Lock()
	s.seen = now
	s.mu.Unlock()
	return s
}

// unkeepLocked forgets o, kept as id, and what its pending import held;
// ss.mu is held.
func (ss *sessions) unkeepLocked(id string, o *session) {
	delete(ss.m, id)
	o.mu.Lock()
	if o.pending != nil {
		ss.pendingBytes -= o.pending.size
		o.pending = nil
	}
	o.mu.Unlock()
}

// errImportsFull refuses a preview when pending imports hold
// Options.ImportBytes already.
var errImportsFull = &envy.Error{Code: envy.EUnavailable, RetryAfter: time.Minute,
	Message: "the server holds as many pending import previews as it may (--max-import-bytes): apply or wait for one, or import a smaller file"}

// holdImport makes p the pending import of s, in place of any it had. A
// token holds at most importsPer pending imports (its oldest ends
// first), and all sessions at most importBytes (errImportsFull beyond).
func (ss *sessions) holdImport(s *session, p *pendingImport) error {
	p.size, p.made = importSize(p.kvs), ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var mine []*session
	for _, o := range ss.m {
		if o != s && o.tokenKey == s.tokenKey {
			o.mu.Lock()
			if o.pending != nil {
				mine = append(mine, o)
			}
			o.mu.Unlock()
		}
	}
	s.mu.Lock()
	var had int64
	if s.pending != nil {
		had = s.pending.size
	}
	s.mu.Unlock()
	// The token's oldest previews end to make room for this one.
	var freed int64
	var ending []*session
	if ss.importsPer > 0 && len(mine) >= ss.importsPer {
		sort.Slice(mine, func(i, j int) bool { return mine[i].pending.made.Before(mine[j].pending.made) })
		ending = mine[:len(mine)-ss.importsPer+1]
		for _, o := range ending {
			freed += o.pending.size
		}
	}
	if ss.importBytes > 0 && ss.pendingBytes-had-freed+p.size > ss.importBytes {
		return errImportsFull
	}
	for _, o := range ending {
		o.mu.Lock()
		if o.pending != nil {
			ss.pendingBytes -= o.pending.size
			o.pending = nil
		}
		o.mu.Unlock()
	}
	s.mu.Lock()
	if s.pending != nil {
		ss.pendingBytes -= s.pending.size
	}
	s.pending = p
	ss.pendingBytes += p.size
	s.mu.Unlock()
	return nil
}

// takeImport takes the pending import of s with id for scope, if it is
// the one pending; nil otherwise.
func (ss *sessions) takeImport(s *session, id, scope string) *pendingImport {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pending
	if p == nil || p.id != id || p.scope != scope {
		return nil
	}
	s.pending = nil
	ss.pendingBytes -= p.size
	return p
}

func (ss *sessions) expired(created, used, now time.Time) bool {
	return now.Sub(used) > ss.idle || now.Sub(created) > ss.max
}

// load returns the stored session with id when it is live; nil when it is
// unknown or expired (an expired one is deleted).
func (ss *sessions) load(ctx context.Context, id string, now time.Time) (*envy.BrowserSession, error) {
	if id == "" {
		return nil, nil
	}
	row, err := ss.svc.Session(ctx, id)
	if envy.ErrorCode(err) == envy.ENotFound {
		ss.forget(id)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if ss.expired(row.CreatedAt, row.UsedAt, now) {
		ss.drop(ctx, id)
		return nil, nil
	}
	return &row, nil
}

// get returns the live session with id and marks it used; an expired one
// is dropped. It asks the store on every call, so that a session ended
// through another server ends here too.
func (ss *sessions) get(ctx context.Context, id string) (*session, error) {
	now := ss.now()
	// A server where no one signs in still forgets, once a minute, what
	// it keeps of expired sessions (a pending import holds plaintext).
	ss.sweep(ctx, now)
	row, err := ss.load(ctx, id, now)
	if row == nil || err != nil {
		return nil, err
	}
	if now.Sub(row.UsedAt) >= touchEvery {
		if err := ss.svc.TouchSession(ctx, id, now); err != nil {
			ss.log.Warn("cannot record a dashboard session's use", "err", err)
		}
	}
	return ss.keep(ctx, *row, now), nil
}

// alive reports whether the session is still there and not expired,
// without marking it used (for long-lived event streams).
func (ss *sessions) alive(ctx context.Context, s *session) bool {
	row, err := ss.load(ctx, s.id, ss.now())
	return row != nil && err == nil
}

// drop ends the session with id, in the store (so on every server) and
// here. A failure is logged: the cookie is cleared all the same, and the
// row ends by itself when it expires.
func (ss *sessions) drop(ctx context.Context, id string) {
	// A browser that goes away does not stop the deletion.
	if err := ss.svc.EndSession(context.WithoutCancel(ctx), id); err != nil {
		ss.log.Warn("cannot delete a dashboard session", "err", err)
	}
	ss.forget(id)
}

// forget drops what this server keeps of the session with id.
func (ss *sessions) forget(id string) {
	ss.mu.Lock()
	if o := ss.m[id]; o != nil {
		ss.unkeepLocked(id, o)
	}
	ss.mu.Unlock()
}

func (s *session) setFlash(f *flash) {
	s.mu.Lock()
	s.flash = f
	s.mu.Unlock()
}

func (s *session) takeFlash() *flash {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.flash
	s.flash = nil
	return f
}

type sessionKey struct{}

func sessionFrom(ctx context.Context) *session {
	s, _ := ctx.Value(sessionKey{}).(*session)
	return s
}

// withSession puts the request's live session, if any, in its context.
func (h *Handler) withSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var s *session
		if c, err := r.Cookie(sessionCookie); err == nil {
			if s, err = h.sessions.get(r.Context(), c.Value); err != nil {
				h.renderError(w, r, statusOf(err), envy.ErrorMessage(err))
				return
			}
		}
		if s != nil {
			r = r.WithContext(context.WithValue(r.Context(), sessionKey{}, s))
		}
		next.ServeHTTP(w, r)
	})
}

// sessionToken is the token RequireToken authenticates: the session's.
func sessionToken(r *http.Request) string {
	if s := sessionFrom(r.Context()); s != nil {
		return s.token
	}
	return ""
}

// authFailed answers a request whose session's token did not authenticate:
// the session ends, and the browser goes to the sign-in page saying why.
func (h *Handler) authFailed(w http.ResponseWriter, r *http.Request, err error) {
	if envy.ErrorCode(err) == envy.ERateLimited {
		if e := envy.AsError(err); e != nil && e.RetryAfter > 0 {
			w.Header().Set("Retry-After", itoa(int64(e.RetryAfter/time.Second)))
		}
		h.renderError(w, r, http.StatusTooManyRequests, "Too many requests; wait a moment and try again.")
		return
	}
	if envy.ErrorCode(err) != envy.EUnauthenticated {
		h.renderError(w, r, statusOf(err), envy.ErrorMessage(err))
		return
	}
	why := "signin"
	if s := sessionFrom(r.Context()); s != nil {
		h.sessions.drop(r.Context(), s.id)
		why = "ended"
	} else if _, err := r.Cookie(sessionCookie); err == nil {
		why = "expired"
	}
	h.clearCookie(w, r, sessionCookie)
	if r.Header.Get("Accept") == "text/event-stream" || r.Header.Get("Accept") == "application/json" {
		http.Error(w, "sign in again", http.StatusUnauthorized)
		return
	}
	q := url.Values{"why": {why}}
	if r.Method == http.MethodGet {
		q.Set("next", r.URL.RequestURI())
	}
	http.Redirect(w, r, Prefix+"signin?"+q.Encode(), http.StatusSeeOther)
}

// The largest form bodies read, as sent: a character of a value may take
// 4 bytes, each sent as 3 (%XX). Every form is read as an API body is
// (envyhttp.Server.ParseForm): within --body-timeout, holding room in
// --max-body-in-flight, and never more than --max-body.
const (
	// SignInFormBytes bounds the sign-in form: a token and a page to go
	// to.
	SignInFormBytes = 64 << 10
	// FormBytes bounds every form of a session but the import preview's:
	// room for a var's form, whose value and the value it was loaded
	// with (value_was) may each be envy.MaxValueLen characters, and
	// 64 KiB for the rest (names, descriptions, grants, inherits).
	FormBytes = 2*envy.MaxValueLen*4*3 + 64<<10
)

// postsImportPreview reports whether r posts the import preview's form, whose
// pasted file may be larger than FormBytes.
func postsImportPreview(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, Prefix+"scopes/") && strings.HasSuffix(r.URL.Path, "/-/import")
}

// formLimit is the largest form body r may send: an import preview's is
// the import's own bound (Options.ImportBytes, what all pending previews
// may hold: a larger file could never be held), every other form's
// FormBytes; --max-body bounds both.
func (h *Handler) formLimit(r *http.Request) int64 {
	if postsImportPreview(r) {
		return h.opts.ImportBytes
	}
	return FormBytes
}

// formFailed words a form that could not be read (ParseForm's error) for
// a page: too large names its limit, no room in the bytes in flight says
// when to retry.
func formFailed(w http.ResponseWriter, r *http.Request, err error) (int, string) {
	if e := envy.AsError(err); e != nil && e.RetryAfter > 0 {
		w.Header().Set("Retry-After", itoa(int64(max(time.Second, e.RetryAfter)/time.Second)))
	}
	msg := formError(err)
	if envy.ErrorCode(err) == envy.ETooLarge && postsImportPreview(r) {
		msg += " An import preview's pasted file may be no larger than --max-body and --max-import-bytes allow: paste a smaller file, or import it in parts."
	}
	return statusOf(err), msg
}

// checkCSRF refuses a POST whose form does not carry the session's CSRF
// token. It also bounds the body (formLimit).
func (h *Handler) checkCSRF(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			if err := h.api.ParseForm(w, r, h.formLimit(r)); err != nil {
				status, msg := formFailed(w, r, err)
				h.renderError(w, r, status, msg)
				return
			}
			s := sessionFrom(r.Context())
			if s == nil || !sameSecret(r.PostFormValue("csrf"), s.csrf) {
				h.renderError(w, r, http.StatusForbidden, "This form has expired or did not come from this dashboard, so it was refused. Go back, reload the page and try again.")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func sameSecret(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func (h *Handler) secure(r *http.Request) bool { return h.opts.Secure || r.TLS != nil }

func (h *Handler) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: Prefix, MaxAge: int(maxAge / time.Second),
		HttpOnly: true, Secure: h.secure(r), SameSite: http.SameSiteStrictMode,
	})
}

func (h *Handler) clearCookie(w http.ResponseWriter, r *http.Request, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: Prefix, MaxAge: -1, HttpOnly: true, Secure: h.secure(r), SameSite: http.SameSiteStrictMode})
}

// signInReasons are the notes the sign-in page shows for ?why=.
var signInReasons = map[string]string{
	"signin":   "Sign in to continue.",
	"expired":  "Your session expired. Sign in again.",
	"ended":    "Your session ended: the token is no longer valid (revoked or expired). Sign in with a valid token.",
	"signout":  "You are signed out.",
	"revoked":  "You revoked the token of this session, so the session ended.",
	"required": "Sign in to continue.",
}

type signInData struct {
	Next      string
	Note      string
	Signin    string   // the double-submit token
	Providers []string // OIDC providers to sign in with (oidc.go)
}

func (h *Handler) signInPage(w http.ResponseWriter, r *http.Request) {
	// Signed in already: on to the scopes (which sign the browser out
	// again if the token is no longer valid).
	if c, err := r.Cookie(sessionCookie); err == nil {
		if s, _ := h.sessions.get(r.Context(), c.Value); s != nil {
			http.Redirect(w, r, Prefix+"scopes", http.StatusSeeOther)
			return
		}
	}
	h.renderSignIn(w, r, http.StatusOK, "")
}

func (h *Handler) renderSignIn(w http.ResponseWriter, r *http.Request, status int, errText string) {
	tok := envy.RandomID()
	h.setCookie(w, r, signInCookie, tok, time.Hour)
	w.Header().Set("Cache-Control", "no-store")
	next := r.FormValue("next")
	if !localNext(next) {
		next = ""
	}
	providers, _ := h.svc.OIDCNames(r.Context())
	v := &view{Title: "Sign in", Error: errText, Data: signInData{Next: next, Note: signInReasons[r.URL.Query().Get("why")], Signin: tok, Providers: providers}}
	h.render(w, r, status, "signin", v)
}

// localNext accepts only a path of this dashboard as where to go after
// signing in: never another origin.
func localNext(next string) bool {
	return strings.HasPrefix(next, Prefix) && !strings.HasPrefix(next, "//") && !strings.ContainsAny(next, "\\\r\n")
}

// formError words a form that could not be read for a page.
func formError(err error) string {
	msg := envy.ErrorMessage(err)
	return strings.ToUpper(msg[:1]) + msg[1:] + "."
}

func (h *Handler) signIn(w http.ResponseWriter, r *http.Request) {
	if err := h.api.ParseForm(w, r, SignInFormBytes); err != nil {
		status, msg := formFailed(w, r, err)
		h.renderSignIn(w, r, status, msg)
		return
	}
	c, err := r.Cookie(signInCookie)
	if err != nil || !sameSecret(r.PostFormValue("signin"), c.Value) {
		h.renderSignIn(w, r, http.StatusForbidden, "The sign-in form expired or did not come from this dashboard. Try again.")
		return
	}
	token := strings.TrimSpace(r.PostFormValue("token"))
	if token == "" {
		h.renderSignIn(w, r, http.StatusUnprocessableEntity, "Enter your envy token (it starts with envy_).")
		return
	}
	if _, err := h.api.Authenticate(r, token); err != nil {
		status, msg := statusOf(err), "That token is not valid: it may be mistyped, revoked or expired."
		if envy.ErrorCode(err) == envy.ERateLimited {
			msg = "Too many failed sign-ins from this address; wait a minute and try again."
		} else if envy.ErrorCode(err) != envy.EUnauthenticated {
			msg = envy.ErrorMessage(err)
		}
		h.renderSignIn(w, r, status, msg)
		return
	}
	s, err := h.sessions.create(r.Context(), token)
	if err != nil {
		h.renderSignIn(w, r, statusOf(err), envy.ErrorMessage(err))
		return
	}
	h.clearCookie(w, r, signInCookie)
	h.setCookie(w, r, sessionCookie, s.id, h.opts.SessionMax)
	next := r.PostFormValue("next")
	if !localNext(next) {
		next = Prefix + "scopes"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (h *Handler) signOut(w http.ResponseWriter, r *http.Request) {
	if s := sessionFrom(r.Context()); s != nil {
		h.sessions.drop(r.Context(), s.id)
	}
	h.clearCookie(w, r, sessionCookie)
	http.Redirect(w, r, Prefix+"signin?why=signout", http.StatusSeeOther)
}
