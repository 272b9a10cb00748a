// Package sqlite is the envy.Store on one SQLite file: the default store of
// a single envy server, which needs nothing else installed.
//
// Writes are durable when acknowledged (WAL with synchronous=FULL) and
// share their commits: one writer goroutine owns the only write connection,
// runs every queued mutation in one transaction, each in its own savepoint,
// and answers them after the one COMMIT (group commit). Reads use a
// separate pool of connections. The store keeps no cache of its own: the
// service reads it through package storecache, which the writer's notices
// keep true because they are published before a write returns. That is
// only sound because this process is the file's one writer, which a lock
// on the file next to it (envy.db.lock) enforces: a second server on the
// same file refuses to start.
//
// Var writes come planned and sealed by the service; the writer only
// checks that they are not stale and persists them. A scope write's plan
// (envy.ScopeWrite.Plan) still runs on the writer goroutine, inside the
// transaction: it must be quick, and one that calls a write method of the
// Store deadlocks.
//
// This package implements storage only. It must never import net/http or
// envy's http package: storage and HTTP meet in the domain package, never
// in each other.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/fsutil"
	"github.com/envy-dev/envy/internal/storeutil"
)

//go:embed migrations/*.sql
var migrations embed.FS

var (
	_ envy.Store    = (*Store)(nil)
	_ envy.Notifier = (*Store)(nil)
)

const (
	// busyTimeout bounds how long a connection waits for a lock. In WAL
	// mode readers never wait for the writer; this only matters when
	// another process (a backup, the sqlite3 shell) holds the file.
	busyTimeout = 10 * time.Second

	// maxBatch bounds how many queued mutations share one commit, so that
	// one batch's transaction stays short even under a flood of writes.
	maxBatch = 256

	// queueSize is how many mutations may wait for the writer before
	// callers block on sending (still honouring their contexts).
	queueSize = 4 * maxBatch
)

// ErrLocked is what Open answers when another process (another envy
// server) has the database open.
var ErrLocked = errors.New("sqlite: another envy server is using this database; SQLite serves one server at a time: stop the other one, or use PostgreSQL (--database-url) to run several servers")

// Store is an envy.Store on one SQLite file. It is safe for concurrent use.
type Store struct {
	envy.Broadcast   // notices, published by the writer after each commit
	storeutil.Reader // the reads written once for both stores, on readers
	// the session writes written once for both stores, in writes of their own
	storeutil.SessionWrites

	path string
	lock *os.File // held while the store is open: one server per file

	// writer has exactly one connection, which wconn holds for the
	// store's life; only the writer goroutine uses it once Open returns.
	writer *sql.DB
	wconn  *sql.Conn
	wstmts map[string]*sql.Stmt // prepared on wconn, used only by the writer goroutine

	readers *sql.DB

	committer *storeutil.Committer[func(t *txn) error] // the writer goroutine
	queue     chan *op                                 // the committer's queue

	// known is each scope as the writer last committed it, for the next
	// batch that writes it to start from without reading it again: every
	// change of a scope goes through the writer, which keeps it true
	// (runBatch). Only the writer goroutine uses it.
	known map[string]*envy.ScopeVars
	loads atomic.Int64 // the writer's reads of a whole scope, for tests

	rev     atomic.Int64 // newest committed revision; only the writer moves it
	commits atomic.Int64 // group commits so far, for tests and metrics
	fullAt  atomic.Int64 // when a write last failed for want of space (Unix ns); 0 once one succeeds

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating it when missing) the database at path, applies the
// pending migrations and starts the writer. Close releases it.
func Open(ctx context.Context, path string) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: resolve %s: %w", path, err)
	}
	if err := fsutil.MkdirPrivate(filepath.Dir(abs)); err != nil {
		return nil, fmt.Errorf("sqlite: create the data directory: %w", err)
	}
	// SQLite creates the database with mode 0644 (less the umask) and its
	// -wal and -shm files with the database's mode: made first, and 0600,
	// the database keeps all three private.
	if f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		return nil, fmt.Errorf("sqlite: create %s: %w", abs, err)
	} else if err := f.Close(); err != nil {
		return nil, fmt.Errorf("sqlite: create %s: %w", abs, err)
	}
	if err := fsutil.MakePrivate(abs, abs+"-wal", abs+"-shm", abs+".lock"); err != nil {
		return nil, fmt.Errorf("sqlite: make the database files private: %w", err)
	}
	s := &Store{
		path:   abs,
		wstmts: make(map[string]*sql.Stmt),
	}
	s.Reader = storeutil.Reader{
		Query: func(ctx context.Context, q string, args ...any) (storeutil.RowSet, error) {
			rows, err := s.readers.QueryContext(ctx, q, args...)
			return sqlRows{rows}, err
		},
		Mark:       storeutil.NumberedMark,
		Limit:      func(n int) any { return sqlLimit(n) },
		Fail:       dbErr,
		Closed:     s.closed.Load,
		CheckScope: s.checkScope,
	}
	s.SessionWrites = storeutil.SessionWrites{Exec: s.execCount, SQL: sessionSQL}
	if s.lock, err = lockFile(abs + ".lock"); err != nil {
		if errors.Is(err, ErrLocked) {
			return nil, fmt.Errorf("%w (lock file %s.lock)", ErrLocked, abs)
		}
		return nil, err
	}
	err = s.open(ctx)
	if err == nil {
		// Files an older version left open to others, and any SQLite made
		// while opening.
		err = fsutil.MakePrivate(abs, abs+"-wal", abs+"-shm")
	}
	if err != nil {
		s.closeDBs()
		return nil, err
	}
	s.committer = storeutil.NewCommitter(maxBatch, queueSize, storeutil.ShortLinger, s.runBatch)
	s.queue = s.committer.Queue
	return s, nil
}

func (s *Store) open(ctx context.Context) error {
	busy := strconv.FormatInt(busyTimeout.Milliseconds(), 10)
	var err error
	// The writer's pragmas: WAL so that readers never block the writer nor
	// it them; synchronous=FULL so that a COMMIT returns only once the WAL
	// is on disk (NORMAL would survive a crash of the process but not a
	// power cut); _txlock=immediate is unused (the writer issues its own
	// BEGIN IMMEDIATE) but keeps any stray db.Begin from taking a read lock
	// it would later have to upgrade.
	s.writer, err = sql.Open("sqlite", dsn(s.path,
		"_pragma=busy_timeout("+busy+")",
		"_pragma=foreign_keys(1)",
		"_pragma=journal_mode(WAL)",
		"_pragma=synchronous(FULL)",
		"_pragma=journal_size_limit(67108864)",
		"_txlock=immediate",
	))
	if err != nil {
		return fmt.Errorf("sqlite: open %s: %w", s.path, err)
	}
	s.writer.SetMaxOpenConns(1)
	s.writer.SetMaxIdleConns(1)
	s.writer.SetConnMaxLifetime(0)
	s.writer.SetConnMaxIdleTime(0)
	s.wconn, err = s.writer.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: open %s: %w", s.path, err)
	}
	if err := s.checkPragmas(ctx); err != nil {
		return err
	}
	if err := s.migrate(ctx); err != nil {
		return err
	}
	// Each op of a batch runs in a savepoint (runOp), whose statement
	// journal keeps the pages it changes that the batch had changed
	// before: a few pages an op, which SQLite otherwise writes to a
	// temporary file, a system call a page (a tenth of a write's CPU
	// under load). In memory they cost a copy. Set after the migrations,
	// whose index builds may sort more than memory should hold.
	if _, err := s.wconn.ExecContext(ctx, `PRAGMA temp_store = MEMORY`); err != nil {
		return fmt.Errorf("sqlite: open %s: %w", s.path, err)
	}

	readers := runtime.GOMAXPROCS(0) * 2
	readers = min(max(readers, 4), 8)
	s.readers, err = sql.Open("sqlite", dsn(s.path,
		"_pragma=busy_timeout("+busy+")",
		"_query_only=1",
	))
	if err != nil {
		return fmt.Errorf("sqlite: open %s: %w", s.path, err)
	}
	s.readers.SetMaxOpenConns(readers)
	s.readers.SetMaxIdleConns(readers)
	s.readers.SetConnMaxLifetime(0)
	s.readers.SetConnMaxIdleTime(0)

	var rev int64
	if err := s.readers.QueryRowContext(ctx, `SELECT revision FROM meta WHERE id = 1`).Scan(&rev); err != nil {
		return fmt.Errorf("sqlite: read the revision: %w", err)
	}
	s.rev.Store(rev)
	return nil
}

// dsn builds a file: URI, which escapes any '?', '#' or '%' in the path
// that would otherwise be read as the start of the driver's parameters.
func dsn(path string, params ...string) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: strings.Join(params, "&")}
	return u.String()
}

// checkPragmas makes sure that the durability settings took: a typo in a
// DSN parameter must not silently turn into a store that loses writes.
func (s *Store) checkPragmas(ctx context.Context) error {
	var mode string
	if err := s.wconn.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return fmt.Errorf("sqlite: read journal_mode: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("sqlite: journal_mode is %q, not wal (does the file system support WAL?)", mode)
	}
	var syncMode, fk int
	if err := s.wconn.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&syncMode); err != nil {
		return fmt.Errorf("sqlite: read synchronous: %w", err)
	}
	if syncMode != 2 {
		return fmt.Errorf("sqlite: synchronous is %d, not 2 (FULL)", syncMode)
	}
	if err := s.wconn.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk); err != nil {
		return fmt.Errorf("sqlite: read foreign_keys: %w", err)
	}
	if fk != 1 {
		return errors.New("sqlite: foreign keys are off")
	}
	return nil
}

// migrate applies the migrations that the database lacks, each in its own
// transaction together with its schema_migrations row, so that a crash
// halfway leaves either the old or the new schema, never a mix.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := storeutil.LoadMigrations(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	if _, err := s.wconn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at INTEGER NOT NULL
	)`); err != nil {
		return fmt.Errorf("sqlite: create schema_migrations: %w", err)
	}
	for _, m := range ms {
		if err := s.applyMigration(ctx, m); err != nil {
			return err
		}
	}
	var newest int
	if err := s.wconn.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&newest); err != nil {
		return fmt.Errorf("sqlite: read schema version: %w", err)
	}
	if last := ms[len(ms)-1].Version; newest > last {
		return fmt.Errorf("sqlite: the database has schema version %d, newer than this binary's %d", newest, last)
	}
	return nil
}

func (s *Store) applyMigration(ctx context.Context, m storeutil.Migration) (err error) {
	// BEGIN IMMEDIATE before looking, so that two processes opening a new
	// file at once can't both decide to apply the same migration.
	if _, err := s.wconn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		return fmt.Errorf("sqlite: migration %s: begin: %w", m.Name, err)
	}
	defer func() {
		if err != nil {
			s.wconn.ExecContext(context.Background(), `ROLLBACK`)
		}
	}()
	var applied bool
	if err := s.wconn.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?)`, m.Version).Scan(&applied); err != nil {
		return fmt.Errorf("sqlite: migration %s: %w", m.Name, err)
	}
	if applied {
		_, err := s.wconn.ExecContext(ctx, `COMMIT`)
		if err != nil {
			return fmt.Errorf("sqlite: migration %s: commit: %w", m.Name, err)
		}
		return nil
	}
	if _, err := s.wconn.ExecContext(ctx, m.SQL); err != nil {
		return fmt.Errorf("sqlite: migration %s: %w", m.Name, err)
	}
	if _, err := s.wconn.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.Version, m.Name, time.Now().UnixNano()); err != nil {
		return fmt.Errorf("sqlite: migration %s: record: %w", m.Name, err)
	}
	if _, err := s.wconn.ExecContext(ctx, `COMMIT`); err != nil {
		return fmt.Errorf("sqlite: migration %s: commit: %w", m.Name, err)
	}
	return nil
}

// Close waits for the queued writes to finish, stops the writer and closes
// the database. Later calls return the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.committer.Close()
		s.closeErr = s.closeDBs()
	})
	return s.closeErr
}

func (s *Store) closeDBs() error {
	var errs []error
	for _, st := range s.wstmts {
		errs = append(errs, st.Close())
	}
	clear(s.wstmts)
	if s.wconn != nil {
		errs = append(errs, s.wconn.Close())
	}
	if s.readers != nil {
		errs = append(errs, s.readers.Close())
	}
	// The writer last: the last connection to close checkpoints the WAL
	// into the main file.
	if s.writer != nil {
		errs = append(errs, s.writer.Close())
	}
	if s.lock != nil {
		errs = append(errs, s.lock.Close()) // and with it the lock
		s.lock = nil
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

// Shared is false: the file lock keeps other servers out, so this
// process sees every write itself.
func (s *Store) Shared() bool { return false }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return storeutil.ErrClosed()
	}
	var rev int64
	if err := s.readers.QueryRowContext(ctx, `SELECT revision FROM meta WHERE id = 1`).Scan(&rev); err != nil {
		return unavailable("ping", err)
	}
	if at := s.fullAt.Load(); at != 0 && time.Since(time.Unix(0, at)) < fullFor {
		return errDiskFull()
	}
	return nil
}

// Revision returns the newest committed revision. This process is the
// file's only writer, so the writer's own count is exact.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	if s.closed.Load() {
		return 0, storeutil.ErrClosed()
	}
	return s.rev.Load(), nil
}

// unavailable wraps a database error as EUnavailable while keeping the
// cause for the logs: errors.As finds the domain error, whose message is
// what callers see.
func unavailable(what string, err error) error {
	return fmt.Errorf("sqlite: %s: %w: %w", what, envy.Errorf(envy.EUnavailable, "the database is unavailable"), err)
}

// dbErr wraps a raw database error with what was being done; the domain
// treats it as internal, except a full disk, which is EUnavailable and
// says so.
func dbErr(what string, err error) error {
	if isDiskFull(err) {
		return fmt.Errorf("sqlite: %s: %w: %w", what, errDiskFull(), err)
	}
	return fmt.Errorf("sqlite: %s: %w", what, err)
}

// fullFor is how long after a write failed for want of space the store
// reports itself unready, unless a write succeeds before.
const fullFor = 30 * time.Second

func errDiskFull() *envy.Error {
	return &envy.Error{Code: envy.EUnavailable, Message: "the disk is full: writes are refused until space is freed", RetryAfter: fullFor}
}

// isDiskFull reports whether err is SQLite's SQLITE_FULL: the disk, or the
// size limit set by SetMaxSize, is full.
func isDiskFull(err error) bool {
	var e *msqlite.Error
	return errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_FULL
}

// SetMaxSize limits the database file to about bytes (SQLite's
// max_page_count; never below its current size): beyond it writes fail as
// they would on a full disk. A quota for operators, and a full disk for
// tests that can't fill a real one.
//
// Setting the limit needs no room, but it runs in a batch of the writer's:
// when another op of that batch finds the disk full, SQLite rolls the
// whole transaction back and every op of it is answered that error (the
// PRAGMA, a setting of the connection, may well have taken effect all the
// same). SetMaxSize then sets it again, in a later batch, rather than
// fail for another op's want of space: raising the limit is how room
// comes back.
func (s *Store) SetMaxSize(ctx context.Context, bytes int64) error {
	var err error
	for range 10 {
		if err = s.setMaxSize(ctx, bytes); !isDiskFull(err) {
			return err
		}
	}
	return err
}

func (s *Store) setMaxSize(ctx context.Context, bytes int64) error {
	return s.do(ctx, func(t *txn) error {
		var pageSize int64
		if err := t.queryRow(`PRAGMA page_size`).Scan(&pageSize); err != nil {
			return dbErr("read the page size", err)
		}
		var got int64
		if err := t.queryRow(fmt.Sprintf(`PRAGMA max_page_count = %d`, max(bytes/pageSize, 1))).Scan(&got); err != nil {
			return dbErr("set max_page_count", err)
		}
		return nil
	})
}

// isUnique reports whether err is a violated UNIQUE or PRIMARY KEY
// constraint.
func isUnique(err error) bool {
	var e *msqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	c := e.Code()
	return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

// sqlLimit turns "no limit" (≤ 0) into SQLite's -1.
func sqlLimit(limit int) int {
	if limit <= 0 {
		return -1
	}
	return limit
}

// sqlRows is a database/sql result set as a storeutil.Reader reads it.
type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { _ = r.Rows.Close() }
