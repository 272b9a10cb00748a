package envy

import (
	"context"
	"log/slog"
	"time"
)

// Caller is who makes a request: the authenticated token (nil before
// authentication), the request id and the client address, for permission
// checks and the audit log.
type Caller struct {
	Token     *Token
	RequestID string
	Client    string
}

type callerKey struct{}

// WithCaller returns a context that carries the caller.
func WithCaller(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller in ctx, or an empty one.
func CallerFrom(ctx context.Context) *Caller {
	if c, ok := ctx.Value(callerKey{}).(*Caller); ok {
		return c
	}
	return &Caller{}
}

// Options configure a Service.
type Options struct {
	ReservedPrefixes []string      // default ["ENVY_"]
	ConsumerTTL      time.Duration // default 60 s
	Logger           *slog.Logger
	Now              func() time.Time
}

// Page is one page of a list.
type Page[T any] struct {
	Items      []T
	NextCursor string // "" on the last page
}

// Cond is a write precondition.
type Cond struct {
	IfRevision int64 // when > 0, EPrecondition unless the scope is at this revision
}

// ScopeInput updates a scope; nil fields keep their value.
type ScopeInput struct {
	Description *string
	Inherits    *[]string
}

// ScopeListQuery selects scopes.
type ScopeListQuery struct {
	Prefix string
	Cursor string
	Limit  int // 1–1000, default 100
}

// VarInput sets a var; nil fields keep their value (a new var needs Value).
type VarInput struct {
	Value       *Sensitive
	Secret      *bool
	Description *string
}

// SetMode says what SetVar does with an existing or missing var.
type SetMode int

// The set modes.
const (
	Upsert     SetMode = iota // create or update
	UpdateOnly                // ENotFound when the var does not exist
	CreateOnly                // EConflict when the var exists
)

// SetOptions tune SetVar.
type SetOptions struct {
	Cond
	Mode SetMode
	// ScopeMustExist refuses with ENotFound instead of creating the scope.
	ScopeMustExist bool
}

// WriteInfo is what every write reply carries.
type WriteInfo struct {
	Scope    string
	Revision int64
	Synced   bool // every live consumer of the scope runs Revision
	Created  bool // SetVar created the var; PutScope created the scope
}

// VarView is a var as a read shows it: Value is nil when masked.
type VarView struct {
	ID          string
	Scope       string
	Name        string
	Value       *Sensitive
	MaskedValue *string // set for secrets
	Secret      bool
	Description string
	Version     int64
	Revision    int64
	CreatedAt   time.Time
	UpdatedAt   time.Time
	UpdatedBy   string
}

// VarList is a scope's own vars.
type VarList struct {
	Scope    string
	Revision int64
	Items    []VarView
}

// EnvVar is one var of a resolved env.
type EnvVar struct {
	Name   string
	Value  Sensitive
	Secret bool
	From   string // the scope it comes from
}

// Env is a scope's resolved env, sorted by name.
type Env struct {
	Scope    string
	Revision int64
	Vars     []EnvVar
}

// ChangeView is a history entry as reads show it.
type ChangeView struct {
	Revision    int64
	Name        string
	Op          Op
	Version     int64
	Actor       string
	At          time.Time
	Secret      bool
	Value       *Sensitive // nil for deletes and masked secrets
	MaskedValue *string
}

// HistoryQuery pages through a scope's history.
type HistoryQuery struct {
	Cursor string // a next cursor that History gave
	Before int64  // without a cursor: only changes older than this revision
	Limit  int
	Reveal bool
}

// TokenInput creates a token.
type TokenInput struct {
	Name        string
	Owner       string // defaults to Name
	Permissions []Grant
	ExpiresAt   *time.Time
	ExpiresIn   string // a Go duration such as "12h"; exclusive with ExpiresAt
}

// AuditListQuery selects audit entries, newest first.
type AuditListQuery struct {
	Scope  string
	Actor  string
	Since  time.Time
	Cursor string
	Limit  int
}

// ConsumerInput is a consumer's report.
type ConsumerInput struct {
	Revision int64
	Hostname string
	PID      int
}

// ConsumerView is a live consumer in a status.
type ConsumerView struct {
	Consumer
	Behind bool
}

// Status tells whether every live consumer runs the scope's revision.
type Status struct {
	Scope     string
	Revision  int64
	Synced    bool
	Consumers []ConsumerView
}

// Event is a change to a scope's resolved env.
type Event struct {
	Scope    string
	Revision int64
}
