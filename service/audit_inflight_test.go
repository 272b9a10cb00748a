package service_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/pgtest"
	"github.com/envy-dev/envy/postgres"
	"github.com/envy-dev/envy/service"
)

// heldAuditStore is a real PostgreSQL store whose first AppendAudit call
// waits for release before it commits.
type heldAuditStore struct {
	*postgres.Store
	once    sync.Once
	held    chan struct{} // closed once the first call waits
	release chan struct{}

	mu    sync.Mutex
	calls []int // the entries of each call, in the order they came
}

func (s *heldAuditStore) AppendAudit(ctx context.Context, entries ...envy.AuditEntry) error {
	s.mu.Lock()
	s.calls = append(s.calls, len(entries))
	s.mu.Unlock()
	first := false
	s.once.Do(func() { first = true })
	if first {
		close(s.held)
		<-s.release
	}
	return s.Store.AppendAudit(ctx, entries...)
}

// pgService returns a service on a new PostgreSQL database, its store
// (wrapped by wrap, when set) and an admin caller's context.
func pgService(t *testing.T, wrap func(*postgres.Store) envy.Store) (*service.Service, *postgres.Store, string, context.Context) {
	t.Helper()
	url := pgtest.NewDatabase(t)
	db, err := postgres.Open(context.Background(), url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var store envy.Store = db
	if wrap != nil {
		store = wrap(db)
	}
	svc, ctx := newServiceKeyed(t, store, filepath.Join(t.TempDir(), "master.key"))
	return svc, db, url, ctx
}

// revealAs reads scope's resolved env as a request with id.
func revealAs(svc *service.Service, ctx context.Context, scope, id string) error {
	_, err := svc.Env(service.WithCaller(ctx, &service.Caller{Token: service.CallerFrom(ctx).Token, RequestID: id}), scope)
	return err
}

// heldReveal makes a service on PostgreSQL whose store holds the first
// batch of audit entries until release, and a reveal of scope app
// ("req-held") whose entry is in that batch: first gets its answer. With
// overlap > 0, the audit loop sends a batch beside a commit that has
// taken that long.
func heldReveal(t *testing.T, overlap time.Duration) (svc *service.Service, db *postgres.Store, ctx context.Context, store *heldAuditStore, release func(), first <-chan error) {
	store = &heldAuditStore{held: make(chan struct{}), release: make(chan struct{})}
	svc, db, _, ctx = pgService(t, func(db *postgres.Store) envy.Store { store.Store = db; return store })
	if overlap > 0 {
		svc.SetAuditOverlapAfter(overlap)
	}
	release = sync.OnceFunc(func() { close(store.release) })
	t.Cleanup(release) // before the service's Close, which waits for the held batch
	setVar(t, svc, ctx, "app", "A", "1")

	answer := make(chan error, 1)
	go func() { answer <- revealAs(svc, ctx, "app", "req-held") }()
	recv(t, store.held, 10*time.Second, "the reveal's audit entry reached the store: a reveal must be recorded before it is answered")
	return svc, db, ctx, store, release, answer
}

// While one batch of reveals waits for its commit, and that commit
// stalls, the next ones are committed and answered: the audit loop has
// more than one batch in flight. And however the reveals were batched,
// each counts once in the rows they add up in.
func TestRevealsCommitWhileAnAuditBatchIsHeld(t *testing.T) {
	svc, db, ctx, _, release, first := heldReveal(t, 0)
	second := make(chan error, 1)
	go func() { second <- revealAs(svc, ctx, "app", "req-next") }()
	select {
	case err := <-second:
		if err != nil {
			t.Fatalf("the reveal after the held one: %v", err)
		}
	case <-time.After(10 * time.Second): // a bound, so that a failure does not hang; nothing depends on its length
		t.Fatal("a reveal waited for the commit of the batch before it")
	}
	select {
	case err := <-first:
		t.Fatalf("the held reveal was answered before its commit: %v", err)
	default:
	}
	release()
	if err := recv(t, first, 10*time.Second, "the held reveal was answered once its batch committed"); err != nil {
		t.Fatal(err)
	}

	// Many reveals at once, batched however the loop batches them.
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := revealAs(svc, ctx, "app", fmt.Sprint("req-", i)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	entries, err := db.ListAudit(context.Background(), envy.AuditQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	// Reveals of one token, client, scope and second add up in one row:
	// every reveal counts once, and each listed request id is one of
	// them, listed once.
	var count int64
	listed := map[string]int{}
	for _, e := range entries {
		if e.Action == "reveal" {
			count += e.Count
			for _, id := range e.RequestIDs {
				listed[id]++
			}
		}
	}
	want := map[string]bool{"req-held": true, "req-next": true}
	for i := range 40 {
		want[fmt.Sprint("req-", i)] = true
	}
	if count != int64(len(want)) {
		t.Errorf("the reveal rows count %d reveals, want %d", count, len(want))
	}
	for id, n := range listed {
		if !want[id] || n != 1 {
			t.Errorf("request %s is listed %d times, want once and only if it revealed", id, n)
		}
	}
	if listed["req-held"] != 1 || listed["req-next"] != 1 {
		t.Errorf("the first reveals are not listed: %v", listed)
	}
}

// While a batch of reveals commits, the next reveals wait for that
// commit (as long as it takes less than the overlap bound) and then
// share one: two batches sent as soon as the loop has a slot for each
// would split the reveals into twice as many commits, each a WAL flush.
func TestRevealsWaitingForACommitShareTheNextOne(t *testing.T) {
	svc, _, ctx, store, release, first := heldReveal(t, time.Hour) // the held commit is slow, not stalled
	const next = 8
	errs := make(chan error, next)
	for i := range next {
		go func() { errs <- revealAs(svc, ctx, "app", fmt.Sprint("req-", i)) }()
	}
	for deadline := time.Now().Add(10 * time.Second); svc.AuditQueued() < next; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			store.mu.Lock()
			defer store.mu.Unlock()
			t.Fatalf("%d of %d reveals wait for the held commit; the store got batches of %v: the audit loop sent a batch beside a commit that was not stalled",
				svc.AuditQueued(), next, store.calls)
		}
	}
	release()
	if err := recv(t, first, 10*time.Second, "the held reveal was answered once its batch committed"); err != nil {
		t.Fatal(err)
	}
	for range next {
		if err := recv(t, errs, 10*time.Second, "a reveal answered once its batch committed"); err != nil {
			t.Fatal(err)
		}
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	if want := []int{1, next}; !slices.Equal(store.calls, want) {
		t.Errorf("the store got batches of %v entries, want %v: the reveals that waited share one commit", store.calls, want)
	}
}

// A reveal whose audit row can't be committed is refused (EUnavailable,
// a 503), on PostgreSQL too, where the row goes in a transaction of its
// own: here PostgreSQL refuses the row, by a check added from another
// connection.
func TestARevealIsRefusedWhenItsAuditRowFails(t *testing.T) {
	svc, _, url, ctx := pgService(t, nil)
	setVar(t, svc, ctx, "app", "A", "1")
	conn := pgConn(t, url)
	if _, err := conn.Exec(context.Background(), `ALTER TABLE audit ADD CONSTRAINT no_reveals CHECK (action <> 'reveal') NOT VALID`); err != nil {
		t.Fatal(err)
	}
	err := revealAs(svc, ctx, "app", "req-refused")
	if envy.ErrorCode(err) != envy.EUnavailable {
		t.Fatalf("a reveal whose audit row failed = %v, want EUnavailable", err)
	}
	if _, err := conn.Exec(context.Background(), `ALTER TABLE audit DROP CONSTRAINT no_reveals`); err != nil {
		t.Fatal(err)
	}
	if err := revealAs(svc, ctx, "app", "req-ok"); err != nil {
		t.Fatalf("a reveal once the audit takes rows again: %v", err)
	}
}

// Refusals without a token, made at once from many goroutines, add up to
// their exact number in their minute's row, however they were batched
// and whichever transactions ran together.
func TestConcurrentAggregatedRefusalsAddUp(t *testing.T) {
	svc, db, _, ctx := pgService(t, nil)
	const goroutines, each = 16, 50
	var wg sync.WaitGroup
	for i := range goroutines * each {
		client := []string{"10.0.0.1", "10.0.0.2"}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			svc.Refused(service.WithCaller(context.Background(), &service.Caller{Client: client}), "env.read", "app", 401)
		}()
	}
	wg.Wait()
	if _, err := svc.Audit(ctx, envy.AuditListQuery{Limit: 1}); err != nil { // flushes the audit queue
		t.Fatal(err)
	}
	entries, err := db.ListAudit(context.Background(), envy.AuditQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, e := range entries {
		if e.Status == 401 {
			sum += e.Count
		}
	}
	// Both clients' refusals, unless the minute turned during the test
	// and split a client's rows; the count is exact either way.
	if sum != goroutines*each {
		t.Errorf("the refusals' rows count %d, want %d", sum, goroutines*each)
	}
}

// pgConn opens a connection of the test's own to the database at url.
func pgConn(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// A reveal whose caller goes away while its batch's commit stalls is
// withdrawn, and its withdrawal commits after it: the audit loop may
// send another batch beside the stalled one (on PostgreSQL), so the
// withdrawal waits for its reveal's batch to answer before it queues.
func TestAWithdrawalNeverCommitsBeforeItsReveal(t *testing.T) {
	store := &heldAuditStore{held: make(chan struct{}), release: make(chan struct{})}
	svc, db, _, ctx := pgService(t, func(db *postgres.Store) envy.Store { store.Store = db; return store })
	svc.SetAuditOverlapAfter(time.Millisecond)
	release := sync.OnceFunc(func() { close(store.release) })
	t.Cleanup(release)
	setVar(t, svc, ctx, "app", "A", "1")

	rctx, cancel := context.WithCancel(ctx)
	answer := make(chan error, 1)
	go func() { answer <- revealAs(svc, rctx, "app", "req-gone") }()
	recv(t, store.held, 10*time.Second, "the reveal's audit entry reached the store")
	cancel() // the client goes away while the reveal's commit stalls
	if err := recv(t, answer, 10*time.Second, "the reveal whose caller went away returned"); err == nil {
		t.Fatal("a reveal whose caller went away was answered")
	}
	// Another reveal's batch goes beside the held one and commits: had
	// the withdrawal queued at once, it would have gone with it.
	if err := revealAs(svc, ctx, "app", "req-next"); err != nil {
		t.Fatal(err)
	}
	release()
	svc.Close() // everything queued is written
	entries, err := db.ListAudit(context.Background(), envy.AuditQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var reveal, withdrawal int64
	for _, e := range entries {
		if slices.Contains(e.RequestIDs, "req-gone") || e.RequestID == "req-gone" {
			switch e.Action {
			case envy.AuditReveal:
				reveal = e.ID
			case envy.AuditRevealWithdrawn:
				withdrawal = e.ID
			}
		}
	}
	if reveal == 0 || withdrawal == 0 {
		t.Fatalf("the reveal (row %d) and its withdrawal (row %d) should both be recorded", reveal, withdrawal)
	}
	if withdrawal < reveal {
		t.Fatalf("the withdrawal (row %d) committed before its reveal (row %d)", withdrawal, reveal)
	}
}
