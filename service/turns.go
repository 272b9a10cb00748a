package service

import (
	"context"
	"sync"
)

// turns makes writers take turns while they contend, on the key turnKey
// gives: one var, or a whole scope.
//
// A write is planned from the scope as last committed and applied only if
// the vars it changes are still as planned (ErrStale otherwise), so that
// writers to different vars of a scope share a group commit. Writers to the
// same var, though, all plan from the same version and only the first in a
// batch wins: a writer that is slow to plan again (a loaded machine) could
// lose every round. Once a writer has found its key changed, it and every
// writer of that key that comes after it go one at a time, in
// arrival order, until none is waiting: each then plans from the state its
// predecessor left, so it can lose only to another server.
type turns struct {
	mu     sync.Mutex
	scopes map[string]*turn // by turnKey
}

type turn struct {
	sem     chan struct{} // holds one token while a writer has the turn; waiters queue in order
	holders int           // writers holding or waiting for the turn
}

// busy reports whether writers of the key are taking turns.
func (t *turns) busy(path string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.scopes[path] != nil
}

// take waits for the key's turn and returns the function that gives it
// back; it gives up when ctx ends.
func (t *turns) take(ctx context.Context, path string) (release func(), err error) {
	t.mu.Lock()
	if t.scopes == nil {
		t.scopes = make(map[string]*turn)
	}
	tn := t.scopes[path]
	if tn == nil {
		tn = &turn{sem: make(chan struct{}, 1)}
		t.scopes[path] = tn
	}
	tn.holders++
	t.mu.Unlock()
	leave := func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if tn.holders--; tn.holders == 0 {
			delete(t.scopes, path)
		}
	}
	select {
	case tn.sem <- struct{}{}:
		return func() { <-tn.sem; leave() }, nil
	case <-ctx.Done():
		leave()
		return nil, ctx.Err()
	}
}

// turnKey is what writers take turns on: one var when a write changes that
// var alone, for writers to other vars of the scope don't conflict (a hot
// scope's writers would otherwise go one commit at a time as soon as two
// of them met on one var); the whole scope for any other write.
func turnKey(path string, names []string, whole bool) string {
	if len(names) == 1 && !whole {
		return path + "\x00" + names[0]
	}
	return path
}
