package postgres

import "sync"

// batcher answers many callers' questions with one statement: a caller
// queues its question (add), and whatever is queued when a statement is
// sent goes in it. Each statement is sent after its questions were
// queued, so it sees every change committed before the callers asked;
// under load, one statement answers every question that came while the
// one before it ran. run answers a batch (and must let each caller go).
type batcher[T any] struct {
	run func([]T)

	mu      sync.Mutex
	queue   []T
	running bool // a goroutine is sending statements; it stops once the queue is empty
}

// add queues q for the next statement.
func (b *batcher[T]) add(q T) {
	b.mu.Lock()
	b.queue = append(b.queue, q)
	start := !b.running
	b.running = true
	b.mu.Unlock()
	if start {
		go b.loop()
	}
}

func (b *batcher[T]) loop() {
	for {
		b.mu.Lock()
		batch := b.queue
		b.queue = nil
		if len(batch) == 0 {
			b.running = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		b.run(batch)
	}
}
