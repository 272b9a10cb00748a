package postgres

import (
	"context"
	"time"

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

// TouchSession moves a session's UsedAt forward to at.
func (s *Store) TouchSession(ctx context.Context, idHash []byte, at time.Time) error {
	_, err := s.execCount(ctx, "touch a session", sessionSQL.Touch, idHash, storeutil.Nanos(at))
	return err
}

// DeleteSession deletes a session; deleting an absent one is no error.
func (s *Store) DeleteSession(ctx context.Context, idHash []byte) error {
	_, err := s.execCount(ctx, "delete a session", sessionSQL.Delete, idHash)
	return err
}

// PruneSessions deletes the sessions not used since usedBefore or created
// before createdBefore.
func (s *Store) PruneSessions(ctx context.Context, usedBefore, createdBefore time.Time) (int64, error) {
	return s.execCount(ctx, "prune sessions", sessionSQL.Prune, storeutil.Nanos(usedBefore), storeutil.Nanos(createdBefore))
}

// sessionSQL are the session writes with PostgreSQL's placeholders.
var sessionSQL = storeutil.SessionStatements(storeutil.DollarMark)
