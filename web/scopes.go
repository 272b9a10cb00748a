package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/envy-dev/envy"
)

// scopeRow is one line of the scopes tree: a scope, or a path that only
// groups scopes below it.
type scopeRow struct {
	Path      string
	Leaf      string // the last segment
	URL       string // "" for a group
	Depth     string // the indent class
	Group     bool   // no scope at this path, only below it
	Vars      int
	Revision  int64
	Synced    string // "synced", "behind", or "" when nobody reports
	Consumers int
}

type scopesData struct {
	Query string
	Rows  []scopeRow
	Count int // scopes shown
	Total int // scopes visible
	More  bool
}

// maxListed bounds the scopes one page lists.
const maxListed = 5000

func (h *Handler) scopesPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	var all []envy.Scope
	cursor := ""
	more := false
	for {
		p, err := h.svc.ListScopes(ctx, envy.ScopeListQuery{Cursor: cursor, Limit: 1000})
		if err != nil {
			h.fail(w, r, err)
			return
		}
		all = append(all, p.Items...)
		if p.NextCursor == "" {
			break
		}
		if len(all) >= maxListed {
			more = true
			break
		}
		cursor = p.NextCursor
	}
	d := scopesData{Query: q, Total: len(all), More: more}
	seen := map[string]bool{}
	needle := strings.ToLower(q)
	for _, sc := range all {
		if needle != "" && !strings.Contains(strings.ToLower(sc.Path), needle) {
			continue
		}
		// The groups above a scope that are not scopes themselves.
		segs := strings.Split(sc.Path, "/")
		for i := 1; i < len(segs); i++ {
			g := strings.Join(segs[:i], "/")
			if !seen[g] {
				seen[g] = true
				d.Rows = append(d.Rows, scopeRow{Path: g, Group: true})
			}
		}
		seen[sc.Path] = true
		d.Rows = append(d.Rows, scopeRow{Path: sc.Path, Vars: sc.VarCount, Revision: sc.Revision})
		d.Count++
	}
	h.fillSync(ctx, d.Rows)

	// A group row that turned out to be a scope too (listed after a
	// deeper path) is dropped: the scope's row stands for it.
	rows := d.Rows[:0]
	scopes := map[string]bool{}
	for _, row := range d.Rows {
		if !row.Group {
			scopes[row.Path] = true
		}
	}
	for _, row := range d.Rows {
		if row.Group && scopes[row.Path] {
			continue
		}
		rows = append(rows, row)
	}
	for i := range rows {
		rows[i].Leaf, rows[i].Depth = leaf(rows[i].Path), depthClass(rows[i].Path)
		if !rows[i].Group {
			rows[i].URL = scopeURL(rows[i].Path)
		}
	}
	d.Rows = rows
	// Segment by segment, so that a scope's children come right after it
	// ("a/b/c" before "a/b-2"): "/" sorts before every other character.
	treeKey := func(p string) string { return strings.ReplaceAll(p, "/", "\x00") }
	sort.SliceStable(d.Rows, func(i, j int) bool { return treeKey(d.Rows[i].Path) < treeKey(d.Rows[j].Path) })
	h.render(w, r, http.StatusOK, "scopes", &view{Title: "Scopes", Section: "scopes", Data: d})
}

// The scope list's sync column asks the service for each scope's status
// (the sync page itself is live). A state younger than syncFresh is shown
// as it is; one younger than syncStale is shown while a background
// refresh asks again; an older or missing one is asked for at once.
const (
	syncFresh = 5 * time.Second
	syncStale = time.Minute
)

type syncEntry struct {
	state     string
	consumers int
	at        time.Time
}

// syncCache holds recent sync states of scopes, by path. An entry is
// shown only to a caller the service says may read the scope.
type syncCache struct {
	mu         sync.Mutex
	m          map[string]syncEntry
	refreshing atomic.Bool
}

// fillSync sets the sync state of each scope row from the service's
// Status, asked with the caller's permissions, or from a recent answer.
// Scopes the caller may not read get none.
func (h *Handler) fillSync(ctx context.Context, rows []scopeRow) {
	now := time.Now()
	var ask, stale []int
	h.sync.mu.Lock()
	if h.sync.m == nil || len(h.sync.m) > 4*len(rows)+1000 {
		h.sync.m = map[string]syncEntry{}
	}
	for i, row := range rows {
		if row.Group || !h.svc.Can(ctx, envy.ActRead, row.Path) {
			continue
		}
		e, ok := h.sync.m[row.Path]
		switch {
		case !ok || now.Sub(e.at) >= syncStale:
			ask = append(ask, i)
			continue
		case now.Sub(e.at) >= syncFresh:
			stale = append(stale, i)
		}
		rows[i].Synced, rows[i].Consumers = e.state, e.consumers
	}
	h.sync.mu.Unlock()
	paths := func(idx []int) []string {
		out := make([]string, len(idx))
		for k, i := range idx {
			out[k] = rows[i].Path
		}
		return out
	}
	got := h.askSync(ctx, paths(ask))
	for k, i := range ask {
		rows[i].Synced, rows[i].Consumers = got[k].state, got[k].consumers
	}
	if len(stale) > 0 && h.sync.refreshing.CompareAndSwap(false, true) {
		bg := context.WithoutCancel(ctx) // the same caller, after the reply
		ps := paths(stale)
		go func() {
			defer h.sync.refreshing.Store(false)
			h.askSync(bg, ps)
		}()
	}
}

// askSync asks the service for the status of each path, a few at a time,
// and keeps the answers.
func (h *Handler) askSync(ctx context.Context, paths []string) []syncEntry {
	out := make([]syncEntry, len(paths))
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				st, err := h.svc.Status(ctx, paths[i])
				if err != nil {
					continue
				}
				e := syncEntry{at: time.Now(), consumers: len(st.Consumers)}
				if len(st.Consumers) > 0 {
					e.state = "behind"
					if st.Synced {
						e.state = "synced"
					}
				}
				out[i] = e
				h.sync.mu.Lock()
				h.sync.m[paths[i]] = e
				h.sync.mu.Unlock()
			}
		}()
	}
	for i := range paths {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

// splitList reads a list typed one per line or separated by commas.
func splitList(s string) []string {
	f := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' || r == ' ' || r == '\t' })
	if f == nil {
		return []string{}
	}
	return f
}

func (h *Handler) createScope(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	path := strings.Trim(strings.TrimSpace(r.PostFormValue("path")), "/")
	desc := strings.TrimSpace(r.PostFormValue("description"))
	inherits := splitList(r.PostFormValue("inherits"))
	back := Prefix + "scopes"
	if path == "" {
		h.back(w, r, back, &flash{Error: true, Text: "Give the new scope a path, such as acme/web/prod."})
		return
	}
	if _, err := h.svc.GetScope(ctx, path); err == nil {
		h.back(w, r, back, &flash{Error: true, Text: "Scope " + path + " already exists."})
		return
	}
	if _, _, err := h.svc.PutScope(ctx, path, envy.ScopeInput{Description: &desc, Inherits: &inherits}, envy.Cond{}); err != nil {
		h.backErr(w, r, back, err)
		return
	}
	h.back(w, r, scopeURL(path), &flash{Text: "Created scope " + path + "."})
}

// varRow is a var as the scope page shows it.
type varRow struct {
	Name        string
	Value       string // the value, or the mask of a secret
	Secret      bool
	Masked      bool
	Revealed    bool
	Description string
	Version     int64
	UpdatedBy   string
	From        string // the scope an inherited var comes from
	ShadowedBy  string // the scope whose var of the same name wins
	Refs        []refLink
	RefError    string // why its references do not resolve (refs.go)
}

type inheritRow struct {
	Path   string
	Hidden bool
}

type scopeData struct {
	Scope envy.Scope
	// Revision is the scope's revision as its vars were read: the forms
	// write over it, and the page's live updates start from it.
	Revision   int64
	Own        []varRow
	Inherited  []varRow
	Inherits   []inheritRow
	HiddenAny  bool
	CanWrite   bool
	CanReveal  bool
	RevealFor  int
	Inheritstr string // the inherits as the settings form shows them
}

func (h *Handler) scopePage(w http.ResponseWriter, r *http.Request, path string) {
	h.renderScope(w, r, path, nil)
}

// renderScope renders the scope page, with the values in revealed shown.
func (h *Handler) renderScope(w http.ResponseWriter, r *http.Request, path string, revealed map[string]string) {
	ctx := r.Context()
	sc, err := h.svc.GetScope(ctx, path)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	own, err := h.svc.ListVars(ctx, path, false)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	d := scopeData{
		Scope:     sc,
		Revision:  own.Revision,
		CanWrite:  h.svc.Can(ctx, envy.ActWrite, path),
		CanReveal: h.svc.Can(ctx, envy.ActReveal, path),
		RevealFor: int(h.opts.RevealFor.Seconds()),
	}
	var shown []string
	for _, p := range sc.Inherits {
		d.Inherits = append(d.Inherits, inheritRow{Path: p, Hidden: p == envy.HiddenScope})
		if p == envy.HiddenScope {
			d.HiddenAny = true
		} else {
			shown = append(shown, p)
		}
	}
	d.Inheritstr = strings.Join(shown, "\n")
	for _, v := range own.Items {
		row := rowOf(v)
		if val, ok := revealed[v.Name]; ok {
			row.Value, row.Masked, row.Revealed = val, false, true
		}
		d.Own = append(d.Own, row)
	}
	// The inherited rows are the server's one resolution (Resolved):
	// the page walks nothing itself, so it shows what the env serves.
	res, err := h.svc.Resolved(ctx, path, false)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	for _, l := range res.Layers {
		switch {
		case l.Hidden:
			d.HiddenAny = true
		case l.Scope == path: // the scope's own vars, listed above
			addRefs(d.Own, l.Vars, path)
		default:
			for _, v := range l.Vars {
				row := rowOf(v.VarView)
				row.From, row.ShadowedBy = v.From, v.ShadowedBy
				row.Refs, row.RefError = refLinks(v.References, path), v.RefError
				d.Inherited = append(d.Inherited, row)
			}
		}
	}
	h.render(w, r, http.StatusOK, "scope", &view{Title: path, Section: "scopes", Data: d})
}

func rowOf(v envy.VarView) varRow {
	row := varRow{Name: v.Name, Secret: v.Secret, Description: v.Description, Version: v.Version, UpdatedBy: v.UpdatedBy}
	switch {
	case v.Value != nil && !v.Secret:
		row.Value = v.Value.Reveal()
	case v.MaskedValue != nil:
		row.Value, row.Masked = *v.MaskedValue, true
	default:
		row.Masked = true
	}
	return row
}

// setVar adds a var, or saves an edit of one. An edit carries the var's
// version and the scope's revision as the page showed them, and is
// written only over that version (writeOver): a change made elsewhere
// meanwhile gives the conflict page, not a silent overwrite.
func (h *Handler) setVar(w http.ResponseWriter, r *http.Request, path string) {
	back := scopeURL(path)
	name := strings.TrimSpace(r.PostFormValue("name"))
	if name == "" {
		h.back(w, r, back, &flash{Error: true, Text: "Give the var a name, such as DATABASE_URL."})
		return
	}
	e, ok := h.editOf(w, r, path, name, false)
	if !ok {
		return
	}
	o := envy.SetOptions{Mode: envy.CreateOnly, ScopeMustExist: true}
	if e.Edit {
		o.Mode = envy.UpdateOnly
	}
	var info envy.WriteInfo
	write := func(c envy.Cond) error {
		o.Cond = c
		var err error
		_, info, err = h.svc.SetVar(r.Context(), path, name, e.input(), o)
		return err
	}
	var err error
	if e.Edit {
		err = h.writeOver(w, r, path, e, write)
	} else {
		err = write(envy.Cond{})
	}
	switch {
	case errors.Is(err, errAnswered):
		return
	case err != nil:
		h.backErr(w, r, back, err)
		return
	}
	verb := "Updated"
	if info.Created {
		verb = "Added"
	}
	what := ""
	if e.Edit && e.Value == nil {
		what = ", its value kept"
	}
	h.back(w, r, back, &flash{Text: verb + " " + name + what + " (revision " + itoa(info.Revision) + ")."})
}

func ptr[T any](v T) *T { return &v }

// deleteVar deletes a var, only over the version the page showed.
func (h *Handler) deleteVar(w http.ResponseWriter, r *http.Request, path string) {
	back := scopeURL(path)
	name := r.PostFormValue("name")
	e, ok := h.editOf(w, r, path, name, true)
	if !ok {
		return
	}
	var info envy.WriteInfo
	err := h.writeOver(w, r, path, e, func(c envy.Cond) error {
		var err error
		info, err = h.svc.DeleteVar(r.Context(), path, name, c)
		return err
	})
	switch {
	case errors.Is(err, errAnswered):
		return
	case err != nil:
		h.backErr(w, r, back, err)
		return
	}
	h.back(w, r, back, &flash{Text: "Deleted " + name + " (revision " + itoa(info.Revision) + ")."})
}

// reveal shows one secret's value: as JSON to the page's script, which
// hides it again after a while, or as the scope page without script. The
// service checks the reveal permission and audits the reveal.
func (h *Handler) reveal(w http.ResponseWriter, r *http.Request, path string) {
	name := r.PostFormValue("name")
	v, err := h.svc.GetVar(r.Context(), path, name, true)
	wantJSON := strings.Contains(r.Header.Get("Accept"), "application/json")
	if wantJSON {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if err != nil {
			w.WriteHeader(statusOf(err))
			_ = json.NewEncoder(w).Encode(map[string]string{"error": envy.ErrorMessage(err)})
			return
		}
		val := ""
		if v.Value != nil {
			val = v.Value.Reveal()
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"name": v.Name, "value": val, "hide_after": int(h.opts.RevealFor.Seconds())})
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	val := ""
	if v.Value != nil {
		val = v.Value.Reveal()
	}
	h.renderScope(w, r, path, map[string]string{name: val})
}

// scopeSettings saves the scope's description and inherits, only over
// the settings the form was loaded with (settingsOver): a change of
// them made elsewhere meanwhile gives the conflict page, not a silent
// overwrite.
func (h *Handler) scopeSettings(w http.ResponseWriter, r *http.Request, path string) {
	back := scopeURL(path)
	s, ok := h.settingsOf(w, r, path)
	if !ok {
		return
	}
	info, err := h.settingsOver(w, r, path, s)
	switch {
	case errors.Is(err, errAnswered):
		return
	case envy.ErrorCode(err) == envy.ENotFound:
		h.back(w, r, Prefix+"scopes", &flash{Error: true, Text: "Scope " + path + " was deleted meanwhile, elsewhere: nothing was saved."})
		return
	case err != nil:
		h.backErr(w, r, back, err)
		return
	}
	h.back(w, r, back, &flash{Text: "Saved the scope's description and inherits (revision " + itoa(info.Revision) + ")."})
}
