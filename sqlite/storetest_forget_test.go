package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/storetest"
)

// forgetful is a store that breaks one promise of envy.Notifier: while
// one of its methods runs (SQLite publishes a change's notices before it
// answers), the notices it sends are dropped or sent twice.
type forgetful struct {
	*Store
	in   atomic.Bool // inside the method
	drop func(n envy.Notice) bool
	dup  bool
}

func (f *forgetful) Subscribe(fn func(envy.Notice)) func() {
	return f.Store.Subscribe(func(n envy.Notice) {
		if !f.in.Load() || f.drop == nil || !f.drop(n) {
			fn(n)
			if f.in.Load() && f.dup {
				fn(n)
			}
		}
	})
}

// during runs call with the fault on.
func (f *forgetful) during(call func() error) error {
	f.in.Store(true)
	defer f.in.Store(false)
	return call()
}

// forgetDeletes drops the notice of DeleteScope.
type forgetDeletes struct{ *forgetful }

func (f forgetDeletes) DeleteScope(ctx context.Context, path string, ifRevision int64, audit []envy.AuditEntry) (existed bool, rev int64, err error) {
	err = f.during(func() (err error) {
		existed, rev, err = f.Store.DeleteScope(ctx, path, ifRevision, audit)
		return err
	})
	return existed, rev, err
}

// forgetDescendants drops the notices of the tokens that RevokeToken
// revokes for their ancestor, keeping the one of the token named.
type forgetDescendants struct{ *forgetful }

func (f forgetDescendants) RevokeToken(ctx context.Context, id string, at time.Time, audit []envy.AuditEntry) error {
	f.drop = func(n envy.Notice) bool { return n.TokenID != id }
	return f.during(func() error { return f.Store.RevokeToken(ctx, id, at, audit) })
}

// repeatWrites sends the notice of a Write twice.
type repeatWrites struct{ *forgetful }

func (f repeatWrites) Write(ctx context.Context, w envy.Write) (res envy.WriteResult, err error) {
	err = f.during(func() (err error) {
		res, err = f.Store.Write(ctx, w)
		return err
	})
	return res, err
}

// forgetConsumers drops the notice of PutConsumer.
type forgetConsumers struct{ *forgetful }

func (f forgetConsumers) PutConsumer(ctx context.Context, c envy.Consumer, lim envy.ConsumerLimit) (created bool, err error) {
	err = f.during(func() (err error) {
		created, err = f.Store.PutConsumer(ctx, c, lim)
		return err
	})
	return created, err
}

// TestNoticeChecksFailAStoreThatForgetsANotice holds storetest's notice
// checks to failing: against a store that drops, or repeats, one kind of
// notice, the check of that notice must fail, naming it, within seconds;
// and every check must pass against the store itself.
func TestNoticeChecksFailAStoreThatForgetsANotice(t *testing.T) {
	checks := map[string]func(context.Context, envy.Store) error{}
	for _, c := range storetest.NoticeChecks() {
		checks[c.Name] = c.Check
	}
	find := func(word string) func(context.Context, envy.Store) error {
		t.Helper()
		for name, check := range checks {
			if strings.Contains(name, word) {
				return check
			}
		}
		t.Fatalf("no notice check is about %q", word)
		return nil
	}
	open := func(t *testing.T) *Store {
		s := openTest(t, filepath.Join(t.TempDir(), "envy.db"))
		t.Cleanup(func() { s.Close() })
		return s
	}
	for _, tt := range []struct {
		name  string
		wrap  func(s *Store) envy.Store
		check string // a word of the check's name
		want  string // what its error must say
	}{
		{"the notice of DeleteScope is dropped", func(s *Store) envy.Store {
			return forgetDeletes{&forgetful{Store: s, drop: func(n envy.Notice) bool { return n.Kind == envy.NoticeScopeMeta }}}
		}, "scope change or delete", "missing [scope-meta app@"},
		{"RevokeToken sends no notice of the descendants it revokes", func(s *Store) envy.Store {
			return forgetDescendants{&forgetful{Store: s}}
		}, "revoking a token", "missing [token child, token grandchild]"},
		{"the notice of a Write is sent twice", func(s *Store) envy.Store {
			return repeatWrites{&forgetful{Store: s, dup: true}}
		}, "every write", "scope app@2, scope app@2"}, // heard twice
		{"the notice of PutConsumer is dropped", func(s *Store) envy.Store {
			return forgetConsumers{&forgetful{Store: s, drop: func(envy.Notice) bool { return true }}}
		}, "consumer report", "missing [consumer app]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			check := find(tt.check)
			if err := check(t.Context(), open(t)); err != nil {
				t.Fatalf("the check fails against the store itself: %v", err)
			}
			start := time.Now()
			err := check(t.Context(), tt.wrap(open(t)))
			if err == nil {
				t.Fatal("the check passed against a store that breaks its promise")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("the check's error = %q, want it to say %q", err, tt.want)
			}
			if d := time.Since(start); d > 30*time.Second {
				t.Errorf("the check took %v to fail", d)
			}
		})
	}
}
