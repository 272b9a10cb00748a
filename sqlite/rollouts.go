package sqlite

import (
	"context"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/storeutil"
)

// The rollout capability: its reads are storeutil.Reader's (RolloutPolicy,
// RolloutLeases, RolloutPaused), its writes storeutil.RolloutTx's, run by
// the one writer, so an acquire's count and insert are one step.
var _ envy.RolloutStore = (*Store)(nil)

func (t *txn) rollout() storeutil.RolloutTx {
	return storeutil.RolloutTx{
		Exec: func(q string, args ...any) (int64, error) {
			r, err := t.exec(q, args...)
			if err != nil {
				return 0, err
			}
			return r.RowsAffected()
		},
		QueryRow: func(q string, args ...any) interface{ Scan(...any) error } { return t.queryRow(q, args...) },
		Mark:     storeutil.NumberedMark,
	}
}

// rolloutDo runs fn in the writer's transaction, naming a failure with what.
func (s *Store) rolloutDo(ctx context.Context, what string, fn func(x storeutil.RolloutTx) error) error {
	return s.do(ctx, func(t *txn) error {
		if err := fn(t.rollout()); err != nil {
			return dbErr(what, err)
		}
		return nil
	})
}

// PutRolloutPolicy sets or (nil) removes a scope's rollout policy.
func (s *Store) PutRolloutPolicy(ctx context.Context, scope string, p *envy.RolloutPolicy) error {
	return s.do(ctx, func(t *txn) error {
		ok, err := t.exists(scope)
		if err != nil {
			return err
		}
		if !ok {
			return storeutil.NotFound(scope)
		}
		if err := t.rollout().PutPolicy(scope, p); err != nil {
			return dbErr("put a rollout policy", err)
		}
		return nil
	})
}

// AcquireRolloutLease gives a consumer a slot of its scope's rollout when one is free.
func (s *Store) AcquireRolloutLease(ctx context.Context, l envy.RolloutLease, slots int) (ok bool, err error) {
	err = s.rolloutDo(ctx, "acquire a rollout lease", func(x storeutil.RolloutTx) error {
		ok, err = x.Acquire(l, slots)
		return err
	})
	return ok, err
}

// ReleaseRolloutLease frees a consumer's slot granted for rev or older.
func (s *Store) ReleaseRolloutLease(ctx context.Context, scope, consumer string, rev int64) (ok bool, err error) {
	err = s.rolloutDo(ctx, "release a rollout lease", func(x storeutil.RolloutTx) error {
		ok, err = x.Release(scope, consumer, rev)
		return err
	})
	return ok, err
}

// PauseRollout pauses a scope's rollout.
func (s *Store) PauseRollout(ctx context.Context, p envy.RolloutPause) error {
	return s.rolloutDo(ctx, "pause a rollout", func(x storeutil.RolloutTx) error { return x.Pause(p) })
}

// ResumeRollout removes a scope's pause.
func (s *Store) ResumeRollout(ctx context.Context, scope string) (ok bool, err error) {
	err = s.rolloutDo(ctx, "resume a rollout", func(x storeutil.RolloutTx) error {
		ok, err = x.Resume(scope)
		return err
	})
	return ok, err
}
