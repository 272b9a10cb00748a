package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/api"
	"github.com/envy-dev/envy/auditstream"
	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/internal/testenv"
	"github.com/envy-dev/envy/service"
	"github.com/envy-dev/envy/sqlite"
)

// streamedService returns a service on SQLite with one audit stream, to
// stdout, whose writes the returned writer can hold, and its reveals'
// wait for the stream set to wait; with a scope "app" holding a var, its
// line written. as gives a caller of the admin token with a request id.
func streamedService(t *testing.T, wait time.Duration) (svc *service.Service, as func(requestID string) context.Context, w *testenv.HeldWriter) {
	t.Helper()
	w = &testenv.HeldWriter{}
	set, err := auditstream.Open([]string{"stdout"}, auditstream.Options{View: envyhttp.AuditView, Stdout: w, Retry: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // after the service's (cleanups run last first)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		set.Close(ctx)
	})
	svc, admin := newServiceOver(t, service.Options{AuditStream: set}, func(db *sqlite.Store) envy.Store { return db })
	t.Cleanup(w.Release) // first: nothing waits on a held write
	svc.SetAuditStreamWait(wait)
	token := service.CallerFrom(admin).Token
	as = func(id string) context.Context {
		return service.WithCaller(context.Background(), &service.Caller{Token: token, RequestID: id, Client: "10.0.0.1"})
	}
	setVar(t, svc, as("req-set"), "app", "A", "1")
	streamLines(t, svc, as, w)
	return svc, as, w
}

// streamLines returns the stream's lines once it has written every entry
// queued so far (a write's line, which queues after them, is there), as
// "request_id action status" for the reveals and their withdrawals.
func streamLines(t *testing.T, svc *service.Service, as func(string) context.Context, w *testenv.HeldWriter) []string {
	t.Helper()
	if _, err := svc.Audit(as("req-list"), envy.AuditListQuery{}); err != nil { // the audit loop has offered what it holds
		t.Fatal(err)
	}
	end := fmt.Sprintf("end-%d", time.Now().UnixNano())
	setVar(t, svc, as(end), "app", "END", "1")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(w.String(), end) {
		if time.Now().After(deadline) {
			t.Fatalf("the stream did not write %s within 10s; it holds:\n%s", end, w.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(w.String()), "\n") {
		var e api.AuditEntry
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("not an audit line: %q", l)
		}
		if strings.HasPrefix(e.Action, "reveal") {
			out = append(out, fmt.Sprintf("%s %s %d", e.RequestID, e.Action, e.Status))
		}
	}
	return out
}

// answered returns, from the store's audit log, how many reveals each
// row counts as answered once the withdrawals of its second are taken
// off, by row key; and the request ids of the withdrawals, with their
// status.
func answered(t *testing.T, svc *service.Service, as func(string) context.Context) (counts map[string]int64, withdrawn []string) {
	t.Helper()
	page, err := svc.Audit(as("req-list"), envy.AuditListQuery{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	counts = map[string]int64{}
	for _, e := range page.Items {
		key := fmt.Sprintf("%s %s %s %s %v", e.At.Truncate(envy.RevealWindow).UTC().Format(time.RFC3339), e.Client, e.TokenID, e.Scope, e.Names)
		switch {
		case e.Action == envy.AuditReveal && e.Status == envy.OutcomeOK:
			counts[key] += e.Count
		case e.Action == envy.AuditRevealWithdrawn:
			counts[key] -= e.Count
			for _, id := range e.RequestIDs {
				withdrawn = append(withdrawn, fmt.Sprintf("%s %d", id, e.Status))
			}
		}
	}
	slices.Sort(withdrawn)
	return counts, withdrawn
}

// A reveal whose entry no audit stream wrote in time is refused (503)
// and never left recorded as answered: the stream, once it writes again,
// writes the entry of a reveal that was still queued as its withdrawal,
// and follows the entry it was writing with one; the store's reveal row
// counts them, and a withdrawal row of the same second takes them off.
func TestARevealRefusedForItsAuditStreamIsNotRecordedAsAnswered(t *testing.T) {
	svc, as, w := streamedService(t, 200*time.Millisecond)
	waiting := w.Hold()
	for _, id := range []string{"req-1", "req-2"} {
		_, err := svc.Env(as(id), "app")
		if envy.ErrorCode(err) != envy.EUnavailable || !strings.Contains(err.Error(), "audit stream") {
			t.Fatalf("a reveal whose stream is stuck: %v, want unavailable naming the audit stream", err)
		}
		if id == "req-1" {
			select {
			case <-waiting: // req-1's line is in the write under way; req-2's waits behind it
			case <-time.After(10 * time.Second):
				t.Fatal("the stream never wrote req-1's line")
			}
		}
	}
	w.Release()
	got := strings.Join(streamLines(t, svc, as, w), ", ")
	// req-1 was refused, and its withdrawal queued, before req-2 came.
	if want := "req-1 reveal 200, req-1 reveal.withdrawn 503, req-2 reveal.withdrawn 503"; got != want {
		t.Fatalf("the stream wrote\n%s\nwant\n%s", got, want)
	}
	counts, withdrawn := answered(t, svc, as)
	for key, n := range counts {
		if n != 0 {
			t.Errorf("the audit log counts %d reveal(s) as answered at %s; none was", n, key)
		}
	}
	if got := strings.Join(withdrawn, ", "); got != "req-1 503, req-2 503" {
		t.Errorf("the audit log withdraws %q, want req-1 and req-2 with 503", got)
	}
}

// A reveal whose caller went away while it waited for the stream is not
// recorded as answered either (499); a reveal answered after it is
// recorded once, as answered, in the store and in the stream.
func TestARevealWhoseCallerWentAwayIsNotRecordedAsAnswered(t *testing.T) {
	svc, as, w := streamedService(t, time.Minute)
	w.Hold()
	ctx, cancel := context.WithCancel(as("req-gone"))
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := svc.Env(ctx, "app")
		errc <- err
	}()
	// Once the store has its entry, the reveal waits for the stream.
	deadline := time.Now().Add(10 * time.Second)
	for {
		page, err := svc.Audit(as("req-list"), envy.AuditListQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(page.Items, func(e envy.AuditEntry) bool { return slices.Contains(e.RequestIDs, "req-gone") }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the reveal's entry never reached the store")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("a reveal whose caller went away: %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a reveal whose caller went away still waits for the stream")
	}
	w.Release()
	if _, err := svc.Env(as("req-ok"), "app"); err != nil {
		t.Fatalf("a reveal once the stream writes again: %v", err)
	}
	got := strings.Join(streamLines(t, svc, as, w), ", ")
	if want := "req-gone reveal 200, req-gone reveal.withdrawn 499, req-ok reveal 200"; got != want {
		t.Fatalf("the stream wrote\n%s\nwant\n%s", got, want)
	}
	counts, withdrawn := answered(t, svc, as)
	var total int64
	for _, n := range counts {
		total += n
	}
	if total != 1 || strings.Join(withdrawn, ", ") != "req-gone 499" {
		t.Fatalf("the audit log counts %d reveals as answered (%v) and withdraws %q; want 1, and req-gone with 499", total, counts, withdrawn)
	}
	page, err := svc.Audit(as("req-list"), envy.AuditListQuery{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	rows := 0
	for _, e := range page.Items {
		if slices.Contains(e.RequestIDs, "req-ok") {
			rows++
			if e.Action != envy.AuditReveal || e.Status != envy.OutcomeOK {
				t.Errorf("req-ok is in a %s row with status %d, want reveal, 200", e.Action, e.Status)
			}
		}
	}
	if rows != 1 {
		t.Errorf("req-ok is in %d rows of the audit log, want 1", rows)
	}
}
