package http_test

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/testenv"
	"github.com/envy-dev/envy/service"
)

// A scope's rollout policy: set, shown, validated field by field, cleared.
func TestRolloutPolicyIsSetShownValidatedAndCleared(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	const scope = "/v1/scopes/acme/web"
	if r := e.Do(t, "PUT", scope, e.Admin, `{"rollout":{"max_unavailable":"25%","health_timeout":"45s","debounce":"5s"}}`); r.Status != 201 {
		t.Fatalf("put: %d %s", r.Status, r.Body)
	}
	r := e.Do(t, "GET", scope, e.Admin, "")
	ro, _ := r.JSON(t)["rollout"].(map[string]any)
	if ro["max_unavailable"] != "25%" || ro["health_timeout"] != "45s" || ro["debounce"] != "5s" {
		t.Fatalf("get: %s", r.Body)
	}
	r = e.Do(t, "PUT", scope, e.Admin, `{"rollout":{"max_unavailable":2}}`)
	ro, _ = r.JSON(t)["rollout"].(map[string]any)
	if r.Status != 200 || ro["max_unavailable"] != float64(2) || ro["health_timeout"] != "30s" || ro["debounce"] != "1s" {
		t.Fatalf("put a number, defaults: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "PUT", scope, e.Admin, `{"description":"web"}`); !strings.Contains(string(r.Body), `"max_unavailable":2`) {
		t.Fatalf("a write without rollout keeps it: %s", r.Body)
	}
	for _, c := range []struct{ body, loc string }{
		{`{"rollout":{"max_unavailable":0}}`, "body.rollout.max_unavailable"},
		{`{"rollout":{"max_unavailable":"150%"}}`, "body.rollout.max_unavailable"},
		{`{"rollout":{"max_unavailable":"two"}}`, "body.rollout.max_unavailable"},
		{`{"rollout":{"health_timeout":"30s"}}`, "body.rollout.max_unavailable"},
		{`{"rollout":{"max_unavailable":1,"health_timeout":"soon"}}`, "body.rollout.health_timeout"},
		{`{"rollout":{"max_unavailable":1,"health_timeout":"2h"}}`, "body.rollout.health_timeout"},
		{`{"rollout":{"max_unavailable":1,"debounce":"-1s"}}`, "body.rollout.debounce"},
		{`{"rollout":{"max_unavailable":1,"surge":1}}`, "body.rollout"},
	} {
		r := e.Do(t, "PUT", scope, e.Admin, c.body)
		if r.Status != 422 && r.Status != 400 || !strings.Contains(string(r.Body), c.loc) {
			t.Errorf("%s: %d %s; want a refusal naming %s", c.body, r.Status, r.Body, c.loc)
		}
	}
	if r := e.Do(t, "GET", scope, e.Admin, ""); !strings.Contains(string(r.Body), `"max_unavailable":2`) {
		t.Fatalf("a refused write changed the policy: %s", r.Body)
	}
	if r := e.Do(t, "PUT", scope, e.Admin, `{"rollout":null}`); r.Status != 200 || strings.Contains(string(r.Body), "rollout") {
		t.Fatalf("clear: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "GET", scope+"/-/status", e.Admin, ""); strings.Contains(string(r.Body), "rollout") {
		t.Fatalf("status without a policy: %s", r.Body)
	}
	if r := e.Do(t, "POST", scope+"/-/rollout/resume", e.Admin, ""); r.Status != 200 || !strings.Contains(string(r.Body), `"resumed":false`) {
		t.Fatalf("resume of a rollout not paused: %d %s", r.Status, r.Body)
	}
}

// The watch protocol of an instance under a policy: the change says
// "rollout":"wait", the grant comes as its own event; a watcher that does
// not name itself gets the plain change as before.
func TestWatchOfAnInstanceWaitsForItsGrant(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	const scope = "/v1/scopes/acme/api"
	e.Do(t, "PUT", scope+"/-/vars/V", e.Admin, `{"value":"1"}`)
	if r := e.Do(t, "PUT", scope, e.Admin, `{"rollout":{"max_unavailable":1,"health_timeout":"5s","debounce":"0s"}}`); r.Status != 200 {
		t.Fatalf("policy: %d %s", r.Status, r.Body)
	}
	rev := int64(e.Do(t, "GET", scope+"/-/env", e.Admin, "").JSON(t)["revision"].(float64))
	e.Do(t, "PUT", scope+"/-/consumers/i1", e.Admin, `{"revision":`+itoa(rev)+`}`)
	e.Do(t, "PUT", scope+"/-/consumers/i2", e.Admin, `{"revision":`+itoa(rev)+`}`)

	lines := func(query string) <-chan string { return watchLines(t, e, scope+"/-/watch"+query, rev) }
	next := func(ch <-chan string) string {
		select {
		case l := <-ch:
			return l
		case <-time.After(10 * time.Second):
			t.Fatal("no event within 10s")
			return ""
		}
	}
	i1, i2, plain := lines("?consumer=i1"), lines("?consumer=i2"), lines("")
	time.Sleep(100 * time.Millisecond)
	r := e.Do(t, "PUT", scope+"/-/vars/V", e.Admin, `{"value":"2"}`)
	newRev := r.JSON(t)["revision"].(float64)

	if ev, data := next(plain), next(plain); ev != "event: change" || strings.Contains(data, "rollout") {
		t.Fatalf("a watcher without a name: %s %s", ev, data)
	}
	// Each instance is told to wait, then one gets its grant (one slot).
	for name, ch := range map[string]<-chan string{"i1": i1, "i2": i2} {
		if ev, data := next(ch), next(ch); ev != "event: change" || !strings.Contains(data, `"rollout":"wait"`) {
			t.Fatalf("%s: %s %s; want a change to wait for", name, ev, data)
		}
	}
	first := ""
	select {
	case l := <-i1:
		first = "i1 " + l
	case l := <-i2:
		first = "i2 " + l
	case <-time.After(10 * time.Second):
		t.Fatal("no grant within 10s")
	}
	if !strings.HasSuffix(first, "event: grant") {
		t.Fatalf("the first event after the wait: %s", first)
	}
	who, other := first[:2], i2
	if who == "i2" {
		other = i1
	}
	// The other waits while the slot is held…
	select {
	case l := <-other:
		t.Fatalf("a second grant with one slot held: %s", l)
	case <-time.After(1500 * time.Millisecond):
	}
	st := e.Do(t, "GET", scope+"/-/status", e.Admin, "")
	if !strings.Contains(string(st.Body), `"state":"rolling"`) || !strings.Contains(string(st.Body), `"instance":"`+who+`"`) {
		t.Fatalf("status while rolling: %s", st.Body)
	}
	// …and is granted once the first reports the new revision.
	e.Do(t, "PUT", scope+"/-/consumers/"+who, e.Admin, `{"revision":`+itoa(int64(newRev))+`}`)
	for {
		l := next(other)
		if l == "event: grant" {
			break
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// rolloutScope writes V of acme/api, gives the scope a rollout policy of
// one slot (health_timeout 5 s, debounce as given) and reports each of
// consumers as running that first revision, which it returns.
func rolloutScope(t *testing.T, e *testenv.Env, debounce string, consumers ...string) int64 {
	t.Helper()
	const scope = "/v1/scopes/acme/api"
	rev := int64(e.Do(t, "PUT", scope+"/-/vars/V", e.Admin, `{"value":"1"}`).JSON(t)["revision"].(float64))
	if r := e.Do(t, "PUT", scope, e.Admin, `{"rollout":{"max_unavailable":1,"health_timeout":"5s","debounce":"`+debounce+`"}}`); r.Status != 200 {
		t.Fatalf("policy: %d %s", r.Status, r.Body)
	}
	for _, id := range consumers {
		e.Do(t, "PUT", scope+"/-/consumers/"+id, e.Admin, `{"revision":`+itoa(rev)+`}`)
	}
	return rev
}

// watchLines opens the watch at url (a path with its query) as the admin,
// from revision last, and sends its "event:" and "data:" lines; the
// test's end closes it.
func watchLines(t *testing.T, e *testenv.Env, url string, last int64) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", e.URL+url, nil)
	req.Header.Set("Authorization", "Bearer "+e.Admin)
	req.Header.Set("Last-Event-ID", itoa(last))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("watch: %v %v", resp, err)
	}
	ch := make(chan string, 64)
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, "event:") || strings.HasPrefix(l, "data:") {
				ch <- l
			}
		}
	}()
	return ch
}

// An instance told to wait that reconnects with the change's id (as a
// plain EventSource does) is told to wait again, not forgotten.
func TestAnInstanceReconnectingWhileWaitingIsToldAgain(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	const scope = "/v1/scopes/acme/api"
	r := e.Do(t, "PUT", scope+"/-/vars/V", e.Admin, `{"value":"1"}`)
	rev := int64(r.JSON(t)["revision"].(float64))
	if r := e.Do(t, "PUT", scope, e.Admin, `{"rollout":{"max_unavailable":1,"debounce":"5m"}}`); r.Status != 200 {
		t.Fatalf("policy: %d %s", r.Status, r.Body)
	}
	e.Do(t, "PUT", scope+"/-/consumers/i1", e.Admin, `{"revision":`+itoa(rev)+`}`)
	r = e.Do(t, "PUT", scope+"/-/vars/V", e.Admin, `{"value":"2"}`)
	newRev := int64(r.JSON(t)["revision"].(float64))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.URL+scope+"/-/watch?consumer=i1", nil)
	req.Header.Set("Authorization", "Bearer "+e.Admin)
	req.Header.Set("Last-Event-ID", itoa(newRev))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("watch: %v %v", resp, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, "data:") {
			if !strings.Contains(l, `"rollout":"wait"`) || !strings.Contains(l, itoa(newRev)) {
				t.Fatalf("on reconnect: %s", l)
			}
			return
		}
	}
	t.Fatalf("no event on reconnect: %v", sc.Err())
}

// An instance's unhealthy report that comes after a newer change (the
// fix, written while the broken revision's health check ran out) pauses
// the rollout of the revision it failed on, not the newer one's: the fix
// rolls out.
func TestALateUnhealthyReportPausesTheRevisionThatFailedNotANewerOne(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	const scope = "/v1/scopes/acme/api"
	rolloutScope(t, e, "5s", "i1", "i2")
	rev2 := int64(e.Do(t, "PUT", scope+"/-/vars/V", e.Admin, `{"value":"2-broken"}`).JSON(t)["revision"].(float64))
	rev3 := int64(e.Do(t, "PUT", scope+"/-/vars/V", e.Admin, `{"value":"3-fixed"}`).JSON(t)["revision"].(float64))
	if r := e.Do(t, "PUT", scope+"/-/consumers/i1", e.Admin, `{"revision":`+itoa(rev2)+`,"unhealthy":"not healthy within 5s"}`); r.Status != 200 {
		t.Fatalf("report: %d %s", r.Status, r.Body)
	}
	if st := e.Do(t, "GET", scope+"/-/status", e.Admin, ""); strings.Contains(string(st.Body), `"state":"paused"`) {
		t.Fatalf("revision %d failed on i1, but the rollout of the newer revision %d is paused:\n%s", rev2, rev3, st.Body)
	}
}

// A late report of a failure on an older revision does not lift the pause
// of a newer one: the newer revision's failed instance stays counted, and
// its rollout stays paused.
func TestAnOlderUnhealthyReportDoesNotLiftAPauseOfANewerRevision(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	const scope = "/v1/scopes/acme/api"
	rolloutScope(t, e, "5s", "i1", "i2", "i3")
	rev2 := int64(e.Do(t, "PUT", scope+"/-/vars/V", e.Admin, `{"value":"2"}`).JSON(t)["revision"].(float64))
	rev3 := int64(e.Do(t, "PUT", scope+"/-/vars/V", e.Admin, `{"value":"3-broken"}`).JSON(t)["revision"].(float64))
	if r := e.Do(t, "PUT", scope+"/-/consumers/i1", e.Admin, `{"revision":`+itoa(rev3)+`,"unhealthy":"not healthy within 5s"}`); r.Status != 200 {
		t.Fatalf("i1's report: %d %s", r.Status, r.Body)
	}
	if st := e.Do(t, "GET", scope+"/-/status", e.Admin, ""); !strings.Contains(string(st.Body), `"state":"paused"`) {
		t.Fatalf("i1 failed on the newest revision %d, but the rollout is not paused:\n%s", rev3, st.Body)
	}
	// i2's failure on revision 2 is told late (its report retried).
	if r := e.Do(t, "PUT", scope+"/-/consumers/i2", e.Admin, `{"revision":`+itoa(rev2)+`,"unhealthy":"not healthy within 5s"}`); r.Status != 200 {
		t.Fatalf("i2's report: %d %s", r.Status, r.Body)
	}
	st := e.Do(t, "GET", scope+"/-/status", e.Admin, "")
	if !strings.Contains(string(st.Body), `"state":"paused"`) || !strings.Contains(string(st.Body), `"i1"`) {
		t.Fatalf("a late report of a failure on revision %d lifted the pause of revision %d (i1's failure forgotten):\n%s", rev2, rev3, st.Body)
	}
}

// A late report of a failure on an older revision holds no rollout back,
// so nothing tells of a pause: no rollout.paused event, no callback.
func TestALateUnhealthyReportThatHoldsNothingBackIsNotToldAsAPause(t *testing.T) {
	var mu sync.Mutex
	var paused []envy.RolloutPause
	e := testenv.New(t, testenv.Options{Service: service.Options{OnRolloutPaused: func(p envy.RolloutPause) {
		mu.Lock()
		paused = append(paused, p)
		mu.Unlock()
	}}})
	const scope = "/v1/scopes/acme/api"
	rolloutScope(t, e, "5s", "i1")
	rev2 := int64(e.Do(t, "PUT", scope+"/-/vars/V", e.Admin, `{"value":"2-broken"}`).JSON(t)["revision"].(float64))
	e.Do(t, "PUT", scope+"/-/vars/V", e.Admin, `{"value":"3-fixed"}`)
	e.Do(t, "PUT", scope+"/-/consumers/i1", e.Admin, `{"revision":`+itoa(rev2)+`,"unhealthy":"not healthy within 5s"}`)
	if st := e.Do(t, "GET", scope+"/-/status", e.Admin, ""); strings.Contains(string(st.Body), `"state":"paused"`) {
		t.Fatalf("paused: %s", st.Body)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(paused) > 0 {
		t.Fatalf("the status says rolling, but the rollout was told paused (rollout.paused, OnRolloutPaused): %+v", paused)
	}
}

// An instance granted a restart onto revision N that does not come back
// healthy, reported after N+1 was written, must not keep its slot for N:
// the other instances' rollout of N+1 is held back until its lease
// expires (health_timeout + 30 s) or its next periodic report.
func TestALateUnhealthyReportFreesTheSlotOfTheRevisionThatFailed(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	const scope = "/v1/scopes/acme/api"
	rev1 := rolloutScope(t, e, "0s", "a", "b")
	watch := func(consumer string) <-chan string {
		return watchLines(t, e, scope+"/-/watch?consumer="+consumer, rev1)
	}
	grant := func(ch <-chan string, d time.Duration) bool {
		deadline := time.After(d)
		for {
			select {
			case l := <-ch:
				if l == "event: grant" {
					return true
				}
			case <-deadline:
				return false
			}
		}
	}
	// b alone waits for revision 2: it takes the one slot.
	b := watch("b")
	time.Sleep(100 * time.Millisecond)
	rev2 := int64(e.Do(t, "PUT", scope+"/-/vars/V", e.Admin, `{"value":"2-broken"}`).JSON(t)["revision"].(float64))
	if !grant(b, 10*time.Second) {
		t.Fatal("b: no grant of revision 2")
	}
	// a waits too; the fix is written while b's health check runs.
	a := watch("a")
	e.Do(t, "PUT", scope+"/-/vars/V", e.Admin, `{"value":"3-fixed"}`)
	// b's check runs out: it tells so (the runner's report).
	if r := e.Do(t, "PUT", scope+"/-/consumers/b", e.Admin, `{"revision":`+itoa(rev2)+`,"unhealthy":"not healthy within 5s"}`); r.Status != 200 {
		t.Fatalf("b's report: %d %s", r.Status, r.Body)
	}
	if !grant(a, 5*time.Second) {
		st := e.Do(t, "GET", scope+"/-/status", e.Admin, "")
		t.Fatalf("b failed on revision %d and is done with its restart, but its slot is still held: a gets no grant of the fix\n%s", rev2, st.Body)
	}
}

// An instance that fails on the scope's revision is paused and its slot
// for that revision freed; a lease for a newer revision, granted to it
// meanwhile (by a server that saw the newer change first), is the newer
// change's and stays, so that no more instances restart at once than the
// policy allows.
func TestAnUnhealthyReportFreesNoLeaseOfANewerRevision(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	const scope = "/v1/scopes/acme/api"
	rolloutScope(t, e, "0s", "i1", "i2")
	rev2 := int64(e.Do(t, "PUT", scope+"/-/vars/V", e.Admin, `{"value":"2-broken"}`).JSON(t)["revision"].(float64))
	ctx := context.Background()
	now := time.Now()
	newer := envy.RolloutLease{Scope: "acme/api", Consumer: "i1", Revision: rev2 + 1, GrantedAt: now, ExpiresAt: now.Add(time.Hour)}
	if ok, err := e.Store.AcquireRolloutLease(ctx, newer, 2); !ok || err != nil {
		t.Fatalf("a lease of revision %d: %v, %v", rev2+1, ok, err)
	}
	if r := e.Do(t, "PUT", scope+"/-/consumers/i1", e.Admin, `{"revision":`+itoa(rev2)+`,"unhealthy":"not healthy within 5s"}`); r.Status != 200 {
		t.Fatalf("report: %d %s", r.Status, r.Body)
	}
	if st := e.Do(t, "GET", scope+"/-/status", e.Admin, ""); !strings.Contains(string(st.Body), `"state":"paused"`) {
		t.Fatalf("i1 failed on the scope's revision %d, but the rollout is not paused:\n%s", rev2, st.Body)
	}
	ls, err := e.Store.RolloutLeases(ctx, "acme/api", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 1 || ls[0].Consumer != "i1" || ls[0].Revision != rev2+1 {
		t.Fatalf("i1's failure on revision %d freed its lease of the newer revision %d: leases %+v", rev2, rev2+1, ls)
	}
}
