package client

import (
	"context"
	"net/http"
	"net/url"
)

// EnvRaw returns the scope's env with its values as stored: references
// (${NAME}, ${scope/path:NAME}) not expanded (GET /-/env?raw=true).
func (c *Client) EnvRaw(ctx context.Context, scope string) (*Env, error) {
	var out Env
	q := url.Values{"format": {"json"}, "raw": {"true"}}
	if _, err := c.call(ctx, request{method: http.MethodGet, path: scopeURL(scope, "env"), query: q}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
