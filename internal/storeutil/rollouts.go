package storeutil

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/envy-dev/envy"
)

// The rollout tables (migration 0009 of both stores): rollout_policies
// (scope → spec, the policy as JSON), rollout_leases (one row per slot
// held: scope, consumer, revision, granted_at, expires_at) and
// rollout_pauses (scope → revision, reason, failed as a JSON list, at).

// policySpec is a policy as rollout_policies keeps it.
type policySpec struct {
	MaxUnavailable string `json:"max_unavailable"`
	HealthTimeout  int64  `json:"health_timeout_ms"`
	Debounce       int64  `json:"debounce_ms"`
}

// EncodeRolloutPolicy is the stored form of a policy.
func EncodeRolloutPolicy(p envy.RolloutPolicy) string {
	b, _ := json.Marshal(policySpec{p.MaxUnavailableString(), p.HealthTimeout.Milliseconds(), p.Debounce.Milliseconds()})
	return string(b)
}

// DecodeRolloutPolicy reads a stored policy.
func DecodeRolloutPolicy(spec string) (*envy.RolloutPolicy, error) {
	var ps policySpec
	if err := json.Unmarshal([]byte(spec), &ps); err != nil {
		return nil, err
	}
	n, pct, f := envy.ParseMaxUnavailable("max_unavailable", ps.MaxUnavailable)
	if f != nil {
		return nil, errors.New("bad stored max_unavailable")
	}
	return &envy.RolloutPolicy{MaxUnavailable: n, Percent: pct,
		HealthTimeout: time.Duration(ps.HealthTimeout) * time.Millisecond, Debounce: time.Duration(ps.Debounce) * time.Millisecond}, nil
}

// marks replaces $1…$9 in s with mark's placeholders.
func marks(mark func(int) string, s string) string {
	for i := 9; i >= 1; i-- {
		s = strings.ReplaceAll(s, "$"+string(rune('0'+i)), mark(i))
	}
	return s
}

// RolloutPolicy returns a scope's policy, nil when it has none.
func (r *Reader) RolloutPolicy(ctx context.Context, scope string) (*envy.RolloutPolicy, error) {
	ps, err := read(ctx, r, "read a rollout policy", func(rows Scanner) ([]*envy.RolloutPolicy, error) {
		var out []*envy.RolloutPolicy
		for rows.Next() {
			var spec string
			if err := rows.Scan(&spec); err != nil {
				return nil, err
			}
			p, err := DecodeRolloutPolicy(spec)
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
		return out, rows.Err()
	}, marks(r.Mark, `SELECT spec FROM rollout_policies WHERE scope = $1`), scope)
	if err != nil || len(ps) == 0 {
		return nil, err
	}
	return ps[0], nil
}

// RolloutLeases returns the scope's leases live at now, by consumer.
func (r *Reader) RolloutLeases(ctx context.Context, scope string, now time.Time) ([]envy.RolloutLease, error) {
	return read(ctx, r, "list rollout leases", func(rows Scanner) ([]envy.RolloutLease, error) {
		var out []envy.RolloutLease
		for rows.Next() {
			l := envy.RolloutLease{Scope: scope}
			var granted, expires int64
			if err := rows.Scan(&l.Consumer, &l.Revision, &granted, &expires); err != nil {
				return nil, err
			}
			l.GrantedAt, l.ExpiresAt = FromNanos(granted), FromNanos(expires)
			out = append(out, l)
		}
		return out, rows.Err()
	}, marks(r.Mark, `SELECT consumer, revision, granted_at, expires_at FROM rollout_leases
		WHERE scope = $1 AND expires_at > $2 ORDER BY consumer`), scope, Nanos(now))
}

// RolloutPaused returns the scope's pause, nil when it has none.
func (r *Reader) RolloutPaused(ctx context.Context, scope string) (*envy.RolloutPause, error) {
	ps, err := read(ctx, r, "read a rollout pause", func(rows Scanner) ([]*envy.RolloutPause, error) {
		var out []*envy.RolloutPause
		for rows.Next() {
			p := &envy.RolloutPause{Scope: scope}
			var failed string
			var at int64
			if err := rows.Scan(&p.Revision, &p.Reason, &failed, &at); err != nil {
				return nil, err
			}
			if err := json.Unmarshal([]byte(failed), &p.Failed); err != nil {
				return nil, err
			}
			p.At = FromNanos(at)
			out = append(out, p)
		}
		return out, rows.Err()
	}, marks(r.Mark, `SELECT revision, reason, failed, at FROM rollout_pauses WHERE scope = $1`), scope)
	if err != nil || len(ps) == 0 {
		return nil, err
	}
	return ps[0], nil
}

// RolloutTx is what the rollout writes need of a store's transaction, so
// that both stores run the same statements: Exec returns the rows
// affected, QueryRow one row, Mark the placeholders.
type RolloutTx struct {
	Exec     func(sql string, args ...any) (int64, error)
	QueryRow func(sql string, args ...any) interface{ Scan(...any) error }
	Mark     func(int) string
}

// PutPolicy sets (p non-nil) or removes a scope's policy; the caller has
// checked that the scope exists.
func (x RolloutTx) PutPolicy(scope string, p *envy.RolloutPolicy) error {
	if p == nil {
		_, err := x.Exec(marks(x.Mark, `DELETE FROM rollout_policies WHERE scope = $1`), scope)
		return err
	}
	_, err := x.Exec(marks(x.Mark, `INSERT INTO rollout_policies (scope, spec) VALUES ($1, $2)
		ON CONFLICT (scope) DO UPDATE SET spec = excluded.spec`), scope, EncodeRolloutPolicy(*p))
	return err
}

// Acquire gives l.Consumer a slot when fewer than slots are live; the
// caller holds the scope's rollout lock (or the only writer).
func (x RolloutTx) Acquire(l envy.RolloutLease, slots int) (bool, error) {
	now := Nanos(l.GrantedAt)
	if _, err := x.Exec(marks(x.Mark, `DELETE FROM rollout_leases WHERE scope = $1 AND expires_at <= $2`), l.Scope, now); err != nil {
		return false, err
	}
	var held, mine int
	if err := x.QueryRow(marks(x.Mark, `SELECT COUNT(*), COUNT(CASE WHEN consumer = $2 THEN 1 END) FROM rollout_leases WHERE scope = $1`),
		l.Scope, l.Consumer).Scan(&held, &mine); err != nil {
		return false, err
	}
	if mine > 0 {
		// The holder is granted a newer change while it restarts for an
		// older one: the slot is now for the newer, so that its report
		// of the older does not free a slot it still uses.
		_, err := x.Exec(marks(x.Mark, `UPDATE rollout_leases SET revision = $3, expires_at = $4
			WHERE scope = $1 AND consumer = $2 AND revision < $3`), l.Scope, l.Consumer, l.Revision, Nanos(l.ExpiresAt))
		return err == nil, err
	}
	if held >= slots {
		return false, nil
	}
	_, err := x.Exec(marks(x.Mark, `INSERT INTO rollout_leases (scope, consumer, revision, granted_at, expires_at) VALUES ($1, $2, $3, $4, $5)`),
		l.Scope, l.Consumer, l.Revision, now, Nanos(l.ExpiresAt))
	return err == nil, err
}

// Release frees the consumer's slot when its lease is for rev or older.
func (x RolloutTx) Release(scope, consumer string, rev int64) (bool, error) {
	n, err := x.Exec(marks(x.Mark, `DELETE FROM rollout_leases WHERE scope = $1 AND consumer = $2 AND revision <= $3`), scope, consumer, rev)
	return n > 0, err
}

// Pause records a pause, joining the failed instances of a pause of the
// same revision.
func (x RolloutTx) Pause(p envy.RolloutPause) error {
	var (
		n      int
		rev    int64
		failed string
	)
	if err := x.QueryRow(marks(x.Mark, `SELECT COUNT(*), COALESCE(MAX(revision), 0), COALESCE(MAX(failed), '[]') FROM rollout_pauses WHERE scope = $1`),
		p.Scope).Scan(&n, &rev, &failed); err != nil {
		return err
	}
	if n > 0 && rev > p.Revision {
		// A pause is never lowered: a failure on an older revision (a
		// report that raced a newer change) must not lift the newer
		// revision's pause.
		return nil
	}
	all := slices.Clone(p.Failed)
	if n > 0 && rev == p.Revision {
		var had []string
		if json.Unmarshal([]byte(failed), &had) == nil {
			all = append(had, all...)
		}
	}
	slices.Sort(all)
	all = slices.Compact(all)
	if all == nil {
		all = []string{}
	}
	b, _ := json.Marshal(all)
	_, err := x.Exec(marks(x.Mark, `INSERT INTO rollout_pauses (scope, revision, reason, failed, at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (scope) DO UPDATE SET revision = excluded.revision, reason = excluded.reason, failed = excluded.failed, at = excluded.at`),
		p.Scope, p.Revision, p.Reason, string(b), Nanos(p.At))
	return err
}

// Resume removes a scope's pause.
func (x RolloutTx) Resume(scope string) (bool, error) {
	n, err := x.Exec(marks(x.Mark, `DELETE FROM rollout_pauses WHERE scope = $1`), scope)
	return n > 0, err
}
