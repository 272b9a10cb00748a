// Package auditstream sends every audit entry, as it is made, to
// additional devices besides the store's audit log ("audit devices", as
// Vault calls them): a file rotated by size, the server's stdout, syslog
// (local or remote) and unix sockets. Each line is one JSON object in the
// shape of GET /v1/audit's entries (Options.View); an entry never holds a
// value, and names a token by its id, never its secret.
//
// The streams fail closed: a request that must be audited (a write, a
// reveal) first reserves room for its entry in the streams (Set.Reserve),
// which is refused, with an error the APIs answer 503 to, while no stream
// works and has room. An entry so reserved is never dropped: it waits in
// its streams' bounded queues until written, through failures and retries.
// A request that was then not answered (a reveal refused because no
// stream wrote its entry in time) withdraws it: an entry still waiting is
// replaced by a stand-in that says so, and one already written is
// followed by the stand-in.
// Each stream has one goroutine that writes whatever queued meanwhile in
// one write, so the requests pay for a queue append, not for the device.
//
// The store's audit log remains the record; the streams are a copy for
// whoever watches (a SIEM, a log shipper). The package sees entries only:
// it must never import a store, crypto or HTTP package of this module.
package auditstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/envy-dev/envy"
)

// Options configure the streams of a Set.
type Options struct {
	// View gives an entry the shape its line has (the native API's audit
	// entry, envyhttp.AuditView); required.
	View func(envy.AuditEntry) any
	// MaxSize is the size in bytes beyond which a file stream is rotated
	// (default 100 MiB); Keep is how many rotated files are kept beside
	// it (path.1 the newest; default 5, 0 keeps none).
	MaxSize int64
	Keep    int
	// Queue bounds the entries each stream holds that are not yet written
	// (default 10,000). A stream whose queue is full takes no reservation
	// and drops what is only offered (counted); see Set.Reserve.
	Queue int
	// Retry is how often a failed stream is opened and written again
	// (default 1 s); it is also the Retry-After of a refusal.
	Retry time.Duration
	// WriteTimeout bounds a socket's write and dial (default 5 s).
	WriteTimeout time.Duration
	// Stdout is where the stdout stream writes (default os.Stdout).
	Stdout   io.Writer
	Hostname string // in syslog headers (default os.Hostname)
	Logger   *slog.Logger
}

// The defaults of Options.
const (
	DefaultMaxSize = 100 << 20
	DefaultKeep    = 5
	DefaultQueue   = 10000
	// maxBatch bounds the entries one write carries.
	maxBatch = 512
)

// Set is the configured streams.
type Set struct {
	streams []*stream
	opts    Options
	stop    chan struct{}
	wg      sync.WaitGroup
	closed  sync.Once
}

// stream is one device, its queue and its state.
type stream struct {
	name string // the spec as given: it names the stream in metrics, logs and /readyz
	dev  device
	set  *Set

	mu       sync.Mutex
	queue    []item
	reserved int // room promised to reservations not yet sent
	// inflight is how many entries at the head of queue the write in
	// progress holds: those a withdrawal can no longer replace.
	inflight int
	up       bool // the last open or write worked
	err      error
	since    time.Time // when it went down
	// writing is when the write in progress began (zero between
	// writes): a write that takes longer than Options.WriteTimeout (a
	// reader of stdout that stopped reading, say) makes the stream count
	// as failing until it returns.
	writing time.Time
	wake    chan struct{}

	written, failures, dropped atomic.Uint64
}

type item struct {
	e envy.AuditEntry
	t *ticket // the reservation that sent it, nil for an offer or a stand-in
	k int     // which of its reservation's entries it is
	// counted: the stream counts in t.pending (it was up when the entry
	// came); it stops counting when it fails or writes the entry.
	counted bool
}

// ticket is what a sent reservation waits on: a stream that wrote its
// entries, or every stream that was up failing.
type ticket struct {
	once    sync.Once
	ch      chan error // buffered
	pending atomic.Int32
	set     *Set
}

func (t *ticket) ok() { t.once.Do(func() { t.ch <- nil }) }

func (t *ticket) failed() {
	if t.pending.Add(-1) == 0 {
		t.once.Do(func() { t.ch <- t.set.refusal() })
	}
}

// Open parses the specs (each an --audit-stream value), opens every
// stream and starts its writer. A stream that can't be opened now is an
// error naming it: a server does not start with a device it can't use.
func Open(specs []string, o Options) (*Set, error) {
	if o.View == nil {
		return nil, errors.New("auditstream: Options.View is required")
	}
	if len(specs) == 0 {
		return nil, errors.New("auditstream: no stream given") // a Set of none would refuse every request
	}
	if o.MaxSize == 0 {
		o.MaxSize = DefaultMaxSize
	}
	if o.Keep < 0 {
		o.Keep = 0
	}
	if o.Queue <= 0 {
		o.Queue = DefaultQueue
	}
	if o.Retry <= 0 {
		o.Retry = time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 5 * time.Second
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Hostname == "" {
		o.Hostname, _ = os.Hostname()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Set{opts: o, stop: make(chan struct{})}
	// The same stream given twice, however spelled (syslog: and syslog,
	// file:/a/b and file:/a//b), would write every line twice, and two
	// rotators would share one file: refused, before anything is opened.
	parsed := make([]spec, len(specs))
	seen := map[string]string{}
	for i, raw := range specs {
		sp, err := parseSpec(raw)
		if err != nil {
			return nil, err
		}
		if first, ok := seen[sp.key()]; ok {
			return nil, givenTwice(raw, first)
		}
		seen[sp.key()] = raw
		parsed[i] = sp
	}
	fail := func(err error) (*Set, error) {
		for _, o := range s.streams {
			o.dev.close()
		}
		return nil, err
	}
	for i, raw := range specs {
		st := &stream{name: raw, dev: newDevice(parsed[i], &s.opts), set: s, wake: make(chan struct{}, 1)}
		if err := st.dev.open(); err != nil {
			return fail(fmt.Errorf("invalid --audit-stream %q: %v", raw, err))
		}
		// A file reached by two paths (a symbolic or a hard link).
		for _, o := range s.streams {
			if sameFile(st.dev, o.dev) {
				st.dev.close()
				return fail(givenTwice(raw, o.name))
			}
		}
		st.up = true
		s.streams = append(s.streams, st)
	}
	for _, st := range s.streams {
		s.wg.Add(1)
		go st.run()
	}
	return s, nil
}

// Reserve makes room for n entries that must be audited, in every stream
// that has room, before the request that makes them runs. It fails, with
// an EUnavailable error that names each stream and why it can't take
// them (and a RetryAfter), when no stream that works has room: the
// request must then be refused. send queues the entries into the room
// (at most n of them; nil or none gives the room back) and returns a
// channel that yields nil once a stream has written them, or an error
// once every stream that worked when they came has failed (they stay
// queued, and are written when a stream recovers).
//
// withdraw, after send, takes the entries back from a request that was
// then not answered: with[k] stands in for the kth entry sent (say, the
// entry of a reveal that was refused). In each stream, an entry still
// waiting is replaced by its stand-in, in its place and its room, so the
// stream never writes it; one written already, or in the write under
// way, is followed by its stand-in, queued whatever the room (at most
// one a reserved entry, so the queue's bound holds but for those). The
// channel send gave is then never read; withdraw before send does
// nothing.
func (s *Set) Reserve(n int) (send func([]envy.AuditEntry) <-chan error, withdraw func(with []envy.AuditEntry), err error) {
	holders := make([]*stream, 0, len(s.streams))
	anyUp := false
	for _, st := range s.streams {
		st.mu.Lock()
		if len(st.queue)+st.reserved+n <= s.opts.Queue {
			st.reserved += n
			holders = append(holders, st)
			anyUp = anyUp || st.working()
		}
		st.mu.Unlock()
	}
	if !anyUp {
		s.unreserve(holders, n)
		return nil, nil, s.refusal()
	}
	var (
		once   sync.Once
		sentT  *ticket // the ticket of the entries sent, nil before
		sentN  int
		wmu    sync.Mutex
		wdrawn bool
	)
	send = func(entries []envy.AuditEntry) <-chan error {
		ch := make(chan error, 1)
		sent := false
		once.Do(func() {
			sent = true
			if len(entries) == 0 {
				s.unreserve(holders, n)
				ch <- nil
				return
			}
			entries = entries[:min(len(entries), n)]
			t := &ticket{ch: ch, set: s}
			wmu.Lock()
			sentT, sentN = t, len(entries)
			wmu.Unlock()
			t.pending.Store(int32(len(holders)) + 1) // +1 until every holder has the entries
			counted := int32(0)
			for _, st := range holders {
				st.mu.Lock()
				st.reserved -= n
				for k, e := range entries {
					st.queue = append(st.queue, item{e: e, t: t, k: k, counted: st.up})
				}
				if st.up {
					counted++
				}
				st.mu.Unlock()
				st.poke()
			}
			// Only the streams that were up count; the others write the
			// entries when they recover, and a ticket none counts on has
			// failed already.
			if t.pending.Add(counted-int32(len(holders))-1) == 0 {
				t.once.Do(func() { t.ch <- s.refusal() })
			}
		})
		if !sent {
			ch <- errors.New("auditstream: a reservation sent twice")
		}
		return ch
	}
	withdraw = func(with []envy.AuditEntry) {
		wmu.Lock()
		t, n := sentT, min(sentN, len(with))
		first := !wdrawn && t != nil
		wdrawn = wdrawn || first
		wmu.Unlock()
		if !first || n == 0 {
			return
		}
		for _, st := range holders {
			st.withdraw(t, with[:n])
		}
	}
	return send, withdraw, nil
}

// withdraw replaces the entries of t still waiting in the queue (past the
// write under way) by their stand-ins, with[k] for the kth, and queues
// the stand-in of each one the stream no longer holds there (written, or
// in the write under way), after it.
func (st *stream) withdraw(t *ticket, with []envy.AuditEntry) {
	replaced := make([]bool, len(with))
	st.mu.Lock()
	for i := st.inflight; i < len(st.queue); i++ {
		if it := &st.queue[i]; it.t == t && it.k < len(with) {
			// A stand-in counts for no reservation: the ticket's
			// caller has stopped waiting.
			*it = item{e: with[it.k]}
			replaced[it.k] = true
		}
	}
	for k, e := range with {
		if !replaced[k] {
			st.queue = append(st.queue, item{e: e})
		}
	}
	st.mu.Unlock()
	st.poke()
}

func (s *Set) unreserve(holders []*stream, n int) {
	for _, st := range holders {
		st.mu.Lock()
		st.reserved -= n
		st.mu.Unlock()
	}
}

// Offer queues entries that need not be audited before their request is
// answered (refusals, consumer reports, what follows a change already
// made) in every stream with room; a stream without room drops them and
// counts them (envy_audit_stream_dropped_total).
func (s *Set) Offer(entries ...envy.AuditEntry) {
	for _, st := range s.streams {
		st.mu.Lock()
		room := len(st.queue)+st.reserved+len(entries) <= s.opts.Queue
		if room {
			for _, e := range entries {
				st.queue = append(st.queue, item{e: e})
			}
		}
		st.mu.Unlock()
		if room {
			st.poke()
		} else {
			st.dropped.Add(uint64(len(entries)))
		}
	}
}

// Ready is nil while a stream works and has room for an entry; otherwise
// it is the error Reserve gives, naming each stream and why.
func (s *Set) Ready() error {
	for _, st := range s.streams {
		st.mu.Lock()
		ok := st.working() && len(st.queue)+st.reserved < s.opts.Queue
		st.mu.Unlock()
		if ok {
			return nil
		}
	}
	return s.refusal()
}

// refusal is the error of a request refused because no stream can take
// its entry: which stream is down since when and why, or full.
func (s *Set) refusal() error {
	var why []string
	for _, st := range s.streams {
		st.mu.Lock()
		switch {
		case !st.up:
			why = append(why, fmt.Sprintf("%s failing since %s: %v", st.name, st.since.UTC().Format(time.RFC3339), st.err))
		case !st.working():
			why = append(why, fmt.Sprintf("%s is stuck: a write has taken more than %v", st.name, s.opts.WriteTimeout))
		default:
			why = append(why, fmt.Sprintf("%s is behind: its queue of %d entries is full", st.name, s.opts.Queue))
		}
		st.mu.Unlock()
	}
	return &envy.Error{Code: envy.EUnavailable, RetryAfter: max(s.opts.Retry, time.Second),
		Message: "no audit stream can record the request, so it is refused until one recovers: " + strings.Join(why, "; ")}
}

// working reports whether the stream is up and not stuck in a write; mu
// held.
func (st *stream) working() bool {
	return st.up && (st.writing.IsZero() || time.Since(st.writing) < st.set.opts.WriteTimeout)
}

func (st *stream) poke() {
	select {
	case st.wake <- struct{}{}:
	default:
	}
}

// run is the stream's writer: it writes what is queued, a batch at a
// time; after a failure it opens the device again every Options.Retry
// and writes the same batch, until it works or the Set closes.
func (st *stream) run() {
	defer st.set.wg.Done()
	defer st.dev.close()
	log := st.set.opts.Logger
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	for {
		st.mu.Lock()
		up, n := st.up, min(len(st.queue), maxBatch)
		batch := make([]envy.AuditEntry, n)
		for i := range n {
			batch[i] = st.queue[i].e
		}
		if n > 0 {
			st.writing, st.inflight = time.Now(), n
		}
		st.mu.Unlock()
		if !up || n > 0 {
			var err error
			if !up {
				err = st.dev.open()
			}
			if err == nil && n > 0 {
				err = st.dev.write(st.encode(batch), func(i, max int) []byte { return st.fit(batch[i], max) })
			}
			if err != nil {
				// The batch is not written: a withdrawal may replace
				// its entries until the retry takes them again. (A
				// write that failed part way may have delivered some:
				// a stand-in then follows them.)
				st.mu.Lock()
				st.writing, st.inflight = time.Time{}, 0
				st.mu.Unlock()
				st.fail(err)
				retry.Reset(st.set.opts.Retry)
				select {
				case <-retry.C:
					continue
				case <-st.set.stop:
					return
				}
			}
			st.wrote(n)
			if !up {
				log.Info("audit stream recovered", "stream", st.name)
			}
			if n > 0 {
				continue
			}
		}
		select {
		case <-st.wake:
		case <-st.set.stop:
			return
		}
	}
}

// encode gives each entry its line.
func (st *stream) encode(batch []envy.AuditEntry) [][]byte {
	lines := make([][]byte, 0, len(batch))
	for _, e := range batch {
		lines = append(lines, st.line(e))
	}
	return lines
}

// line is an entry's line: its view as one JSON object.
func (st *stream) line(e envy.AuditEntry) []byte {
	b, err := json.Marshal(st.set.opts.View(e))
	if err != nil { // the view is plain data; this is a bug, said without the entry
		b = []byte(`{"error":"audit entry could not be encoded"}`)
	}
	return b
}

// fit is e's line in at most max bytes, for a device whose messages are
// bounded (a datagram): a longer line is given with as many of e's names
// as fit, the first ones, and "names_truncated": how many were left out;
// every other field is kept, and the entry is never dropped. (A merge of
// 1,000 vars with long names makes an entry of some 260 KB, where a UDP
// datagram carries 64 KB.) A line that does not fit even without names
// is given without them, as short as it gets.
func (st *stream) fit(e envy.AuditEntry, max int) []byte {
	all := e.Names
	cut := func(k int) []byte {
		e.Names = all[:k]
		b := st.line(e)
		if k == len(all) {
			return b
		}
		return withField(b, "names_truncated", len(all)-k)
	}
	if b := cut(len(all)); len(b) <= max {
		return b
	}
	// The most names whose line fits: the least k whose line with k+1
	// is too long (the line with all of them is).
	k := sort.Search(len(all), func(k int) bool { return len(cut(k+1)) > max })
	return cut(k)
}

// withField adds "name":n as the last field of the JSON object b.
func withField(b []byte, name string, n int) []byte {
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return b // not an object: no view gives one
	}
	out := append([]byte(nil), b[:len(b)-1]...)
	if len(b) > 2 {
		out = append(out, ',')
	}
	out = strconv.AppendQuote(out, name)
	out = append(out, ':')
	out = strconv.AppendInt(out, int64(n), 10)
	return append(out, '}')
}

// wrote takes the first n entries off the queue, written, tells their
// reservations, and marks the stream up. It ends the write under way in
// the same hold of the lock: until the entries are off the queue, a
// withdrawal must not take them for unwritten.
func (st *stream) wrote(n int) {
	var oks []*ticket
	st.mu.Lock()
	st.writing, st.inflight = time.Time{}, 0
	for _, it := range st.queue[:n] {
		if it.t != nil {
			oks = append(oks, it.t)
		}
	}
	rest := copy(st.queue, st.queue[n:])
	clear(st.queue[rest:])
	st.queue = st.queue[:rest]
	st.up, st.err = true, nil
	st.mu.Unlock()
	for _, t := range oks {
		t.ok()
	}
	st.written.Add(uint64(n))
}

// fail marks the stream down: every entry it holds that counted on it
// stops counting, so that a reveal waiting on it hears of the failure at
// once rather than when the device comes back.
func (st *stream) fail(err error) {
	st.failures.Add(1)
	st.mu.Lock()
	if st.up {
		st.since = time.Now()
		st.set.opts.Logger.Error("audit stream failing; its entries wait in its queue", "stream", st.name, "queued", len(st.queue), "err", err)
	}
	st.up, st.err = false, err
	var failed []*ticket
	for i := range st.queue {
		if st.queue[i].counted {
			st.queue[i].counted = false
			failed = append(failed, st.queue[i].t)
		}
	}
	st.mu.Unlock()
	for _, t := range failed {
		t.failed()
	}
}

// Close stops the writers once each has written what it holds, or ctx
// ends; what is left unwritten is logged (how many entries, never which).
// A writer stuck in a device's write is not waited for past ctx.
func (s *Set) Close(ctx context.Context) {
	s.closed.Do(func() {
		for _, st := range s.streams {
			for {
				st.mu.Lock()
				left, up := len(st.queue), st.up
				st.mu.Unlock()
				if left == 0 || !up || ctx.Err() != nil {
					break
				}
				st.poke()
				select {
				case <-ctx.Done():
				case <-time.After(10 * time.Millisecond):
				}
			}
		}
		close(s.stop)
		stopped := make(chan struct{})
		go func() {
			s.wg.Wait()
			close(stopped)
		}()
		select {
		case <-stopped:
		case <-ctx.Done():
		}
		for _, st := range s.streams {
			st.mu.Lock()
			n := len(st.queue)
			st.mu.Unlock()
			if n > 0 {
				s.opts.Logger.Error("audit stream closed with entries unwritten (the store's audit log has them)", "stream", st.name, "entries", n)
			}
		}
	})
}
