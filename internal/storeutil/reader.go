package storeutil

import (
	"context"
	"strconv"
	"time"

	"github.com/envy-dev/envy"
)

// RowSet is a result set of either driver, as a Reader reads it.
type RowSet interface {
	Scanner
	Close()
}

// Reader holds the reads that are the same statements on both stores, bar
// the placeholders, so that each is written once. A store fills it with
// its own connections and error naming.
type Reader struct {
	// Query runs a statement on the store's read connections.
	Query func(ctx context.Context, sql string, args ...any) (RowSet, error)
	// Mark is the placeholder of the nth argument (from 1); the same
	// mark may stand in a statement more than once.
	Mark func(n int) string
	// Limit turns a limit (≤ 0: none) into the value LIMIT takes.
	Limit func(limit int) any
	// Fail names a driver error with what failed; err is never nil.
	Fail func(what string, err error) error
	// Closed tells whether the store is closed.
	Closed func() bool
	// CheckScope returns ENotFound unless the scope exists; nil: ScopeExists.
	CheckScope func(ctx context.Context, path string) error
}

// NumberedMark is the placeholder "?n" (SQLite); DollarMark is "$n"
// (PostgreSQL).
func NumberedMark(n int) string { return "?" + strconv.Itoa(n) }

// DollarMark is PostgreSQL's placeholder for the nth argument.
func DollarMark(n int) string { return "$" + strconv.Itoa(n) }

// read runs query and hands its rows to scan, naming a failure with what.
func read[T any](ctx context.Context, r *Reader, what string, scan func(Scanner) ([]T, error), query string, args ...any) ([]T, error) {
	if r.Closed() {
		return nil, ErrClosed()
	}
	rows, err := r.Query(ctx, query, args...)
	if err != nil {
		return nil, r.Fail(what, err)
	}
	defer rows.Close()
	out, err := scan(rows)
	if err != nil {
		return nil, r.fail(what, err)
	}
	return out, nil
}

// fail is Fail, passing domain errors and nil through.
func (r *Reader) fail(what string, err error) error {
	if err == nil || envy.AsError(err) != nil {
		return err
	}
	return r.Fail(what, err)
}

// checkScope is CheckScope, or ScopeExists when the store gave none.
func (r *Reader) checkScope(ctx context.Context, path string) error {
	if r.Closed() {
		return ErrClosed()
	}
	if r.CheckScope != nil {
		return r.CheckScope(ctx, path)
	}
	return r.ScopeExists(ctx, path)
}

// ScopeExists returns ENotFound unless the scope exists, asking the
// database.
func (r *Reader) ScopeExists(ctx context.Context, path string) error {
	ok, err := read(ctx, r, "look up a scope", func(rows Scanner) ([]bool, error) {
		var ok bool
		for rows.Next() {
			if err := rows.Scan(&ok); err != nil {
				return nil, err
			}
		}
		return []bool{ok}, rows.Err()
	}, `SELECT EXISTS (SELECT 1 FROM scopes WHERE path = `+r.Mark(1)+`)`, path)
	if err != nil {
		return err
	}
	if !ok[0] {
		return NotFound(path)
	}
	return nil
}

// ListAudit returns audit entries, newest first.
func (r *Reader) ListAudit(ctx context.Context, q envy.AuditQuery) ([]envy.AuditEntry, error) {
	query, args := AuditQuery(q, r.Limit(q.Limit), r.Mark)
	return read(ctx, r, "list audit entries", ScanAudit, query, args...)
}

// Consumers returns the consumers of a scope seen at or after since, by id.
func (r *Reader) Consumers(ctx context.Context, scope string, since time.Time) ([]envy.Consumer, error) {
	if err := r.checkScope(ctx, scope); err != nil {
		return nil, err
	}
	return read(ctx, r, "list consumers", func(rows Scanner) ([]envy.Consumer, error) {
		return ScanConsumers(rows, scope)
	}, `SELECT id, hostname, pid, revision, first_seen, seen_at, token_id, fallback_since
		FROM consumers WHERE scope = `+r.Mark(1)+` AND seen_at >= `+r.Mark(2)+` ORDER BY id`, scope, Nanos(since))
}

// BehindConsumers returns up to limit consumers seen at or after since
// that run a revision older than rev, of scope or of any scope that
// inherits it, directly or not, by scope and id. One query: the walk of
// the inheritors is an index lookup per scope (scope_parents_parent), each
// scope once however the graph is shaped.
func (r *Reader) BehindConsumers(ctx context.Context, scope string, since time.Time, rev int64, limit int) ([]envy.Consumer, error) {
	return read(ctx, r, "list consumers", func(rows Scanner) ([]envy.Consumer, error) {
		var out []envy.Consumer
		for rows.Next() {
			var (
				c           envy.Consumer
				first, seen int64
			)
			if err := rows.Scan(&c.Scope, &c.ID, &c.Hostname, &c.PID, &c.Revision, &first, &seen); err != nil {
				return nil, err
			}
			c.FirstSeen, c.SeenAt = FromNanos(first), FromNanos(seen)
			out = append(out, c)
		}
		return out, rows.Err()
	}, heirsOf(r.Mark(1))+`
		SELECT c.scope, c.id, c.hostname, c.pid, c.revision, c.first_seen, c.seen_at
		FROM consumers c JOIN dep ON c.scope = dep.path
		WHERE c.seen_at >= `+r.Mark(2)+` AND c.revision < `+r.Mark(3)+`
		ORDER BY c.scope, c.id LIMIT `+r.Mark(4), scope, Nanos(since), rev, r.Limit(limit))
}

// Inheritors returns every scope that inherits path, directly or not,
// sorted: the walk of BehindConsumers, each scope once.
func (r *Reader) Inheritors(ctx context.Context, path string) ([]string, error) {
	return read(ctx, r, "list inheritors", func(rows Scanner) ([]string, error) {
		var out []string
		for rows.Next() {
			var p string
			if err := rows.Scan(&p); err != nil {
				return nil, err
			}
			out = append(out, p)
		}
		return out, rows.Err()
	}, heirsOf(r.Mark(1))+` SELECT path FROM dep WHERE path <> `+r.Mark(2)+` ORDER BY path`, path, path)
}

// heirsOf is the common table expression dep: the scope whose path is
// the parameter mark and every scope that inherits it, directly or not.
// The walk is an index lookup per scope (scope_parents_parent), each
// scope once however the graph is shaped.
func heirsOf(mark string) string {
	return `WITH RECURSIVE dep (path) AS (
			SELECT path FROM scopes WHERE path = ` + mark + `
			UNION
			SELECT p.child FROM scope_parents p JOIN dep ON p.parent = dep.path
		)`
}

// DataKeys returns every wrapped data key, by id.
func (r *Reader) DataKeys(ctx context.Context) ([]envy.DataKey, error) {
	return read(ctx, r, "list data keys", func(rows Scanner) ([]envy.DataKey, error) {
		var out []envy.DataKey
		for rows.Next() {
			var (
				k      envy.DataKey
				id, at int64
			)
			if err := rows.Scan(&id, &k.Wrapped, &at); err != nil {
				return nil, err
			}
			k.ID, k.CreatedAt = uint32(id), FromNanos(at)
			out = append(out, k)
		}
		return out, rows.Err()
	}, `SELECT id, wrapped, created_at FROM data_keys ORDER BY id`)
}

// RetiredMasterKeys returns the checks of the master keys that rotations
// retired, oldest first.
func (r *Reader) RetiredMasterKeys(ctx context.Context) ([]envy.RetiredMasterKey, error) {
	return read(ctx, r, "list retired master keys", func(rows Scanner) ([]envy.RetiredMasterKey, error) {
		var out []envy.RetiredMasterKey
		for rows.Next() {
			var (
				k  envy.RetiredMasterKey
				at int64
			)
			if err := rows.Scan(&k.Check, &at); err != nil {
				return nil, err
			}
			k.RetiredAt = FromNanos(at)
			out = append(out, k)
		}
		return out, rows.Err()
	}, `SELECT check_wrap, retired_at FROM retired_master_keys ORDER BY id`)
}

// History returns a scope's changes, newest first; within a revision by
// name.
func (r *Reader) History(ctx context.Context, scope string, after envy.HistoryCursor, limit int) ([]envy.Change, error) {
	if err := r.checkScope(ctx, scope); err != nil {
		return nil, err
	}
	q := `SELECT ` + ChangeColumns + ` FROM history WHERE scope = ` + r.Mark(1)
	args := []any{scope, r.Limit(limit)}
	if after.Revision > 0 {
		q += ` AND (revision < ` + r.Mark(3) + ` OR revision = ` + r.Mark(3) + ` AND name > ` + r.Mark(4) + `)`
		args = append(args, after.Revision, after.Name)
	}
	q += ` ORDER BY revision DESC, name LIMIT ` + r.Mark(2)
	return read(ctx, r, "read history", scanChanges(scope), q, args...)
}

// VarsAt returns, for each var that existed in the scope at revision rev,
// its last set change at or before rev, by name.
func (r *Reader) VarsAt(ctx context.Context, scope string, rev int64) ([]envy.Change, error) {
	if err := r.checkScope(ctx, scope); err != nil {
		return nil, err
	}
	// Per name, the last change at or before rev; a name whose last
	// change is a delete did not exist then.
	return read(ctx, r, "read history", scanChanges(scope), `SELECT `+ChangeColumns+` FROM history h
		WHERE h.scope = `+r.Mark(1)+` AND h.op = 'set' AND h.revision = (
			SELECT MAX(l.revision) FROM history l
			WHERE l.scope = `+r.Mark(1)+` AND l.name = h.name AND l.revision <= `+r.Mark(2)+`)
		ORDER BY h.name`, scope, rev)
}

// LastSecret returns, for each var name of scope whose history holds a
// version set secret, the newest revision at which one was: a history
// entry of that name at or before it reads masked to a caller without
// reveal (envy.MaskedChange).
func (r *Reader) LastSecret(ctx context.Context, scope string) (map[string]int64, error) {
	rows, err := read(ctx, r, "read history", func(rows Scanner) ([]envy.ScopeRev, error) {
		var out []envy.ScopeRev
		for rows.Next() {
			var sr envy.ScopeRev
			if err := rows.Scan(&sr.Path, &sr.Revision); err != nil {
				return nil, err
			}
			out = append(out, sr)
		}
		return out, rows.Err()
	}, `SELECT name, MAX(revision) FROM history WHERE scope = `+r.Mark(1)+` AND op = 'set' AND secret GROUP BY name`, scope)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(rows))
	for _, sr := range rows {
		out[sr.Path] = sr.Revision
	}
	return out, nil
}

// scanChanges reads rows of ChangeColumns of scope.
func scanChanges(scope string) func(Scanner) ([]envy.Change, error) {
	return func(rows Scanner) ([]envy.Change, error) {
		var out []envy.Change
		for rows.Next() {
			c, err := ScanChange(rows.Scan, scope)
			if err != nil {
				return nil, err
			}
			out = append(out, c)
		}
		return out, rows.Err()
	}
}

// GetSession returns the dashboard session whose id hashes to idHash.
func (r *Reader) GetSession(ctx context.Context, idHash []byte) (envy.Session, error) {
	out, err := read(ctx, r, "get a session", func(rows Scanner) ([]envy.Session, error) {
		var out []envy.Session
		for rows.Next() {
			var (
				s             envy.Session
				created, used int64
			)
			if err := rows.Scan(&s.Sealed, &s.CSRF, &created, &used); err != nil {
				return nil, err
			}
			s.IDHash, s.CreatedAt, s.UsedAt = idHash, FromNanos(created), FromNanos(used)
			out = append(out, s)
		}
		return out, rows.Err()
	}, `SELECT sealed, csrf, created_at, used_at FROM sessions WHERE id_hash = `+r.Mark(1), idHash)
	if err != nil {
		return envy.Session{}, err
	}
	if len(out) == 0 {
		return envy.Session{}, envy.Errorf(envy.ENotFound, "session not found")
	}
	return out[0], nil
}

// SessionWrites are the session writes of one statement each, written
// once for both stores, which embed it (as they embed Reader): Exec runs
// a statement in a write of its own and returns the rows it changed
// (what names it in an error); SQL holds the statements in the store's
// placeholders.
type SessionWrites struct {
	Exec func(ctx context.Context, what, query string, args ...any) (int64, error)
	SQL  SessionSQL
}

// TouchSession moves a session's UsedAt forward to at.
func (w SessionWrites) TouchSession(ctx context.Context, idHash []byte, at time.Time) error {
	_, err := w.Exec(ctx, "touch a session", w.SQL.Touch, idHash, Nanos(at))
	return err
}

// DeleteSession deletes a session; deleting an absent one is no error.
func (w SessionWrites) DeleteSession(ctx context.Context, idHash []byte) error {
	_, err := w.Exec(ctx, "delete a session", w.SQL.Delete, idHash)
	return err
}

// PruneSessions deletes the sessions not used since usedBefore or created
// before createdBefore.
func (w SessionWrites) PruneSessions(ctx context.Context, usedBefore, createdBefore time.Time) (int64, error) {
	return w.Exec(ctx, "prune sessions", w.SQL.Prune, Nanos(usedBefore), Nanos(createdBefore))
}

// SessionSQL holds the statements of the session writes, the same on
// both stores but for the placeholders.
type SessionSQL struct{ Insert, Touch, Delete, Prune string }

// SessionStatements returns the session writes with mark's placeholders:
// Insert takes (id_hash, sealed, csrf, created_at, used_at), Touch
// (id_hash, used_at), Delete (id_hash), Prune (used before, created before).
func SessionStatements(mark func(n int) string) SessionSQL {
	m := mark
	return SessionSQL{
		Insert: `INSERT INTO sessions (id_hash, sealed, csrf, created_at, used_at) VALUES (` + m(1) + `, ` + m(2) + `, ` + m(3) + `, ` + m(4) + `, ` + m(5) + `)`,
		Touch:  `UPDATE sessions SET used_at = ` + m(2) + ` WHERE id_hash = ` + m(1) + ` AND used_at < ` + m(2),
		Delete: `DELETE FROM sessions WHERE id_hash = ` + m(1),
		Prune:  `DELETE FROM sessions WHERE used_at < ` + m(1) + ` OR created_at < ` + m(2),
	}
}
