package client

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/envy-dev/envy/api"
)

// The replies of the API are package api's shapes, which the server
// writes: see there.
type (
	Cursor         = api.Cursor
	Page[T any]    = api.Page[T]
	Scope          = api.Scope
	Revocation     = api.Revocation
	Var            = api.Var
	VarList        = api.VarList
	Resolved       = api.Resolved
	WriteResult    = api.WriteResult
	Env            = api.Env
	Change         = api.Change
	Permission     = api.Permission
	Token          = api.Token
	AuditEntry     = api.AuditEntry
	Consumer       = api.Consumer
	BehindConsumer = api.BehindConsumer
	Status         = api.Status
	RolloutPolicy  = api.RolloutPolicy
	RolloutStatus  = api.RolloutStatus
	RolloutLease   = api.RolloutLease
	MaxUnavailable = api.MaxUnavailable
)

// ScopeInput is the body of PutScope. A nil field keeps what the scope has;
// a non-nil empty Inherits clears the list.
type ScopeInput struct {
	Description *string
	Inherits    []string
	// Rollout sets the scope's rollout policy (health_timeout and
	// debounce left "" take the server's defaults); NoRollout removes it.
	Rollout   *RolloutPolicy
	NoRollout bool
}

// MarshalJSON leaves out what is nil, and writes an empty, non-nil
// Inherits as [].
func (in ScopeInput) MarshalJSON() ([]byte, error) {
	m := map[string]any{}
	if in.Description != nil {
		m["description"] = *in.Description
	}
	if in.Inherits != nil {
		m["inherits"] = in.Inherits
	}
	switch {
	case in.NoRollout:
		m["rollout"] = nil
	case in.Rollout != nil:
		r := map[string]any{"max_unavailable": in.Rollout.MaxUnavailable}
		if in.Rollout.HealthTimeout != "" {
			r["health_timeout"] = in.Rollout.HealthTimeout
		}
		if in.Rollout.Debounce != "" {
			r["debounce"] = in.Rollout.Debounce
		}
		m["rollout"] = r
	}
	return json.Marshal(m)
}

// ScopeWrite is the reply of PutScope: the scope, the write's revision and
// whether live consumers run it.
type ScopeWrite struct {
	Scope
	Synced  bool                 `json:"synced"`
	Behind  []api.BehindConsumer `json:"behind,omitempty"`
	Created bool                 `json:"-"` // 201: the scope did not exist before
}

// VarInput is the body of a var write. A nil field is left out: SetVar and
// UpdateVar keep the var's current secret flag and description.
type VarInput struct {
	Value       *string `json:"value,omitempty"`
	Secret      *bool   `json:"secret,omitempty"`
	Description *string `json:"description,omitempty"`
}

// Value returns a VarInput that sets only the value.
func Value(v string) *VarInput { return &VarInput{Value: &v} }

// SecretValue returns a VarInput that sets the value and marks it secret.
func SecretValue(v string) *VarInput {
	t := true
	return &VarInput{Value: &v, Secret: &t}
}

// String returns a pointer to s, for VarInput and ScopeInput fields.
func String(s string) *string { return &s }

// Bool returns a pointer to b, for VarInput fields.
func Bool(b bool) *bool { return &b }

// VarWrite is the reply of a single-var write: the var, the write's
// revision (Var.Revision) and whether live consumers run it.
type VarWrite struct {
	Var
	Synced  bool                 `json:"synced"`
	Behind  []api.BehindConsumer `json:"behind,omitempty"`
	Created bool                 `json:"-"` // 201: the var did not exist before
}

// TokenInput is the body of CreateToken. Give at most one of ExpiresAt and
// ExpiresIn (a duration such as "12h"); neither means no expiry.
type TokenInput struct {
	Name        string       `json:"name"`
	Owner       string       `json:"owner,omitempty"` // defaults to Name
	Permissions []Permission `json:"permissions"`
	ExpiresAt   *time.Time   `json:"expires_at,omitempty"`
	ExpiresIn   string       `json:"expires_in,omitempty"`
}

// AuditQuery filters the audit log. Zero fields do not filter.
type AuditQuery struct {
	Scope  string
	Actor  string
	Since  time.Time
	Limit  int
	Cursor string
}

// ConsumerReport is what a workload reports to ReportConsumer.
type ConsumerReport struct {
	Revision int64  `json:"revision"`
	Hostname string `json:"hostname,omitempty"`
	PID      int    `json:"pid,omitempty"`
	// FallbackSince, set while the workload runs with a fallback copy
	// rather than values the server gave, is when it started doing so.
	FallbackSince *time.Time `json:"fallback_since,omitempty"`
	// Unhealthy, set after a restart the rollout granted when the command
	// did not come back healthy, says why: the scope's rollout pauses.
	Unhealthy string `json:"unhealthy,omitempty"`
}

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }
