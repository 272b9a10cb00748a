package postgres

import (
	"sync"
	"time"

	"github.com/envy-dev/envy"
)

// ownStates keeps, for a moment, the state of each scope as this server's
// last batch committed it, until the batch's notice comes back through
// LISTEN: the notice then carries it (envy.Notice.State), so that the
// scope cache keeps what was written instead of evicting it, and the next
// write to a hot scope plans from it rather than reading the whole scope
// again. It is only ever a saving: a notice that comes before its state
// is recorded, or a state that expires, costs the read that it would have
// saved, never a wrong answer (every use of a cached tree on a shared store
// is checked against the database).
type ownStates struct {
	mu sync.Mutex
	m  map[ownKey]ownState
}

type ownKey struct {
	scope string
	rev   int64
}

type ownState struct {
	sv *envy.ScopeVars
	at time.Time
}

// ownTTL bounds how long a state waits for its notice; ownMax how many
// wait at once.
const (
	ownTTL = 10 * time.Second
	ownMax = 4096
)

// put records the states of a committed batch.
func (o *ownStates) put(states []*envy.ScopeVars, now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = make(map[ownKey]ownState)
	}
	if len(o.m)+len(states) > ownMax {
		for k, v := range o.m {
			if now.Sub(v.at) > ownTTL {
				delete(o.m, k)
			}
		}
	}
	for _, sv := range states {
		if len(o.m) >= ownMax {
			return
		}
		o.m[ownKey{sv.Scope.Path, sv.Scope.Revision}] = ownState{sv: sv, at: now}
	}
}

// attach gives a scope notice the state recorded for it, if any, and
// forgets that state.
func (o *ownStates) attach(n *envy.Notice) {
	if n.Kind != envy.NoticeScope {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	k := ownKey{n.Scope, n.Revision}
	if st, ok := o.m[k]; ok {
		n.State = st.sv
		delete(o.m, k)
	}
}

// clear forgets every state: after the notices were lost (a resync).
func (o *ownStates) clear() {
	o.mu.Lock()
	o.m = nil
	o.mu.Unlock()
}
