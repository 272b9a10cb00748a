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
	Name        string   `json:"name"`
	Value       *string  `json:"value"`
	MaskedValue *string  `json:"masked_value"`
	Secret      bool     `json:"secret"`
	Version     int64    `json:"version"`
	From        string   `json:"from"`
	ShadowedBy  string   `json:"shadowed_by,omitempty"`
	References  []string `json:"references,omitempty"`
	RefError    string   `json:"reference_error,omitempty"`
}

// resolvedVars lists the vars of scope and of every scope it inherits as
// the server resolves them (GET /-/resolved): the CLI walks nothing
// itself, so what it shows is what the server serves. Rows are by name;
// for one name, in layer order, the one in effect last.
func (a *app) resolvedVars(ctx context.Context, c *client.Client, scope string, reveal bool) error {
	res, err := c.Resolved(ctx, scope, reveal)
	if err != nil {
		return err
	}
	var out []resolvedVar
	hidden := 0
	for _, l := range res.Layers {
		if l.Hidden {
			hidden++
			continue
		}
		for _, v := range l.Vars {
			out = append(out, resolvedVar{Name: v.Name, Value: v.Value, MaskedValue: v.MaskedValue, Secret: v.Secret,
				Version: v.Version, From: v.From, ShadowedBy: v.ShadowedBy, References: v.References, RefError: v.ReferenceError})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if a.jsonOut() {
		return a.printJSON(nil, map[string]any{"scope": res.Scope, "revision": res.Revision, "items": append([]resolvedVar{}, out...), "hidden_layers": hidden})
	}
	// A REFERENCES column when any var has references (refs.go).
	withRefs := false
	for _, v := range out {
		withRefs = withRefs || len(v.References) > 0 || v.RefError != ""
	}
	cols := []string{"NAME", "VALUE", "SECRET", "FROM", "VERSION", "SHADOWED"}
	if withRefs {
		cols = append(cols, "REFERENCES")
	}
	t := newTable(a.stdout, cols...)
	for _, v := range out {
		shadow := "-"
		if v.ShadowedBy != "" {
			shadow = "shadowed by " + v.ShadowedBy
		}
		row := []string{v.Name, shownValue(v.Value, v.MaskedValue), yesNo(v.Secret), v.From, strconv.FormatInt(v.Version, 10), shadow}
		if withRefs {
			row = append(row, refsColumn(v.References, v.RefError))
		}
		t.row(row...)
	}
	if err := t.flush(); err != nil {
		return err
	}
	if hidden > 0 {
		a.notef("(inherits %d scope(s) this token may not read: their vars are not shown)\n", hidden)
	}
	return nil
}
