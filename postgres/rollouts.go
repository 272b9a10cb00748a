package postgres

import (
	"context"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/storeutil"
)

// The rollout capability: its reads are storeutil.Reader's (RolloutPolicy,
// RolloutLeases, RolloutPaused), its writes storeutil.RolloutTx's, each in
// a transaction that holds the scope's rollout lock, so that two servers
// granting at once can't both take the last slot.
var _ envy.RolloutStore = (*Store)(nil)

// rolloutDo runs fn in a transaction holding scope's rollout lock.
func (s *Store) rolloutDo(ctx context.Context, what, scope string, fn func(x storeutil.RolloutTx) error) error {
	return s.tx(ctx, what, func(t *txn) error {
		x, err := t.rolloutTx(scope)
		if err != nil {
			return err
		}
		return fn(x)
	})
}

// rolloutTx takes the lock of scope's rollout, which its every rollout
// transaction takes, and returns the rollout statements on t.
func (t *txn) rolloutTx(scope string) (storeutil.RolloutTx, error) {
	if _, err := t.Exec(t.ctx, `SELECT pg_advisory_xact_lock(hashtextextended('envy.rollout:' || $1, 0))`, scope); err != nil {
		return storeutil.RolloutTx{}, err
	}
	return storeutil.RolloutTx{
		Exec: func(q string, args ...any) (int64, error) {
			tag, err := t.Exec(t.ctx, q, args...)
			return tag.RowsAffected(), err
		},
		QueryRow: func(q string, args ...any) interface{ Scan(...any) error } { return t.QueryRow(t.ctx, q, args...) },
		Mark:     storeutil.DollarMark,
	}, nil
}

// PutRolloutPolicy sets or (nil) removes a scope's rollout policy.
func (s *Store) PutRolloutPolicy(ctx context.Context, scope string, p *envy.RolloutPolicy) error {
	err := s.rolloutDo(ctx, "put a rollout policy", scope, func(x storeutil.RolloutTx) error { return x.PutPolicy(scope, p) })
	if isCode(err, "23503") {
		return storeutil.NotFound(scope)
	}
	if p == nil && err == nil {
		return s.Reader.ScopeExists(ctx, scope)
	}
	return err
}

// AcquireRolloutLease gives a consumer a slot of its scope's rollout when one is free.
func (s *Store) AcquireRolloutLease(ctx context.Context, l envy.RolloutLease, slots int) (ok bool, err error) {
	err = s.rolloutDo(ctx, "acquire a rollout lease", l.Scope, func(x storeutil.RolloutTx) error {
		ok, err = x.Acquire(l, slots)
		return err
	})
	return ok, err
}

// ReleaseRolloutLease frees a consumer's slot granted for rev or older.
func (s *Store) ReleaseRolloutLease(ctx context.Context, scope, consumer string, rev int64) (ok bool, err error) {
	err = s.rolloutDo(ctx, "release a rollout lease", scope, func(x storeutil.RolloutTx) error {
		ok, err = x.Release(scope, consumer, rev)
		return err
	})
	return ok, err
}

// PauseRollout pauses a scope's rollout.
func (s *Store) PauseRollout(ctx context.Context, p envy.RolloutPause) error {
	return s.rolloutDo(ctx, "pause a rollout", p.Scope, func(x storeutil.RolloutTx) error { return x.Pause(p) })
}

// ResumeRollout removes a scope's pause.
func (s *Store) ResumeRollout(ctx context.Context, scope string) (ok bool, err error) {
	err = s.rolloutDo(ctx, "resume a rollout", scope, func(x storeutil.RolloutTx) error {
		ok, err = x.Resume(scope)
		return err
	})
	return ok, err
}
