package envy

import (
	"context"
	"sync"
)

// NoticeKind says what a Notice is about.
type NoticeKind uint8

// The kinds of notices.
const (
	// NoticeScope: the vars of Scope changed; it is now at Revision.
	NoticeScope NoticeKind = iota + 1
	// NoticeScopeMeta: Scope's description or inherits changed, or it was
	// deleted, at Revision; what inherits from it may have changed too.
	NoticeScopeMeta
	// NoticeToken: token TokenID was created or revoked.
	NoticeToken
	// NoticeDataKey: data key KeyID was added.
	NoticeDataKey
	// NoticeConsumer: a consumer of Scope reported.
	NoticeConsumer
	// NoticeResync: notices may have been lost (the connection that
	// brings them broke and is back). Whatever a subscriber keeps must be
	// checked against the store again before it is trusted.
	NoticeResync
)

// Notice is one change committed to a store, by this server or by another
// one sharing the store. It never holds a value.
type Notice struct {
	Kind     NoticeKind
	Scope    string
	Revision int64
	TokenID  string
	KeyID    uint32
	// MetaOnly (NoticeScope, NoticeScopeMeta) says that the change took a
	// revision but left every env resolved over the scope as it was:
	// descriptions only. Caches evict all the same (the scope's revision
	// changed); watchers are not told.
	MetaOnly bool
	// State (NoticeScope only, in process only: never sent to another
	// server) is the scope as the change committed it, at Revision, when
	// the store knows it: a cache may keep it rather than read the scope
	// again. It is the store's immutable snapshot: read-only.
	State *ScopeVars
}

// Notifier is the one way changes reach caches, watchers and the keyring
// (the shape of WTF Dial's EventService). Every Store implements it: SQLite
// in process, PostgreSQL with LISTEN/NOTIFY, so that nothing else assumes
// it saw every write itself.
type Notifier interface {
	// Subscribe calls fn for every change committed from now on, in commit
	// order, until cancel is called. fn runs on the store's delivery
	// goroutine: it must be quick and must not call the store.
	Subscribe(fn func(Notice)) (cancel func())
	// Shared reports whether other servers may write to the store. When
	// they may, a notice arrives a moment after the commit, so a cache that
	// must reflect a change at once (a revoked token) must not be trusted.
	Shared() bool
}

// Checker is what a shared store (Shared) offers so that a server may
// keep caches of scopes and tokens all the same: a notice from another
// server comes a moment after its commit, too late for a read that starts
// once that commit was acknowledged, so every use of a cached scope or
// token is checked first. A check reads the database in one snapshot
// taken after the call began; it is cheap (index lookups of revisions and
// of a revocation), and a store may answer the checks of many callers
// with one query.
type Checker interface {
	// Check reports whether every scope in paths still is at the revision
	// at the same index of revs (scopesOK, true when paths is empty): not
	// when any changed or is gone. Every change to a scope, its inherits
	// included, takes a new revision, and revisions never repeat, so equal
	// revisions mean the same scope with the same vars. When token is not
	// empty it also reports whether the token with that id exists and is
	// not revoked (tokenLive); a token's other fields never change, and
	// its expiry is the caller's to check.
	Check(ctx context.Context, paths []string, revs []int64, token string) (scopesOK, tokenLive bool, err error)
}

// AuditCheck is a Checker's check made by the append that records an
// audit entry (CheckedAuditor): the entry is recorded only when, in the
// snapshot of its statement, the token with id Token (when not empty)
// exists and is not revoked and every scope of Deps is at its revision (a
// dep at revision 0 must not exist).
type AuditCheck struct {
	Token string
	Deps  []ScopeRev
}

// CheckedAuditor is a shared Store's AppendAudit whose entries may each
// carry a check (checks[i] for entries[i]; nil: none): a reveal answered
// from a cached tree and token pays one round trip for its audit and its
// check together. ok[i] reports whether entries[i] was recorded: an entry
// whose check failed is not, and the others are, in one transaction,
// durable when it returns; err is for them all, as AppendAudit's.
type CheckedAuditor interface {
	AppendAuditChecked(ctx context.Context, entries []AuditEntry, checks []*AuditCheck) (ok []bool, err error)
}

// Broadcast fans notices out to subscribers. Stores embed it to implement
// Notifier's Subscribe; the zero value is ready to use.
type Broadcast struct {
	mu   sync.RWMutex
	next int
	subs map[int]func(Notice)
}

// Subscribe adds fn; cancel removes it.
func (b *Broadcast) Subscribe(fn func(Notice)) (cancel func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.subs == nil {
		b.subs = make(map[int]func(Notice))
	}
	id := b.next
	b.next++
	b.subs[id] = fn
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.subs, id)
	}
}

// Publish calls every subscriber with each notice, in order.
func (b *Broadcast) Publish(ns ...Notice) {
	if len(ns) == 0 {
		return
	}
	b.mu.RLock()
	fns := make([]func(Notice), 0, len(b.subs))
	for _, fn := range b.subs {
		fns = append(fns, fn)
	}
	b.mu.RUnlock()
	for _, n := range ns {
		for _, fn := range fns {
			fn(n)
		}
	}
}
