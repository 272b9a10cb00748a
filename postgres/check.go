package postgres

import (
	"context"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/storeutil"
)

var _ envy.Checker = (*Store)(nil)

// checkTimeout bounds one query of checks; statement_timeout bounds it too.
const checkTimeout = 30 * time.Second

// The Service's checks of its cached scopes and tokens (envy.Checker)
// are answered many callers' at a time (batcher): a check's statement is
// sent after it was queued, so it sees every change committed before the
// caller asked: a write acknowledged by any server, a token revoked
// through any server. Under load, checking costs the database about one
// indexed read per round trip, not one per request.

// check is one caller's: scopes at revisions, a token, or both.
type check struct {
	paths []string
	revs  []int64
	token string

	scopesOK, tokenLive bool
	err                 error
	done                chan struct{}
}

// Check reports whether every scope in paths is still at the revision at
// the same index of revs (a scope deleted is not), and whether the token,
// when given, exists and is not revoked.
func (s *Store) Check(ctx context.Context, paths []string, revs []int64, token string) (scopesOK, tokenLive bool, err error) {
	if s.closed.Load() {
		return false, false, storeutil.ErrClosed()
	}
	c := &check{paths: paths, revs: revs, token: token, done: make(chan struct{})}
	s.checks.add(c)
	select {
	case <-c.done:
		return c.scopesOK, c.tokenLive, c.err
	case <-ctx.Done():
		return false, false, ctx.Err()
	}
}

// checkBatch answers a batch of checks with one statement, so one
// snapshot: the current revision of every scope asked about and the
// tokens asked about that are live.
func (s *Store) checkBatch(batch []*check) {
	var paths, tokens []string
	revs := make(map[string]int64) // first the paths asked about, then their revisions
	live := make(map[string]bool)  // likewise for tokens
	for _, c := range batch {
		for _, p := range c.paths {
			if _, seen := revs[p]; !seen {
				revs[p] = -1 // stays so for a scope gone: no revision is negative
				paths = append(paths, p)
			}
		}
		if _, seen := live[c.token]; c.token != "" && !seen {
			live[c.token] = false
			tokens = append(tokens, c.token)
		}
	}
	err := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
		defer cancel()
		rows, err := s.pool.Query(ctx, `SELECT false, path, revision FROM scopes WHERE path = ANY($1::text[])
			UNION ALL
			SELECT true, id, 0 FROM tokens WHERE id = ANY($2::text[]) AND revoked_at IS NULL`, paths, tokens)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				isToken bool
				key     string
				rev     int64
			)
			if err := rows.Scan(&isToken, &key, &rev); err != nil {
				return err
			}
			if isToken {
				live[key] = true
			} else {
				revs[key] = rev
			}
		}
		return rows.Err()
	}()
	err = s.dbErr("check what is cached", err)
	for _, c := range batch {
		c.err = err
		if err == nil {
			c.scopesOK, c.tokenLive = true, live[c.token]
			for i, p := range c.paths {
				c.scopesOK = c.scopesOK && revs[p] == c.revs[i]
			}
		}
		close(c.done)
	}
}
