package runner

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/testenv"
	"github.com/envy-dev/envy/service"
)

// failingReveals is an audit stream that, while failing, takes every
// entry and then fails to write it: writes are answered (they don't wait
// for their line), reveals are refused with 503, as while a SIEM is down.
type failingReveals struct{ failing atomic.Bool }

func (s *failingReveals) Reserve(int) (func([]envy.AuditEntry) <-chan error, func([]envy.AuditEntry), error) {
	return func([]envy.AuditEntry) <-chan error {
		ch := make(chan error, 1)
		if s.failing.Load() {
			ch <- &envy.Error{Code: envy.EUnavailable, Message: "no audit stream can record the request", RetryAfter: time.Second}
		} else {
			ch <- nil
		}
		return ch
	}, func([]envy.AuditEntry) {}, nil
}
func (s *failingReveals) Offer(...envy.AuditEntry) {}
func (s *failingReveals) Ready() error             { return nil }

// A change whose fetch keeps failing for longer than a fetch's tries (the
// server's reveals refused while its audit stream is down) is fetched once
// the server can answer again: the watch has moved past it and will not
// send it again, so giving up would leave the command on the old values
// until the next change.
func TestAChangeWhoseFetchKeepsFailingIsFetchedOnceItCan(t *testing.T) {
	base, most := fetchRetryBase, fetchRetryMax
	fetchRetryBase, fetchRetryMax = 10*time.Millisecond, 40*time.Millisecond
	t.Cleanup(func() { fetchRetryBase, fetchRetryMax = base, most })
	st := &failingReveals{}
	e := testenv.New(t, testenv.Options{Service: service.Options{AuditStream: st}})
	s := &server{Env: e, token: e.Token(t, "app", envy.Grant{Scopes: "acme/**", Actions: []envy.Action{envy.ActRead, envy.ActReveal}})}
	s.merge(t, "acme/web", map[string]any{"A": "1"})
	cfg := s.config("acme/web", "env=A", "pid", "wait")
	cfg.Watch = true
	cfg.Debounce = 0
	cfg.Timeout = 300 * time.Millisecond // each fetch's own tries
	r := start(t, cfg)
	waitFor(t, r.out, "A=1", 10*time.Second)

	st.failing.Store(true)
	s.merge(t, "acme/web", map[string]any{"A": "2"})
	waitFor(t, r.log, "can't fetch revision", 10*time.Second)
	time.Sleep(300 * time.Millisecond) // several times a fetch's tries
	st.failing.Store(false)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(r.out.String(), "A=2"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the change was not fetched within 10 s of the server answering again; log:\n%s", r.log)
		}
	}
}
