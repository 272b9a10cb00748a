package envy

import "context"

// TakeTurn takes the turn that a write of names in path waits for once
// writers contend (turns.go), for tests.
func (s *Service) TakeTurn(ctx context.Context, path string, names []string, whole bool) (release func(), err error) {
	return s.turns.take(ctx, turnKey(path, names, whole))
}
