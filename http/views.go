package http

import (
	"net/http"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/api"
)

// The reply shapes of the native API are package api's, which the client
// reads: one definition of the wire. Timestamps are written in UTC, as
// RFC 3339 with nanoseconds. The views below make them from the domain's
// types.

// The server's names for the shapes its handlers and hand-written
// encoders (envjson.go) build on.
type (
	scopeJSON   = api.Scope
	varJSON     = api.Var
	varListJSON = api.VarList
	envJSON     = api.Env
)

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// idPtr is an optional id: nil for "".
func idPtr(id string) *string {
	if id == "" {
		return nil
	}
	return &id
}

func list[T, V any](p envy.Page[T], view func(T) V) api.Page[V] {
	items := make([]V, 0, len(p.Items))
	for _, it := range p.Items {
		items = append(items, view(it))
	}
	return api.Page[V]{Items: items, NextCursor: api.Cursor(p.NextCursor)}
}

// scopeView is a scope as lists and writes show it: without its var count.
func scopeView(s envy.Scope) scopeJSON {
	inh := s.Inherits
	if inh == nil {
		inh = []string{}
	}
	return scopeJSON{
		Path:        s.Path,
		Description: s.Description,
		Inherits:    inh,
		Revision:    s.Revision,
		CreatedAt:   s.CreatedAt.UTC(),
		UpdatedAt:   s.UpdatedAt.UTC(),
		Rollout:     rolloutPolicyView(s.Rollout),
	}
}

// scopeGetView is a scope as its read shows it: with its var count.
func scopeGetView(s envy.Scope) scopeJSON {
	v := scopeView(s)
	v.VarCount = &s.VarCount
	return v
}

// scopeWriteJSON is a scope write's reply: the scope's fields, with the
// write's revision, and synced.
type scopeWriteJSON struct {
	scopeJSON
	Revision int64                `json:"revision"` // the write's
	Synced   bool                 `json:"synced"`
	Behind   []api.BehindConsumer `json:"behind,omitempty"`
}

func writeInfoView(wi envy.WriteInfo) api.WriteResult {
	return api.WriteResult{Scope: wi.Scope, Revision: wi.Revision, Synced: wi.Synced, Behind: behindView(wi.Behind)}
}

// behindView names the consumers a write left behind.
func behindView(cs []envy.Consumer) []api.BehindConsumer {
	if len(cs) == 0 {
		return nil
	}
	out := make([]api.BehindConsumer, len(cs))
	for i, c := range cs {
		out[i] = api.BehindConsumer{Scope: c.Scope, ID: c.ID, Revision: c.Revision}
	}
	return out
}

// revealed is the plaintext of a value that the service chose to show.
func revealed(v *envy.Sensitive) *string {
	if v == nil {
		return nil
	}
	s := v.Reveal()
	return &s
}

func varView(v envy.VarView) varJSON {
	return varJSON{
		ID:             v.ID,
		Name:           v.Name,
		Value:          revealed(v.Value),
		MaskedValue:    v.MaskedValue,
		Secret:         v.Secret,
		Description:    v.Description,
		Version:        v.Version,
		Revision:       v.Revision,
		CreatedAt:      v.CreatedAt.UTC(),
		UpdatedAt:      v.UpdatedAt.UTC(),
		UpdatedBy:      v.UpdatedBy,
		UpdatedByToken: v.UpdatedByToken,
	}
}

// varWriteJSON is a var write's reply: the var's fields, with the write's
// revision, and synced.
type varWriteJSON struct {
	varJSON
	Revision int64                `json:"revision"`
	Synced   bool                 `json:"synced"`
	Behind   []api.BehindConsumer `json:"behind,omitempty"`
}

func changeView(c envy.ChangeView) api.Change {
	return api.Change{
		Revision:    c.Revision,
		Name:        c.Name,
		Op:          string(c.Op),
		Version:     c.Version,
		Actor:       c.Actor,
		ActorToken:  c.ActorToken,
		At:          c.At.UTC(),
		Secret:      c.Secret,
		Value:       revealed(c.Value),
		MaskedValue: c.MaskedValue,
	}
}

// statusView is one page of a scope's consumers, by id; next is the
// cursor of the next page.
func statusView(st envy.Status, next string) api.Status {
	cs := make([]api.Consumer, 0, len(st.Consumers))
	for _, c := range st.Consumers {
		v := api.Consumer{
			ID:        c.ID,
			Hostname:  c.Hostname,
			PID:       c.PID,
			Revision:  c.Revision,
			FirstSeen: c.FirstSeen.UTC(),
			SeenAt:    c.SeenAt.UTC(),
			Behind:    c.Behind,
		}
		if !c.FallbackSince.IsZero() {
			since := c.FallbackSince.UTC()
			v.OnFallbackSince = &since
		}
		cs = append(cs, v)
	}
	return api.Status{Scope: st.Scope, Revision: st.Revision, Synced: st.Synced, Consumers: cs, NextCursor: api.Cursor(next),
		Rollout: rolloutStatusView(st.Rollout)}
}

// consumerReportJSON answers a consumer's report.
type consumerReportJSON struct {
	Scope    string `json:"scope"`
	ID       string `json:"id"`
	Hostname string `json:"hostname"`
	PID      int    `json:"pid"`
	Revision int64  `json:"revision"`
}

func tokenView(t envy.Token) api.Token {
	// A copy: the token may be shared with the service's cache.
	perms := make([]api.Permission, 0, len(t.Permissions))
	for _, g := range t.Permissions {
		actions := make([]string, 0, len(g.Actions))
		for _, a := range g.Actions {
			actions = append(actions, string(a))
		}
		perms = append(perms, api.Permission{Scopes: g.Scopes, Actions: actions})
	}
	return api.Token{
		ID:          t.ID,
		Name:        t.Name,
		Owner:       t.Owner,
		Permissions: perms,
		CreatedAt:   t.CreatedAt.UTC(),
		CreatedBy:   t.CreatedBy,
		ParentID:    idPtr(t.ParentID),
		ExpiresAt:   utcPtr(t.ExpiresAt),
		RevokedAt:   utcPtr(t.RevokedAt),
		Trust:       t.Trust,
		Subject:     t.Subject,
	}
}

// tokenCreatedView is the reply to a token's creation: the one time its
// plaintext is shown.
func tokenCreatedView(t envy.Token, plaintext string) api.Token {
	v := tokenView(t)
	v.Token = plaintext
	return v
}

// auditStatus is the HTTP status shown for each audit outcome: the status
// such a request is answered with. It is the one place where outcomes meet
// HTTP; the stores keep the same numbers (envy.Outcome).
var auditStatus = map[envy.Outcome]int{
	envy.OutcomeOK:              http.StatusOK,
	envy.OutcomeCreated:         http.StatusCreated,
	envy.OutcomeDeleted:         http.StatusNoContent,
	envy.OutcomeUnauthenticated: http.StatusUnauthorized,
	envy.OutcomeForbidden:       http.StatusForbidden,
	envy.OutcomeNotFound:        http.StatusNotFound,
	envy.OutcomeConflict:        http.StatusConflict,
	envy.OutcomeRateLimited:     http.StatusTooManyRequests,
	envy.OutcomeClientClosed:    StatusClientClosed,
	envy.OutcomeFailed:          http.StatusInternalServerError,
	envy.OutcomeUnavailable:     http.StatusServiceUnavailable,
}

// AuditStatus is the HTTP status that the audit API and the dashboard show
// for an audit entry's outcome. An outcome it does not know (recorded by a
// newer server) is shown as its number.
func AuditStatus(o envy.Outcome) int {
	if st, ok := auditStatus[o]; ok {
		return st
	}
	return int(o)
}

// AuditView is an audit entry as GET /v1/audit shows it: the shape of
// each line of an audit stream too (auditstream.Options.View).
func AuditView(a envy.AuditEntry) any { return auditView(a) }

func auditView(a envy.AuditEntry) api.AuditEntry {
	names := a.Names
	if names == nil {
		names = []string{}
	}
	ids := a.RequestIDs
	if len(ids) == 0 {
		ids = []string{}
		if a.RequestID != "" {
			ids = []string{a.RequestID}
		}
	}
	last := a.LastAt
	if last.Before(a.At) {
		last = a.At
	}
	return api.AuditEntry{
		TokenID:    idPtr(a.TokenID),
		Count:      max(a.Count, 1),
		ID:         a.ID,
		At:         a.At.UTC(),
		Actor:      a.Actor,
		Action:     string(a.Action),
		Scope:      a.Scope,
		Names:      names,
		Status:     AuditStatus(a.Status),
		RequestID:  a.RequestID,
		Client:     a.Client,
		Revision:   a.Revision,
		LastAt:     last.UTC(),
		RequestIDs: ids,
	}
}
