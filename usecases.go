package envy

import "time"

// The inputs and outputs of the use-cases (the methods of service.Service
// that every API dialect calls): what callers build and what they read.
// Like the types of envy.go they are plain data, with no behaviour of
// their own.

// Cond is a write precondition.
type Cond struct {
	IfRevision int64 // when > 0, EPrecondition unless the scope is at this revision
}

// MaxBehindShown bounds the consumers a write reply names as behind.
const MaxBehindShown = 10

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
	// Synced: every live consumer of the scope, and of every scope that
	// inherits it (directly or not), runs Revision.
	Synced bool
	// Behind names some of the live consumers that don't (at most
	// MaxBehindShown), each with the scope it runs, by scope and id.
	Behind  []Consumer
	Created bool // SetVar created the var; PutScope created the scope
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
	// UpdatedByToken is the id of the token that made the last change.
	UpdatedByToken string
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

// ScopeInput updates a scope; nil fields keep their value.
type ScopeInput struct {
	Description *string
	Inherits    *[]string
	// Rollout sets the scope's rollout policy; ClearRollout removes it.
	Rollout      *RolloutPolicy
	ClearRollout bool
}

// ScopeListQuery selects scopes.
type ScopeListQuery struct {
	Prefix string
	Cursor string
	Limit  int // 1–1000, default 100
}

// HiddenScope stands in an inherits list for a scope the caller may not
// read: a scope a caller can't read is named in no reply and no error.
const HiddenScope = "(hidden)"

// ChangeView is a history entry as reads show it.
type ChangeView struct {
	Revision    int64
	Name        string
	Op          Op
	Version     int64
	Actor       string
	ActorToken  string // the acting token's id
	At          time.Time
	Secret      bool
	Value       *Sensitive // nil for deletes and masked secrets
	MaskedValue *string
	Description string // the var's description as this version set it
	// SameValue says that this version kept the value of the version
	// before it (a change of the description or the secret flag only).
	// Told only when that version is on the same page, and of a secret
	// only to a caller who may reveal it: to another it would confirm
	// that a value it wrote was the secret's.
	SameValue bool
}

// HistoryQuery pages through a scope's history.
type HistoryQuery struct {
	Cursor string // a next cursor that History gave
	Before int64  // without a cursor: only changes older than this revision
	Limit  int
	Reveal bool
}

// ConsumerInput is a consumer's report.
type ConsumerInput struct {
	Revision int64
	Hostname string
	PID      int
	// FallbackSince, when not zero, says the consumer runs with its
	// fallback copy, and since when.
	FallbackSince time.Time
	// Unhealthy, when set, says why the consumer's command did not come
	// back healthy after a restart the rollout granted (never a value):
	// the scope's rollout pauses. At most MaxUnhealthyBytes, printable.
	Unhealthy string
}

// MaxUnhealthyBytes bounds a consumer's unhealthy reason.
const MaxUnhealthyBytes = 500

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
	// Rollout is the scope's rollout, when it has a policy.
	Rollout *RolloutStatus
}

// StatusQuery pages the consumers of a status, by id.
type StatusQuery struct {
	Cursor string
	Limit  int // 1–1000, default 100
}

// BrowserSession is a dashboard session with its token opened: what the
// dashboard needs to serve a request. Its id is known only to the browser
// (its cookie) and to the server serving it; the store keeps its hash.
type BrowserSession struct {
	ID        string
	Token     string // the token's plaintext, authenticated again on every request
	CSRF      string
	CreatedAt time.Time
	UsedAt    time.Time
}

// Event is a change to a scope's resolved env.
type Event struct {
	Scope    string
	Revision int64
	// Wait: the scope has a rollout policy and the watcher (an instance
	// that named itself) is to keep running what it has until its Grant.
	Wait bool
	// Grant, when set, is the watcher's turn to restart.
	Grant *RolloutGrant
}

// RolloutGrant is an instance's turn to restart under a rollout policy: to
// Revision or newer, healthy again within HealthTimeout; its slot is freed
// at ExpiresAt at the latest. A zero HealthTimeout is a go without a slot
// (the policy was removed while the instance waited).
type RolloutGrant struct {
	Revision      int64
	HealthTimeout time.Duration
	ExpiresAt     time.Time
}

// EncodedReply is a read's reply as an API encodes it, for the hot reads
// whose encoding the plaintext cache keeps (EnvReply, VarListReply).
type EncodedReply struct {
	Revision int64
	// Body is the encoding. When Cached it is the plaintext cache's copy,
	// shared with other readers: write it, never change it. Otherwise it
	// is what the encoder returned, the caller's to reuse.
	Body   []byte
	Cached bool
}

// Page is one page of a list.
type Page[T any] struct {
	Items      []T
	NextCursor string // "" on the last page
}
