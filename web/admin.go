package web

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/service"
)

type tokenRow struct {
	ID, Name, Owner string
	Grants          []string
	Created         time.Time
	Expires         string
	Revoked         bool
	Self            bool
}

type tokensData struct {
	Tokens    []tokenRow
	ListError string // why the list is not shown
	Next      string
	Created   *tokenRow
	Plaintext string // the new token, shown once
	Form      tokenForm
}

type tokenForm struct {
	Name, Owner, Grants, Expires string
}

var expiryChoices = map[string]string{"": "", "1h": "1h", "24h": "24h", "7d": "168h", "30d": "720h", "90d": "2160h"}

func grantText(g envy.Grant) string {
	acts := make([]string, len(g.Actions))
	for i, a := range g.Actions {
		acts[i] = string(a)
	}
	return g.Scopes + "=" + strings.Join(acts, ",")
}

func rowOfToken(t envy.Token, self string) tokenRow {
	row := tokenRow{ID: t.ID, Name: t.Name, Owner: t.Owner, Created: t.CreatedAt, Revoked: t.RevokedAt != nil, Self: t.ID == self, Expires: "never"}
	if t.ExpiresAt != nil {
		row.Expires = t.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC")
	}
	for _, g := range t.Permissions {
		row.Grants = append(row.Grants, grantText(g))
	}
	return row
}

func (h *Handler) tokensPage(w http.ResponseWriter, r *http.Request) {
	h.renderTokens(w, r, http.StatusOK, tokensData{Form: tokenForm{Grants: "**=read"}})
}

func (h *Handler) renderTokens(w http.ResponseWriter, r *http.Request, status int, d tokensData) {
	ctx := r.Context()
	self := service.CallerFrom(ctx).Token.ID
	// Only a global admin may list tokens: the service says whether the
	// caller is one, so that opening this page records no refusal.
	var p envy.Page[envy.Token]
	var err error
	if h.svc.Can(ctx, envy.ActAdmin, "**") {
		p, err = h.svc.ListTokens(ctx, r.URL.Query().Get("after"), 200)
	} else {
		err = envy.Errorf(envy.EForbidden, "listing tokens needs admin on **")
	}
	switch {
	case envy.ErrorCode(err) == envy.EForbidden:
		d.ListError = "Listing every token needs the admin permission on **. You can still create tokens within your own permissions."
	case err != nil:
		h.fail(w, r, err)
		return
	}
	for _, t := range p.Items {
		d.Tokens = append(d.Tokens, rowOfToken(t, self))
	}
	d.Next = p.NextCursor
	h.render(w, r, status, "tokens", &view{Title: "Tokens", Section: "tokens", Data: d})
}

// parseGrants reads grants typed one per line as the CLI's --grant takes
// them, SCOPES=ACTIONS ("acme/**=read,write"); a space in place of the
// "=" is read too. The actions are separated by commas or spaces. At most
// envy.MaxGrants lines hold a grant, and a line names an action once, as
// the service wants them (it would name body.permissions[i], not the
// line).
func parseGrants(s string) ([]envy.Grant, []envy.FieldError) {
	var out []envy.Grant
	var fields []envy.FieldError
	n := 0 // the lines that hold a grant
	for i, line := range strings.Split(s, "\n") {
		line = strings.Replace(line, "=", " ", 1)
		f := strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' || r == '\r' })
		if len(f) == 0 {
			continue
		}
		if n++; n > envy.MaxGrants {
			return nil, append(fields, envy.Field("grants", "too_many", "at most %d permissions, one a line; a glob such as acme/** covers many scopes", envy.MaxGrants))
		}
		loc := "grants line " + strconv.Itoa(i+1)
		if len(f) < 2 {
			fields = append(fields, envy.Field(loc, "missing", "write a scopes glob and its actions, such as: acme/**=read,write"))
			continue
		}
		g := envy.Grant{Scopes: f[0]}
		for _, a := range f[1:] {
			a := envy.Action(strings.ToLower(a))
			if slices.Contains(g.Actions, a) {
				fields = append(fields, envy.Field(loc, "duplicate_action", "%s is written twice", a))
				break
			}
			g.Actions = append(g.Actions, a)
		}
		out = append(out, g)
	}
	return out, fields
}

// MaxGrants is the most permissions a token may be given, for the form's help.
func (tokensData) MaxGrants() int { return envy.MaxGrants }

func (h *Handler) createToken(w http.ResponseWriter, r *http.Request) {
	form := tokenForm{
		Name:    strings.TrimSpace(r.PostFormValue("name")),
		Owner:   strings.TrimSpace(r.PostFormValue("owner")),
		Grants:  r.PostFormValue("grants"),
		Expires: r.PostFormValue("expires"),
	}
	grants, fields := parseGrants(form.Grants)
	exp, ok := expiryChoices[form.Expires]
	if !ok {
		fields = append(fields, envy.Field("expires", "invalid", "choose one of the listed expiries"))
	}
	if len(fields) > 0 {
		h.renderTokensError(w, r, form, envy.Invalid(fields...))
		return
	}
	t, plain, err := h.svc.CreateToken(r.Context(), envy.TokenInput{Name: form.Name, Owner: form.Owner, Permissions: grants, ExpiresIn: exp})
	if err != nil {
		h.renderTokensError(w, r, form, err)
		return
	}
	row := rowOfToken(t, "")
	h.renderTokens(w, r, http.StatusCreated, tokensData{Created: &row, Plaintext: plain, Form: tokenForm{Grants: "**=read"}})
}

// renderTokensError shows the tokens page again with the form as typed
// and what is wrong with it.
func (h *Handler) renderTokensError(w http.ResponseWriter, r *http.Request, form tokenForm, err error) {
	s := sessionFrom(r.Context())
	s.setFlash(&flash{Error: true, Text: envy.ErrorMessage(err), Fields: envy.ErrorFields(err)})
	h.renderTokens(w, r, statusOf(err), tokensData{Form: form})
}

// revokeData is the confirmation of a revocation that ends more than
// the token named.
type revokeData struct {
	ID, Name string
	Ends     int // tokens the revocation ends, the one named included
	Self     bool
}

// revokeToken revokes a token and every live token it minted. The
// Service counts first (a dry run, which also refuses to end the last
// global admin, saying why); when that is more than the token named, the
// person confirms the count on a page of its own (the form then carries
// it), as `envy tokens revoke` asks on a terminal. The message says how
// many tokens the revocation ended.
func (h *Handler) revokeToken(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	n, err := h.svc.Revoke(ctx, id, service.RevokeOptions{DryRun: true})
	if err != nil {
		h.backErr(w, r, Prefix+"tokens", err)
		return
	}
	self := service.CallerFrom(ctx).Token.ID == id
	if n > 1 && r.PostFormValue("ends") != strconv.Itoa(n) {
		t, err := h.svc.GetToken(ctx, id)
		if err != nil {
			h.backErr(w, r, Prefix+"tokens", err)
			return
		}
		h.render(w, r, http.StatusOK, "revoke", &view{Title: "Revoke " + t.Name, Section: "tokens", Data: revokeData{ID: id, Name: t.Name, Ends: n, Self: self}})
		return
	}
	n, err = h.svc.Revoke(ctx, id, service.RevokeOptions{})
	if err != nil {
		h.backErr(w, r, Prefix+"tokens", err)
		return
	}
	if self {
		h.sessions.drop(ctx, sessionFrom(ctx).id)
		h.clearCookie(w, r, sessionCookie)
		http.Redirect(w, r, Prefix+"signin?why=revoked", http.StatusSeeOther)
		return
	}
	text := "Revoked the token: 1 token ended."
	switch {
	case n == 0:
		text = "Nothing to revoke: the token had ended already."
	case n > 1:
		text = "Revoked the token and the " + plural(n-1, "live token", "live tokens") + " it minted: " + strconv.Itoa(n) + " tokens ended."
	}
	h.back(w, r, Prefix+"tokens", &flash{Text: text})
}

type auditData struct {
	Scope, Actor, Since string
	Entries             []envy.AuditEntry
	Next                string
}

var sinceChoices = map[string]time.Duration{"": 0, "1h": time.Hour, "24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour, "30d": 30 * 24 * time.Hour}

func (h *Handler) auditPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := auditData{Scope: strings.TrimSpace(q.Get("scope")), Actor: strings.TrimSpace(q.Get("actor")), Since: q.Get("since")}
	since, ok := sinceChoices[d.Since]
	if !ok {
		h.renderError(w, r, http.StatusUnprocessableEntity, "since: choose one of the listed periods.")
		return
	}
	aq := envy.AuditListQuery{Scope: d.Scope, Actor: d.Actor, Cursor: q.Get("cursor"), Limit: 100}
	if since > 0 {
		aq.Since = h.opts.Now().Add(-since)
	}
	p, err := h.svc.Audit(r.Context(), aq)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	d.Entries, d.Next = p.Items, p.NextCursor
	h.render(w, r, http.StatusOK, "audit", &view{Title: "Audit log", Section: "audit", Data: d})
}
