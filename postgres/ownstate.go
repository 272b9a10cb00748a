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
//
// The notice of a commit may reach the listener before the writer, which
// learns the batch's revisions from the COMMIT's reply, has recorded the
// states: a batch is announced (begin) before it is sent, and a notice of
// a scope that a batch in flight writes waits for that batch to end, at
// most until ownWait after the batch was sent, before it is published
// without a state.
type ownStates struct {
	mu       sync.Mutex
	m        map[ownKey]ownState
	inflight map[*ownBatch]struct{}
}

// ownBatch is a batch in flight: the scopes it writes, and done, closed
// once its states are recorded or it failed.
type ownBatch struct {
	scopes   map[string]int64
	done     chan struct{}
	deadline time.Time // no notice waits for it past this
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
	// ownWait bounds how long a notice waits for its batch's states.
	ownWait = time.Second
)

// begin announces a batch that writes scopes (path → anything) before it
// is sent; end must follow.
func (o *ownStates) begin(scopes map[string]int64) *ownBatch {
	b := &ownBatch{scopes: scopes, done: make(chan struct{}), deadline: time.Now().Add(ownWait)}
	o.mu.Lock()
	if o.inflight == nil {
		o.inflight = make(map[*ownBatch]struct{})
	}
	o.inflight[b] = struct{}{}
	o.mu.Unlock()
	return b
}

// end records what the batch committed (nil: it did not) and lets the
// notices that wait for it go.
func (o *ownStates) end(b *ownBatch, states []*envy.ScopeVars, now time.Time) {
	if states != nil {
		o.put(states, now)
	}
	o.mu.Lock()
	delete(o.inflight, b)
	o.mu.Unlock()
	close(b.done)
}

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
	k := ownKey{n.Scope, n.Revision}
	for _, b := range o.take(k, n) {
		timeout := time.NewTimer(time.Until(b.deadline))
		select {
		case <-b.done:
		case <-timeout.C:
		}
		timeout.Stop()
	}
	if n.State == nil {
		o.take(k, n)
	}
}

// take gives n the state recorded under k and forgets it; when there is
// none, it returns the batches in flight that write n's scope, whose
// states may still come.
func (o *ownStates) take(k ownKey, n *envy.Notice) (wait []*ownBatch) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if st, ok := o.m[k]; ok {
		n.State = st.sv
		delete(o.m, k)
		return nil
	}
	for b := range o.inflight {
		if _, writes := b.scopes[n.Scope]; writes {
			wait = append(wait, b)
		}
	}
	return wait
}

// clear forgets every state: after the notices were lost (a resync).
func (o *ownStates) clear() {
	o.mu.Lock()
	o.m = nil
	o.mu.Unlock()
}
