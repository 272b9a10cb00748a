package http

import (
	"time"

	"github.com/envy-dev/envy"
)

// The reply shapes of the native API. Timestamps are RFC 3339 with
// nanoseconds, in UTC.

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func fmtTimePtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := fmtTime(*t)
	return &s
}

// cursor is a page's next_cursor: null on the last page.
func cursor(c string) *string {
	if c == "" {
		return nil
	}
	return &c
}

type listJSON[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

func list[T, V any](p envy.Page[T], view func(T) V) listJSON[V] {
	items := make([]V, 0, len(p.Items))
	for _, it := range p.Items {
		items = append(items, view(it))
	}
	return listJSON[V]{Items: items, NextCursor: cursor(p.NextCursor)}
}

type scopeJSON struct {
	Path        string   `json:"path"`
	Description string   `json:"description"`
	Inherits    []string `json:"inherits"`
	Revision    int64    `json:"revision"`
	CreatedAt   string   `json:"created_at"`
	UpdatedAt   string   `json:"updated_at"`
}

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
		CreatedAt:   fmtTime(s.CreatedAt),
		UpdatedAt:   fmtTime(s.UpdatedAt),
	}
}

type scopeGetJSON struct {
	scopeJSON
	VarCount int `json:"var_count"`
}

type scopeWriteJSON struct {
	scopeJSON
	Revision int64 `json:"revision"` // the write's
	Synced   bool  `json:"synced"`
}

// writeInfoJSON is the reply of a write that has no other body.
type writeInfoJSON struct {
	Scope    string `json:"scope"`
	Revision int64  `json:"revision"`
	Synced   bool   `json:"synced"`
}

func writeInfoView(wi envy.WriteInfo) writeInfoJSON {
	return writeInfoJSON{Scope: wi.Scope, Revision: wi.Revision, Synced: wi.Synced}
}

type varJSON struct {
	ID          string  `json:"id"`
	Name        string  `json:"name"`
	Value       *string `json:"value"`
	MaskedValue *string `json:"masked_value"`
	Secret      bool    `json:"secret"`
	Description string  `json:"description"`
	Version     int64   `json:"version"`
	Revision    int64   `json:"revision"`
	CreatedAt   string  `json:"created_at"`
	UpdatedAt   string  `json:"updated_at"`
	UpdatedBy   string  `json:"updated_by"`
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
		ID:          v.ID,
		Name:        v.Name,
		Value:       revealed(v.Value),
		MaskedValue: v.MaskedValue,
		Secret:      v.Secret,
		Description: v.Description,
		Version:     v.Version,
		Revision:    v.Revision,
		CreatedAt:   fmtTime(v.CreatedAt),
		UpdatedAt:   fmtTime(v.UpdatedAt),
		UpdatedBy:   v.UpdatedBy,
	}
}

// varWriteJSON is a var write's reply: the var's fields, with the write's
// revision, and synced.
type varWriteJSON struct {
	varJSON
	Revision int64 `json:"revision"`
	Synced   bool  `json:"synced"`
}

type varListJSON struct {
	Scope    string    `json:"scope"`
	Revision int64     `json:"revision"`
	Items    []varJSON `json:"items"`
}

type envJSON struct {
	Scope    string            `json:"scope"`
	Revision int64             `json:"revision"`
	Env      map[string]string `json:"env"`
	// Secrets names the vars of Env that are secret, sorted, so that a
	// consumer such as `envy run --redact` knows what to keep out of logs.
	Secrets []string `json:"secrets"`
}

type changeJSON struct {
	Revision    int64   `json:"revision"`
	Name        string  `json:"name"`
	Op          string  `json:"op"`
	Version     int64   `json:"version"`
	Actor       string  `json:"actor"`
	At          string  `json:"at"`
	Secret      bool    `json:"secret"`
	Value       *string `json:"value"`
	MaskedValue *string `json:"masked_value"`
}

func changeView(c envy.ChangeView) changeJSON {
	return changeJSON{
		Revision:    c.Revision,
		Name:        c.Name,
		Op:          string(c.Op),
		Version:     c.Version,
		Actor:       c.Actor,
		At:          fmtTime(c.At),
		Secret:      c.Secret,
		Value:       revealed(c.Value),
		MaskedValue: c.MaskedValue,
	}
}

type consumerJSON struct {
	ID        string `json:"id"`
	Hostname  string `json:"hostname"`
	PID       int    `json:"pid"`
	Revision  int64  `json:"revision"`
	FirstSeen string `json:"first_seen"`
	SeenAt    string `json:"seen_at"`
	Behind    bool   `json:"behind"`
}

type statusJSON struct {
	Scope     string         `json:"scope"`
	Revision  int64          `json:"revision"`
	Synced    bool           `json:"synced"`
	Consumers []consumerJSON `json:"consumers"` // one page, by id
	// NextCursor is the cursor of the next page of consumers, null on
	// the last.
	NextCursor *string `json:"next_cursor"`
}

func statusView(st envy.Status) statusJSON {
	cs := make([]consumerJSON, 0, len(st.Consumers))
	for _, c := range st.Consumers {
		cs = append(cs, consumerJSON{
			ID:        c.ID,
			Hostname:  c.Hostname,
			PID:       c.PID,
			Revision:  c.Revision,
			FirstSeen: fmtTime(c.FirstSeen),
			SeenAt:    fmtTime(c.SeenAt),
			Behind:    c.Behind,
		})
	}
	return statusJSON{Scope: st.Scope, Revision: st.Revision, Synced: st.Synced, Consumers: cs}
}

// consumerReportJSON answers a consumer's report.
type consumerReportJSON struct {
	Scope    string `json:"scope"`
	ID       string `json:"id"`
	Hostname string `json:"hostname"`
	PID      int    `json:"pid"`
	Revision int64  `json:"revision"`
}

type tokenJSON struct {
	ID          string       `json:"id"`
	Name        string       `json:"name"`
	Owner       string       `json:"owner"`
	Permissions []envy.Grant `json:"permissions"`
	CreatedAt   string       `json:"created_at"`
	CreatedBy   string       `json:"created_by"`
	ParentID    *string      `json:"parent_id"`
	ExpiresAt   *string      `json:"expires_at"`
	RevokedAt   *string      `json:"revoked_at"`
}

func tokenView(t envy.Token) tokenJSON {
	// A copy: the token may be shared with the service's cache.
	perms := make([]envy.Grant, 0, len(t.Permissions))
	for _, g := range t.Permissions {
		if g.Actions == nil {
			g.Actions = []envy.Action{}
		}
		perms = append(perms, g)
	}
	var parentID *string
	if t.ParentID != "" {
		parentID = &t.ParentID
	}
	return tokenJSON{
		ID:          t.ID,
		Name:        t.Name,
		Owner:       t.Owner,
		Permissions: perms,
		CreatedAt:   fmtTime(t.CreatedAt),
		CreatedBy:   t.CreatedBy,
		ParentID:    parentID,
		ExpiresAt:   fmtTimePtr(t.ExpiresAt),
		RevokedAt:   fmtTimePtr(t.RevokedAt),
	}
}

// tokenCreatedJSON is the reply to a token's creation: the one time its
// plaintext is shown.
type tokenCreatedJSON struct {
	tokenJSON
	Token string `json:"token"`
}

type auditJSON struct {
	ID        int64    `json:"id"`
	At        string   `json:"at"`
	Actor     string   `json:"actor"`
	Action    string   `json:"action"`
	Scope     string   `json:"scope"`
	Names     []string `json:"names"`
	Status    int      `json:"status"`
	RequestID string   `json:"request_id"`
	Client    string   `json:"client"`
	Revision  int64    `json:"revision"`
	TokenID   *string  `json:"token_id"`
	Count     int64    `json:"count"`
}

func auditView(a envy.AuditEntry) auditJSON {
	names := a.Names
	if names == nil {
		names = []string{}
	}
	var tokenID *string
	if a.TokenID != "" {
		tokenID = &a.TokenID
	}
	return auditJSON{
		TokenID:   tokenID,
		Count:     max(a.Count, 1),
		ID:        a.ID,
		At:        fmtTime(a.At),
		Actor:     a.Actor,
		Action:    a.Action,
		Scope:     a.Scope,
		Names:     names,
		Status:    a.Status,
		RequestID: a.RequestID,
		Client:    a.Client,
		Revision:  a.Revision,
	}
}
