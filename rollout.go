package envy

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// RolloutPolicy makes the instances of a scope (the `envy run --watch`
// consumers of it) restart in waves when its resolved env changes: at most
// MaxUnavailable of them at a time, each given HealthTimeout to come back
// healthy, the first grant of a change given only once no newer change has
// come for Debounce.
type RolloutPolicy struct {
	// MaxUnavailable is a number of instances, or, with Percent, a
	// percentage (1–100) of the scope's live instances, rounded up: at
	// least one instance restarts at a time.
	MaxUnavailable int
	Percent        bool
	HealthTimeout  time.Duration
	Debounce       time.Duration
}

// Rollout policy bounds and defaults.
const (
	MaxRolloutInstances         = 10000
	DefaultRolloutHealthTimeout = 30 * time.Second
	DefaultRolloutDebounce      = time.Second
	MaxRolloutHealthTimeout     = time.Hour
	MaxRolloutDebounce          = 10 * time.Minute
)

// MaxUnavailableString is max_unavailable as the API shows it: "25%" or "2".
func (p RolloutPolicy) MaxUnavailableString() string {
	if p.Percent {
		return strconv.Itoa(p.MaxUnavailable) + "%"
	}
	return strconv.Itoa(p.MaxUnavailable)
}

// Slots is how many of instances live instances may restart at once.
func (p RolloutPolicy) Slots(instances int) int {
	n := p.MaxUnavailable
	if p.Percent {
		n = (instances*p.MaxUnavailable + 99) / 100
	}
	return max(n, 1)
}

// ParseMaxUnavailable reads max_unavailable written as "25%" or "2".
func ParseMaxUnavailable(loc, s string) (n int, percent bool, f *FieldError) {
	digits, percent := strings.CutSuffix(strings.TrimSpace(s), "%")
	n, err := strconv.Atoi(digits)
	switch {
	case err != nil || digits == "" || digits[0] == '+' || digits[0] == '-':
		e := Field(loc, "invalid", "max_unavailable must be a number of instances (2) or a percentage (25%%)")
		return 0, false, &e
	case percent && (n < 1 || n > 100):
		e := Field(loc, "out_of_range", "max_unavailable as a percentage must be 1%%–100%%")
		return 0, false, &e
	case !percent && (n < 1 || n > MaxRolloutInstances):
		e := Field(loc, "out_of_range", "max_unavailable must be 1–%d instances", MaxRolloutInstances)
		return 0, false, &e
	}
	return n, percent, nil
}

// ValidateRolloutPolicy checks a policy's durations; loc is where the
// policy sits ("body.rollout").
func ValidateRolloutPolicy(loc string, p RolloutPolicy) []FieldError {
	var out []FieldError
	if p.MaxUnavailable < 1 || p.Percent && p.MaxUnavailable > 100 || p.MaxUnavailable > MaxRolloutInstances {
		out = append(out, Field(loc+".max_unavailable", "out_of_range", "max_unavailable must be 1–%d instances or 1%%–100%%", MaxRolloutInstances))
	}
	if p.HealthTimeout < time.Second || p.HealthTimeout > MaxRolloutHealthTimeout {
		out = append(out, Field(loc+".health_timeout", "out_of_range", "health_timeout must be 1s–%s", MaxRolloutHealthTimeout))
	}
	if p.Debounce < 0 || p.Debounce > MaxRolloutDebounce {
		out = append(out, Field(loc+".debounce", "out_of_range", "debounce must be 0s–%s", MaxRolloutDebounce))
	}
	return out
}

// RolloutLease is a slot of a scope's rollout, held by one instance
// (Consumer) that was granted a restart to Revision (or newer). It frees
// the slot when the instance reports a revision at least Revision, says
// goodbye, or at ExpiresAt, whichever comes first.
type RolloutLease struct {
	Scope     string
	Consumer  string
	Revision  int64
	GrantedAt time.Time
	ExpiresAt time.Time
}

// RolloutPause is a scope's rollout stopped because an instance did not
// come back healthy: no restart is granted for a change up to Revision
// until it is resumed. A change after Revision starts a new rollout.
type RolloutPause struct {
	Scope    string
	Revision int64
	Reason   string   // why, never a value
	Failed   []string // the instances that did not come back healthy
	At       time.Time
}

// RolloutStore is the optional capability of a Store that coordinates
// rolling restarts, so that every server sharing the store keeps one
// rollout's bound. Each method returns EUnavailable when the database
// can't be reached.
type RolloutStore interface {
	// PutRolloutPolicy sets a scope's policy; nil removes it. ENotFound
	// when the scope does not exist. Deleting the scope removes it.
	PutRolloutPolicy(ctx context.Context, scope string, p *RolloutPolicy) error
	// RolloutPolicy returns a scope's policy, nil when it has none.
	RolloutPolicy(ctx context.Context, scope string) (*RolloutPolicy, error)
	// AcquireRolloutLease gives l.Consumer a slot of l.Scope when fewer
	// than slots leases of the scope are live (ExpiresAt after l.GrantedAt),
	// in one step whichever servers ask at once. A consumer that holds a
	// live lease keeps it (true), moved to l.Revision and l.ExpiresAt
	// when l is for a newer revision. Expired leases are dropped.
	AcquireRolloutLease(ctx context.Context, l RolloutLease, slots int) (bool, error)
	// ReleaseRolloutLease frees the consumer's slot when its lease is for
	// revision rev or older; it reports whether it freed one.
	ReleaseRolloutLease(ctx context.Context, scope, consumer string, rev int64) (bool, error)
	// RolloutLeases returns the scope's leases live at now, by consumer.
	RolloutLeases(ctx context.Context, scope string, now time.Time) ([]RolloutLease, error)
	// PauseRollout pauses a scope's rollout; when it is paused already
	// for the same revision, p's Failed join those it has.
	PauseRollout(ctx context.Context, p RolloutPause) error
	// RolloutPaused returns the scope's pause, nil when it has none.
	RolloutPaused(ctx context.Context, scope string) (*RolloutPause, error)
	// ResumeRollout removes the scope's pause and reports whether it had one.
	ResumeRollout(ctx context.Context, scope string) (bool, error)
}

// RolloutState is what a scope's rollout is doing.
type RolloutState string

// The rollout states.
const (
	RolloutRolling RolloutState = "rolling" // instances run an older env and are restarted in waves
	RolloutPaused  RolloutState = "paused"  // an instance failed its health check: no more grants
	RolloutDone    RolloutState = "done"    // every live instance runs the current env
)

// RolloutStatus is a scope's rollout as its status shows it.
type RolloutStatus struct {
	Policy   RolloutPolicy
	State    RolloutState
	Revision int64 // the revision being rolled out (the env's)
	Reason   string
	Failed   []string
	// Leases are the slots held now, each with the instance, the
	// revision it was granted and when the slot is freed at the latest.
	Leases []RolloutLease
	Slots  int // how many instances may restart at once now
}
