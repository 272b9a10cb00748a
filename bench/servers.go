package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
)

// severalServers measures PostgreSQL with 1, 2 and 3 envy servers on one
// database: durable single-var writes and 200-key bulk merges, spread
// evenly over the servers, the same load in each round. first is the
// server the run started; the others share its master key.
func severalServers(bin, dir, token string, first *proc, extra []string, o options) ([]result, error) {
	servers := []*proc{first}
	defer func() {
		for _, p := range servers[1:] {
			p.stop()
		}
	}()
	var out []result
	for _, n := range o.servers {
		for len(servers) < n {
			p, _, err := startEnvy(bin, filepath.Join(dir, fmt.Sprintf("data-s%d", len(servers)+1)), token,
				append(extra, "--master-key-file", filepath.Join(dir, "data", "master.key"))...)
			if err != nil {
				return nil, err
			}
			servers = append(servers, p)
		}
		cs := make([]*client, n)
		for i, p := range servers[:n] {
			cs[i] = newClient(p.addr, token, o.conns)
		}
		var pids []int
		for _, p := range servers[:n] {
			pids = append(pids, p.cmd.Process.Pid)
		}
		// Every connection writes the same scope at once, 50 writes each
		// in turn: the servers take turns at it.
		var seq atomic.Int64
		w := withCPU(pids, true, func() result {
			return loadOn(cs, "PUT", "", func(int) (string, []byte) {
				i := seq.Add(1)
				return fmt.Sprintf("/v1/scopes/bench/multi%d/s%02d/-/vars/V_%02d", n, (i/50)%64, i%50), []byte(`{"value":"v` + strconv.FormatInt(i, 10) + `"}`)
			}, o.duration, o.conns)
		})
		w.Case, w.Target = fmt.Sprintf("single-var write, durable, %d connections over %d server(s)", o.conns, n), "≥ 3,000 writes/s; not lower with 3 servers"
		// Each server's connections write scopes of their own (64 per
		// server, 50 writes each in turn), as teams that don't share
		// scopes would.
		var own [3]atomic.Int64
		wo := withCPU(pids, true, func() result {
			return loadOn(cs, "PUT", "", func(conn int) (string, []byte) {
				s := conn % n // the server of this connection (loadOn's)
				i := own[s].Add(1)
				return fmt.Sprintf("/v1/scopes/bench/own%d/srv%d/s%02d/-/vars/V_%02d", n, s, (i/50)%64, i%50), []byte(`{"value":"v` + strconv.FormatInt(i, 10) + `"}`)
			}, o.duration, o.conns)
		})
		wo.Case, wo.Target = fmt.Sprintf("single-var write, each server its own scopes, %d server(s)", n), "not lower with 3 servers"
		var round atomic.Int64
		b := loadOn(cs, "PATCH", "", func(int) (string, []byte) {
			r := round.Add(1)
			bulk := make(map[string]string, 200)
			for i := 0; i < 200; i++ {
				bulk[fmt.Sprintf("BULK_%03d", i)] = fmt.Sprintf("bulk-value-%03d-%d-%s", i, r, strings.Repeat("b", 30))
			}
			body, _ := json.Marshal(bulk)
			// A scope per client, so that the clients don't take turns on one.
			return fmt.Sprintf("/v1/scopes/bench/multibulk%d/s%d/-/vars", n, r%int64(n)), body
		}, o.duration, n)
		b.Case, b.Target = fmt.Sprintf("200-key bulk merge, one client per server, %d server(s)", n), "bulk merges/s"
		out = append(out, w, wo, b)
		// Every server reads what the others wrote.
		for _, c := range cs {
			if err := checkWrites(c, fmt.Sprintf("bench/multibulk%d/s0", n), 200); err != nil && round.Load() >= int64(n) {
				return nil, err
			}
		}
	}
	return out, nil
}
