package postgres

import (
	"context"
	"errors"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/storeutil"
)

var errNoPlan = errors.New("postgres: the scope write has no Plan")

// Write applies one atomic change to a scope's vars, planned by the
// service, if the scope is still as the plan saw it. The committer applies
// it with the other writes queued meanwhile, in one transaction (see
// commit.go), with the scope locked against other writers on any server
// while its state is checked.
func (s *Store) Write(ctx context.Context, w envy.Write) (envy.WriteResult, error) {
	if s.closed.Load() {
		return envy.WriteResult{}, storeutil.ErrClosed()
	}
	c := &commitOp{write: &w}
	if err := s.committer.Do(ctx, c); err != nil {
		return envy.WriteResult{}, err
	}
	return c.res, nil
}
