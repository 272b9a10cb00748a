package postgres

import (
	"context"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/storeutil"
)

// CreateSession stores a new dashboard session; EConflict when its IDHash
// is taken.
func (s *Store) CreateSession(ctx context.Context, ss envy.Session) error {
	return s.tx(ctx, "create a session", func(t *txn) error {
		_, err := t.Exec(t.ctx, sessionSQL.Insert, ss.IDHash, ss.Sealed, ss.CSRF, storeutil.Nanos(ss.CreatedAt), storeutil.Nanos(ss.UsedAt))
		if isCode(err, "23505") {
			return envy.Errorf(envy.EConflict, "the session exists already")
		}
		return err
	})
}

// sessionSQL are the session writes with PostgreSQL's placeholders.
var sessionSQL = storeutil.SessionStatements(storeutil.DollarMark)
