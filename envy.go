// Package envy is the domain of the envy secrets service: scopes, variables,
// tokens, changes and audit entries (their actions and outcomes), their
// validation, the error codes, Sensitive values and their masks, the pure
// permission rules over a token, the inputs and outputs of the use-cases
// (usecases.go), and the interfaces that the other packages implement:
// Store and its optional capabilities (Checker, AppendOpener), Keyring and
// Notifier, with Broadcast, the notice fan-out that stores embed.
//
// The use-cases themselves, with their caches and background work, are
// package service's. This package is plain data and pure functions: it
// imports nothing but the standard library (never a database, HTTP or
// crypto package of this module), starts no goroutine, and holds no lock
// but Broadcast's.
package envy

import (
	"context"
	"encoding/hex"
	"time"
)

// Scope is a named set of variables.
type Scope struct {
	Path        string
	Description string
	Inherits    []string // later ones override earlier ones
	Revision    int64    // revision of the scope's last change
	// EnvRevision is the revision of the scope's last change of what the
	// envs resolved over it hold: a var's value, secret flag or presence,
	// or the scope's inherits (or its creation). A change of descriptions
	// only takes a Revision, not an EnvRevision. Filled by ScopeTree and
	// PutScope.
	EnvRevision int64
	CreatedAt   time.Time
	UpdatedAt   time.Time
	VarCount    int // filled by GetScope and ListScopes
	// Rollout is the scope's rollout policy, nil for none; filled by the
	// Service's scope read and write (the store keeps it apart, in its
	// RolloutStore).
	Rollout *RolloutPolicy
}

// StoredVar is a variable as the store keeps it: its value sealed by the
// Keyring with AD(scope, name, version) as additional data.
type StoredVar struct {
	ID          string
	Scope       string
	Name        string
	Sealed      []byte
	Secret      bool
	Description string
	Version     int64
	Revision    int64 // revision of the var's last change
	CreatedAt   time.Time
	UpdatedAt   time.Time
	UpdatedBy   string
	// UpdatedByToken is the id of the token that made the last change
	// ("" for a change stored before changes kept it).
	UpdatedByToken string
}

// ScopeVars is a scope with its own vars, sorted by name.
type ScopeVars struct {
	Scope Scope
	Vars  []StoredVar
}

// Size estimates the bytes a snapshot keeps alive, for the bounds of the
// caches that keep snapshots.
func (sv *ScopeVars) Size() int {
	const perVar = 200 // the StoredVar itself and the slice's share
	n := 300 + len(sv.Scope.Path) + len(sv.Scope.Description)
	for _, p := range sv.Scope.Inherits {
		n += 16 + len(p)
	}
	for i := range sv.Vars {
		v := &sv.Vars[i]
		n += perVar + len(v.ID) + len(v.Name) + len(v.Sealed) + len(v.Description) + len(v.UpdatedBy) + len(v.UpdatedByToken)
	}
	return n
}

// Op is what a change did to a var.
type Op string

// The ops of a change.
const (
	OpSet    Op = "set"
	OpDelete Op = "delete"
)

// Change is one entry of a scope's history.
type Change struct {
	Revision    int64
	Scope       string
	Name        string
	Op          Op
	VarID       string
	Version     int64
	Secret      bool
	Description string
	Sealed      []byte // the value set; nil for a delete
	Actor       string
	ActorToken  string // the acting token's id ("" for a change stored before changes kept it)
	At          time.Time
}

// MaskedChange reports whether a history entry reads as a secret: masked
// to a caller without reveal. It is, when the entry itself was set secret,
// or when any later version of the var was (the var is secret now, or was
// after this entry): marking a var secret masks its whole past, and
// unmarking it unmasks none of it. lastSecret is Store.LastSecret of the
// entry's scope. Every reader of history (the API, rollback previews, the
// dashboard's diff) decides with this one rule.
func MaskedChange(c Change, lastSecret map[string]int64) bool {
	if c.Op == OpDelete {
		return false
	}
	return c.Secret || lastSecret[c.Name] >= c.Revision && lastSecret[c.Name] > 0
}

// Action is what a grant allows.
type Action string

// The actions. Admin implies all others.
const (
	ActRead   Action = "read"
	ActWrite  Action = "write"
	ActReveal Action = "reveal"
	ActAdmin  Action = "admin"
)

// Grant allows actions on the scopes that match a glob: "*" matches one
// segment, "**" any number of segments (also none).
type Grant struct {
	Scopes  string   `json:"scopes"`
	Actions []Action `json:"actions"`
}

// Token is an API token. The store keeps only the SHA-256 of its plaintext.
type Token struct {
	ID          string
	Name        string
	Owner       string
	Hash        []byte
	Permissions []Grant
	CreatedAt   time.Time
	CreatedBy   string
	// ParentID is the id of the token that minted this one ("" for the
	// bootstrap token). A child never outlives its parent, and revoking a
	// token revokes every token it minted, transitively.
	ParentID string
	// RootID is the first token of the lineage, the one with no parent
	// ("" for a token without a parent, or one stored before lineages had
	// roots: Root gives its own id). Per-token rate limits are counted per
	// root, so that minting children does not multiply them.
	RootID    string
	ExpiresAt *time.Time
	RevokedAt *time.Time
	// Trust and Subject are the lineage of a token minted by a JWT login
	// (JWTTrust): the trust's name and the JWT's subject; "" otherwise. A
	// dialect's client-credentials sign-in marks its token with the trust
	// "signin:{dialect}" (no trust's name has a ':') and its parent's id.
	Trust, Subject string
}

// Root returns the id of the first token of t's lineage: RootID, or t's
// own id when it has none.
func (t *Token) Root() string {
	if t.RootID != "" {
		return t.RootID
	}
	return t.ID
}

// AuditEntry records a write, a reveal, a token change or a refused
// request. It never holds a value.
type AuditEntry struct {
	ID        int64
	At        time.Time
	Actor     string
	Action    AuditAction
	Scope     string
	Names     []string
	Status    Outcome // how the request ended
	RequestID string
	Client    string
	Revision  int64
	TokenID   string // the acting token's id, "" when there was none
	// Count is how many requests the entry stands for: 1, or more for an
	// aggregated entry (see Aggregate).
	Count int64
	// LastAt is when the last request an aggregated entry stands for
	// came (At is the first); zero for an entry of one request.
	LastAt time.Time
	// RequestIDs are the ids of the first MaxAuditRequestIDs requests an
	// aggregated reveal stands for, in the order they came (RequestID is
	// the first); Count says how many there were in all.
	RequestIDs []string
	// Aggregate asks the store to add the entry to the one of the same
	// client, token, action, scope, names and status in the same window
	// (Bucket), when there is one,
	// rather than add a row: Count adds up, LastAt moves on, RequestIDs
	// grow up to MaxAuditRequestIDs. The row is written by the first
	// append of its window, and each later one updates it in the same
	// transaction as it is made durable.
	Aggregate bool
}

// The windows in which aggregated audit entries add up (AuditEntry.Bucket).
// A reveal's is short: the entry says when each burst of reveals began
// and ended, and bounds what the log says about a token's use to a
// second. A refusal's is longer: a flood of them must not fill the disk.
const (
	RevealWindow  = time.Second
	RefusalWindow = time.Minute
)

// MaxAuditRequestIDs bounds the request ids an aggregated entry lists.
const MaxAuditRequestIDs = 16

// Bucket returns the start of the window that an aggregated entry adds up
// in, as UTC nanoseconds (> 0): a second for a reveal that was answered
// and for the withdrawal of one (whose At is the reveal's, so that it
// lines up with the row it corrects), a minute for a refusal.
func (e *AuditEntry) Bucket() int64 {
	w := RefusalWindow
	if e.Action == AuditReveal && e.Status == OutcomeOK || e.Action == AuditRevealWithdrawn {
		w = RevealWindow
	}
	return e.At.Truncate(w).UnixNano()
}

// Coalesce adds o, an aggregated entry of the same key and bucket, to e.
func (e *AuditEntry) Coalesce(o AuditEntry) {
	e.Count += max(o.Count, 1)
	e.LastAt = maxTime(e.LastAt, e.At, o.LastAt, o.At)
	if len(e.RequestIDs) == 0 && e.RequestID != "" {
		e.RequestIDs = append(e.RequestIDs, e.RequestID)
	}
	ids := o.RequestIDs
	if len(ids) == 0 && o.RequestID != "" {
		ids = []string{o.RequestID}
	}
	for _, id := range ids {
		if len(e.RequestIDs) >= MaxAuditRequestIDs {
			break
		}
		e.RequestIDs = append(e.RequestIDs, id)
	}
}

func maxTime(ts ...time.Time) time.Time {
	var m time.Time
	for _, t := range ts {
		if t.After(m) {
			m = t
		}
	}
	return m
}

// Consumer is a running workload that reported which revision it runs.
type Consumer struct {
	Scope     string
	ID        string
	Hostname  string
	PID       int
	Revision  int64
	FirstSeen time.Time
	SeenAt    time.Time
	// TokenID is the token that first reported the consumer: a report
	// under its id by another token is refused (ErrConsumerTaken).
	TokenID string
	// FallbackSince is when the consumer started running with its
	// fallback copy instead of values the server gave; zero when it does
	// not (as of its last report).
	FallbackSince time.Time
}

// ErrConsumerTaken is the conflict of a consumer report by a token other
// than the one that first reported the consumer.
func ErrConsumerTaken(scope, id string) *Error {
	return &Error{Code: EConflict, Message: "consumer " + id + " of scope " + scope + " was first reported by another token; only that token may report it",
		Fields: []FieldError{Field("path.id", "consumer_taken", "the consumer id belongs to the token that first reported it")}}
}

// ConsumerLimit bounds the consumers a scope keeps; the zero value sets
// no bound.
type ConsumerLimit struct {
	Max         int
	StaleBefore time.Time
}

// Session is a signed-in dashboard browser as the store keeps it, so that
// every server sharing the store knows it. The row holds nothing usable on
// its own: it is keyed by the SHA-256 of the session id, which only the
// browser's cookie holds, and the token is sealed by the Keyring with
// SessionAD(IDHash).
type Session struct {
	IDHash    []byte
	Sealed    []byte // the token's plaintext, sealed
	CSRF      string // the session's CSRF token (not a credential on its own)
	CreatedAt time.Time
	UsedAt    time.Time // the last use recorded: a use moves it at most about once a minute
}

// DataKey is a data key wrapped by the master key.
type DataKey struct {
	ID        uint32
	Wrapped   []byte
	CreatedAt time.Time
}

// RetiredMasterKey is what a master key that `envy keys rotate` retired
// wraps of a fixed marker, kept so that a server started with that key
// can tell it was retired rather than wrong. It opens nothing.
type RetiredMasterKey struct {
	Check     []byte
	RetiredAt time.Time
}

// VarChange is the new state of one var that the service planned: either
// Delete, or the full new state with the value already sealed for Version.
type VarChange struct {
	Name        string
	Delete      bool
	ID          string
	Sealed      []byte
	Secret      bool
	Description string
	Version     int64
	// Base is the version of the var that the change was planned from, 0
	// when the var was absent. The store applies a write only while every
	// var it changes is still at its Base (ErrStale otherwise), so that
	// writers to different vars of one scope don't get in each other's
	// way, and none overwrites a change it did not see.
	Base int64
	// MetaOnly says that the change sets the var's description only: its
	// value and secret flag stay what they are, so the scope's
	// EnvRevision stays too. Left false, a change counts as one of the env.
	MetaOnly bool
}

// ErrStale is what a Store answers when a write was planned from a state
// that has changed since (a VarChange's Base, or a WholeScope write's
// BaseRevision, no longer holds). Nothing was written; the service plans
// again from the new state.
var ErrStale = &Error{Code: EConflict, Message: "the scope changed while the write was being made; try again"}

// StaleError is ErrStale with the scope as it was committed when the
// write was found stale (errors.Is(err, ErrStale) holds): a store that
// read it anyway answers it, and the service plans again from it rather
// than read it again. Current is nil for a scope that does not exist.
type StaleError struct {
	Current *ScopeVars
}

func (e *StaleError) Error() string { return ErrStale.Error() }
func (e *StaleError) Unwrap() error { return ErrStale }

// Write is one atomic change to a scope's vars, planned, sealed and
// checked by the service: one revision, all or nothing. The store only
// checks its conditions and persists it.
type Write struct {
	Scope       string
	Actor       string
	ActorToken  string // the acting token's id
	IfRevision  int64  // when > 0, EPrecondition unless the scope's revision equals it
	CreateScope bool   // create the scope when missing; otherwise ENotFound
	// Changes are the new states of the vars the write changes. Deleting
	// an absent var changes nothing; when nothing changes, no revision is
	// taken (and no scope created), unless Touch.
	Changes []VarChange
	// WholeScope makes the write depend on every var of the scope, not
	// only on those it changes (a replace, a rollback): ErrStale unless
	// the scope is still at BaseRevision (0: it did not exist).
	WholeScope   bool
	BaseRevision int64
	// Touch makes a write that changes nothing in an existing scope take
	// a revision all the same, so that its reply tells a caller who may
	// not read the scope nothing of what it holds (whether the var it
	// deleted existed).
	Touch bool
	// Audit entries are recorded in the same transaction; their Revision
	// is set to the write's.
	Audit []AuditEntry
	// LiveToken, when set, is the id of a token that must exist, not
	// revoked, when the write is checked against the scope, in its
	// transaction: ErrTokenNotLive otherwise, and nothing written. A
	// server that checks a cached token against a shared store on every
	// use leaves a write's check to the write itself (one round trip
	// fewer), and sets it.
	LiveToken string
	// Behind, when set, asks the store for the consumers behind the
	// write's EnvRevision (as BehindConsumers answers it), once the write
	// committed; a store that answers it in the write's own round trips
	// sets WriteResult.BehindAnswered, and the caller asks
	// BehindConsumers itself otherwise.
	Behind *BehindQuery
}

// BehindQuery asks for up to Limit (≤ 0: all) consumers seen at or after
// Since that run a revision older than a write's EnvRevision, of its
// scope or of any scope that inherits it (Store.BehindConsumers).
type BehindQuery struct {
	Since time.Time
	Limit int
}

// ErrTokenNotLive is what a Store answers a Write whose LiveToken does not
// exist or is revoked. Nothing was written.
var ErrTokenNotLive = &Error{Code: EUnauthenticated, Message: "token revoked"}

// WriteResult tells what a write did.
type WriteResult struct {
	Revision int64 // the new revision, or the scope's current one when nothing changed
	Changed  bool  // the write took a new revision
	// EnvRevision is the scope's EnvRevision after the write: Revision
	// when any change was not MetaOnly (or the write created the scope).
	EnvRevision  int64
	ScopeCreated bool
	Vars         []StoredVar // the new state of each var set, in plan order
	// Behind answers Write.Behind when BehindAnswered.
	Behind         []Consumer
	BehindAnswered bool
}

// ScopeWrite creates or updates a scope's description and inherits.
type ScopeWrite struct {
	Path       string
	Actor      string
	IfRevision int64
	// Plan runs inside the transaction with the current scope (nil when it
	// does not exist) and a lookup of other scopes (ENotFound when absent),
	// and returns the scope's new description and inherits.
	Plan  func(cur *Scope, lookup func(path string) (Scope, error)) (description string, inherits []string, err error)
	Audit []AuditEntry
	// Rollout, when set, is the scope's new rollout policy, and
	// ClearRollout removes it: a store that is a RolloutStore writes either
	// in the scope's own transaction, so that a scope written with a policy
	// has it, or has neither.
	Rollout      *RolloutPolicy
	ClearRollout bool
}

// HistoryCursor is a position in a scope's history, which is ordered by
// revision (newest first), then name: a page that ends inside a bulk
// change resumes at the next name of the same revision. The zero value is
// the start.
type HistoryCursor struct {
	Revision int64
	Name     string
}

// ScopeQuery selects scopes in path order.
type ScopeQuery struct {
	Prefix string // a path prefix, matched by string
	After  string // only paths greater than this
	Limit  int
	Allow  func(path string) bool // when set, only paths it allows count
}

// AuditQuery selects audit entries, newest first.
type AuditQuery struct {
	Scope  string
	Actor  string
	Since  time.Time
	Before int64 // only entries with ID < Before, when > 0
	Limit  int
}

// Store keeps scopes, vars, history, tokens, audit entries, consumers,
// wrapped data keys and dashboard sessions. Every method returns ENotFound
// for a missing item and EUnavailable when the database can't be reached. Writes are acknowledged
// only once durable. Every change it commits is also told to its
// subscribers (Notifier).
type Store interface {
	Notifier
	Ping(ctx context.Context) error
	Close() error

	// Revision returns the newest store-wide revision.
	Revision(ctx context.Context) (int64, error)

	GetScope(ctx context.Context, path string) (Scope, error)
	ListScopes(ctx context.Context, q ScopeQuery) ([]Scope, error)
	// ScopeTree returns the scope at path and every scope it inherits
	// from, directly or not, keyed by path, with their vars. The ScopeVars
	// are shared, immutable snapshots: read-only; a snapshot is replaced,
	// never changed, when its scope changes.
	ScopeTree(ctx context.Context, path string) (map[string]*ScopeVars, error)
	// PutScope creates or updates a scope; it takes a new revision.
	PutScope(ctx context.Context, w ScopeWrite) (s Scope, created bool, err error)
	// DeleteScope deletes a scope with its vars and history. It returns
	// an *InheritedError (EConflict) while another scope inherits it, and
	// existed=false (no error) when it is absent.
	DeleteScope(ctx context.Context, path string, ifRevision int64, audit []AuditEntry) (existed bool, revision int64, err error)

	// Write applies one atomic change to a scope's vars.
	Write(ctx context.Context, w Write) (WriteResult, error)
	// History returns a scope's changes, newest first (by revision, then
	// name), those after the cursor when it is set.
	History(ctx context.Context, scope string, after HistoryCursor, limit int) ([]Change, error)
	// VarsAt returns, for each var that existed in the scope at revision rev, its last set change at or before rev.
	VarsAt(ctx context.Context, scope string, rev int64) ([]Change, error)
	// LastSecret returns, for each var name of the scope whose history
	// holds a version set secret, the newest revision at which one was
	// (MaskedChange's second argument).
	LastSecret(ctx context.Context, scope string) (map[string]int64, error)

	// CreateToken stores a new token. With onlyIfNone it stores it only
	// when no token exists and reports whether it did. EConflict when a
	// token that is not revoked has the same owner and name;
	// EUnauthenticated when its parent (ParentID) is revoked, so that a
	// revocation and a minting that race can't leave a live child.
	CreateToken(ctx context.Context, t Token, onlyIfNone bool, audit []AuditEntry) (created bool, err error)
	TokenByHash(ctx context.Context, hash []byte) (Token, error)
	GetToken(ctx context.Context, id string) (Token, error)
	ListTokens(ctx context.Context, after string, limit int) ([]Token, error)
	// RevokeToken revokes a token and every token minted by it,
	// transitively, in one transaction. A token already revoked keeps its
	// first revocation time.
	RevokeToken(ctx context.Context, id string, at time.Time, audit []AuditEntry) error
	// RevokeTokenKeepingAdmin is RevokeToken, refused with ErrLastAdmin
	// (nothing revoked) when it would end the last live token holding
	// admin on ** (CountRevocation at at). The check is in the
	// revocation's own transaction, serialized with every other such
	// revocation of every server sharing the store, so that two
	// revocations of the last two admins can't both succeed.
	RevokeTokenKeepingAdmin(ctx context.Context, id string, at time.Time, audit []AuditEntry) error

	AppendAudit(ctx context.Context, entries ...AuditEntry) error
	// PruneAudit deletes the audit entries older than before.
	PruneAudit(ctx context.Context, before time.Time) (deleted int64, err error)
	ListAudit(ctx context.Context, q AuditQuery) ([]AuditEntry, error)

	// PutConsumer records a consumer report and tells whether it is new.
	// A new consumer of a scope that already keeps lim.Max consumers
	// first makes room by deleting those not seen since lim.StaleBefore;
	// when none is that old it is refused with EConflict.
	PutConsumer(ctx context.Context, c Consumer, lim ConsumerLimit) (created bool, err error)
	// BehindConsumers returns up to limit (≤ 0: all) consumers seen at or
	// after since that run a revision older than rev, of scope or of any
	// scope that inherits it, directly or not (each with its Scope), by
	// scope and id: those that a change of scope at rev leaves behind.
	BehindConsumers(ctx context.Context, scope string, since time.Time, rev int64, limit int) ([]Consumer, error)
	// Inheritors returns every scope that inherits path, directly or
	// not, sorted (path itself only when it inherits itself, which
	// CheckInherits refuses); none for a scope that does not exist.
	Inheritors(ctx context.Context, path string) ([]string, error)
	// DeleteConsumer deletes a consumer of a scope (a workload that
	// stopped said goodbye); deleting an absent one is no error.
	DeleteConsumer(ctx context.Context, scope, id string) error
	// PruneConsumers deletes the consumers not seen since before.
	PruneConsumers(ctx context.Context, before time.Time) (deleted int64, err error)
	// Consumers returns the consumers of a scope seen at or after since.
	Consumers(ctx context.Context, scope string, since time.Time) ([]Consumer, error)

	DataKeys(ctx context.Context) ([]DataKey, error)
	AddDataKey(ctx context.Context, k DataKey) error

	// CreateSession stores a new dashboard session; EConflict when its
	// IDHash is taken.
	CreateSession(ctx context.Context, s Session) error
	// GetSession returns the session whose id hashes to idHash.
	GetSession(ctx context.Context, idHash []byte) (Session, error)
	// TouchSession moves a session's UsedAt forward to at; a session that
	// is gone, or was used later, is left as it is (no error).
	TouchSession(ctx context.Context, idHash []byte, at time.Time) error
	// DeleteSession deletes a session; deleting an absent one is no error.
	DeleteSession(ctx context.Context, idHash []byte) error
	// PruneSessions deletes the sessions not used since usedBefore or
	// created before createdBefore.
	PruneSessions(ctx context.Context, usedBefore, createdBefore time.Time) (deleted int64, err error)
}

// Keyring seals and opens values. Implementations keep data keys unwrapped
// in memory, never plaintext values.
type Keyring interface {
	Seal(plaintext, ad []byte) ([]byte, error)
	Open(sealed, ad []byte) ([]byte, error)
}

// AppendOpener is a Keyring that can open a value into the caller's
// buffer (crypto.Keyring can), so that a read of many values needs one
// buffer rather than one allocation per value.
type AppendOpener interface {
	// OpenAppend appends the plaintext of sealed to dst, as Open opens it.
	OpenAppend(dst, sealed, ad []byte) ([]byte, error)
}

// AD returns the additional data that binds a sealed value to its scope,
// name and version, so that a ciphertext copied to another row fails to open.
func AD(scope, name string, version int64) []byte {
	return AppendAD(make([]byte, 0, len(scope)+len(name)+24), scope, name, version)
}

// AppendAD appends AD(scope, name, version) to b, so that a read of many
// values can build each one's in the same buffer.
func AppendAD(b []byte, scope, name string, version int64) []byte {
	b = append(b, "envy/v1\x00"...)
	b = append(b, scope...)
	b = append(b, 0)
	b = append(b, name...)
	b = append(b, 0)
	for i := 7; i >= 0; i-- {
		b = append(b, byte(version>>(8*i)))
	}
	return b
}

// SessionAD returns the additional data that binds a session's sealed
// token to its row, so that it can't be swapped for a var's value (whose
// AD starts "envy/v1") or another session's token.
func SessionAD(idHash []byte) []byte {
	return []byte("session:" + hex.EncodeToString(idHash))
}
