package client

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
	VarCount    *int      `json:"var_count,omitempty"` // on GetScope only
}

// ScopeInput is the body of PutScope. A nil field keeps what the scope has;
// a non-nil empty Inherits clears the list.
type ScopeInput struct {
	Description *string
	Inherits    []string
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
	return json.Marshal(m)
}

// ScopeWrite is the reply of PutScope: the scope, the write's revision and
// whether live consumers run it.
type ScopeWrite struct {
	Scope
	Synced  bool `json:"synced"`
	Created bool `json:"-"` // 201: the scope did not exist before
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
	Synced  bool `json:"synced"`
	Created bool `json:"-"` // 201: the var did not exist before
}

// VarList is a scope's own vars, by name.
type VarList struct {
	Scope    string `json:"scope"`
	Revision int64  `json:"revision"`
	Items    []Var  `json:"items"`
}

// WriteResult is the reply of a bulk write, a rollback or a delete.
type WriteResult struct {
	Scope    string `json:"scope"`
	Revision int64  `json:"revision"` // from the ETag for a delete; 0 if none came
	Synced   bool   `json:"synced"`
}

// Env is a scope's resolved env: inherited scopes' vars merged in order,
// then its own, in plaintext.
type Env struct {
	Scope    string            `json:"scope"`
	Revision int64             `json:"revision"`
	Env      map[string]string `json:"env"`
	Secrets  []string          `json:"secrets"` // the names in Env whose vars are secret, sorted
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

// Token is an API token. Token (the plaintext) is set only in the reply of
// CreateToken: the server keeps only a hash.
type Token struct {
	ID          string       `json:"id"`
	Name        string       `json:"name"`
	Owner       string       `json:"owner"`
	Permissions []Permission `json:"permissions"`
	CreatedAt   time.Time    `json:"created_at"`
	CreatedBy   string       `json:"created_by"`
	ExpiresAt   *time.Time   `json:"expires_at"`
	RevokedAt   *time.Time   `json:"revoked_at"`
	Token       string       `json:"token,omitempty"`
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
}

// AuditQuery filters the audit log. Zero fields do not filter.
type AuditQuery struct {
	Scope  string
	Actor  string
	Since  time.Time
	Limit  int
	Cursor string
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
}

// ConsumerReport is what a workload reports to ReportConsumer.
type ConsumerReport struct {
	Revision int64  `json:"revision"`
	Hostname string `json:"hostname,omitempty"`
	PID      int    `json:"pid,omitempty"`
}

// Status tells whether the live consumers of a scope run its revision.
type Status struct {
	Scope     string     `json:"scope"`
	Revision  int64      `json:"revision"`
	Synced    bool       `json:"synced"`
	Consumers []Consumer `json:"consumers"`
}

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }
