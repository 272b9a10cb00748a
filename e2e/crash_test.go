package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/pgtest"
)

// crashRounds is how many times each store is killed in one run.
const crashRounds = 8

// bulkKeys is how many vars each bulk merge sets: all of them, every time,
// each to a value naming the merge, so that a half-applied merge shows.
const bulkKeys = 40

// TestCrashSafetyRepeated kills the server with SIGKILL at a random moment
// while 8 writers and 2 bulk mergers write, restarts it, and checks that
// every acknowledged write is there and that every bulk merge was applied
// whole or not at all; several rounds on one store, on SQLite and on
// PostgreSQL.
func TestCrashSafetyRepeated(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		crashRoundsOn(t, "--data-dir", dir)
	})
	t.Run("postgres", func(t *testing.T) {
		dbURL := pgtest.NewDatabase(t)
		crashRoundsOn(t, "--database-url", dbURL, "--master-key-file", t.TempDir()+"/master.key", "--data-dir", t.TempDir())
	})
}

func crashRoundsOn(t *testing.T, flags ...string) {
	token := envy.NewTokenValue()
	lastBulk := map[int]int{} // merger → number of its last acknowledged merge, over all rounds
	totalAcked, totalBulks := 0, 0
	for round := 1; round <= crashRounds; round++ {
		s := startServerWith(t, token, flags...)
		// Everything from the rounds before is still there.
		if round > 1 {
			checkBulks(t, s, lastBulk, nil)
		}
		acked, bulks, inFlight := crashLoad(t, s, round, lastBulk)
		totalAcked += len(acked)
		totalBulks += bulks
		s2 := startServerWith(t, token, flags...)
		for g := 0; g < 8; g++ {
			scope := fmt.Sprintf("crash/w%d", g)
			got := listValues(t, s2, scope)
			for _, a := range acked {
				if a.scope == scope && got[a.name] != a.value {
					t.Fatalf("round %d: acknowledged write %s/%s lost after SIGKILL (found %q)", round, a.scope, a.name, got[a.name])
				}
			}
		}
		checkBulks(t, s2, lastBulk, inFlight)
		s2.stop(t)
	}
	if totalAcked < 50 || totalBulks < 5 {
		t.Fatalf("too little was acknowledged before the kills to prove anything: %d writes, %d bulk merges", totalAcked, totalBulks)
	}
	t.Logf("%d rounds: %d acknowledged writes and %d acknowledged bulk merges, all there after SIGKILL; no bulk merge half applied", crashRounds, totalAcked, totalBulks)
}

type ackedWrite struct{ scope, name, value string }

// crashLoad writes with 8 writers and 2 bulk mergers until it kills s at a
// random moment. It returns the acknowledged single writes, how many bulk
// merges were acknowledged, and for each merger the merge that was in
// flight at the kill (which may or may not have been applied). lastBulk is
// updated with each acknowledged merge.
func crashLoad(t *testing.T, s *server, round int, lastBulk map[int]int) ([]ackedWrite, int, map[int]int) {
	var (
		mu       sync.Mutex
		acked    []ackedWrite
		bulks    int
		inFlight = map[int]int{}
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	client := &http.Client{Timeout: 10 * time.Second}
	send := func(method, path string, body any) (int, error) {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, s.addr+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+s.token)
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode, nil
	}
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stopped(); i++ {
				a := ackedWrite{fmt.Sprintf("crash/w%d", g), fmt.Sprintf("R%d_V%d", round, i), fmt.Sprintf("round %d value %d of writer %d", round, i, g)}
				st, err := send("PUT", "/v1/scopes/"+a.scope+"/-/vars/"+a.name, map[string]any{"value": a.value, "secret": i%2 == 0})
				if err != nil {
					return
				}
				if st == 201 {
					mu.Lock()
					acked = append(acked, a)
					mu.Unlock()
				}
			}
		}()
	}
	for m := 0; m < 2; m++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mu.Lock()
			n := lastBulk[m]
			mu.Unlock()
			for !stopped() {
				n++
				body := map[string]any{}
				for k := 0; k < bulkKeys; k++ {
					body[fmt.Sprintf("K%02d", k)] = bulkValue(n, k)
				}
				mu.Lock()
				inFlight[m] = n
				mu.Unlock()
				st, err := send("PATCH", fmt.Sprintf("/v1/scopes/crash/bulk%d/-/vars", m), body)
				if err != nil {
					return
				}
				if st == 200 {
					mu.Lock()
					lastBulk[m] = n
					bulks++
					mu.Unlock()
				}
			}
		}()
	}
	// Kill at a random moment once some writes are through.
	waitUntil(t, "the first acknowledged writes", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 10 && bulks >= 1
	})
	time.Sleep(time.Duration(mrand.IntN(400)) * time.Millisecond)
	s.kill9(t)
	close(stop)
	wg.Wait()
	return acked, bulks, inFlight
}

func bulkValue(n, k int) string { return fmt.Sprintf("merge %d key %d", n, k) }

// checkBulks checks that each merger's scope holds one merge whole: the
// last acknowledged one, or the one in flight at the kill.
func checkBulks(t *testing.T, s *server, lastBulk, inFlight map[int]int) {
	t.Helper()
	for m, last := range lastBulk {
		n := wholeMerge(t, s, m)
		if n != last && n != inFlight[m] {
			t.Fatalf("bulk scope %d holds merge %d; the last acknowledged was %d, the one in flight %d", m, n, last, inFlight[m])
		}
		lastBulk[m] = n
	}
}

// wholeMerge checks that merger m's scope holds every key of one merge,
// and returns the merge's number.
func wholeMerge(t *testing.T, s *server, m int) int {
	t.Helper()
	got := listValues(t, s, fmt.Sprintf("crash/bulk%d", m))
	var n int
	if _, err := fmt.Sscanf(got["K00"], "merge %d key 0", &n); err != nil {
		t.Fatalf("bulk scope %d: K00 is %q", m, got["K00"])
	}
	for k := 0; k < bulkKeys; k++ {
		name := fmt.Sprintf("K%02d", k)
		if got[name] != bulkValue(n, k) {
			t.Fatalf("bulk merge %d half applied: %s is %q", n, name, got[name])
		}
	}
	return n
}

// listValues returns the revealed values of a scope's vars (none when the
// scope does not exist).
func listValues(t *testing.T, s *server, scope string) map[string]string {
	t.Helper()
	st, body := s.do(t, "GET", "/v1/scopes/"+scope+"/-/vars?reveal=true", nil)
	out := map[string]string{}
	if st == 404 {
		return out
	}
	if st != 200 {
		t.Fatalf("list %s: %d %s", scope, st, body)
	}
	var list struct {
		Items []struct {
			Name  string  `json:"name"`
			Value *string `json:"value"`
		} `json:"items"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	for _, v := range list.Items {
		if v.Value != nil {
			out[v.Name] = *v.Value
		}
	}
	if strings.HasPrefix(scope, "crash/bulk") && len(out) == 0 {
		t.Fatalf("bulk scope %s is empty", scope)
	}
	return out
}
