package web

import (
	"net/http"
	"strings"
	"time"

	"github.com/envy-dev/envy"
)

// rolloutSettings sets the scope's rollout policy from the scope page's
// form; an empty max_unavailable removes it.
func (h *Handler) rolloutSettings(w http.ResponseWriter, r *http.Request, path string) {
	back := scopeURL(path) + "#rollout"
	in := envy.ScopeInput{}
	maxU := strings.TrimSpace(r.PostFormValue("max_unavailable"))
	if maxU == "" {
		in.ClearRollout = true
	} else {
		p := envy.RolloutPolicy{}
		var fields []envy.FieldError
		var f *envy.FieldError
		if p.MaxUnavailable, p.Percent, f = envy.ParseMaxUnavailable("max_unavailable", maxU); f != nil {
			fields = append(fields, *f)
		}
		for _, d := range []struct {
			name string
			to   *time.Duration
		}{{"health_timeout", &p.HealthTimeout}, {"debounce", &p.Debounce}} {
			v, err := time.ParseDuration(strings.TrimSpace(r.PostFormValue(d.name)))
			if err != nil {
				fields = append(fields, envy.Field(d.name, "invalid", "%s must be a duration such as 30s or 1m", d.name))
			}
			*d.to = v
		}
		if len(fields) > 0 {
			h.backErr(w, r, back, envy.Invalid(fields...))
			return
		}
		in.Rollout = &p
	}
	if _, _, err := h.svc.PutScope(r.Context(), path, in, envy.Cond{}); err != nil {
		h.backErr(w, r, back, err)
		return
	}
	text := "Saved the rollout policy."
	if in.ClearRollout {
		text = "Removed the rollout policy: every instance restarts on its own at a change."
	}
	h.back(w, r, back, &flash{Text: text})
}

// rolloutResume lets the scope's paused rollout go on, from its sync page.
func (h *Handler) rolloutResume(w http.ResponseWriter, r *http.Request, path string) {
	back := scopeURL(path, "sync")
	was, err := h.svc.ResumeRollout(r.Context(), path)
	if err != nil {
		h.backErr(w, r, back, err)
		return
	}
	text := "Resumed the rollout."
	if !was {
		text = "The rollout was not paused: nothing to resume."
	}
	h.back(w, r, back, &flash{Text: text})
}
