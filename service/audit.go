package service

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/envy-dev/envy"
)

// auditItem is an entry to append, or, with done set, a request to say
// when every entry queued before it is written. With errc set, the
// entry's caller waits for it to be durable and hears how its batch went.
type auditItem struct {
	e    envy.AuditEntry
	done chan struct{}
	errc chan error // buffered
	// streamed: the audit streams have the entry already (a reveal's
	// withdrawal, streamed.withdrawn), so the loop does not offer it.
	streamed bool
	// check, when set, is the condition of the entry's append
	// (envy.CheckedAuditor): an entry whose check fails is not recorded,
	// and its caller hears errCheckFailed.
	check *envy.AuditCheck
}

// errCheckFailed is what the caller of an audit entry with a check hears
// when the check failed: nothing was recorded.
var errCheckFailed = errors.New("the audit entry's check failed")

// auditLoop writes audit entries that belong to no write transaction
// (reveals and refusals) in batches: whatever queued while the loop
// waited goes in the next batch (group commit), so that reveals that wait
// for their entry share one commit. Up to auditInFlight batches commit at
// once (on a shared store; one on SQLite), but a batch is sent beside an
// earlier one only once that one has taken auditOverlapAfter: until then
// the loop waits for its commit and gathers what comes meanwhile into the
// next batch, so that reveals share commits (each costs the database a
// WAL flush) while a commit that stalls holds up no reveal after it. When
// the last batch had callers waiting, the loop lingers a moment for their
// next reveals (auditLinger). A flush (an item with done) is answered
// once its batch and every batch before it are written.
func (s *Service) auditLoop() {
	slots := make(chan struct{}, s.auditInFlight)
	last := make(chan struct{}) // closed once the last batch sent, and every one before it, is done
	close(last)
	defer func() {
		<-last
		close(s.auditDone)
	}()
	prev := 0 // callers of the last batch
	for {
		// A slot first: while every one is taken, the entries that come
		// wait in the queue, and the next batch takes them all.
		slots <- struct{}{}
		if s.auditInFlight > 1 {
			s.awaitCommit(last)
		}
		it, ok := <-s.audit
		if !ok {
			return
		}
		var batch []envy.AuditEntry
		var checks []*envy.AuditCheck // of the batch's entries, once one has one
		var waiting []chan struct{}
		var callers []chan error
		var of []int     // callers' entries in batch
		var offers []int // entries of the batch that no reveal reserved (refusals, reports)
		add := func(it auditItem) {
			switch {
			case it.done != nil:
				waiting = append(waiting, it.done)
			default:
				if it.check != nil && checks == nil {
					checks = make([]*envy.AuditCheck, len(batch), len(batch)+64)
				}
				if checks != nil {
					checks = append(checks, it.check)
				}
				batch = append(batch, it.e)
				switch {
				case it.errc != nil:
					callers, of = append(callers, it.errc), append(of, len(batch)-1)
				case !it.streamed:
					offers = append(offers, len(batch)-1)
				}
			}
		}
		open := true
		fill := func() {
			for open && len(batch) < 512 {
				select {
				case it, ok := <-s.audit:
					if !ok {
						open = false
						return
					}
					add(it)
				default:
					return
				}
			}
		}
		add(it)
		fill()
		if open && prev >= 2 {
			// The last batch's callers were answered a moment ago, or
			// soon will be, and most come back with their next reveal:
			// without this wait they would miss this batch, and the
			// reveals would split into cohorts that each pay a commit,
			// and its fsync, for a fraction of them.
			want := min(len(callers)+prev, 512)
			s.lingerAudit(add, func() bool { return len(callers) >= want || len(batch) >= 512 })
		}
		prev = len(callers)
		for _, i := range offers {
			s.offer(batch[i]) // as the store gets it, aggregated refusals added up
		}
		before, done := last, make(chan struct{})
		last = done
		go func() {
			var err error
			var recorded []bool // by entry, when checks
			if len(batch) > 0 {
				ctx, cancel := context.WithTimeout(context.Background(), auditAppendTimeout)
				if checks != nil {
					recorded, err = s.checkedAudit.AppendAuditChecked(ctx, batch, checks)
				} else {
					err = s.store.AppendAudit(ctx, batch...)
				}
				if err != nil {
					s.log.Error("audit append failed", "entries", len(batch), "err", err)
				}
				cancel()
			}
			for i, c := range callers {
				if err == nil && recorded != nil && !recorded[of[i]] {
					c <- errCheckFailed
					continue
				}
				c <- err
			}
			<-before // the flushes wait for the batches before theirs too
			for _, w := range waiting {
				close(w)
			}
			close(done)
			<-slots
		}()
	}
}

// awaitCommit waits until the batches sent so far are done (last
// closed), or for auditOverlapAfter at most: a batch then goes beside a
// commit that stalls rather than wait for it.
func (s *Service) awaitCommit(last <-chan struct{}) {
	select {
	case <-last:
		return
	default:
	}
	t := time.NewTimer(s.auditOverlapAfter)
	defer t.Stop()
	select {
	case <-last:
	case <-t.C:
	}
}

// lingerAudit adds what comes to the audit queue until enough, none came
// for the linger's gap, the linger's most has passed or the queue closed.
func (s *Service) lingerAudit(add func(auditItem), enough func() bool) {
	gap, most := s.auditLinger[0], s.auditLinger[1]
	start := time.Now()
	for !enough() {
		wait := min(gap, most-time.Since(start))
		if wait <= 0 {
			return
		}
		select {
		case it, ok := <-s.audit:
			if !ok {
				return
			}
			add(it)
		case <-time.After(wait):
			return
		}
	}
}

// How long the audit loop lingers for more reveals before a commit
// (Service.auditLinger): it stops once none came for the gap, and never
// waits longer than the max. Short, because every reveal of the batch
// waits that long: on a quiet machine at 32 connections, 200 µs and 1 ms
// answered about 14,700 reveals a second, 50 µs and 300 µs about 20,400,
// no linger about 21,300; on a loaded one the linger saves commits. On
// a shared store (PostgreSQL), where the database's CPU is the bound and
// fewer, larger commits cost it less, the longer linger measured better:
// about 15,300 reveals a second against 14,200 (two runs each).
const (
	auditLingerGap       = 50 * time.Microsecond
	auditLingerMax       = 300 * time.Microsecond
	auditLingerGapShared = 200 * time.Microsecond
	auditLingerMaxShared = time.Millisecond
)

// auditInFlightShared is how many audit batches may commit at once on a
// shared store (PostgreSQL), whose AppendAudit runs each batch in a
// transaction of its own on a pool connection, once the earlier one has
// taken auditOverlapAfter. On SQLite every commit goes through the one
// writer connection, so the loop keeps one batch in flight and groups the
// reveals that come meanwhile.
//
// Two batches sent as soon as a slot was free (as before
// auditOverlapAfter) split the reveals into twice as many commits as one
// at a time, each with its WAL flush: at 32 connections on PostgreSQL,
// 0.12 audit commits a reveal against 0.08, and about a fifth more of
// PostgreSQL's CPU per reveal (a flush is a system call that this
// machine's virtual disk makes dear), for no more reveals a second
// (docs/benchmarks.md, "The read path, second pass").
const auditInFlightShared = 2

// auditOverlapAfter is how long a commit of audit entries may take before
// the next batch is sent beside it (on a shared store): far above a
// commit's usual millisecond or two, so that batches share commits, and
// short enough that a commit stalled on a lock or the disk holds up no
// reveal for long.
const auditOverlapAfter = 10 * time.Millisecond

// flushAudit waits until every audit entry queued so far is written.
func (s *Service) flushAudit(ctx context.Context) {
	done := make(chan struct{})
	if !s.enqueue(auditItem{done: done}) {
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// enqueue queues an audit item; it reports false once the service is
// closed.
func (s *Service) enqueue(it auditItem) (ok bool) {
	defer func() {
		if recover() != nil { // the channel is closed during shutdown
			ok = false
		}
	}()
	s.audit <- it
	return true
}

// revealed records a reveal and returns once its entry is durable. The
// audit fails closed: when the entry can't be written the reveal must not
// be answered, and the error (EUnavailable) says so. Reveals aggregate:
// those of one token, client, scope and names within a second
// (envy.RevealWindow) are one row with a count and their request ids,
// which each reveal's batch writes or adds to before it is answered.
//
// With audit streams (Options.AuditStream), the reveal also waits until a
// stream has written its entry, as Vault's requests wait for an audit
// device: the stream's write and the store's commit run at once, so the
// reveal waits for the slower of the two, not for both in turn. While no
// stream can take the entry, the reveal is refused before it is recorded.
//
// A reveal is answered when revealed returns nil: its caller then sends
// the values. Every other return after its entry was queued (the store
// failed; no stream wrote the entry within auditStreamWait, or every
// stream failed first; the caller's context ended before both were done)
// leaves it unanswered, and the entry, which the store may have counted
// and a stream may write, is withdrawn (unanswered). The answered path
// does nothing more than before.
func (s *Service) revealed(ctx context.Context, path string, names []string) error {
	return s.revealedIf(ctx, path, names, nil)
}

// revealedIf is revealed whose entry is recorded only when check, if set,
// passes (envy.CheckedAuditor), for a caller without audit streams
// (AuthenticateReveal): when it fails, nothing was recorded and it
// returns errCheckFailed, for the caller to answer again from a checked
// read.
func (s *Service) revealedIf(ctx context.Context, path string, names []string, check *envy.AuditCheck) error {
	rec, err := s.toStreams(1)
	if err != nil {
		return err
	}
	e := s.entry(ctx, envy.AuditReveal, path, names, envy.OutcomeOK)
	errc := make(chan error, 1)
	e.Aggregate = true
	if !s.enqueue(auditItem{e: e, errc: errc, check: check}) {
		rec.release()
		return envy.Errorf(envy.EUnavailable, "the server is shutting down")
	}
	streamc := rec.done(nil, 0, e)
	select {
	case err := <-errc:
		if err == errCheckFailed { // nothing recorded; no streams (AuthenticateReveal)
			return err
		}
		if err != nil {
			s.unanswered(rec, e, envy.OutcomeUnavailable, nil)
			if e := envy.AsError(err); e != nil && e.Code == envy.EUnavailable {
				return &envy.Error{Code: envy.EUnavailable, Message: "the reveal can't be recorded in the audit log: " + e.Message, RetryAfter: e.RetryAfter}
			}
			return envy.Errorf(envy.EUnavailable, "the reveal can't be recorded in the audit log, so it is refused")
		}
	case <-ctx.Done():
		s.unanswered(rec, e, envy.OutcomeClientClosed, errc)
		return ctx.Err()
	}
	if streamc == nil {
		return nil
	}
	wait := time.NewTimer(s.auditStreamWait)
	defer wait.Stop()
	select {
	case err := <-streamc:
		if err != nil {
			s.unanswered(rec, e, envy.OutcomeUnavailable, nil)
		}
		return err
	case <-wait.C:
		s.unanswered(rec, e, envy.OutcomeUnavailable, nil)
		return &envy.Error{Code: envy.EUnavailable, RetryAfter: time.Second,
			Message: "no audit stream wrote the reveal's entry within " + s.auditStreamWait.String() + ", so it is refused"}
	case <-ctx.Done():
		s.unanswered(rec, e, envy.OutcomeClientClosed, nil)
		return ctx.Err()
	}
}

// auditAppendTimeout bounds one append of audit entries that belong to
// no write: a batch of the audit loop's, an admin operation's.
const auditAppendTimeout = 30 * time.Second

// auditStreamWait bounds how long a reveal waits for an audit stream to
// write its entry (Service.auditStreamWait): a device that takes longer
// (a stuck reader of stdout) must not hold the request for ever. The
// reveal is then refused and its entry withdrawn (unanswered).
const auditStreamWait = 10 * time.Second

// unanswered withdraws the entry e of a reveal that is not answered
// (revealed returns an error) after e was queued to the store and sent to
// the streams, so that neither is left saying the reveal was answered;
// outcome is what the caller gets. The correction is an entry of its own,
// envy.AuditRevealWithdrawn, e's but for its action and status: e's time,
// client, token, scope, names and request id, aggregated in e's second,
// so that its row stands beside the reveal row it corrects (whose count
// includes e) with the count of those withdrawn. The streams replace e
// by it where e still waits, and write it after e where e was written
// (streamed.withdrawn); the store gets it through the audit loop, after e,
// whether or not e's batch committed (a failed commit may still have
// landed, and a withdrawal without its reveal claims nothing). Not
// waited for: the caller is refused at once. pending, when e's batch has
// not answered yet (the caller went away first), is its answer: the
// store's withdrawal is queued only once it came, so that it never
// commits before e (on PostgreSQL two audit batches may commit at once).
func (s *Service) unanswered(rec streamed, e envy.AuditEntry, outcome envy.Outcome, pending <-chan error) {
	w := e
	w.Action, w.Status = envy.AuditRevealWithdrawn, outcome
	rec.withdrawn(w)
	lost := func() {
		s.log.Error("a reveal that was not answered stays counted as answered in the audit log: the server is shutting down", "request_id", e.RequestID)
	}
	store := func() {
		if !s.enqueue(auditItem{e: w, streamed: rec.send != nil}) {
			lost()
		}
	}
	if pending == nil {
		store()
		return
	}
	s.lateMu.Lock()
	defer s.lateMu.Unlock()
	if s.lateClosed {
		lost()
		return
	}
	s.late.Add(1)
	go func() {
		defer s.late.Done()
		// The audit loop answers every entry it took, within AppendAudit's
		// time-out. An entry whose check failed was not recorded: nothing
		// to withdraw.
		if <-pending == errCheckFailed {
			return
		}
		store()
	}()
}

// entry returns an audit entry for the caller in ctx.
func (s *Service) entry(ctx context.Context, action envy.AuditAction, scope string, names []string, outcome envy.Outcome) envy.AuditEntry {
	c := CallerFrom(ctx)
	actor, tokenID := "", ""
	if c.Token != nil {
		actor, tokenID = c.Token.Name, c.Token.ID
	}
	return envy.AuditEntry{At: s.now(), Actor: actor, Action: action, Scope: scope, Names: names, Status: outcome,
		RequestID: c.RequestID, Client: c.Client, TokenID: tokenID, Count: 1}
}

// Refused records a refused request (unauthenticated, forbidden, hidden
// by permission, rate limited).
// Refusals without a valid token, and those over a rate limit, are
// recorded once per client address, token, action, outcome and minute,
// with a count, so that a flood of them can't fill the disk: their scope
// (the path the request named, which the client chooses) is left out,
// and a client's refusals add at most MaxRefusalRowsPerClient rows a
// minute (then one row per action and outcome, without token or actor).
// A refusal of a token whose check was left to what the request does
// (Caller.Deferred) for what the token may not do is recorded only once
// the token is confirmed live: a revoked one is refused as such instead,
// by whoever answers the request (ConfirmToken). One worked out from a
// tree taken as cached, unchecked (AuthenticateReveal), is not recorded:
// the request works it out again from a checked read (EnvReplyRaw), which
// records it if it still holds.
func (s *Service) Refused(ctx context.Context, action envy.AuditAction, scope string, outcome envy.Outcome) {
	if outcome == envy.OutcomeForbidden || outcome == envy.OutcomeNotFound {
		if c, ok := ctx.Value(CallerKey{}).(*Caller); ok && c.servedUnchecked.Load() {
			return
		}
		if err := s.ConfirmToken(ctx); envy.ErrorCode(err) == envy.EUnauthenticated {
			return
		}
	}
	e := s.entry(ctx, action, scope, nil, outcome)
	e.Aggregate = CallerFrom(ctx).Token == nil || outcome == envy.OutcomeRateLimited
	if e.Aggregate {
		e.RequestID = "" // one row stands for many requests
		e.Scope = ""     // the attacker's choice: one row per path would fill the log
		if !s.refusalRows.admit(e) {
			e.TokenID, e.Actor = "", ""
		}
	}
	s.enqueue(auditItem{e: e})
}

// MaxRefusalRowsPerClient is how many distinct aggregated refusal rows
// (by token, action and outcome) one client address adds to the audit log
// a minute; its refusals beyond go to one row per action and outcome
// without a token. maxRefusalClients bounds the clients remembered in a
// minute; refusals of any client beyond are treated alike.
const (
	MaxRefusalRowsPerClient = 16
	maxRefusalClients       = 4096
)

// refusalRows remembers, for the current minute, the aggregated refusal
// rows each client has added.
type refusalRows struct {
	mu     sync.Mutex
	minute time.Time
	rows   map[string]map[refusalKey]struct{}
}

type refusalKey struct {
	tokenID string
	action  envy.AuditAction
	status  envy.Outcome
}

// admit reports whether e may have a row of its own (keyed as it is); if
// not, the caller drops its token so that it joins the client's overflow
// row for its action and outcome.
func (r *refusalRows) admit(e envy.AuditEntry) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m := e.At.Truncate(time.Minute); !m.Equal(r.minute) || r.rows == nil {
		r.minute, r.rows = m, make(map[string]map[refusalKey]struct{})
	}
	k := refusalKey{tokenID: e.TokenID, action: e.Action, status: e.Status}
	seen, ok := r.rows[e.Client]
	if !ok {
		if len(r.rows) >= maxRefusalClients {
			return e.TokenID == ""
		}
		seen = make(map[refusalKey]struct{})
		r.rows[e.Client] = seen
	}
	if _, ok := seen[k]; ok {
		return true
	}
	if len(seen) >= MaxRefusalRowsPerClient {
		return e.TokenID == ""
	}
	seen[k] = struct{}{}
	return true
}

// Audit lists audit entries, newest first (global admin).
func (s *Service) Audit(ctx context.Context, q envy.AuditListQuery) (envy.Page[envy.AuditEntry], error) {
	limit, err := limitOf("query.limit", q.Limit)
	if err != nil {
		return envy.Page[envy.AuditEntry]{}, err
	}
	var before int64
	if q.Cursor != "" {
		if before, err = strconv.ParseInt(q.Cursor, 10, 64); err != nil || before < 1 {
			return envy.Page[envy.AuditEntry]{}, envy.Invalid(envy.Field("query.cursor", "invalid_cursor", "cursor is not one this server gave"))
		}
	}
	if err := s.requireGlobalAdmin(ctx, envy.AuditLogList); err != nil {
		return envy.Page[envy.AuditEntry]{}, err
	}
	s.flushAudit(ctx) // so that the list shows every reveal and refusal made before it
	return fetchPage(limit, func(n int) ([]envy.AuditEntry, error) {
		return s.store.ListAudit(ctx, envy.AuditQuery{Scope: q.Scope, Actor: q.Actor, Since: q.Since, Before: before, Limit: n})
	}, func(e envy.AuditEntry) string { return strconv.FormatInt(e.ID, 10) })
}

// AuditStream is an additional audit device (package auditstream: files,
// stdout, syslog, sockets), fed every entry the store gets. The store's
// audit log remains the record.
type AuditStream interface {
	// Reserve makes room for n entries of a request that must be audited
	// (a write, a reveal) before it runs; it fails (EUnavailable) when no
	// stream can take them, and the request is refused. send queues the
	// entries (none gives the room back) and its channel says when a
	// stream has written them, or that every one failed.
	// withdraw, after send, takes the entries back from a request that
	// was then not answered: with[k] replaces the kth entry where it
	// still waits, and follows it where it was written.
	Reserve(n int) (send func([]envy.AuditEntry) <-chan error, withdraw func(with []envy.AuditEntry), err error)
	// Offer queues entries that need no reservation: refusals, reports,
	// and what follows a change already made.
	Offer(entries ...envy.AuditEntry)
	// Ready is nil while some stream can take an entry.
	Ready() error
}

// streamed is a reservation in the audit streams (Options.AuditStream)
// for the entries of one request that must be audited. The zero value,
// when there are no streams, does nothing.
type streamed struct {
	send     func([]envy.AuditEntry) <-chan error
	withdraw func([]envy.AuditEntry)
}

// toStreams is the one hook through which the audit streams get entries:
// it reserves room for n entries before a request that must be audited
// runs, refusing it (EUnavailable, 503) while no stream can record it.
// Each store call that records entries is bracketed by it and
// streamed.done; entries that need no reservation go through offer.
func (s *Service) toStreams(n int) (streamed, error) {
	if s.opts.AuditStream == nil {
		return streamed{}, nil
	}
	send, withdraw, err := s.opts.AuditStream.Reserve(n)
	return streamed{send: send, withdraw: withdraw}, err
}

// done hands the store's entries to the streams once the store call that
// recorded them returned: with the revision it took, or, when it failed
// (err), nothing, giving the room back. The channel says when a stream
// has written them (nil) or that none could; nil without streams.
func (r streamed) done(err error, revision int64, entries ...envy.AuditEntry) <-chan error {
	if r.send == nil {
		return nil
	}
	if err != nil {
		entries = nil
	}
	for i := range entries {
		if revision > 0 {
			entries[i].Revision = revision
		}
	}
	return r.send(entries)
}

// release gives the room back: the request recorded nothing.
func (r streamed) release() {
	if r.send != nil {
		r.send(nil)
	}
}

// withdrawn takes the entries sent back, with[k] standing in for the kth
// (AuditStream.Reserve): the request was not answered.
func (r streamed) withdrawn(with ...envy.AuditEntry) {
	if r.withdraw != nil {
		r.withdraw(with)
	}
}

// offer hands the streams entries that need no reservation.
func (s *Service) offer(entries ...envy.AuditEntry) {
	if s.opts.AuditStream != nil && len(entries) > 0 {
		s.opts.AuditStream.Offer(entries...)
	}
}
