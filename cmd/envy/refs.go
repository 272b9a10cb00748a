package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/envy-dev/envy/client"
)

// rawEnvKey marks a context whose env reads want the values as stored,
// references not expanded (export --raw).
type rawEnvKey struct{}

func withRawEnv(ctx context.Context, raw bool) context.Context {
	if !raw {
		return ctx
	}
	return context.WithValue(ctx, rawEnvKey{}, true)
}

// envFor reads the env of scope, raw when the context asks (withRawEnv).
func envFor(ctx context.Context, c *client.Client, scope string) (*client.Env, error) {
	if raw, _ := ctx.Value(rawEnvKey{}).(bool); raw {
		return c.EnvRaw(ctx, scope)
	}
	return c.Env(ctx, scope)
}

// resolvedValue returns the value of scope's own var name with its
// references expanded, as the server resolves it (GET /-/resolved), for
// vars get: v itself when the value holds no reference.
func resolvedValue(ctx context.Context, c *client.Client, scope string, v *client.Var, reveal bool) (*string, error) {
	if v.Value == nil || !strings.Contains(*v.Value, "${") {
		return v.Value, nil
	}
	res, err := c.Resolved(ctx, scope, reveal)
	if err != nil {
		return nil, err
	}
	for _, l := range res.Layers {
		if l.Scope != scope {
			continue
		}
		for _, rv := range l.Vars {
			if rv.Name != v.Name {
				continue
			}
			if rv.ReferenceError != "" {
				return nil, fmt.Errorf("%s: %s", v.Name, rv.ReferenceError)
			}
			if rv.ResolvedValue != nil {
				return rv.ResolvedValue, nil
			}
			if strings.Contains(*v.Value, "$${") && len(rv.References) == 0 {
				s := strings.ReplaceAll(*v.Value, "$${", "${")
				return &s, nil
			}
		}
	}
	return v.Value, nil
}

// refsColumn is how vars ls --resolved shows a var's references.
func refsColumn(refs []string, refErr string) string {
	if refErr != "" {
		return "error: " + refErr
	}
	if len(refs) == 0 {
		return "-"
	}
	return strings.Join(refs, ", ")
}
