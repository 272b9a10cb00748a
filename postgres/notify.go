package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/envy-dev/envy"
)

// channel is the LISTEN/NOTIFY channel of every notice.
const channel = "envy"

// How the notification connection is kept: an idle connection is pinged
// now and then, so that one that died without a word is noticed; a lost
// one is dialled again until it answers.
const (
	listenPing  = 10 * time.Second
	listenRetry = 250 * time.Millisecond
)

// A notice travels as "<kind> <revision> <subject>": the subject is a
// scope path, a token id or a data key id, none of which holds a space or
// a value. A MetaOnly notice's kind is its code in upper case ('S', 'M'):
// a server that does not know it drops it as unknown, never takes it for
// a change of an env (and its caches are checked on every use anyway).
var kindCodes = map[envy.NoticeKind]byte{
	envy.NoticeScope:     's',
	envy.NoticeScopeMeta: 'm',
	envy.NoticeToken:     't',
	envy.NoticeDataKey:   'k',
	envy.NoticeConsumer:  'c',
}

// The notices of one transaction travel together, as few notifications
// as their size allows (maxPayload each, under PostgreSQL's 8000 bytes):
// "*<base>" on the first line, then a notice a line, each revision counted
// from base. Every server listening wakes once per notification, so a
// batch of writes costs each of them one, not one per write.
const maxPayload = 7000

func encodeNotice(n envy.Notice) string {
	subject := n.Scope
	switch n.Kind {
	case envy.NoticeToken:
		subject = n.TokenID
	case envy.NoticeDataKey:
		subject = strconv.FormatUint(uint64(n.KeyID), 10)
	}
	code := kindCodes[n.Kind]
	if n.MetaOnly {
		code -= 'a' - 'A'
	}
	return fmt.Sprintf("%c %d %s", code, n.Revision, subject)
}

// decodeNotices reads a notification's payload: one notice, or several
// ("*<base>" then a notice a line).
func decodeNotices(payload string) ([]envy.Notice, bool) {
	head, lines, several := strings.Cut(payload, "\n")
	if !several {
		n, ok := decodeNotice(payload)
		return []envy.Notice{n}, ok
	}
	base, err := strconv.ParseInt(strings.TrimPrefix(head, "*"), 10, 64)
	if err != nil || !strings.HasPrefix(head, "*") {
		return nil, false
	}
	out := make([]envy.Notice, 0, strings.Count(lines, "\n")+1)
	for line := range strings.SplitSeq(lines, "\n") {
		n, ok := decodeNotice(line)
		if !ok {
			return nil, false
		}
		n.Revision += base
		out = append(out, n)
	}
	return out, true
}

func decodeNotice(payload string) (envy.Notice, bool) {
	code, rest, ok1 := strings.Cut(payload, " ")
	revs, subject, ok2 := strings.Cut(rest, " ")
	rev, err := strconv.ParseInt(revs, 10, 64)
	if !ok1 || !ok2 || len(code) != 1 || err != nil {
		return envy.Notice{}, false
	}
	n := envy.Notice{Revision: rev}
	c0 := code[0]
	if c0 == 'S' || c0 == 'M' {
		n.MetaOnly, c0 = true, c0+('a'-'A')
	}
	for k, c := range kindCodes {
		if c == c0 {
			n.Kind = k
		}
	}
	switch n.Kind {
	case envy.NoticeScope, envy.NoticeScopeMeta, envy.NoticeConsumer:
		n.Scope = subject
	case envy.NoticeToken:
		n.TokenID = subject
	case envy.NoticeDataKey:
		id, err := strconv.ParseUint(subject, 10, 32)
		if err != nil {
			return envy.Notice{}, false
		}
		n.KeyID = uint32(id)
	default:
		return envy.Notice{}, false
	}
	return n, true
}

// connectListener opens the dedicated notification connection and starts
// listening on it.
func (s *Store) connectListener(ctx context.Context) (*pgconn.PgConn, error) {
	conn, err := pgconn.ConnectConfig(ctx, s.cfg)
	if err != nil {
		return nil, s.dbErr("connect for notifications", err)
	}
	if err := conn.Exec(ctx, `LISTEN `+channel).Close(); err != nil {
		conn.Close(context.Background())
		return nil, s.dbErr("listen for notifications", err)
	}
	s.listening.Store(true)
	return conn, nil
}

// listen delivers notices to subscribers until ctx ends. When the
// connection is lost it dials again, and once it listens again it
// publishes NoticeResync: whatever was committed meanwhile went unheard,
// so subscribers must check what they keep against the database.
func (s *Store) listen(ctx context.Context, conn *pgconn.PgConn) {
	defer close(s.listenDone)
	lost := false
	for {
		if conn == nil {
			c, err := s.connectListener(ctx)
			if err != nil {
				select {
				case <-ctx.Done():
					return
				case <-time.After(listenRetry):
				}
				continue
			}
			conn = c
			if lost {
				s.log.Info("notification connection is back; re-checking what is cached")
				s.own.clear()
				s.Publish(envy.Notice{Kind: envy.NoticeResync})
				lost = false
			}
		}
		wctx, cancel := context.WithTimeout(ctx, listenPing)
		err := conn.WaitForNotification(wctx)
		cancel()
		if ctx.Err() != nil {
			conn.Close(context.Background())
			return
		}
		if err != nil && wctx.Err() != nil && !conn.IsClosed() {
			// Idle for a while: make sure the connection still answers.
			pctx, cancel := context.WithTimeout(ctx, defaultConnectTimeout)
			err = conn.Ping(pctx)
			cancel()
		}
		if err != nil {
			if ctx.Err() != nil {
				conn.Close(context.Background())
				return
			}
			if !lost {
				s.log.Warn("lost the notification connection; changes by other servers go unheard until it is back", "err", err)
			}
			s.listening.Store(false)
			conn.Close(context.Background())
			conn, lost = nil, true
			continue
		}
		// WaitForNotification returns once per notification it reads;
		// the notification handler below collected them.
		for _, n := range s.drain(conn) {
			s.own.attach(&n)
			s.Publish(n)
		}
	}
}

// drain returns the notices that the connection has received.
func (s *Store) drain(conn *pgconn.PgConn) []envy.Notice {
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	out := s.pending
	s.pending = nil
	return out
}

// onNotification is the connection's notification handler: it runs inside
// WaitForNotification and only queues.
func (s *Store) onNotification(_ *pgconn.PgConn, n *pgconn.Notification) {
	notices, ok := decodeNotices(n.Payload)
	if !ok {
		s.log.Warn("ignored a notification it can't read", "channel", n.Channel)
		return
	}
	s.pendingMu.Lock()
	s.pending = append(s.pending, notices...)
	s.pendingMu.Unlock()
}

// queueNotices queues the NOTIFY of the notices, in their order, as one
// statement: as few notifications as their size allows (maxPayload). With
// relative, the notices' revisions are a batch's 1…n, counted from
// envy.base (commit.go), which the statement puts in their first line.
func queueNotices(b *pgx.Batch, notices []envy.Notice, relative bool) {
	if len(notices) == 0 {
		return
	}
	base := `'0'`
	if relative {
		base = `(` + baseRev + `)::text`
	}
	b.Queue(`SELECT pg_notify($1, '*' || `+base+` || E'\n' || n.p) FROM unnest($2::text[]) WITH ORDINALITY AS n(p, i) ORDER BY n.i`,
		channel, noticePayloads(notices))
}

// noticePayloads encodes notices a line each, in as few payloads of at
// most maxPayload bytes (their first line, "*<base>", aside) as they fit.
func noticePayloads(notices []envy.Notice) []string {
	var (
		out []string
		cur strings.Builder
	)
	for _, n := range notices {
		line := encodeNotice(n)
		if cur.Len() > 0 && cur.Len()+1+len(line) > maxPayload {
			out = append(out, cur.String())
			cur.Reset()
		}
		if cur.Len() > 0 {
			cur.WriteByte('\n')
		}
		cur.WriteString(line)
	}
	return append(out, cur.String())
}
