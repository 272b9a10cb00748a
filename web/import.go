package web

import (
	"net/http"
	"sort"
	"strings"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/dotenv"
)

// importLine is one var of an import preview. Values are never shown:
// the preview names what changes.
type importLine struct {
	Name   string
	Secret bool
	Note   string
}

type importData struct {
	Scope     envy.Scope
	ID        string
	Added     []importLine
	Changed   []importLine
	Removed   []importLine
	Unchanged int
	Kept      int // vars of the scope that the file lacks, kept by a merge
	NewSecret bool
	Replace   bool
	Literal   bool     // each ${ of the file stored as written ($${)
	Refs      []string // the vars whose values the server expands
}

func (d importData) Empty() bool { return len(d.Added)+len(d.Changed)+len(d.Removed) == 0 }

// importPreview parses a pasted .env file and shows what applying it
// changes: merged (as `envy import` does), the file's vars are set and the
// scope's others kept; replacing, the scope's own vars become exactly the
// file's.
func (h *Handler) importPreview(w http.ResponseWriter, r *http.Request, path string) {
	ctx := r.Context()
	back := scopeURL(path)
	// A preview is the first half of a write, and holds the pasted
	// plaintext here until applied: only a writer may make one.
	if err := h.svc.Authorize(ctx, envy.ActWrite, path, envy.AuditVarsReplace); err != nil {
		h.fail(w, r, err)
		return
	}
	text := r.PostFormValue("dotenv")
	if strings.TrimSpace(text) == "" {
		h.back(w, r, back, &flash{Error: true, Text: "Paste the contents of a .env file to import."})
		return
	}
	kvs, marked, err := dotenv.ParseFlagged(strings.NewReader(text), dotenv.FormatDotenv)
	if err != nil {
		h.back(w, r, back, &flash{Error: true, Text: "The pasted file is not a valid .env file: " + err.Error()})
		return
	}
	replace := r.PostFormValue("mode") == "replace"
	literal := r.PostFormValue("literal") == "on"
	var refs []string
	if literal {
		kvs = dotenv.Literal(kvs)
	} else {
		refs = dotenv.NamesWithRefs(kvs)
	}
	if len(kvs) == 0 && !replace {
		h.back(w, r, back, &flash{Error: true, Text: "The pasted file holds no vars, so merging it changes nothing. To empty the scope, choose Replace."})
		return
	}
	sc, err := h.svc.GetScope(ctx, path)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	// With the reveal permission the preview compares secrets too (an
	// audited reveal, like any); without it a secret in the file is
	// listed as set from the file, and the apply writes it as a new
	// version even when equal (the service tells such a writer nothing).
	reveal := h.svc.Can(ctx, envy.ActReveal, path)
	cur, err := h.svc.ListVars(ctx, path, reveal)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	d := importData{Scope: sc, NewSecret: r.PostFormValue("secret") == "on", Replace: replace, Literal: literal, Refs: refs}
	file := map[string]string{}
	for _, kv := range kvs {
		file[kv.Name] = kv.Value
	}
	have := map[string]bool{}
	for _, v := range cur.Items {
		have[v.Name] = true
		val, ok := file[v.Name]
		switch {
		case !ok && d.Replace:
			d.Removed = append(d.Removed, importLine{Name: v.Name, Secret: v.Secret})
		case !ok:
			d.Kept++
		case v.Value == nil:
			d.Changed = append(d.Changed, importLine{Name: v.Name, Secret: true, Note: "secret: set from the file (a new version, even if equal)"})
		case v.Value.Reveal() != val:
			d.Changed = append(d.Changed, importLine{Name: v.Name, Secret: v.Secret})
		default:
			d.Unchanged++
		}
	}
	names := make([]string, 0, len(file))
	for n := range file {
		if !have[n] {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		d.Added = append(d.Added, importLine{Name: n, Secret: d.NewSecret || marked[n]})
	}
	p := &pendingImport{id: envy.RandomID(), scope: path, revision: sc.Revision, kvs: kvs, marked: marked, newSecret: d.NewSecret, replace: d.Replace}
	if err := h.sessions.holdImport(sessionFrom(ctx), p); err != nil {
		h.backErr(w, r, back, err)
		return
	}
	d.ID = p.id
	h.render(w, r, http.StatusOK, "import", &view{Title: "Import into " + path, Section: "scopes", Data: d})
}

// importApply applies the previewed import as one change (a merge or a
// replace, as previewed), only if the scope is still at the revision the
// preview was made against.
func (h *Handler) importApply(w http.ResponseWriter, r *http.Request, path string) {
	ctx := r.Context()
	back := scopeURL(path)
	p := h.sessions.takeImport(sessionFrom(ctx), r.PostFormValue("id"), path)
	if p == nil {
		h.back(w, r, back, &flash{Error: true, Text: "That import preview is no longer pending: it was applied already, a newer preview of this token took its place, or it was made on another server of this service or before a restart. Paste the file again."})
		return
	}
	cur, err := h.svc.ListVars(ctx, path, false)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	secret := map[string]bool{}
	for _, v := range cur.Items {
		secret[v.Name] = v.Secret
	}
	in := make(map[string]envy.VarInput, len(p.kvs))
	for _, kv := range p.kvs {
		sec, ok := secret[kv.Name]
		if !ok {
			sec = p.newSecret
		}
		// The file's "# envy:secret" makes a var secret, never plain.
		in[kv.Name] = envy.VarInput{Value: ptr(envy.NewSensitive(kv.Value)), Secret: ptr(sec || p.marked[kv.Name])}
	}
	at := envy.Cond{IfRevision: p.revision}
	var info envy.WriteInfo
	how := "merged"
	if p.replace {
		how = "replacing the scope's vars"
		info, err = h.svc.ReplaceVars(ctx, path, in, at)
	} else {
		merge := make(map[string]*envy.VarInput, len(in))
		for k, v := range in {
			merge[k] = &v
		}
		info, err = h.svc.MergeVars(ctx, path, merge, envy.SetOptions{Cond: at, ScopeMustExist: true})
	}
	if envy.ErrorCode(err) == envy.EPrecondition {
		h.back(w, r, back, &flash{Error: true, Text: "The scope changed since the preview, so nothing was imported. Paste the file again to see what it changes now."})
		return
	}
	if err != nil {
		h.backErr(w, r, back, err)
		return
	}
	done := "Imported " + plural(len(p.kvs), "var", "vars") + " (" + how + ") as revision " + itoa(info.Revision)
	// The service accepts a reference to a var that is not set (yet), as
	// the API does; the one resolution tells whether the env still reads,
	// and a success that left it unreadable is not told as one.
	if e := envy.AsError(h.svc.EnvBroken(ctx, path)); e != nil && e.Code == envy.EInvalid && len(e.Fields) > 0 {
		h.back(w, r, back, &flash{Error: true, Text: done + ", but the scope's env can't be read now: " + e.Fields[0].Msg + ". " + brokenHelp})
		return
	}
	h.back(w, r, back, &flash{Text: done + "."})
}

// brokenHelp says what to do about an import that left a reference that
// does not resolve.
const brokenHelp = "If the file's ${ is text (a file from envy export without --raw holds expanded values), roll this revision back in History and paste the file again with \"Values are literal\" ticked; otherwise set what it refers to."
