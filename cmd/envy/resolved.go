package main

import (
	"context"
	"sort"
	"strconv"

	"github.com/envy-dev/envy/client"
)

// resolvedVar is one var of a scope's resolved view: where it comes from,
// and which later scope overrides it, if any.
type resolvedVar struct {
	Name        string  `json:"name"`
	Value       *string `json:"value"`
	MaskedValue *string `json:"masked_value"`
	Secret      bool    `json:"secret"`
	Version     int64   `json:"version"`
	From        string  `json:"from"`
	ShadowedBy  string  `json:"shadowed_by,omitempty"`
}

// resolvedVars lists the vars of scope and of every scope it inherits, in
// the order the server resolves them (inherited scopes depth first, in
// order, then the scope's own; later layers win), each with its scope, the
// ones a later layer overrides marked shadowed.
func (a *app) resolvedVars(ctx context.Context, c *client.Client, scope string, reveal bool) error {
	type layer struct {
		path string
		vars []client.Var
	}
	var (
		layers []layer
		hidden []string
		cache  = map[string][]client.Var{}
	)
	var walk func(p string, depth int) error
	walk = func(p string, depth int) error {
		sc, err := c.GetScope(ctx, p)
		if err != nil {
			if depth > 0 && client.IsNotFound(err) {
				hidden = append(hidden, p)
				return nil
			}
			return err
		}
		if depth <= 16 {
			for _, q := range sc.Inherits {
				if q == "(hidden)" {
					hidden = append(hidden, q)
					continue
				}
				if err := walk(q, depth+1); err != nil {
					return err
				}
			}
		}
		vars, ok := cache[p]
		if !ok {
			list, err := c.ListVars(ctx, p, reveal)
			if err != nil {
				return err
			}
			vars = list.Items
			cache[p] = vars
		}
		layers = append(layers, layer{p, vars})
		return nil
	}
	if err := walk(scope, 0); err != nil {
		return err
	}
	var out []resolvedVar
	winner := map[string]string{} // name → the scope of its last layer
	for _, l := range layers {
		for _, v := range l.vars {
			winner[v.Name] = l.path
		}
	}
	seen := map[string]int{} // name → how many layers so far hold it
	count := map[string]int{}
	for _, l := range layers {
		for _, v := range l.vars {
			count[v.Name]++
		}
	}
	for _, l := range layers {
		for _, v := range l.vars {
			seen[v.Name]++
			rv := resolvedVar{Name: v.Name, Value: v.Value, MaskedValue: v.MaskedValue, Secret: v.Secret, Version: v.Version, From: l.path}
			if seen[v.Name] < count[v.Name] {
				rv.ShadowedBy = winner[v.Name]
			}
			out = append(out, rv)
		}
	}
	// By name; for one name, in layer order, the winner last.
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if a.jsonOut() {
		return a.printJSON(nil, map[string]any{"scope": scope, "items": out, "hidden": append([]string{}, hidden...)})
	}
	t := newTable(a.stdout, "NAME", "VALUE", "SECRET", "FROM", "VERSION", "SHADOWED")
	for _, v := range out {
		shadow := "-"
		if v.ShadowedBy != "" {
			shadow = "shadowed by " + v.ShadowedBy
		}
		t.row(v.Name, shownValue(v.Value, v.MaskedValue), yesNo(v.Secret), v.From, strconv.FormatInt(v.Version, 10), shadow)
	}
	if err := t.flush(); err != nil {
		return err
	}
	for _, h := range hidden {
		a.notef("(inherits a scope this token may not read: %s)\n", h)
	}
	return nil
}
