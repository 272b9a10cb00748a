package envy

import (
	"context"
	"strconv"
	"time"
)

// AuditListQuery selects audit entries, newest first.
type AuditListQuery struct {
	Scope  string
	Actor  string
	Since  time.Time
	Cursor string
	Limit  int
}

// auditItem is an entry to append, or, with done set, a request to say
// when every entry queued before it is written.
type auditItem struct {
	e    AuditEntry
	done chan struct{}
}

// auditLoop writes reveal and refusal entries in batches, so that a read
// never waits for a disk write; writes record their entries in their own
// transaction instead.
func (s *Service) auditLoop() {
	defer close(s.auditDone)
	for it := range s.audit {
		var batch []AuditEntry
		var waiting []chan struct{}
		add := func(it auditItem) {
			if it.done != nil {
				waiting = append(waiting, it.done)
			} else {
				batch = append(batch, it.e)
			}
		}
		add(it)
	drain:
		for len(batch) < 512 {
			select {
			case it, ok := <-s.audit:
				if !ok {
					break drain
				}
				add(it)
			default:
				break drain
			}
		}
		if len(batch) > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if err := s.store.AppendAudit(ctx, batch...); err != nil {
				s.log.Error("audit append failed", "entries", len(batch), "err", err)
			}
			cancel()
		}
		for _, w := range waiting {
			close(w)
		}
	}
}

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

// entry returns an audit entry for the caller in ctx.
func (s *Service) entry(ctx context.Context, action, scope string, names []string, status int) AuditEntry {
	c := CallerFrom(ctx)
	actor, tokenID := "", ""
	if c.Token != nil {
		actor, tokenID = c.Token.Name, c.Token.ID
	}
	return AuditEntry{At: s.now(), Actor: actor, Action: action, Scope: scope, Names: names, Status: status,
		RequestID: c.RequestID, Client: c.Client, TokenID: tokenID, Count: 1}
}

// record queues an audit entry that belongs to no write transaction.
func (s *Service) record(ctx context.Context, action, scope string, names []string, status int) {
	s.enqueue(auditItem{e: s.entry(ctx, action, scope, names, status)})
}

// Refused records a refused request (401, 403, 404 by permission, 429).
func (s *Service) Refused(ctx context.Context, action, scope string, status int) {
	s.record(ctx, action, scope, nil, status)
}

// Audit lists audit entries, newest first (global admin).
func (s *Service) Audit(ctx context.Context, q AuditListQuery) (Page[AuditEntry], error) {
	limit, err := limitOf("query.limit", q.Limit)
	if err != nil {
		return Page[AuditEntry]{}, err
	}
	var before int64
	if q.Cursor != "" {
		if before, err = strconv.ParseInt(q.Cursor, 10, 64); err != nil || before < 1 {
			return Page[AuditEntry]{}, Invalid(Field("query.cursor", "invalid_cursor", "cursor is not one this server gave"))
		}
	}
	if err := s.requireGlobalAdmin(ctx, "audit.list"); err != nil {
		return Page[AuditEntry]{}, err
	}
	s.flushAudit(ctx) // so that the list shows every reveal and refusal made before it
	return fetchPage(limit, func(n int) ([]AuditEntry, error) {
		return s.store.ListAudit(ctx, AuditQuery{Scope: q.Scope, Actor: q.Actor, Since: q.Since, Before: before, Limit: n})
	}, func(e AuditEntry) string { return strconv.FormatInt(e.ID, 10) })
}
