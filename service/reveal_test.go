package service_test

import (
	"context"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/service"
	"github.com/envy-dev/envy/sqlite"
)

// TestEveryRevealIsAuditedBeforeItIsAnswered: each way of reading a
// resolved env records its reveal, durably, before it returns the values.
func TestEveryRevealIsAuditedBeforeItIsAnswered(t *testing.T) {
	encode := func(b []byte, env envy.Env) ([]byte, error) {
		for _, v := range env.Vars {
			b = append(b, v.Name+"="+v.Value.Reveal()+"\n"...)
		}
		return b, nil
	}
	reads := []struct {
		name string
		read func(svc *service.Service, ctx context.Context) error
	}{
		{"Env", func(svc *service.Service, ctx context.Context) error {
			_, err := svc.Env(ctx, "app")
			return err
		}},
		{"EnvReply", func(svc *service.Service, ctx context.Context) error {
			_, err := svc.EnvReply(ctx, "app", "dotenv", nil, encode)
			return err
		}},
		{"EnvReply, served from the plaintext cache", func(svc *service.Service, ctx context.Context) error {
			if _, err := svc.EnvReply(ctx, "app", "dotenv", nil, encode); err != nil {
				return err
			}
			_, err := svc.EnvReply(ctx, "app", "dotenv", nil, encode)
			return err
		}},
	}
	for _, r := range reads {
		t.Run(r.name, func(t *testing.T) {
			var store *sqlite.Store
			svc, admin := newServiceOver(t, service.Options{}, func(db *sqlite.Store) envy.Store { store = db; return db })
			setVar(t, svc, admin, "app", "A", "1")
			ctx, cancel := context.WithTimeout(admin, 30*time.Second)
			defer cancel()
			ctx = service.WithCaller(ctx, &service.Caller{Token: service.CallerFrom(admin).Token, RequestID: "req-reveal"})
			if err := r.read(svc, ctx); err != nil {
				t.Fatal(err)
			}
			// Read from the store itself, without the audit loop's flush:
			// the entry must be durable once the read returned.
			entries, err := store.ListAudit(ctx, envy.AuditQuery{Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, e := range entries {
				if e.Action == envy.AuditReveal && e.RequestID == "req-reveal" && e.Scope == "app" {
					n++
				}
			}
			if n == 0 {
				t.Fatalf("%s returned the values of app with no reveal in the audit log: every reveal must be recorded before it is answered", r.name)
			}
		})
	}
}

// TestRefusalsOfDifferentClientsAreNotMerged: refusals without a token
// are counted in one row per client, token, action, scope, outcome and
// minute; refusals of two clients queued in one batch of the audit loop
// stay two rows, each with its client, so that the audit tells attackers
// apart.
func TestRefusalsOfDifferentClientsAreNotMerged(t *testing.T) {
	store := &gatedStore{entered: make(chan struct{}, 100), sizes: make(chan int, 100)}
	svc, admin := newServiceOver(t, service.Options{}, func(db *sqlite.Store) envy.Store { store.Store = db; return store })
	ctx, cancel := context.WithTimeout(admin, 30*time.Second)
	defer cancel()
	refuse := func(client string) {
		svc.Refused(service.WithCaller(ctx, &service.Caller{Client: client}), envy.AuditEnv, "app", envy.OutcomeUnauthenticated)
	}
	// The first refusal's commit is held while the others queue behind
	// it: they make the next batch together.
	gate := make(chan struct{})
	open := sync.OnceFunc(func() { close(gate) })
	t.Cleanup(open) // before the service's Close, which waits for the held batch
	store.setGate(gate)
	refuse("192.0.2.1")
	recv(t, store.entered, 10*time.Second, "the first refusal reached the store")
	for _, client := range []string{"192.0.2.2", "192.0.2.3", "192.0.2.2"} {
		refuse(client)
	}
	for deadline := time.Now().Add(10 * time.Second); svc.AuditQueued() < 3; {
		if time.Now().After(deadline) {
			t.Fatalf("%d refusals queued within 10 s, want 3", svc.AuditQueued())
		}
		time.Sleep(time.Millisecond)
	}
	store.setGate(nil)
	open()
	page, err := svc.Audit(admin, envy.AuditListQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, e := range page.Items {
		if e.Action == envy.AuditEnv && e.Status == envy.OutcomeUnauthenticated {
			got[e.Client] += e.Count
		}
	}
	want := map[string]int64{"192.0.2.1": 1, "192.0.2.2": 2, "192.0.2.3": 1}
	if !maps.Equal(got, want) {
		t.Fatalf("refusals counted by client = %v, want %v: refusals of different clients must not be merged into one row", got, want)
	}
}
