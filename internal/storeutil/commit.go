package storeutil

import (
	"context"
	"sync/atomic"
	"time"
)

// Group commit, as both stores do it: callers queue ops, one goroutine
// takes whatever is queued (up to a maximum) and runs it as one batch,
// in one transaction with one durable COMMIT, then answers every op. While
// one batch commits, the next one queues up, so the number of commits per
// second stays flat while the number of ops per commit grows with the
// load. What an op is and how a batch runs is the store's: a Committer
// only queues, batches and answers.

// The states of a queued op. The caller and the committer race to move an
// op out of opQueued: the caller to give up when its context ends, the
// committer to run it. Whoever wins decides, so an op whose caller has
// gone is never run, and one that runs is always answered with its real
// outcome.
const (
	opQueued int32 = iota
	opTaken
	opCancelled
)

// Op is one queued op: its caller's context and the store's payload Arg,
// which the batch may also use to hand back results (read them only once
// Do has returned nil).
type Op[T any] struct {
	Arg   T
	ctx   context.Context
	state atomic.Int32
	done  chan error // buffered: the committer never waits for the caller
}

// Context is the caller's context, for the values it carries; the batch
// must not let its end stop a taken op (see Do).
func (o *Op[T]) Context() context.Context { return o.ctx }

// Answer reports the op's outcome to its caller. Each op a batch is given
// must be answered exactly once.
func (o *Op[T]) Answer(err error) { o.done <- err }

// Committer runs queued ops in batches on one goroutine. Its Queue may be
// read for its length (how many ops wait); only the Committer receives
// from it.
type Committer[T any] struct {
	Queue   chan *Op[T]
	max     int
	run     func(batch []*Op[T])
	linger  Linger
	quit    chan struct{} // closed by Close
	stopped chan struct{} // closed when the goroutine has returned
}

// NewCommitter starts a committer that gives run batches of at most max
// ops; up to queue ops may wait before callers block on sending (still
// honouring their contexts). run gets only ops taken for it, whose
// callers wait for their answers, and must answer each one.
func NewCommitter[T any](max, queue int, linger Linger, run func(batch []*Op[T])) *Committer[T] {
	c := &Committer[T]{
		Queue:   make(chan *Op[T], queue),
		max:     max,
		run:     run,
		linger:  linger,
		quit:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	go c.loop()
	return c
}

// Do queues arg and waits for its batch's outcome. A caller whose context
// ends while its op is still queued gets the context's error and the op
// never runs; once the op is taken into a batch, the caller waits for the
// real outcome, since reporting a cancellation for a write that then
// commits would be a lie. After Close, Do answers ErrClosed.
func (c *Committer[T]) Do(ctx context.Context, arg T) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o := &Op[T]{Arg: arg, ctx: ctx, done: make(chan error, 1)}
	select {
	case c.Queue <- o:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.quit:
		return ErrClosed()
	}
	select {
	case err := <-o.done:
		return err
	case <-ctx.Done():
		if o.state.CompareAndSwap(opQueued, opCancelled) {
			return ctx.Err()
		}
		return <-o.done
	case <-c.stopped:
		if o.state.CompareAndSwap(opQueued, opCancelled) {
			return ErrClosed()
		}
		return <-o.done
	}
}

// Close runs what was queued before it, then stops the goroutine. Call it
// once.
func (c *Committer[T]) Close() {
	close(c.quit)
	<-c.stopped
}

func (c *Committer[T]) loop() {
	defer close(c.stopped)
	batch := make([]*Op[T], 0, c.max)
	prev := 0 // the size of the last batch
	for {
		select {
		case o := <-c.Queue:
			batch = append(batch[:0], o)
		case <-c.quit:
			// Finish what was queued before Close, then stop. Ops
			// queued after this are refused by Do, via c.stopped.
			for {
				batch = c.fill(batch[:0])
				if len(batch) == 0 {
					return
				}
				c.take(batch)
				clear(batch)
			}
		}
		batch = c.lingerFor(c.fill(batch), prev)
		prev = len(batch)
		c.take(batch)
		clear(batch) // let the ops' payloads be collected
	}
}

// take moves each op of batch out of the queued state and runs those
// whose callers still wait; one whose context has ended meanwhile is
// answered with its error, unrun.
func (c *Committer[T]) take(batch []*Op[T]) {
	live := make([]*Op[T], 0, len(batch))
	for _, o := range batch {
		if !o.state.CompareAndSwap(opQueued, opTaken) {
			continue // its caller gave up while it waited
		}
		if err := o.ctx.Err(); err != nil {
			o.Answer(err)
			continue
		}
		live = append(live, o)
	}
	if len(live) > 0 {
		c.run(live)
	}
}

// Linger is how long a committer waits for more ops before a batch, when
// the batch before it had several (see linger): it stops once none came
// for Gap, and never waits longer than Max.
type Linger struct{ Gap, Max time.Duration }

// ShortLinger suits a store whose batch is cheap next to its wait (SQLite:
// one writer in process); PostgreSQL's batches, each two round trips and
// the statements of a transaction, shared by every server's writers on
// one revision counter, gain from waiting longer (docs/benchmarks.md).
var ShortLinger = Linger{Gap: 100 * time.Microsecond, Max: time.Millisecond}

// lingerFor waits briefly for more ops when the last batch had several. Its
// callers were answered a moment ago and are likely on their way back
// with their next op; without the wait they miss this batch and the
// callers split into two cohorts that commit in turn, each paying a full
// commit for half the ops. A lone caller (prev ≤ 1) never waits.
func (c *Committer[T]) lingerFor(batch []*Op[T], prev int) []*Op[T] {
	if prev < 2 {
		return batch
	}
	want := min(len(batch)+prev, c.max)
	deadline := time.Now().Add(c.linger.Max)
	timer := time.NewTimer(c.linger.Gap)
	defer timer.Stop()
	for len(batch) < want {
		select {
		case o := <-c.Queue:
			batch = c.fill(append(batch, o))
			left := time.Until(deadline)
			if left <= 0 {
				return batch
			}
			timer.Reset(min(c.linger.Gap, left))
		case <-timer.C:
			return batch
		}
	}
	return batch
}

// fill adds to batch whatever is queued, without waiting.
func (c *Committer[T]) fill(batch []*Op[T]) []*Op[T] {
	for len(batch) < c.max {
		select {
		case o := <-c.Queue:
			batch = append(batch, o)
		default:
			return batch
		}
	}
	return batch
}

// Returning runs f in a store's transaction (run: the store's way of
// running one) and returns f's results once that transaction has
// committed; zero values and the error when it has not.
func Returning[T, A, B any](run func(func(T) error) error, f func(T) (A, B, error)) (A, B, error) {
	var (
		a A
		b B
	)
	err := run(func(t T) error {
		var err error
		a, b, err = f(t)
		return err
	})
	if err != nil {
		var (
			za A
			zb B
		)
		return za, zb, err
	}
	return a, b, nil
}
