package crypto

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/pgtest"
	"github.com/envy-dev/envy/postgres"
	"github.com/envy-dev/envy/sqlite"
)

// rotStore is a real store, as the server has it.
type rotStore interface {
	KeyRewrapper
	envy.Notifier
}

// eachStore runs f on a new SQLite store and on a new PostgreSQL database.
func eachStore(t *testing.T, f func(t *testing.T, open func() rotStore)) {
	t.Run("sqlite", func(t *testing.T) {
		st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "envy.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		// One SQLite file serves one server: every "server" shares the store.
		f(t, func() rotStore { return st })
	})
	t.Run("postgres", func(t *testing.T) {
		url := pgtest.NewDatabase(t)
		f(t, func() rotStore {
			st, err := postgres.Open(context.Background(), url, postgres.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		})
	})
}

func sealN(t *testing.T, kr *Keyring, n int) [][]byte {
	t.Helper()
	out := make([][]byte, n)
	for i := range out {
		s, err := kr.Seal(fmt.Appendf(nil, "value %d", i), envy.AD("rot", fmt.Sprint(i), 1))
		if err != nil {
			t.Fatal(err)
		}
		out[i] = s
	}
	return out
}

func openAll(kr *Keyring, sealed [][]byte) error {
	for i, s := range sealed {
		p, err := kr.Open(s, envy.AD("rot", fmt.Sprint(i), 1))
		if err != nil {
			return fmt.Errorf("value %d: %w", i, err)
		}
		if string(p) != fmt.Sprintf("value %d", i) {
			return fmt.Errorf("value %d opened to something else", i)
		}
	}
	return nil
}

func TestRotateWhileOpening(t *testing.T) {
	eachStore(t, func(t *testing.T, open func() rotStore) {
		ctx := context.Background()
		st := open()
		mk1, _ := newFileKey(t)
		kr, err := OpenKeyring(ctx, mk1, st)
		if err != nil {
			t.Fatal(err)
		}
		sealed := sealN(t, kr, 50)

		// Open continuously while the rotation runs.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		errc := make(chan error, 4)
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if err := openAll(kr, sealed); err != nil {
						errc <- err
						return
					}
				}
			}()
		}
		mk2, path2 := newFileKey(t)
		res, err := kr.Rotate(ctx, mk2, true)
		close(stop)
		wg.Wait()
		if err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-errc:
			t.Fatalf("an open failed during the rotation: %v", err)
		default:
		}
		if fmt.Sprint(res.Rewrapped) != "[1]" || res.Added != 2 || kr.NewestKeyID() != 2 {
			t.Fatalf("rotation: %+v, newest %d", res, kr.NewestKeyID())
		}
		after := sealN(t, kr, 5)
		if sealedKeyID(after[0]) != 2 {
			t.Fatalf("a value sealed after the rotation names key %d", sealedKeyID(after[0]))
		}

		// The new master key alone opens everything; the old one nothing.
		fresh, err := ReadMasterKeyFile(path2)
		if err != nil {
			t.Fatal(err)
		}
		defer fresh.Close()
		kr2, err := OpenKeyring(ctx, fresh, open())
		if err != nil {
			t.Fatalf("the new master key does not open the store: %v", err)
		}
		if err := openAll(kr2, sealed); err != nil {
			t.Fatal(err)
		}
		if err := openAll(kr2, after); err != nil {
			t.Fatal(err)
		}
		if _, err := OpenKeyring(ctx, mk1, open()); !errors.Is(err, ErrWrongMasterKey) {
			t.Fatalf("the old master key: %v, want ErrWrongMasterKey", err)
		}
		if err := kr.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

func sealedKeyID(s []byte) uint32 {
	return uint32(s[1])<<24 | uint32(s[2])<<16 | uint32(s[3])<<8 | uint32(s[4])
}

// pair is two servers' keyrings on one store, with the same master key
// read from one file each.
type pair struct {
	a, b     *Keyring
	stA, stB rotStore
	path1    string
	mk1b     MasterKey
}

func newPair(t *testing.T, open func() rotStore) pair {
	t.Helper()
	ctx := context.Background()
	var p pair
	var mk1 MasterKey
	mk1, p.path1 = newFileKey(t)
	p.stA, p.stB = open(), open()
	var err error
	if p.a, err = OpenKeyring(ctx, mk1, p.stA); err != nil {
		t.Fatal(err)
	}
	if p.mk1b, err = ReadMasterKeyFile(p.path1); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.mk1b.Close() })
	if p.b, err = OpenKeyring(ctx, p.mk1b, p.stB); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.b.Close() })
	return p
}

func TestAnotherServerPicksUpARotation(t *testing.T) {
	eachStore(t, func(t *testing.T, open func() rotStore) {
		ctx := context.Background()
		p := newPair(t, open)
		a, b, stA, stB := p.a, p.b, p.stA, p.stB
		// B's operator has put the new key where B's flags point.
		mk2, path2 := newFileKey(t)
		b.SetReopen(func(context.Context) (MasterKey, error) { return ReadMasterKeyFile(path2) })
		errs := make(chan error, 10)
		defer b.Follow(stB, func(err error) { errs <- err })()

		if _, err := a.Rotate(ctx, mk2, true); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for b.NewestKeyID() != 2 {
			select {
			case err := <-errs:
				t.Fatalf("B could not load the new data key: %v", err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatal("B never picked up the new data key")
			}
			time.Sleep(10 * time.Millisecond)
		}
		fromA := sealN(t, a, 3)
		if err := openAll(b, fromA); err != nil {
			t.Fatalf("B can't open what A sealed after the rotation: %v", err)
		}

		// A rotation planned over keys that changed meanwhile is refused,
		// and changes nothing.
		old, err := stA.DataKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := stA.RewrapDataKeys(ctx, old[:1], nil); envy.ErrorCode(err) != envy.EConflict {
			t.Fatalf("a rewrap of a subset of the keys: %v, want EConflict", err)
		}
		// B still holds the first master key it was given, which no longer
		// opens the store's keys: its own rotation is refused.
		mk3, _ := newFileKey(t)
		c, err := OpenKeyring(ctx, mk2, open())
		if err != nil {
			t.Fatal(err)
		}
		c.mk = p.mk1b
		if _, err := c.Rotate(ctx, mk3, false); !errors.Is(err, ErrWrongMasterKey) {
			t.Fatalf("a rotation with a stale master key: %v, want ErrWrongMasterKey", err)
		}
		now, _ := stA.DataKeys(ctx)
		for i := range now {
			if string(now[i].Wrapped) != string(old[i].Wrapped) {
				t.Fatal("a refused rotation changed the stored keys")
			}
		}
	})
}

func TestAServerWithoutTheNewMasterKeyIsNotUsable(t *testing.T) {
	eachStore(t, func(t *testing.T, open func() rotStore) {
		ctx := context.Background()
		p := newPair(t, open)
		a, b, stB := p.a, p.b, p.stB
		// B's key file still holds the old key.
		var newPath string
		b.SetReopen(func(context.Context) (MasterKey, error) {
			if newPath == "" {
				return ReadMasterKeyFile(p.path1)
			}
			return ReadMasterKeyFile(newPath)
		})
		defer b.Follow(stB, nil)()
		if err := b.Usable(ctx); err != nil {
			t.Fatalf("before any rotation: %v", err)
		}
		mk2, path2 := newFileKey(t)
		if _, err := a.Rotate(ctx, mk2, true); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for b.Usable(ctx) == nil {
			if time.Now().After(deadline) {
				t.Fatal("B stays usable though it can't open the new data key")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if !errors.Is(b.Usable(ctx), ErrWrongMasterKey) {
			t.Fatalf("B.Usable: %v", b.Usable(ctx))
		}
		// Its operator puts the new key in place: B comes back by itself.
		b.refreshMu.Lock()
		newPath = path2
		b.refreshMu.Unlock()
		for b.Usable(ctx) != nil {
			if time.Now().After(deadline) {
				t.Fatalf("B does not come back with the new key: %v", b.Usable(ctx))
			}
			time.Sleep(10 * time.Millisecond)
		}
		if b.NewestKeyID() != 2 {
			t.Fatalf("B seals with key %d", b.NewestKeyID())
		}
	})
}

// A rotation through a server that has not looked at its key file since
// another server rotated the keys (its operator put the new key there):
// it opens its master key again, as a refresh would, and rotates, rather
// than refusing until it is restarted.
func TestARotationThroughAServerThatHasNotReloadedItsKeyReopensIt(t *testing.T) {
	eachStore(t, func(t *testing.T, open func() rotStore) {
		ctx := context.Background()
		p := newPair(t, open)
		a, b := p.a, p.b
		mk2, path2 := newFileKey(t)
		b.SetReopen(func(context.Context) (MasterKey, error) { return ReadMasterKeyFile(path2) })
		if _, err := a.Rotate(ctx, mk2, false); err != nil {
			t.Fatal(err)
		}
		mk3, _ := newFileKey(t)
		res, err := b.Rotate(ctx, mk3, true)
		if err != nil {
			t.Fatalf("B's rotation after A's: %v", err)
		}
		if res.Added != 2 || len(res.Rewrapped) != 1 {
			t.Fatalf("B's rotation: %+v", res)
		}
		if err := openAll(b, sealN(t, b, 3)); err != nil {
			t.Fatal(err)
		}
	})
}

// flakyKey is a master key whose failAt-th Unwrap fails, as a KMS call
// does when it times out or the request's context is cancelled.
type flakyKey struct {
	MasterKey
	calls, failAt atomic.Int32
}

func (k *flakyKey) Unwrap(ctx context.Context, w []byte) ([]byte, error) {
	if k.calls.Add(1) == k.failAt.Load() {
		return nil, errors.New("kms: context canceled")
	}
	return k.MasterKey.Unwrap(ctx, w)
}

// lostAnswer is a store whose RewrapDataKeys commits, then fails: the
// answer to the COMMIT was lost.
type lostAnswer struct{ rotStore }

func (s lostAnswer) RewrapDataKeys(ctx context.Context, rewrapped, added []envy.DataKey) error {
	if err := s.rotStore.RewrapDataKeys(ctx, rewrapped, added); err != nil {
		return err
	}
	return errors.New("postgres: commit: connection reset by peer")
}

// A rotation either fails before it commits anything (the store's keys
// stay under the master key in hand, which the keyring keeps) or
// succeeds: never "failed" once committed, which made the caller close
// the master key the store's keys were now under, and every refresh
// fail until a restart.
func TestRotateCantFailAfterItsCommit(t *testing.T) {
	eachStore(t, func(t *testing.T, open func() rotStore) {
		ctx := context.Background()
		st := open()
		mk1, _ := newFileKey(t)
		kr, err := OpenKeyring(ctx, mk1, st)
		if err != nil {
			t.Fatal(err)
		}
		cur := mk1 // what the store's keys are under
		// With one data key, Unwrap 1 is key 1's round trip, 2 the
		// added key's; 99 never comes; with two keys, 3 is the added key's.
		for _, failAt := range []int32{1, 2, 99, 3} {
			inner, _ := newFileKey(t)
			mk2 := &flakyKey{MasterKey: inner}
			mk2.failAt.Store(failAt)
			res, err := kr.Rotate(ctx, mk2, true)
			if err != nil {
				if kr.Owns(mk2) {
					t.Fatalf("failing at unwrap %d: Rotate failed (%v) but the keyring adopted the new master key", failAt, err)
				}
				mk2.Close() // what cmd/envy rotate() does then
			} else {
				if !kr.Owns(mk2) {
					t.Fatalf("failing at unwrap %d: Rotate succeeded but the keyring does not own the new master key", failAt)
				}
				cur = mk2
			}
			dks, err := st.DataKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, dk := range dks {
				if raw, err := cur.Unwrap(ctx, dk.Wrapped); err != nil {
					t.Fatalf("failing at unwrap %d: Rotate = %v, but data key %d is not under the master key that outcome says: %v", failAt, err, dk.ID, err)
				} else {
					clear(raw)
				}
			}
			if err := kr.Refresh(ctx); err != nil {
				t.Fatalf("failing at unwrap %d (Rotate = %+v, %v): the keyring can't refresh: %v", failAt, res, err, err)
			}
			if err := kr.Usable(ctx); err != nil {
				t.Fatal(err)
			}
			if err := openAll(kr, sealN(t, kr, 2)); err != nil {
				t.Fatal(err)
			}
			if want := uint32(len(dks)); kr.NewestKeyID() != want {
				t.Fatalf("failing at unwrap %d: the keyring seals with key %d, the store's newest is %d", failAt, kr.NewestKeyID(), want)
			}
		}

		// A commit whose answer is lost is a rotation that happened.
		kr2, err := OpenKeyring(ctx, cur, lostAnswer{st})
		if err != nil {
			t.Fatal(err)
		}
		mk3, _ := newFileKey(t)
		res, err := kr2.Rotate(ctx, mk3, true)
		if err != nil {
			t.Fatalf("a rotation that committed, its answer lost: %v", err)
		}
		if !kr2.Owns(mk3) || kr2.NewestKeyID() != res.Added {
			t.Fatalf("after a rotation whose answer was lost: owns %v, seals with %d, added %d", kr2.Owns(mk3), kr2.NewestKeyID(), res.Added)
		}
		if err := kr2.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// A value sealed under data key 1 by a server that had not heard of key 2
// yet (its write in flight, or its notice late) must not commit once a
// reseal retired key 1: it would open nowhere once the servers restart.
// The write is refused, retryably, and the server's keyring reloads the
// data keys, so that the retry seals under key 2.
func TestAWriteSealedUnderARetiredKeyIsRefused(t *testing.T) {
	eachStore(t, func(t *testing.T, open func() rotStore) {
		ctx := context.Background()
		p := newPair(t, open) // B does not Follow: its notice is late
		mk2, path2 := newFileKey(t)
		ad := envy.AD("app", "LATE", 1)
		sealed, err := p.b.Seal([]byte("written by B"), ad) // B's write in flight, key 1
		if err != nil {
			t.Fatal(err)
		}
		if _, err = p.a.Rotate(ctx, mk2, true); err != nil {
			t.Fatal(err)
		}
		if res, err := p.a.Reseal(ctx, p.stA.(Resealer)); err != nil || fmt.Sprint(res.Retired) != "[1]" {
			t.Fatalf("Reseal = %+v, %v; want key 1 retired", res, err)
		}
		// B's operator has put the new key where B's flags point; B
		// follows the store from now on (it missed the rotation's notice).
		p.b.SetReopen(func(context.Context) (MasterKey, error) { return ReadMasterKeyFile(path2) })
		defer p.b.Follow(p.stB, nil)()
		st := p.stB.(envy.Store)
		write := func(sealed []byte) error {
			_, err := st.Write(ctx, envy.Write{Scope: "app", Actor: "tester", CreateScope: true,
				Changes: []envy.VarChange{{Name: "LATE", ID: envy.RandomID(), Sealed: sealed, Version: 1}}})
			return err
		}
		if err := write(sealed); err == nil {
			kr, err := OpenKeyring(ctx, mk2, open())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := kr.Open(sealed, ad); errors.Is(err, ErrUnknownKey) {
				t.Fatalf("the value B wrote is lost: %v (data keys now %v)", err, kr.KeyIDs())
			}
			t.Fatal("a value sealed under a retired data key was stored")
		} else if e := envy.AsError(err); e == nil || e.Code != envy.EUnavailable || e.RetryAfter <= 0 ||
			!strings.Contains(e.Message, "the data key it was sealed under was retired; try again") {
			t.Fatalf("the refusal: %#v, want EUnavailable with a Retry-After, saying the data key was retired", err)
		}
		// The refusal made B reload its data keys: the retry seals under
		// key 2 and is stored.
		deadline := time.Now().Add(30 * time.Second)
		for p.b.NewestKeyID() != 2 {
			if time.Now().After(deadline) {
				t.Fatalf("B still seals with data key %d after its write was refused", p.b.NewestKeyID())
			}
			time.Sleep(10 * time.Millisecond)
		}
		again, err := p.b.Seal([]byte("written by B"), ad)
		if err != nil {
			t.Fatal(err)
		}
		if err := write(again); err != nil {
			t.Fatalf("the retry: %v", err)
		}
		fresh, err := ReadMasterKeyFile(path2)
		if err != nil {
			t.Fatal(err)
		}
		defer fresh.Close()
		kr, err := OpenKeyring(ctx, fresh, open())
		if err != nil {
			t.Fatal(err)
		}
		if got, err := kr.Open(again, ad); err != nil || string(got) != "written by B" {
			t.Fatalf("after a restart, B's value opens to %q, %v", got, err)
		}
	})
}
