// Package api holds the JSON shapes of the native API's replies: the
// server (package http) writes them and the client (package client, whose
// types are these) reads them, so that both sides have one definition of
// the wire. Timestamps are RFC 3339 with nanoseconds; the server writes
// them in UTC.
//
// It imports only the standard library.
package api

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
)

// Cursor is a page's next_cursor: the text to pass back for the next page,
// or "" on the last page (null on the wire). The server may send it as a
// string or a number; either comes back as text.
type Cursor string

// UnmarshalJSON accepts a string, a number or null.
func (c *Cursor) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*c = ""
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*c = Cursor(s)
	default:
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return err
		}
		*c = Cursor(n.String())
	}
	return nil
}

// MarshalJSON writes "" as null, as the server does.
func (c Cursor) MarshalJSON() ([]byte, error) {
	if c == "" {
		return []byte("null"), nil
	}
	return json.Marshal(string(c))
}

// Page is one page of a list.
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor Cursor `json:"next_cursor"` // "" on the last page
}

// Scope is a named set of variables.
type Scope struct {
	Path        string    `json:"path"`
	Description string    `json:"description"`
	Inherits    []string  `json:"inherits"`
	Revision    int64     `json:"revision"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	VarCount    *int      `json:"var_count,omitempty"` // in the reply of a scope's read only
	// Rollout is the scope's rollout policy; absent when it has none.
	Rollout *RolloutPolicy `json:"rollout,omitempty"`
}

// Var is a variable. For a secret read without reveal, Value is nil and
// MaskedValue shows a part of it; for a non-secret, MaskedValue is nil.
type Var struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Value       *string   `json:"value"`
	MaskedValue *string   `json:"masked_value"`
	Secret      bool      `json:"secret"`
	Description string    `json:"description"`
	Version     int64     `json:"version"`
	Revision    int64     `json:"revision"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	UpdatedBy   string    `json:"updated_by"`
	// UpdatedByToken is the id of the token that made the last change
	// ("" for a change made before changes kept it).
	UpdatedByToken string `json:"updated_by_token"`
}

// Shown returns what a read shows of the var: its value, or its masked
// value when the value was withheld.
func (v Var) Shown() string {
	switch {
	case v.Value != nil:
		return *v.Value
	case v.MaskedValue != nil:
		return *v.MaskedValue
	}
	return ""
}

// VarList is a scope's own vars, by name.
type VarList struct {
	Scope    string `json:"scope"`
	Revision int64  `json:"revision"`
	Items    []Var  `json:"items"`
}

// Resolved is a scope's resolution: its layers in merge order, each scope
// once at its last place in the depth-first order of inherits, the scope
// itself last. A later layer's var wins over an earlier one's.
type Resolved struct {
	Scope    string          `json:"scope"`
	Revision int64           `json:"revision"`
	Layers   []ResolvedLayer `json:"layers"`
}

// ResolvedLayer is one scope of a resolution. A scope the token may not
// read shows as "(hidden)", with Hidden set and no vars.
type ResolvedLayer struct {
	Scope    string        `json:"scope"`
	Hidden   bool          `json:"hidden"`
	Revision int64         `json:"revision"`
	Vars     []ResolvedVar `json:"vars"`
}

// ResolvedVar is a layer's var: From is the layer's scope; ShadowedBy, on
// a var that is not in effect, names the scope whose value wins.
type ResolvedVar struct {
	Var
	From       string `json:"from"`
	ShadowedBy string `json:"shadowed_by,omitempty"`
	// References are the references in the value ("NAME" or
	// "scope/path:NAME"), on a var in effect whose value holds any.
	References []string `json:"references,omitempty"`
	// ResolvedValue is the value with its references expanded, when the
	// token may see it; ReferenceError, instead, why it does not resolve
	// or may not be followed (it names the reference, never a value).
	ResolvedValue  *string `json:"resolved_value,omitempty"`
	ReferenceError string  `json:"reference_error,omitempty"`
}

// WriteResult is the reply of a bulk write, a rollback or a delete.
type WriteResult struct {
	Scope    string `json:"scope"`
	Revision int64  `json:"revision"` // from the ETag for a delete; 0 if none came
	Synced   bool   `json:"synced"`
	// Behind names some live consumers (at most 10) that don't run the
	// write yet, of the scope or of a scope that inherits it.
	Behind []BehindConsumer `json:"behind,omitempty"`
}

// BehindConsumer is a live consumer that a write left behind: the scope it
// runs (the one written, or one that inherits it), its id and the
// revision it runs.
type BehindConsumer struct {
	Scope    string `json:"scope"`
	ID       string `json:"id"`
	Revision int64  `json:"revision"`
}

// Env is a scope's resolved env: inherited scopes' vars merged in order,
// then its own, in plaintext.
type Env struct {
	Scope    string            `json:"scope"`
	Revision int64             `json:"revision"`
	Env      map[string]string `json:"env"`
	// Secrets names the vars of Env that are secret, sorted, so that a
	// consumer such as `envy run --redact` knows what to keep out of logs.
	Secrets []string `json:"secrets"`
}

// IsSecret reports whether the var name of the env is a secret.
func (e *Env) IsSecret(name string) bool {
	for _, s := range e.Secrets {
		if s == name {
			return true
		}
	}
	return false
}

// Change is one entry of a scope's history. Value is nil for a delete, and
// for a secret unless the read revealed it.
type Change struct {
	Revision    int64     `json:"revision"`
	Name        string    `json:"name"`
	Op          string    `json:"op"` // "set" or "delete"
	Version     int64     `json:"version"`
	Actor       string    `json:"actor"`
	ActorToken  string    `json:"actor_token"` // the acting token's id ("" for a change made before changes kept it)
	At          time.Time `json:"at"`
	Secret      bool      `json:"secret"`
	Value       *string   `json:"value"`
	MaskedValue *string   `json:"masked_value"`
}

// Permission grants actions ("read", "write", "reveal", "admin") on the
// scopes that a glob matches ("acme/**": '*' is one segment, '**' any).
type Permission struct {
	Scopes  string   `json:"scopes"`
	Actions []string `json:"actions"`
}

// Revocation is the reply of DELETE /v1/tokens/{id}: how many tokens the
// revocation ended (the token and those it minted that were live), or,
// with dry_run, would end.
type Revocation struct {
	ID      string `json:"id"`
	Revoked int    `json:"revoked"`
	DryRun  bool   `json:"dry_run,omitempty"`
}

// Token is an API token. Token (the plaintext) is set only in the reply of
// its creation: the server keeps only a hash.
type Token struct {
	ID          string       `json:"id"`
	Name        string       `json:"name"`
	Owner       string       `json:"owner"`
	Permissions []Permission `json:"permissions"`
	CreatedAt   time.Time    `json:"created_at"`
	CreatedBy   string       `json:"created_by"`
	ParentID    *string      `json:"parent_id"` // the token that minted it; nil for the bootstrap token
	ExpiresAt   *time.Time   `json:"expires_at"`
	RevokedAt   *time.Time   `json:"revoked_at"`
	Token       string       `json:"token,omitempty"`
	// Trust and Subject are the lineage of a token minted by a JWT login:
	// the trust's name and the JWT's subject (absent otherwise). A token
	// minted by a dialect's client-credentials sign-in has the trust
	// "signin:{dialect}" (no trust can be so named) and its parent's id as
	// subject.
	Trust   string `json:"trust,omitempty"`
	Subject string `json:"subject,omitempty"`
}

// AuditEntry is one record of the audit log. It never holds a value.
type AuditEntry struct {
	ID        int64     `json:"id"`
	At        time.Time `json:"at"`
	Actor     string    `json:"actor"`
	Action    string    `json:"action"` // var.set, vars.merge, reveal, token.create, …
	Scope     string    `json:"scope"`
	Names     []string  `json:"names"`
	Status    int       `json:"status"`
	RequestID string    `json:"request_id"`
	Client    string    `json:"client"`
	Revision  int64     `json:"revision"`
	TokenID   *string   `json:"token_id"` // the token that acted, when one did
	Count     int64     `json:"count"`    // how many alike records this one stands for (at least 1)
	// LastAt is when the last request the entry stands for came (At is
	// the first): At for an entry of one request.
	LastAt time.Time `json:"last_at"`
	// RequestIDs are the ids of the first 16 requests the entry stands
	// for, in the order they came (RequestID is the first); Count says how
	// many there were.
	RequestIDs []string `json:"request_ids"`
}

// Consumer is a running workload that reported the revision it runs.
type Consumer struct {
	ID        string    `json:"id"`
	Hostname  string    `json:"hostname"`
	PID       int       `json:"pid"`
	Revision  int64     `json:"revision"`
	FirstSeen time.Time `json:"first_seen"`
	SeenAt    time.Time `json:"seen_at"`
	Behind    bool      `json:"behind"` // runs an older revision than the scope's
	// OnFallbackSince is set while the consumer runs with its fallback
	// copy instead of values the server gave: since when.
	OnFallbackSince *time.Time `json:"on_fallback_since"`
}

// Status tells whether the live consumers of a scope run its revision.
type Status struct {
	Scope     string     `json:"scope"`
	Revision  int64      `json:"revision"`
	Synced    bool       `json:"synced"`
	Consumers []Consumer `json:"consumers"` // one page, by id
	// NextCursor is the cursor of the next page of consumers, "" on the
	// last.
	NextCursor Cursor `json:"next_cursor"`
	// Rollout is the scope's rollout, when it has a rollout policy.
	Rollout *RolloutStatus `json:"rollout,omitempty"`
}

// RolloutPolicy is a scope's rollout policy.
type RolloutPolicy struct {
	MaxUnavailable MaxUnavailable `json:"max_unavailable"`
	HealthTimeout  string         `json:"health_timeout"` // a Go duration: "30s"
	Debounce       string         `json:"debounce"`
}

// MaxUnavailable is a number of instances (2, a JSON number) or a
// percentage of the live instances ("25%", a JSON string).
type MaxUnavailable string

// MarshalJSON writes a number of instances as a JSON number.
func (m MaxUnavailable) MarshalJSON() ([]byte, error) {
	if _, err := strconv.Atoi(string(m)); err == nil {
		return []byte(m), nil
	}
	return json.Marshal(string(m))
}

// UnmarshalJSON reads a JSON number or string.
func (m *MaxUnavailable) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*m = MaxUnavailable(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*m = MaxUnavailable(n.String())
	return nil
}

// RolloutStatus is a scope's rollout in its status.
type RolloutStatus struct {
	// State is "rolling" (instances run an older env and restart in
	// waves), "paused" (an instance did not come back healthy: no more
	// restarts until resumed or a newer change) or "done".
	State    string   `json:"state"`
	Revision int64    `json:"revision"` // the env revision rolled out
	Reason   string   `json:"reason,omitempty"`
	Failed   []string `json:"failed"` // the instances that did not come back healthy
	// Slots is how many instances may restart at once now.
	Slots      int            `json:"slots"`
	Policy     RolloutPolicy  `json:"policy"`
	Restarting []RolloutLease `json:"restarting"`
}

// RolloutLease is an instance that holds a slot of a rollout: it was
// granted a restart to Revision; its slot is freed when it reports that
// revision, says goodbye, or at LeaseExpiresAt.
type RolloutLease struct {
	Instance       string    `json:"instance"`
	Revision       int64     `json:"revision"`
	GrantedAt      time.Time `json:"granted_at"`
	LeaseExpiresAt time.Time `json:"lease_expires_at"`
}

// RolloutResumed answers POST …/-/rollout/resume.
type RolloutResumed struct {
	Scope   string `json:"scope"`
	Resumed bool   `json:"resumed"` // false when the rollout was not paused
}
