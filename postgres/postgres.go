// Package postgres is the envy.Store on PostgreSQL, for several envy
// servers sharing one database.
//
// Every server reads and writes the database directly, and a write
// committed through one server is read by every other at once. The store
// keeps no cache; the scope cache that wraps it (storecache) and the
// Service's token cache check each use against the database first
// (envy.Checker, check.go):
// one indexed query, shared by the checks that callers ask for at the same
// time, and always sent after the caller asked. Changes reach other
// servers' watchers and caches through LISTEN/NOTIFY on one dedicated
// connection per server (see notify.go): a transaction that changes
// something sends its notice with pg_notify, which PostgreSQL delivers
// only once it commits, in commit order. Notices come a moment after the
// commit, so they only evict early; no cache is trusted on them.
//
// Revisions are gap-safe for readers. The store-wide revision lives in
// the one row of meta; a transaction that takes revisions adds their
// number to it (UPDATE … RETURNING: a batch of writes takes one each) as
// the last lock it takes before COMMIT, and holds that row lock until it
// has committed. So the transaction with revision N+1 can't even learn
// its number before N's COMMIT is durable and visible, and once a reader sees revision N+1 committed it sees every
// revision below it too: a watcher that resumes from N never misses a
// change because two transactions committed out of order. A transaction
// that rolls back gives its numbers back with its update, so no number
// is lost either.
//
// Writes share their transactions (group commit, see commit.go): Write
// queues its op for the store's committer goroutine,
// which applies whatever is queued in one transaction: it locks the
// scopes involved (advisory locks, taken in one order by every server),
// checks each write against the state the writes before it leave (a stale
// one is answered ErrStale and left out), and sends, in its last round
// trip, the one UPDATE of meta that takes the batch's revisions (its last
// lock), every statement and notice, and the COMMIT. The rows are built
// before that with the batch's own numbers 1…n, which the statements add
// to the base the UPDATE leaves in the transaction (countRevisions), so
// the revision row, which every writer on every server waits for, is held
// for one round trip and the COMMIT, never while a server builds rows. Every op is answered after
// the COMMIT; when the transaction fails for another reason than the
// database being unavailable, each op runs again alone, so that one op's
// error is its own. The other changes (scopes, tokens, consumers, keys)
// are a transaction each, and so is each AppendAudit (see audit.go).
//
// Writes are durable when acknowledged: every connection runs with
// synchronous_commit on, whatever the server's default. A caller whose
// context ends while its op waits in the queue is told so and the op
// never runs; once the op is in a transaction, the caller waits for its
// real outcome.
//
// This package implements storage only. It must never import net/http or
// envy's http package.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/storeutil"
)

//go:embed migrations/*.sql
var migrations embed.FS

var (
	_ envy.Store    = (*Store)(nil)
	_ envy.Notifier = (*Store)(nil)
)

// Defaults for settings the database URL does not give.
const (
	defaultStatementTimeout = "30s"
	defaultConnectTimeout   = 5 * time.Second
	// The session settings that keep one stalled server from holding the
	// others up (see ParseURL): a transaction left idle is ended after
	// defaultIdleInTx, a lock waited for longer than defaultLockTimeout
	// is given up (503, retried by the client), and a connection whose
	// peer stopped answering is dropped after defaultTCPUserTimeout, by
	// the database and by envy alike.
	defaultIdleInTx       = "5s"
	defaultLockTimeout    = "10s"
	defaultTCPUserTimeout = 10 * time.Second
	// migrationLock is the key of the advisory lock under which a server
	// applies migrations, so that two servers starting at once don't both
	// apply the same one.
	migrationLock int64 = 0x656e76796d696772 // "envymigr"
	// inheritsLock serializes PutScope across servers (see putScope).
	inheritsLock int64 = 0x656e7679696e6872 // "envyinhr"
	// tokensLock makes "create only if no token exists" atomic.
	tokensLock int64 = 0x656e7679746f6b6e // "envytokn"
)

// txTimeout bounds a write transaction once it has begun; the caller's
// context no longer counts then (see tx). A variable for tests; a move's
// Load is not bound by it (move.go).
var txTimeout = 60 * time.Second

// Options tune a Store.
type Options struct {
	Logger *slog.Logger
}

// Store is an envy.Store on a PostgreSQL database. It is safe for
// concurrent use.
type Store struct {
	envy.Broadcast
	storeutil.Reader // the reads written once for both stores, on the pool
	// the session writes written once for both stores, in transactions of their own
	storeutil.SessionWrites

	pool *pgxpool.Pool
	cfg  *pgconn.Config // for the notification connection
	log  *slog.Logger

	stopListen context.CancelFunc
	listenDone chan struct{}
	listening  atomic.Bool
	pendingMu  sync.Mutex
	pending    []envy.Notice    // read by the notification handler, not yet published
	own        ownStates        // the states this server's batches committed, for their notices
	behinds    batcher[*behind] // BehindConsumers' questions, answered many at a time (behind.go)

	committer *storeutil.Committer[*commitOp] // applies Writes in batches
	commits   atomic.Int64                    // the committer's transactions that committed, for tests
	committed atomic.Int64                    // the ops they answered
	split     atomic.Int64                    // batches that failed and ran each op alone, for tests

	checks batcher[*check] // of the Service's caches, many callers' in one query (check.go)

	closed    atomic.Bool
	closeOnce sync.Once
}

// Open connects to the database at url (postgres://…), applies the pending
// migrations under an advisory lock and starts listening for notices.
// Settings such as pool_max_conns and statement_timeout may be given as
// URL parameters. Close releases it.
func Open(ctx context.Context, url string, o Options) (*Store, error) {
	cfg, err := ParseURL(url)
	if err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s := &Store{pool: pool, cfg: cfg.ConnConfig.Config.Copy(), log: o.Logger, listenDone: make(chan struct{})}
	s.cfg.OnNotification = s.onNotification
	s.checks.run, s.behinds.run = s.checkBatch, s.behindBatch
	s.Reader = storeutil.Reader{
		Query: func(ctx context.Context, q string, args ...any) (storeutil.RowSet, error) {
			return s.pool.Query(ctx, q, args...)
		},
		Mark:   storeutil.DollarMark,
		Limit:  sqlLimit,
		Fail:   s.dbErr,
		Closed: s.closed.Load,
	}
	s.SessionWrites = storeutil.SessionWrites{Exec: s.execCount, SQL: sessionSQL}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	// Listen before Open returns, so that no change committed after it is
	// missed.
	conn, err := s.connectListener(ctx)
	if err != nil {
		pool.Close()
		return nil, err
	}
	lctx, cancel := context.WithCancel(context.Background())
	s.stopListen = cancel
	go s.listen(lctx, conn)
	s.committer = storeutil.NewCommitter(maxBatch, queueSize, commitLinger, s.commitBatch)
	return s, nil
}

// ParseURL parses a database URL and fills in envy's defaults: durable
// commits always, a statement timeout and a connect timeout unless the URL
// sets them. Its errors never hold the password.
func ParseURL(url string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: invalid database URL: %w", err)
	}
	rp := cfg.ConnConfig.RuntimeParams
	if v, ok := rp["synchronous_commit"]; ok && v != "on" {
		return nil, fmt.Errorf("postgres: invalid database URL: synchronous_commit=%s would acknowledge writes before they are durable", v)
	}
	rp["synchronous_commit"] = "on"
	// A transaction holds the revision counter's row lock until it ends:
	// a server whose link to the database stalls in the middle of one
	// (packets held, a paused VM) would hold every other server's writes
	// until TCP gave up, some two hours. These settings make the database
	// end such a session within seconds, and a writer that waits on a
	// lock give up (503) rather than wait on.
	for k, v := range map[string]string{
		"statement_timeout":                   defaultStatementTimeout,
		"idle_in_transaction_session_timeout": defaultIdleInTx,
		"lock_timeout":                        defaultLockTimeout,
		"tcp_keepalives_idle":                 "5",
		"tcp_keepalives_interval":             "2",
		"tcp_keepalives_count":                "3",
		"tcp_user_timeout":                    strconv.Itoa(int(defaultTCPUserTimeout.Milliseconds())),
	} {
		if _, ok := rp[k]; !ok {
			rp[k] = v
		}
	}
	if _, ok := rp["application_name"]; !ok {
		rp["application_name"] = "envy"
	}
	if !strings.Contains(url, "pool_max_conns") {
		// Requests wait on the database more than on the CPU: more
		// connections than pgxpool's default of one per CPU.
		cfg.MaxConns = int32(max(8, 4*runtime.GOMAXPROCS(0)))
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	// envy's side of the connection gives up on a silent peer as soon:
	// keepalives, and on Linux a TCP user timeout for unacknowledged data.
	d := &net.Dialer{
		KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 5 * time.Second, Interval: 2 * time.Second, Count: 3},
		Control:         setUserTimeout(defaultTCPUserTimeout),
	}
	cfg.ConnConfig.DialFunc = d.DialContext
	return cfg, nil
}

// migrate applies the migrations that the database lacks, each in its own
// transaction with its schema_migrations row, under a session advisory
// lock: a second server starting at the same moment waits, then finds
// them applied.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := storeutil.LoadMigrations(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: connect: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return fmt.Errorf("postgres: take the migration lock: %w", err)
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, migrationLock)
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at BIGINT NOT NULL
	)`); err != nil {
		return fmt.Errorf("postgres: create schema_migrations: %w", err)
	}
	for _, m := range ms {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			var applied bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)`, m.Version).Scan(&applied); err != nil {
				return err
			}
			if applied {
				return nil
			}
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.Version, m.Name, time.Now().UnixNano())
			return err
		})
		if err != nil {
			return fmt.Errorf("postgres: migration %s: %w", m.Name, err)
		}
	}
	var newest int
	if err := conn.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&newest); err != nil {
		return fmt.Errorf("postgres: read schema version: %w", err)
	}
	if last := ms[len(ms)-1].Version; newest > last {
		return fmt.Errorf("postgres: the database has schema version %d, newer than this binary's %d", newest, last)
	}
	return nil
}

// Close finishes the writes queued before it, stops listening and closes
// the pool. Later calls do nothing.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.committer.Close()
		s.stopListen()
		<-s.listenDone
		s.pool.Close()
	})
	return nil
}

// Shared is true: other servers may write to the same database.
func (s *Store) Shared() bool { return true }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return storeutil.ErrClosed()
	}
	var one int
	if err := s.pool.QueryRow(ctx, `SELECT 1`).Scan(&one); err != nil {
		return s.dbErr("ping", err)
	}
	return nil
}

// Revision returns the newest committed revision.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	if s.closed.Load() {
		return 0, storeutil.ErrClosed()
	}
	var rev int64
	if err := s.pool.QueryRow(ctx, `SELECT revision FROM meta WHERE id = 1`).Scan(&rev); err != nil {
		return 0, s.dbErr("read the revision", err)
	}
	return rev, nil
}

// dbErr maps a database error: a lost or refused connection, a server
// shutting down or a timeout is EUnavailable (503, try again); a domain
// error and a cancellation pass as they are; anything else is internal.
// The cause is kept for the logs either way.
func (s *Store) dbErr(what string, err error) error {
	if err == nil {
		return nil
	}
	if envy.AsError(err) != nil || errors.Is(err, context.Canceled) {
		return err
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03", // shutting down, cannot connect now
			pe.Code == "53300",                     // too many connections
			pe.Code == "57014", pe.Code == "55P03", // statement timeout, lock timeout
			pe.Code == "25P03": // idle in transaction: the session was ended
			return unavailable(what, err)
		case pe.Code == "53100": // disk full
			return fmt.Errorf("postgres: %s: %w: %w", what,
				&envy.Error{Code: envy.EUnavailable, Message: "the database's disk is full: writes are refused until space is freed", RetryAfter: 30 * time.Second}, err)
		}
		return fmt.Errorf("postgres: %s: %w", what, err)
	}
	if connErr(err) {
		return unavailable(what, err)
	}
	return fmt.Errorf("postgres: %s: %w", what, err)
}

// connErr reports whether err is about the connection rather than the
// statement: refused, reset, closed, timed out.
func connErr(err error) bool {
	var (
		ce *pgconn.ConnectError
		ne net.Error
	)
	return errors.As(err, &ce) || errors.As(err, &ne) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, context.DeadlineExceeded) ||
		strings.Contains(err.Error(), "conn closed") || strings.Contains(err.Error(), "conn busy")
}

func unavailable(what string, err error) error {
	return fmt.Errorf("postgres: %s: %w: %w", what, &envy.Error{Code: envy.EUnavailable, Message: "the database is unavailable", RetryAfter: time.Second}, err)
}

func isCode(err error, code string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == code
}

// constraint returns the name of the constraint that err violated, if any.
func constraint(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.ConstraintName
	}
	return ""
}

// retryable reports whether a transaction failed only because it lost a
// race that PostgreSQL resolved by aborting it.
func retryable(err error) bool {
	return isCode(err, "40001") || isCode(err, "40P01") // serialization failure, deadlock
}

// txn is what a write sees of its transaction.
type txn struct {
	pgx.Tx
	ctx     context.Context
	now     time.Time
	notices []envy.Notice
	// pending, when set, takes the statements of exec instead of running
	// them: tx sends them with the notices in one round trip before the
	// COMMIT. A write sets it once it holds the revision lock, so that
	// the lock is held for as few round trips as can be.
	pending *pgx.Batch
	// relative: the revisions of the statements queued are a batch's
	// 1…n, counted from the envy.base setting (commit.go).
	relative bool
}

// exec runs a statement, or queues it when a batch is pending.
func (t *txn) exec(sql string, args ...any) error {
	if t.pending != nil {
		t.pending.Queue(sql, args...)
		return nil
	}
	_, err := t.Exec(t.ctx, sql, args...)
	return err
}

// tx runs fn in a transaction and commits it. The caller's context counts
// until the transaction begins; after that the transaction runs to its end
// (bounded by txTimeout), so that a caller who goes away is never told a
// write failed that then commits. fn's domain errors pass unchanged; a
// transaction that lost a race (deadlock, serialization) is run again.
func (s *Store) tx(ctx context.Context, what string, fn func(t *txn) error) error {
	return s.retry(ctx, func() error { return s.tx1(ctx, what, fn) })
}

// retry runs once, again (at most five times more) while it fails only
// because its transaction lost a race (retryable), until ctx ends. A
// closed store runs nothing.
func (s *Store) retry(ctx context.Context, once func() error) error {
	if s.closed.Load() {
		return storeutil.ErrClosed()
	}
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := once()
		if retryable(err) && attempt < 5 {
			continue
		}
		return err
	}
}

func (s *Store) tx1(ctx context.Context, what string, fn func(t *txn) error) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return s.dbErr(what, err)
	}
	defer conn.Release()
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), txTimeout)
	defer cancel()
	tx, err := conn.Begin(tctx)
	if err != nil {
		return s.dbErr(what, err)
	}
	t := &txn{Tx: tx, ctx: tctx, now: storeutil.Now()}
	if err := fn(t); err != nil {
		tx.Rollback(tctx)
		if retryable(err) {
			return err
		}
		return s.dbErr(what, err)
	}
	b := t.pending
	if b == nil {
		b = &pgx.Batch{}
	}
	queueNotices(b, t.notices, false)
	if b.Len() > 0 {
		if err := tx.SendBatch(tctx, b).Close(); err != nil {
			tx.Rollback(tctx)
			if retryable(err) {
				return err
			}
			return s.dbErr(what, err)
		}
	}
	if err := tx.Commit(tctx); err != nil {
		if retryable(err) {
			return err
		}
		return s.dbErr(what+": commit", err)
	}
	return nil
}

// notify sends a notice when the transaction commits.
func (t *txn) notify(n envy.Notice) { t.notices = append(t.notices, n) }

// nextRevision takes the next store-wide revision. Call it as the last lock
// a transaction takes: see the package comment.
func (t *txn) nextRevision() (int64, error) {
	var rev int64
	if err := t.QueryRow(t.ctx, `UPDATE meta SET revision = revision + 1 WHERE id = 1 RETURNING revision`).Scan(&rev); err != nil {
		return 0, err
	}
	return rev, nil
}

// lockScope serializes the transactions that change one scope (or create
// it: the row may not exist yet, so the lock is an advisory one on its
// path). It is held until the transaction ends.
func (t *txn) lockScope(path string) error {
	_, err := t.Exec(t.ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, path)
	return err
}

// sqlLimit turns "no limit" (≤ 0) into NULL, which LIMIT reads as none.
func sqlLimit(limit int) any {
	if limit <= 0 {
		return nil
	}
	return limit
}
