package http

import (
	"net/http"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/api"
	"github.com/envy-dev/envy/http/wire"
)

// rolloutInput reads a scope write's "rollout" member into in: an object
// sets the policy, null removes it, absent keeps it.
func rolloutInput(o *wire.Object, in *envy.ScopeInput) error {
	raw, ok := o.Members["rollout"]
	if !ok {
		return nil
	}
	if wire.Kind(raw) == 'n' {
		in.ClearRollout = true
		return nil
	}
	ro, err := o.Object("rollout")
	if err != nil {
		return err
	}
	if err := ro.Only("max_unavailable", "health_timeout", "debounce"); err != nil {
		return err
	}
	p := envy.RolloutPolicy{HealthTimeout: envy.DefaultRolloutHealthTimeout, Debounce: envy.DefaultRolloutDebounce}
	var fields []envy.FieldError
	const loc = "body.rollout"
	switch mu := ro.Members["max_unavailable"]; {
	case mu == nil:
		fields = append(fields, envy.Field(loc+".max_unavailable", "missing", "max_unavailable is required: a number of instances (2) or a percentage (25%%)"))
	case wire.Kind(mu) == '"':
		s, _, err := ro.String("max_unavailable")
		if err != nil {
			return err
		}
		var f *envy.FieldError
		if p.MaxUnavailable, p.Percent, f = envy.ParseMaxUnavailable(loc+".max_unavailable", s); f != nil {
			fields = append(fields, *f)
		}
	default:
		n, _, err := ro.Integer("max_unavailable")
		if err != nil {
			return err
		}
		if n < 1 || n > envy.MaxRolloutInstances {
			fields = append(fields, envy.Field(loc+".max_unavailable", "out_of_range", "max_unavailable must be 1–%d instances", envy.MaxRolloutInstances))
		}
		p.MaxUnavailable = int(min(max(n, 0), envy.MaxRolloutInstances+1))
	}
	for _, d := range []struct {
		name string
		to   *time.Duration
	}{{"health_timeout", &p.HealthTimeout}, {"debounce", &p.Debounce}} {
		s, present, err := ro.String(d.name)
		if err != nil {
			return err
		}
		if !present {
			continue
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			fields = append(fields, envy.Field(loc+"."+d.name, "invalid", "%s must be a duration such as 30s or 1m", d.name))
			continue
		}
		*d.to = v
	}
	if len(fields) > 0 {
		return envy.Invalid(fields...)
	}
	in.Rollout = &p
	return nil
}

func rolloutPolicyView(p *envy.RolloutPolicy) *api.RolloutPolicy {
	if p == nil {
		return nil
	}
	return &api.RolloutPolicy{MaxUnavailable: api.MaxUnavailable(p.MaxUnavailableString()),
		HealthTimeout: p.HealthTimeout.String(), Debounce: p.Debounce.String()}
}

func rolloutStatusView(st *envy.RolloutStatus) *api.RolloutStatus {
	if st == nil {
		return nil
	}
	v := &api.RolloutStatus{State: string(st.State), Revision: st.Revision, Reason: st.Reason, Failed: st.Failed,
		Slots: st.Slots, Policy: *rolloutPolicyView(&st.Policy), Restarting: make([]api.RolloutLease, 0, len(st.Leases))}
	if v.Failed == nil {
		v.Failed = []string{}
	}
	for _, l := range st.Leases {
		v.Restarting = append(v.Restarting, api.RolloutLease{Instance: l.Consumer, Revision: l.Revision,
			GrantedAt: l.GrantedAt.UTC(), LeaseExpiresAt: l.ExpiresAt.UTC()})
	}
	return v
}

func (s *Server) handleRolloutResume(w http.ResponseWriter, r *http.Request) error {
	path := r.PathValue("path")
	was, err := s.svc.ResumeRollout(r.Context(), path)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.RolloutResumed{Scope: path, Resumed: was})
	return nil
}

// watchEvent is the SSE event of ev: "change" (with "rollout":"wait" when
// the instance is to wait for its turn), or "grant", its turn.
func watchEvent(ev envy.Event) (name string, data any) {
	type change struct {
		Scope    string `json:"scope"`
		Revision int64  `json:"revision"`
		Rollout  string `json:"rollout,omitempty"`
	}
	if g := ev.Grant; g != nil {
		type grant struct {
			Scope          string     `json:"scope"`
			Revision       int64      `json:"revision"`
			HealthTimeout  string     `json:"health_timeout,omitempty"`
			LeaseExpiresAt *time.Time `json:"lease_expires_at,omitempty"`
		}
		out := grant{Scope: ev.Scope, Revision: ev.Revision}
		if g.HealthTimeout > 0 {
			out.HealthTimeout = g.HealthTimeout.String()
			exp := g.ExpiresAt.UTC()
			out.LeaseExpiresAt = &exp
		}
		return "grant", out
	}
	c := change{Scope: ev.Scope, Revision: ev.Revision}
	if ev.Wait {
		c.Rollout = "wait"
	}
	return "change", c
}
