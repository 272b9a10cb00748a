package web

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/envy-dev/envy"
)

// varEdit is a var form as sent: what it changes, and, for an edit or a
// delete, the var's version and the scope's revision that the page showed.
type varEdit struct {
	Name        string
	Edit        bool // an edit of a var that exists (else an add or a delete)
	Delete      bool
	Value       *string // nil: the value is kept, none is sent
	Was         *string // the plain value the edit form was loaded with
	Secret      bool
	Description string
	Version     int64 // the var's version the form was loaded with
	Revision    int64 // the scope's revision the form was loaded with
}

func (e varEdit) input() envy.VarInput {
	in := envy.VarInput{Secret: &e.Secret, Description: &e.Description}
	if e.Value != nil {
		in.Value = ptr(envy.NewSensitive(*e.Value))
	}
	return in
}

// sameText compares two values as a browser sends them: a textarea's
// line breaks come back as CRLF.
func sameText(a, b string) bool { return lf(a) == lf(b) }

// editOf reads a var form. An edit sends no value unless the person
// changed it: a secret's field left blank, or a plain value as it was
// loaded (value_was), keeps the value, so that a change of the
// description alone can't write an old value back. It answers the
// request itself (and returns false) when the form lacks the version it
// was loaded with.
func (h *Handler) editOf(w http.ResponseWriter, r *http.Request, path, name string, del bool) (varEdit, bool) {
	e := varEdit{Name: name, Edit: r.PostFormValue("mode") == "edit", Delete: del,
		Secret: r.PostFormValue("secret") == "on", Description: r.PostFormValue("description")}
	if e.Edit || del {
		v, err1 := strconv.ParseInt(r.PostFormValue("version"), 10, 64)
		rev, err2 := strconv.ParseInt(r.PostFormValue("revision"), 10, 64)
		if err1 != nil || err2 != nil || v < 1 || rev < 1 {
			h.back(w, r, scopeURL(path), &flash{Error: true, Text: "The form for " + name + " does not say which version of it you saw, so nothing was changed: reload the page and try again."})
			return e, false
		}
		e.Version, e.Revision = v, rev
	}
	if del {
		return e, true
	}
	// The description's field is one line (asLoaded).
	if was, ok := r.PostForm["description_was"]; ok && len(was) == 1 {
		e.Description = asLoaded(e.Description, was[0])
	}
	// A value sent is stored with the line breaks it was typed with (LF):
	// a browser sends a textarea's, and a hidden field's, as CRLF. A value
	// left as loaded is not sent (below), so a stored CR survives an edit
	// of the description.
	value := r.PostFormValue("value")
	if was, ok := r.PostForm["value_was"]; ok && len(was) == 1 {
		e.Was = &was[0]
	}
	switch {
	case !e.Edit:
		e.Value = ptr(lf(value))
	case r.PostFormValue("keep_value") == "on":
	case r.PostFormValue("was_secret") == "on" && value == "":
	case e.Was != nil && sameText(value, *e.Was):
	default:
		e.Value = ptr(lf(value))
	}
	return e, true
}

// errAnswered says that writeOver answered the request itself (with the
// conflict page, or a message).
var errAnswered = errors.New("web: answered")

// maxOver bounds how often writeOver tries again while other vars of the
// scope change under it.
const maxOver = 5

// writeOver runs write (an edit or a delete of one var) only over the
// var's version that the page showed. It sends the scope's revision as
// the write's precondition, as the API's If-Match does; when the scope
// moved on but the var did not (another var changed), it tries again at
// the new revision, which was read with the var, so that the check and
// the write are one step. When the var itself changed, it answers with the
// conflict page and writes nothing.
func (h *Handler) writeOver(w http.ResponseWriter, r *http.Request, path string, e varEdit, write func(envy.Cond) error) error {
	ctx := r.Context()
	rev := e.Revision
	for range maxOver {
		err := write(envy.Cond{IfRevision: rev})
		if envy.ErrorCode(err) != envy.EPrecondition {
			return err
		}
		cur, err := h.svc.ListVars(ctx, path, false)
		if err != nil {
			return err
		}
		v, ok := findView(cur.Items, e.Name)
		switch {
		case !ok && e.Delete:
			h.back(w, r, scopeURL(path), &flash{Text: e.Name + " was deleted meanwhile, elsewhere: there was nothing left to delete (still revision " + itoa(cur.Revision) + ")."})
			return errAnswered
		case !ok || v.Version != e.Version:
			h.renderConflict(w, r, path, e, cur.Revision, v, ok)
			return errAnswered
		}
		rev = cur.Revision
	}
	return envy.Errorf(envy.EUnavailable, "scope %s kept changing while %s was being saved: nothing was saved; try again", path, e.Name)
}

func findView(vs []envy.VarView, name string) (envy.VarView, bool) {
	for _, v := range vs {
		if v.Name == name {
			return v, true
		}
	}
	return envy.VarView{}, false
}

// conflictData is the conflict page: the person's change beside the var
// as it is now, and the two ways out.
type conflictData struct {
	Scope     string
	Yours     varEdit
	YourValue string // as shown: a secret's masked
	Current   *varRow
	Revision  int64  // the scope's revision now, to save over
	Mode      string // how "keep mine" saves: "edit", or "add" when the var is gone
	Resubmit  bool   // "keep mine" can be offered
	Why       string // why it can't
	CanReveal bool
	RevealFor int
}

// ResendValue is the value "keep mine" sends, when it sends one.
func (d conflictData) ResendValue() *string {
	if d.Yours.Value == nil && d.Mode == "add" {
		return d.Yours.Was
	}
	return d.Yours.Value
}

func (h *Handler) renderConflict(w http.ResponseWriter, r *http.Request, path string, e varEdit, rev int64, cur envy.VarView, exists bool) {
	ctx := r.Context()
	d := conflictData{Scope: path, Yours: e, Revision: rev, Mode: "edit", Resubmit: true,
		CanReveal: h.svc.Can(ctx, envy.ActReveal, path), RevealFor: int(h.opts.RevealFor.Seconds())}
	if exists {
		row := rowOf(cur)
		d.Current = &row
	} else {
		d.Mode = "add"
	}
	if e.Value != nil {
		d.YourValue = *e.Value
		// The person's own typed value, but it may be a secret: masked
		// like one, so that the page can be shown around.
		if e.Secret || exists && cur.Secret {
			d.YourValue = envy.Mask(envy.NewSensitive(*e.Value))
		}
	}
	if !e.Delete && d.ResendValue() == nil && d.Mode == "add" {
		d.Resubmit, d.Why = false, "It was deleted, and your edit did not send its value (a secret's value left blank): add it again with its value."
	}
	h.render(w, r, http.StatusConflict, "conflict", &view{Title: e.Name + " changed meanwhile", Section: "scopes", Data: d})
}

// settingsEdit is the scope settings form as sent: the description and
// inherits it saves, the ones it was loaded with, and the scope's
// revision read with them.
type settingsEdit struct {
	Description    string
	Inherits       []string
	WasDescription string
	WasInherits    []string
	Revision       int64
}

// settingsOf reads the scope settings form. It answers the request itself
// (and returns false) when the form lacks what it was loaded with.
func (h *Handler) settingsOf(w http.ResponseWriter, r *http.Request, path string) (settingsEdit, bool) {
	s := settingsEdit{
		Description: strings.TrimSpace(r.PostFormValue("description")),
		Inherits:    splitList(r.PostFormValue("inherits")),
	}
	desc, ok1 := r.PostForm["description_was"]
	inh, ok2 := r.PostForm["inherits_was"]
	rev, err := strconv.ParseInt(r.PostFormValue("revision"), 10, 64)
	if !ok1 || !ok2 || len(desc) != 1 || len(inh) != 1 || err != nil || rev < 1 {
		h.back(w, r, scopeURL(path), &flash{Error: true, Text: "The form for the description and inherits of " + path + " does not say which of them you saw, so nothing was changed: reload the page and try again."})
		return s, false
	}
	s.WasDescription, s.WasInherits, s.Revision = desc[0], splitList(inh[0]), rev
	s.Description = asLoaded(s.Description, strings.TrimSpace(s.WasDescription))
	return s, true
}

// asLoaded is the description a one-line field sent: a browser drops the
// line breaks of the value it loaded the field with (was), so one sent
// back as loaded but for them is was, kept, not flattened; with was's
// breaks as stored (LF), not as a form encodes them (CRLF).
func asLoaded(sent, was string) string {
	if sent == strings.NewReplacer("\r", "", "\n", "").Replace(was) {
		return lf(was)
	}
	return sent
}

// lf is s with the line breaks a browser sends (CRLF, as forms encode
// them) as they were stored (LF).
func lf(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }

// holds says whether a scope's settings are desc and inherits.
func holds(sc envy.Scope, desc string, inherits []string) bool {
	return sameText(sc.Description, desc) && slices.Equal(sc.Inherits, inherits)
}

// settingsOver saves the settings form only over the description and
// inherits it was loaded with. A scope's revision moves with every var
// write too, and those are no conflict: so the scope's revision is the
// write's precondition (the API's If-Match), and when the scope moved on
// but its settings are still as loaded, or already as the edit makes
// them, it tries again at the new revision, read with them, so that the
// check and the write are one step. When the settings changed, it
// answers with the conflict page and writes nothing.
func (h *Handler) settingsOver(w http.ResponseWriter, r *http.Request, path string, s settingsEdit) (envy.WriteInfo, error) {
	ctx := r.Context()
	in := envy.ScopeInput{Description: &s.Description, Inherits: &s.Inherits}
	rev := s.Revision
	for range maxOver {
		_, info, err := h.svc.PutScope(ctx, path, in, envy.Cond{IfRevision: rev})
		if envy.ErrorCode(err) != envy.EPrecondition {
			return info, err
		}
		cur, err := h.svc.GetScope(ctx, path)
		if err != nil {
			return envy.WriteInfo{}, err
		}
		if !holds(cur, s.WasDescription, s.WasInherits) && !holds(cur, s.Description, s.Inherits) {
			h.renderSettingsConflict(w, r, path, s, cur)
			return envy.WriteInfo{}, errAnswered
		}
		rev = cur.Revision
	}
	return envy.WriteInfo{}, envy.Errorf(envy.EUnavailable, "scope %s kept changing while its description and inherits were being saved: nothing was saved; try again", path)
}

// settingsConflictData is the settings conflict page: the person's
// description and inherits beside the scope's now, and the two ways out.
type settingsConflictData struct {
	Scope    string
	Yours    settingsEdit
	Current  envy.Scope
	Resubmit bool   // "save mine" can be offered
	Why      string // why it can't
}

// Join writes an inherits list as the settings form's textarea does.
func (settingsConflictData) Join(l []string) string { return strings.Join(l, "\n") }

func (h *Handler) renderSettingsConflict(w http.ResponseWriter, r *http.Request, path string, s settingsEdit, cur envy.Scope) {
	d := settingsConflictData{Scope: path, Yours: s, Current: cur, Resubmit: true}
	// As on the scope page, where the form is not offered then: a list
	// typed without the scopes this token can't read would remove them.
	if slices.Contains(cur.Inherits, envy.HiddenScope) {
		d.Resubmit, d.Why = false, "It now inherits a scope this token may not read, which your edit can't name: saving it would remove that scope. Edit the inherits with a token that may read it."
	}
	h.render(w, r, http.StatusConflict, "settings-conflict", &view{Title: path + " changed meanwhile", Section: "scopes", Data: d})
}
