package sqlite

import (
	"context"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/storeutil"
)

var sessionSQL = storeutil.SessionStatements(storeutil.NumberedMark)

// CreateSession stores a new dashboard session; EConflict when its IDHash
// is taken.
func (s *Store) CreateSession(ctx context.Context, ss envy.Session) error {
	return s.do(ctx, func(t *txn) error {
		_, err := t.exec(sessionSQL.Insert, ss.IDHash, ss.Sealed, ss.CSRF, storeutil.Nanos(ss.CreatedAt), storeutil.Nanos(ss.UsedAt))
		if isUnique(err) {
			return envy.Errorf(envy.EConflict, "the session exists already")
		} else if err != nil {
			return dbErr("create a session", err)
		}
		return nil
	})
}
