package service

import (
	"context"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/storecache"
)

// checkedTree is the cached tree of a request's scope as checked by
// authentication together with the token (AuthenticateFor).
type checkedTree = storecache.Checked

// scopeTree returns the scope at path and every scope it inherits, as
// Store.ScopeTree does, through the scope cache (package storecache): one
// consistent state, as of a moment after the request began. The request's
// first read of its own scope may use the check that authentication made
// with the token (AuthenticateFor), so that it costs no query of its own.
func (s *Service) scopeTree(ctx context.Context, path string) (map[string]*envy.ScopeVars, error) {
	if c, ok := ctx.Value(callerKey{}).(*Caller); ok {
		if checked := c.checked.Swap(nil); checked != nil {
			return s.cache.CheckedTree(ctx, path, checked)
		}
	}
	return s.cache.ScopeTree(ctx, path)
}
