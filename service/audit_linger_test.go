package service_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/service"
	"github.com/envy-dev/envy/sqlite"
)

// gatedStore is a real SQLite store whose AppendAudit calls report their
// sizes and, while gate is set, wait for it.
type gatedStore struct {
	*sqlite.Store
	mu      sync.Mutex
	gate    chan struct{}
	entered chan struct{} // a call reached the gate
	sizes   chan int
}

func (s *gatedStore) AppendAudit(ctx context.Context, entries ...envy.AuditEntry) error {
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		s.entered <- struct{}{}
		<-gate
	}
	err := s.Store.AppendAudit(ctx, entries...)
	s.sizes <- len(entries)
	return err
}

func (s *gatedStore) setGate(g chan struct{}) {
	s.mu.Lock()
	s.gate = g
	s.mu.Unlock()
}

// After a batch of several reveals, the audit loop waits for their
// callers' next reveals instead of committing the first to come alone:
// reveals that arrive one by one still share one commit. (The linger is
// set long here, so that the test does not depend on the machine's speed;
// the loop stops waiting once the batch has as many callers as the last
// one had, plus those that were queued when it began.)
func TestAuditLoopLingersForTheLastBatchsCallers(t *testing.T) {
	store := &gatedStore{entered: make(chan struct{}, 100), sizes: make(chan int, 100)}
	svc, ctx := newServiceOver(t, service.Options{}, func(db *sqlite.Store) envy.Store { store.Store = db; return store })
	// Long enough for any machine; the loop stops early once the reveals
	// it waits for are in.
	svc.SetAuditLinger(5*time.Second, 5*time.Second)
	setVar(t, svc, ctx, "app", "A", "1")
	reveal := func(wg *sync.WaitGroup, i int) {
		defer wg.Done()
		c := service.WithCaller(ctx, &service.Caller{Token: service.CallerFrom(ctx).Token, RequestID: fmt.Sprint("req-", i)})
		if _, err := svc.Env(c, "app"); err != nil {
			t.Error(err)
		}
	}

	// One reveal holds its commit while two more queue behind it: they
	// make the next batch, of two.
	gate := make(chan struct{})
	open := sync.OnceFunc(func() { close(gate) })
	t.Cleanup(open) // before the service's Close, which waits for the held batch
	store.setGate(gate)
	var wg sync.WaitGroup
	wg.Add(1)
	go reveal(&wg, 0)
	recv(t, store.entered, 10*time.Second, "the reveal's audit entry reached the store: a reveal must be recorded before it is answered")
	wg.Add(2)
	go reveal(&wg, 1)
	go reveal(&wg, 2)
	for deadline := time.Now().Add(10 * time.Second); svc.AuditQueued() < 2; { // both queued behind the held commit
		if time.Now().After(deadline) {
			t.Fatalf("%d reveals queued for the audit log within 10 s, want 2: a reveal must be recorded before it is answered", svc.AuditQueued())
		}
		time.Sleep(time.Millisecond)
	}
	open()
	if n := recv(t, store.sizes, 10*time.Second, "the first batch of reveals was committed"); n != 1 {
		t.Fatalf("the first batch held %d reveals, want 1", n)
	}
	wg.Wait()
	if n := recv(t, store.sizes, 10*time.Second, "the second batch of reveals was committed"); n != 2 {
		t.Fatalf("the second batch held %d reveals, want 2", n)
	}
	store.setGate(nil)

	// Reveals that come one at a time after it: one batch, not three.
	for i := 3; i < 6; i++ {
		wg.Add(1)
		go reveal(&wg, i)
		time.Sleep(10 * time.Millisecond) // one at a time, most likely; nothing depends on it
	}
	wg.Wait()
	if n := recv(t, store.sizes, 10*time.Second, "the batch of the three reveals that came one after the other was committed"); n != 3 {
		t.Fatalf("three reveals that came one after the other after a batch of two were committed %d in a batch, want 3 together", n)
	}
}
