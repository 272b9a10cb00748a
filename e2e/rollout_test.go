package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/pgtest"
)

// Rolling restarts through the real binary: instances are `envy run
// --watch` processes whose command writes its own start and stop times to
// a file; the waves are judged from those files alone.

// readyAfter is the instances' --ready-after, and how long their health
// command takes: a restarted instance counts as unavailable from its old
// command's stop until its health command logs it healthy.
const readyAfter = 700 * time.Millisecond

// instanceScript logs "start <unix time> <V>" when it starts, "stop <unix
// time>" when it is asked to stop and "hup <unix time>" on SIGHUP, to
// $LOGDIR/$ID.log.
const instanceScript = `echo "start $(date +%s.%N) $V" >> "$LOGDIR/$ID.log"
trap 'kill $! 2>/dev/null; echo "stop $(date +%s.%N)" >> "$LOGDIR/$ID.log"; exit 0' TERM
trap 'echo "hup $(date +%s.%N)" >> "$LOGDIR/$ID.log"' HUP
while :; do sleep 0.2 & wait $!; done`

type instance struct {
	id     string
	cmd    *exec.Cmd
	errOut *lockedBuffer
	log    string
}

// startInstance starts `envy run --watch` of scope against s as consumer
// id, logging under dir.
func (s *server) startInstance(t *testing.T, dir, scope, id string, extra ...string) *instance {
	t.Helper()
	args := append([]string{"run", "--scope", scope, "--watch", "--consumer-id", id, "--ready-after", readyAfter.String(), "--grace", "3s"}, extra...)
	args = append(args, "--command", instanceScript)
	cmd := exec.Command(envyBin, args...)
	cmd.Env = append(os.Environ(), "ENVY_ADDR="+s.addr, "ENVY_TOKEN="+s.token, "ENVY_CONFIG="+filepath.Join(t.TempDir(), "config.json"),
		"LOGDIR="+dir, "ID="+id)
	in := &instance{id: id, cmd: cmd, errOut: &lockedBuffer{}, log: filepath.Join(dir, id+".log")}
	cmd.Stderr = in.errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(os.Interrupt)
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				<-done
			}
		}
	})
	return in
}

// event is one line of an instance's log.
type event struct {
	kind  string // start, stop or healthy
	at    float64
	value string
}

func (in *instance) events(t *testing.T) []event {
	t.Helper()
	b, err := os.ReadFile(in.log)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []event
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		at, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			t.Fatalf("%s: bad line %q", in.log, line)
		}
		if f[0] == "hup" {
			continue
		}
		e := event{kind: f[0], at: at}
		if len(f) > 2 {
			e.value = f[2]
		}
		out = append(out, e)
	}
	return out
}

// starts counts the instance's starts with value v.
func (in *instance) starts(t *testing.T, v string) int {
	n := 0
	for _, e := range in.events(t) {
		if e.kind == "start" && e.value == v {
			n++
		}
	}
	return n
}

// maxRestarting is the most instances restarting at once, an instance
// restarting from its old command's stop until its health command next
// logs it healthy (which is before envy run reports the new revision,
// which frees its slot).
func maxRestarting(t *testing.T, ins []*instance) (int, string) {
	t.Helper()
	type edge struct {
		at float64
		d  int
		id string
	}
	var edges []edge
	for _, in := range ins {
		evs := in.events(t)
		var spans [][2]float64 // the instance's restarts, overlapping ones merged: one instance counts once
		for i, e := range evs {
			if e.kind != "stop" {
				continue
			}
			end := e.at + 3600 // never healthy again: down to the end
			for _, n := range evs[i+1:] {
				if n.kind == "healthy" {
					end = n.at
					break
				}
			}
			if k := len(spans) - 1; k >= 0 && e.at <= spans[k][1] {
				spans[k][1] = max(spans[k][1], end)
				continue
			}
			spans = append(spans, [2]float64{e.at, end})
		}
		for _, sp := range spans {
			edges = append(edges, edge{sp[0], +1, in.id}, edge{sp[1], -1, in.id})
		}
	}
	sort.Slice(edges, func(i, j int) bool {
		if edges[i].at != edges[j].at {
			return edges[i].at < edges[j].at
		}
		return edges[i].d < edges[j].d // an end before a start at the same instant
	})
	most, cur := 0, 0
	var when string
	down := map[string]bool{}
	for _, e := range edges {
		cur += e.d
		down[e.id] = e.d > 0
		if cur > most {
			most = cur
			var ids []string
			for id, d := range down {
				if d {
					ids = append(ids, id)
				}
			}
			sort.Strings(ids)
			when = strings.Join(ids, ", ")
		}
	}
	return most, when
}

type rolloutStatus struct {
	Revision  int64 `json:"revision"`
	Synced    bool  `json:"synced"`
	Consumers []struct {
		ID       string `json:"id"`
		Revision int64  `json:"revision"`
	} `json:"consumers"`
	Rollout *struct {
		State      string   `json:"state"`
		Reason     string   `json:"reason"`
		Failed     []string `json:"failed"`
		Restarting []struct {
			Instance       string    `json:"instance"`
			LeaseExpiresAt time.Time `json:"lease_expires_at"`
		} `json:"restarting"`
	} `json:"rollout"`
}

func (s *server) status(t *testing.T, scope string) rolloutStatus {
	t.Helper()
	code, body := s.do(t, "GET", "/v1/scopes/"+scope+"/-/status", nil)
	if code != 200 {
		t.Fatalf("status: %d %s", code, body)
	}
	var st rolloutStatus
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// waitFor polls cond every 50 ms until it holds, failing after within.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool, show func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s\n%s", what, within, show())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func logsOf(t *testing.T, ins []*instance) func() string {
	return func() string {
		var b strings.Builder
		for _, in := range ins {
			l, _ := os.ReadFile(in.log)
			fmt.Fprintf(&b, "--- %s\n%s%s", in.id, l, in.errOut.String())
		}
		return b.String()
	}
}

// allOn reports whether each of ins started once on value v and reports
// revision rev or newer to s, with the status it read.
func allOn(t *testing.T, s *server, scope string, ins []*instance, v string, rev int64) (rolloutStatus, bool) {
	t.Helper()
	for _, in := range ins {
		if in.starts(t, v) != 1 {
			return rolloutStatus{}, false
		}
	}
	st := s.status(t, scope)
	for _, in := range ins {
		for _, c := range st.Consumers {
			if c.ID == in.id && c.Revision < rev {
				return st, false
			}
		}
	}
	return st, true
}

// setPolicy puts scope's rollout policy.
func (s *server) setPolicy(t *testing.T, scope string, policy map[string]any) {
	t.Helper()
	if code, body := s.do(t, "PUT", "/v1/scopes/"+scope, map[string]any{"rollout": policy}); code != 200 && code != 201 {
		t.Fatalf("put policy: %d %s", code, body)
	}
}

// healthCmd is the instances' --health-cmd: healthy readyAfter after the
// check starts, unless the file "sick" is in the log dir; it logs
// "healthy <unix time>" when it passes.
var healthCmd = fmt.Sprintf(`sleep %.1f; test ! -f "$LOGDIR/sick" && echo "healthy $(date +%%s.%%N)" >> "$LOGDIR/$ID.log"`, readyAfter.Seconds())

// startFleet starts n instances of scope, spread over servers in turn, and
// waits until each runs value v and reports it.
func startFleet(t *testing.T, dir, scope string, n int, v string, servers ...*server) []*instance {
	t.Helper()
	var ins []*instance
	for i := range n {
		ins = append(ins, servers[i%len(servers)].startInstance(t, dir, scope, fmt.Sprintf("web-%d", i+1), "--health-cmd", healthCmd))
	}
	waitFor(t, 30*time.Second, "every instance started and reported", func() bool {
		for _, in := range ins {
			if in.starts(t, v) != 1 {
				return false
			}
		}
		return len(servers[0].status(t, scope).Consumers) == n
	}, logsOf(t, ins))
	return ins
}

// checkWave writes V=v on s and checks that the fleet restarts at most
// maxUnavailable at a time, that each ends running v once, and that the
// status is synced only once every instance is.
func checkWave(t *testing.T, s *server, scope string, ins []*instance, v string, maxUnavailable int) {
	t.Helper()
	_, rev := s.setVar(t, scope, "V", v)
	sawUnsynced := false
	waitFor(t, 60*time.Second, "every instance restarted on "+v, func() bool {
		st := s.status(t, scope)
		done := 0
		for _, in := range ins {
			if in.starts(t, v) >= 1 {
				done++
			}
		}
		behind := 0
		for _, c := range st.Consumers {
			if c.Revision < rev {
				behind++
			}
		}
		if st.Synced && (done < len(ins) || behind > 0) {
			t.Fatalf("status says synced with %d of %d instances restarted and %d behind: %+v", done, len(ins), behind, st)
		}
		if !st.Synced {
			sawUnsynced = true
		}
		return st.Synced && done == len(ins)
	}, logsOf(t, ins))
	if !sawUnsynced {
		t.Error("the status never said unsynced during the rollout")
	}
	for _, in := range ins {
		if n := in.starts(t, v); n != 1 {
			t.Errorf("%s started %d times on %s; want once", in.id, n, v)
		}
	}
	most, who := maxRestarting(t, ins)
	t.Logf("at most %d instances restarting at once (%s)", most, who)
	if most > maxUnavailable {
		t.Errorf("%d instances were restarting at once (%s); max_unavailable is %d\n%s", most, who, maxUnavailable, logsOf(t, ins)())
	} else if most < 1 {
		t.Errorf("no restart seen")
	}
	if st := s.status(t, scope); st.Rollout == nil || st.Rollout.State != "done" {
		t.Errorf("rollout after the wave: %+v", st.Rollout)
	}
}

// Eight instances over two servers on one PostgreSQL database, two at a
// time: waves, health gate and resume, three quick writes, a --signal run,
// and a server killed mid-rollout.
func TestRollingRestartAcrossPostgresServers(t *testing.T) {
	c := newCluster(t, pgtest.NewDatabase(t))
	flags := []string{"--database-url", c.dbURL, "--master-key-file", c.masterKey, "--rollout-lease", "1s"}
	a := startServerWith(t, c.token, append(flags, "--data-dir", t.TempDir())...)
	b := startServerWith(t, c.token, append(flags, "--data-dir", t.TempDir())...)
	const scope = "acme/web/prod"
	a.setVar(t, scope, "V", "v1")
	a.setPolicy(t, scope, map[string]any{"max_unavailable": 2, "health_timeout": "10s", "debounce": "0s"})
	dir := t.TempDir()
	ins := startFleet(t, dir, scope, 8, "v1", a, b)

	t.Run("a write restarts them two at a time, across both servers", func(t *testing.T) {
		checkWave(t, b, scope, ins, "v2", 2)
	})
	t.Run("three quick writes restart each instance once", func(t *testing.T) {
		a.setPolicy(t, scope, map[string]any{"max_unavailable": 2, "health_timeout": "10s", "debounce": "1500ms"})
		a.setVar(t, scope, "V", "v3a")
		b.setVar(t, scope, "V", "v3b")
		checkWave(t, a, scope, ins, "v3", 2)
		for _, in := range ins {
			if n := in.starts(t, "v3a") + in.starts(t, "v3b"); n != 0 {
				t.Errorf("%s restarted on an intermediate value %d times", in.id, n)
			}
		}
	})
	t.Run("a server killed mid-rollout does not hang it: its slot is freed when the lease expires", func(t *testing.T) {
		// One slot: while server A's instance holds it, nothing else
		// restarts until its lease expires.
		a.setPolicy(t, scope, map[string]any{"max_unavailable": 1, "health_timeout": "2s", "debounce": "0s"})
		onA := map[string]bool{}
		for i, in := range ins {
			onA[in.id] = i%2 == 0
		}
		_, rev := b.setVar(t, scope, "V", "v4")
		var leaseBound time.Time
		waitFor(t, 20*time.Second, "an instance of server A holds a slot", func() bool {
			st := b.status(t, scope)
			if st.Rollout == nil {
				return false
			}
			for _, l := range st.Rollout.Restarting {
				if onA[l.Instance] {
					leaseBound = l.LeaseExpiresAt
					return true
				}
			}
			return false
		}, logsOf(t, ins))
		if d := time.Until(leaseBound); d > 2*time.Second+time.Second+2*time.Second {
			t.Errorf("the slot's lease runs for %s more; want at most health_timeout + --rollout-lease", d)
		}
		a.kill9(t)
		var onB []*instance
		for _, in := range ins {
			if !onA[in.id] {
				onB = append(onB, in)
			}
		}
		waitFor(t, 30*time.Second, "every instance of server B on v4", func() bool {
			_, on := allOn(t, b, scope, onB, "v4", rev)
			return on
		}, logsOf(t, ins))
	})
}

// The health gate, on SQLite: a restart that does not come back healthy
// pauses the rollout with the rest untouched; resume finishes it. Then a
// wave of eight on one server, and a --signal run reporting its revision.
func TestRollingRestartOnSQLite(t *testing.T) {
	s := startServer(t, t.TempDir(), envy.NewTokenValue())
	const scope = "acme/api/prod"
	s.setVar(t, scope, "V", "v1")
	s.setPolicy(t, scope, map[string]any{"max_unavailable": "25%", "health_timeout": "10s", "debounce": "0s"})
	dir := t.TempDir()
	ins := startFleet(t, dir, scope, 8, "v1", s)

	t.Run("a write restarts them two at a time (25% of 8)", func(t *testing.T) {
		checkWave(t, s, scope, ins, "v2", 2)
	})
	t.Run("an instance not healthy in time pauses the rollout; the rest keep their values; resume finishes it", func(t *testing.T) {
		// A webhook that names rollout.paused gets a delivery of the pause
		// (to an address nobody answers: its delivery is what is checked).
		code, body := s.do(t, "POST", "/v1/webhooks", map[string]any{"url": "https://192.0.2.1/envy", "scopes": scope, "events": []string{"rollout.paused"}})
		if code != 201 {
			t.Fatalf("create a webhook: %d %s", code, body)
		}
		var hook struct{ ID string }
		if err := json.Unmarshal(body, &hook); err != nil {
			t.Fatal(err)
		}
		s.mustCLI(t, "", "scopes", "update", scope, "--health-timeout", "2s")
		sick := filepath.Join(dir, "sick")
		if err := os.WriteFile(sick, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		_, rev := s.setVar(t, scope, "V", "v3")
		var st rolloutStatus
		waitFor(t, 30*time.Second, "the rollout paused", func() bool {
			st = s.status(t, scope)
			return st.Rollout != nil && st.Rollout.State == "paused"
		}, logsOf(t, ins))
		if st.Synced || st.Rollout.Reason == "" || len(st.Rollout.Failed) == 0 {
			t.Fatalf("paused status: %+v", st)
		}
		out := s.mustCLI(t, "", "status", scope)
		if !strings.Contains(out, "rollout: paused at revision") || !strings.Contains(out, "failed: "+st.Rollout.Failed[0]) {
			t.Errorf("envy status while paused:\n%s", out)
		}
		waitFor(t, 30*time.Second, "a rollout.paused delivery of the webhook", func() bool {
			_, body := s.do(t, "GET", "/v1/webhooks/"+hook.ID+"/deliveries", nil)
			return strings.Contains(string(body), `"type":"rollout.paused"`) && strings.Contains(string(body), `"scope":"`+scope+`"`)
		}, func() string {
			_, body := s.do(t, "GET", "/v1/webhooks/"+hook.ID+"/deliveries", nil)
			return string(body)
		})
		time.Sleep(2 * time.Second) // nothing more may restart meanwhile
		restarted := 0
		for _, in := range ins {
			restarted += in.starts(t, "v3")
		}
		if restarted > 2 || restarted < len(st.Rollout.Failed) {
			t.Fatalf("%d instances restarted on v3 while the rollout was paused (failed: %v)\n%s", restarted, st.Rollout.Failed, logsOf(t, ins)())
		}
		if err := os.Remove(sick); err != nil {
			t.Fatal(err)
		}
		if out := s.mustCLI(t, "", "rollout", "resume", scope); !strings.Contains(out, "resumed the rollout of "+scope) {
			t.Errorf("envy rollout resume: %q", out)
		}
		waitFor(t, 60*time.Second, "every instance on v3 and synced after resume", func() bool {
			st, on := allOn(t, s, scope, ins, "v3", rev)
			return on && st.Synced && st.Rollout.State == "done"
		}, logsOf(t, ins))
	})
	t.Run("a --signal instance reports its revision once signalled and up", func(t *testing.T) {
		const worker = "acme/worker"
		s.setVar(t, worker, "V", "w1")
		s.setPolicy(t, worker, map[string]any{"max_unavailable": 1, "health_timeout": "5s", "debounce": "0s"})
		in := s.startInstance(t, dir, worker, "worker-1", "--signal", "HUP")
		waitFor(t, 20*time.Second, "the worker reported", func() bool { return len(s.status(t, worker).Consumers) == 1 }, logsOf(t, []*instance{in}))
		_, rev := s.setVar(t, worker, "V", "w2")
		waitFor(t, 20*time.Second, "the worker reported the new revision", func() bool {
			st := s.status(t, worker)
			return len(st.Consumers) == 1 && st.Consumers[0].Revision >= rev && st.Synced
		}, logsOf(t, []*instance{in}))
		if b, _ := os.ReadFile(in.log); !strings.Contains(in.errOut.String(), "sent SIGHUP") || !strings.Contains(string(b), "hup ") || in.starts(t, "w1") != 1 {
			t.Errorf("the worker was not signalled (and only signalled):\n%s\n%s", b, in.errOut.String())
		}
	})
}
