package web

import (
	"context"
	"net/http"
	"strconv"

	"github.com/envy-dev/envy"
)

// historyWindow is how many changes the history page reads: the
// revisions it shows and, for each change, the state before it.
const historyWindow = 1000

// shownRevisions is how many revisions one history page shows.
const shownRevisions = 30

// diffLine is one var's change in a revision, against its state before.
type diffLine struct {
	Name       string
	Kind       string // "added", "changed", "removed"
	Secret     bool
	OldVersion int64
	NewVersion int64
	Old, New   string // values; a secret's mask
	OldKnown   bool   // the state before is in the window read
	// A "described" change kept the value (the service says so: it may
	// be a secret's): it set the description, from OldDesc to NewDesc,
	// or the secret flag.
	OldDesc, NewDesc string
}

type revisionDiff struct {
	Revision int64
	Actor    string
	Token    string // the acting token's id, shown shortened beside Actor
	At       string
	Lines    []diffLine
}

type historyData struct {
	Scope    envy.Scope
	Revs     []revisionDiff
	Older    int64 // ?before= for the next page, 0 when none
	CanWrite bool
	Newest   bool // the page starts at the newest revision, which a rollback can't change
}

func shownValue(c envy.ChangeView) string {
	switch {
	case c.Op == envy.OpDelete:
		return ""
	case c.Secret && c.MaskedValue != nil:
		return *c.MaskedValue
	case c.Secret:
		return "••••"
	case c.Value != nil:
		return c.Value.Reveal()
	}
	return ""
}

// readHistory reads up to max changes of a scope older than before (0:
// from the newest), newest first.
func (h *Handler) readHistory(ctx context.Context, path string, before int64, max int) ([]envy.ChangeView, bool, error) {
	var out []envy.ChangeView
	q := envy.HistoryQuery{Before: before, Limit: 1000}
	for {
		p, err := h.svc.History(ctx, path, q)
		if err != nil {
			return nil, false, err
		}
		out = append(out, p.Items...)
		if p.NextCursor == "" {
			return out, false, nil
		}
		if len(out) >= max {
			return out, true, nil
		}
		q = envy.HistoryQuery{Cursor: p.NextCursor, Limit: 1000}
	}
}

func (h *Handler) historyPage(w http.ResponseWriter, r *http.Request, path string) {
	ctx := r.Context()
	sc, err := h.svc.GetScope(ctx, path)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	before, _ := strconv.ParseInt(r.URL.Query().Get("before"), 10, 64)
	if before < 0 {
		before = 0
	}
	changes, _, err := h.readHistory(ctx, path, before, historyWindow)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	d := historyData{Scope: sc, CanWrite: h.svc.Can(ctx, envy.ActWrite, path), Newest: before == 0}
	// Changes are newest first: group them by revision, and find each
	// one's previous state further down the list.
	for i := 0; i < len(changes); {
		rev := changes[i].Revision
		if len(d.Revs) == shownRevisions {
			d.Older = rev + 1
			break
		}
		rd := revisionDiff{Revision: rev, Actor: changes[i].Actor, Token: changes[i].ActorToken, At: changes[i].At.UTC().Format("2006-01-02 15:04:05 UTC")}
		j := i
		for ; j < len(changes) && changes[j].Revision == rev; j++ {
			c := changes[j]
			line := diffLine{Name: c.Name, Secret: c.Secret, NewVersion: c.Version, New: shownValue(c)}
			var prev *envy.ChangeView
			for k := j + 1; k < len(changes); k++ {
				if changes[k].Name == c.Name && changes[k].Revision < rev {
					prev = &changes[k]
					break
				}
			}
			line.OldKnown = prev != nil
			if prev != nil && prev.Op == envy.OpSet {
				line.OldVersion, line.Old, line.OldDesc = prev.Version, shownValue(*prev), prev.Description
				line.Secret = line.Secret || prev.Secret
			}
			line.NewDesc = c.Description
			switch {
			case c.Op == envy.OpDelete:
				line.Kind, line.New, line.NewVersion = "removed", "", 0
			case c.SameValue:
				line.Kind = "described"
			case prev != nil && prev.Op == envy.OpSet:
				line.Kind = "changed"
			case prev == nil && c.Version > 1:
				line.Kind = "changed"
			default:
				line.Kind = "added"
			}
			rd.Lines = append(rd.Lines, line)
		}
		d.Revs = append(d.Revs, rd)
		i = j
	}
	h.render(w, r, http.StatusOK, "history", &view{Title: "History of " + path, Section: "scopes", Data: d})
}

// rollbackPlan is what a rollback to a revision will change.
type rollbackPlan struct {
	Scope   envy.Scope
	To      int64
	Added   []string
	Removed []string
	Changed []string
}

func (p rollbackPlan) Empty() bool { return len(p.Added)+len(p.Removed)+len(p.Changed) == 0 }

// planRollback tells what Rollback(to) changes: the service compares the
// vars the scope had at revision to (one stored row per var, never the
// history between) with those it has now.
func (h *Handler) planRollback(ctx context.Context, path string, to int64) (rollbackPlan, error) {
	sc, err := h.svc.GetScope(ctx, path)
	if err != nil {
		return rollbackPlan{}, err
	}
	p, err := h.svc.PlanRollback(ctx, path, to)
	if err != nil {
		return rollbackPlan{}, err
	}
	return rollbackPlan{Scope: sc, To: to, Added: p.Added, Removed: p.Removed, Changed: p.Changed}, nil
}

func (h *Handler) rollbackPage(w http.ResponseWriter, r *http.Request, path string) {
	to, err := strconv.ParseInt(r.URL.Query().Get("to"), 10, 64)
	if err != nil || to < 1 {
		h.renderError(w, r, http.StatusBadRequest, "Choose a revision to roll back to from the history page.")
		return
	}
	p, err := h.planRollback(r.Context(), path, to)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, "rollback", &view{Title: "Roll back " + path, Section: "scopes", Data: p})
}

func (h *Handler) rollback(w http.ResponseWriter, r *http.Request, path string) {
	to, err := strconv.ParseInt(r.PostFormValue("to"), 10, 64)
	if err != nil || to < 1 {
		h.back(w, r, scopeURL(path, "history"), &flash{Error: true, Text: "The rollback form has no valid revision."})
		return
	}
	at, _ := strconv.ParseInt(r.PostFormValue("at"), 10, 64)
	info, err := h.svc.Rollback(r.Context(), path, to, envy.Cond{IfRevision: at})
	if envy.ErrorCode(err) == envy.EPrecondition {
		h.back(w, r, scopeURL(path, "rollback")+"?to="+itoa(to), &flash{Error: true,
			Text: "The scope changed since this page was shown, so nothing was rolled back. Check what the rollback changes now."})
		return
	}
	if err != nil {
		h.backErr(w, r, scopeURL(path, "history"), err)
		return
	}
	h.back(w, r, scopeURL(path, "history"), &flash{Text: "Rolled back to revision " + itoa(to) + " as revision " + itoa(info.Revision) + "."})
}
