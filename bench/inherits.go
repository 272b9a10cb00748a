package main

import (
	"encoding/json"
	"fmt"
	"time"
)

// layeredInherits builds the hostile inherits graph, layers of width
// scopes each inheriting every scope of the layer below, and measures
// what a writer of it makes the server do: each PUT of a layer's inherits
// (checked against the tree bounds), and reads of the top scope's
// resolved env. A full walk of every path would visit width^(layers-1)
// scopes; the one resolution visits each once, so the figures stay those
// of a tree of layers×width scopes at every layer.
func layeredInherits(c *client, layers, width int, d time.Duration, conns int) ([]result, error) {
	name := func(l, i int) string { return fmt.Sprintf("bench/layered/l%d/s%02d", l, i) }
	for l := 0; l < layers; l++ {
		for i := 0; i < width; i++ {
			if err := c.must("PATCH", "/v1/scopes/"+name(l, i)+"/-/vars", map[string]string{
				fmt.Sprintf("L%d_S%02d", l, i): "v", "SHARED": name(l, i)}); err != nil {
				return nil, err
			}
		}
	}
	var worst time.Duration
	for l := layers - 2; l >= 0; l-- { // from the bottom up: each PUT sees the whole tree below
		below := make([]string, width)
		for i := range below {
			below[i] = name(l+1, i)
		}
		for i := 0; i < width; i++ {
			t0 := time.Now()
			if err := c.must("PUT", "/v1/scopes/"+name(l, i), map[string]any{"inherits": below}); err != nil {
				return nil, err
			}
			worst = max(worst, time.Since(t0))
		}
	}
	top := "/v1/scopes/" + name(0, 0) + "/-/env"
	body, err := c.get(top)
	if err != nil {
		return nil, err
	}
	var env struct {
		Env map[string]string `json:"env"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, err
	}
	// The scope's own SHARED wins; every layer's own var is there.
	if env.Env["SHARED"] != name(0, 0) || len(env.Env) != 1+(layers-1)*width+1 {
		return nil, fmt.Errorf("layered env: %d vars, SHARED from %q", len(env.Env), env.Env["SHARED"])
	}
	tag := fmt.Sprintf("%d layers × %d, each inheriting all of the layer below", layers, width)
	r := load(c, "GET", top, nil, d, conns)
	r.Case, r.Target, r.BodyBytes = "read the top scope's resolved env, "+tag, "linear in the tree (no 24 s stall)", len(body)
	return []result{
		{Case: "slowest PUT of inherits, " + tag, Value: ms(worst), Unit: "ms", Target: "linear in the tree (was 1.3 s at layer 6)"},
		r,
	}, nil
}
