package sqlite

import (
	"context"
	"time"

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
