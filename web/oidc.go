package web

import (
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/envy-dev/envy"
)

// People sign in through an OIDC provider (docs/identity.md): the sign-in
// page links to /ui/oidc/{name}/start, which sends the browser to the
// provider with a state that only this browser can finish (its hash is
// sealed in the state; the value stays in a cookie here). The provider
// sends it back to /ui/oidc/{name}/callback, where the service checks the
// state, exchanges the code (PKCE), verifies the ID token and its nonce,
// and mints the person's token; the session holds it, as it holds a
// pasted token.

// oidcCookie holds the browser's half of a sign-in in progress. SameSite
// Lax, not Strict: the provider's redirect back is a cross-site
// navigation, which must carry it.
const oidcCookie = "envy_oidc"

// oidcCookieLife matches the life of a sign-in's state.
const oidcCookieLife = 10 * time.Minute

func (h *Handler) oidcStart(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	redirect, err := h.svc.DashboardRedirect(r.Context(), name)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	binding := envy.RandomID()
	u, err := h.svc.OIDCAuthURL(r.Context(), name, redirect, binding)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: binding, Path: Prefix + "oidc/", MaxAge: int(oidcCookieLife / time.Second),
		HttpOnly: true, Secure: h.secure(r), SameSite: http.SameSiteLaxMode})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u, http.StatusSeeOther)
}

func (h *Handler) oidcCallback(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	name, q := r.PathValue("name"), r.URL.Query()
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: "", Path: Prefix + "oidc/", MaxAge: -1, HttpOnly: true, Secure: h.secure(r), SameSite: http.SameSiteLaxMode})
	if e := q.Get("error"); e != "" {
		// Only an error code of OAuth's alphabet is shown: the text of a
		// link someone else made must not speak on this origin.
		msg := "The identity provider did not sign you in."
		if len(e) <= 64 && strings.Trim(e, "abcdefghijklmnopqrstuvwxyz_") == "" {
			msg = "The identity provider did not sign you in (" + e + ")."
		}
		h.renderError(w, r, http.StatusUnauthorized, msg)
		return
	}
	var binding string
	if c, err := r.Cookie(oidcCookie); err == nil {
		binding = c.Value
	}
	login, err := h.svc.OIDCCallback(r.Context(), name, q.Get("state"), q.Get("code"), binding)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	s, err := h.sessions.create(r.Context(), login.Plaintext)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.setCookie(w, r, sessionCookie, s.id, h.opts.SessionMax)
	// The session cookie is SameSite=Strict, and this response ends a
	// cross-site redirect chain, so a redirect from here would go without
	// it: this page moves on by itself, a navigation from this origin.
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = oidcDone.Execute(w, Prefix+"scopes")
}

var oidcDone = template.Must(template.New("oidc-done").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="0;url={{.}}">
<title>Signed in · envy</title></head>
<body><p>Signed in. <a href="{{.}}">Continue to the dashboard</a>.</p></body></html>
`))
