package runner

import (
	"bytes"
	"io"
	"sort"
	"sync"
	"unicode/utf8"
)

// MinRedactLen is the shortest secret value, in characters, that a
// Redactor replaces: shorter ones ("1", "yes", "dev") would turn ordinary
// output into noise and hide nothing worth hiding.
const MinRedactLen = 4

// Redactor is an io.Writer that passes what is written to it on to another
// writer with every secret value replaced by [REDACTED:NAME].
//
// A value split across writes is still caught: the Redactor holds back the
// bytes at the end of a write that could be the start of a secret, and
// only those, until a later write shows whether they are (they are then
// replaced) or are not (they are passed on at once). Flush passes on what
// is held back when no more is coming. When values overlap at the same
// position, the longest one is replaced.
//
// A Redactor is safe for concurrent use.
type Redactor struct {
	mu      sync.Mutex
	w       io.Writer
	byFirst [256][]pattern // by first byte, longest first
	pending []byte         // held back: could be the start of a secret
	err     error
}

type pattern struct {
	value []byte
	repl  []byte
}

// NewRedactor returns a Redactor that writes to w and replaces the values
// of secrets (name → value) that are at least MinRedactLen characters
// long. When two names share a value, the first name in sorted order is
// shown.
func NewRedactor(w io.Writer, secrets map[string]string) *Redactor {
	names := make([]string, 0, len(secrets))
	for n := range secrets {
		names = append(names, n)
	}
	sort.Strings(names)
	seen := map[string]bool{}
	r := &Redactor{w: w}
	for _, n := range names {
		v := secrets[n]
		if utf8.RuneCountInString(v) < MinRedactLen || seen[v] {
			continue
		}
		seen[v] = true
		r.byFirst[v[0]] = append(r.byFirst[v[0]], pattern{value: []byte(v), repl: []byte("[REDACTED:" + n + "]")})
	}
	for i := range r.byFirst {
		ps := r.byFirst[i]
		sort.SliceStable(ps, func(a, b int) bool { return len(ps[a].value) > len(ps[b].value) })
	}
	return r
}

// Write redacts p and passes on all of it except a tail that could be
// the start of a secret. It reports len(p) written unless the underlying
// writer fails.
func (r *Redactor) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return 0, r.err
	}
	r.pending = append(r.pending, p...)
	if err := r.drain(false); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush passes on what is held back: at the end of the stream no more
// bytes can complete a secret.
func (r *Redactor) Flush() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	return r.drain(true)
}

// drain redacts r.pending and writes out what is settled. With final,
// everything is settled.
func (r *Redactor) drain(final bool) error {
	buf := r.pending
	out := make([]byte, 0, len(buf)+16)
	i := 0
scan:
	for i < len(buf) {
		if len(r.byFirst[buf[i]]) == 0 {
			j := i + 1
			for j < len(buf) && len(r.byFirst[buf[j]]) == 0 {
				j++
			}
			out = append(out, buf[i:j]...)
			i = j
			continue
		}
		rest := buf[i:]
		for _, p := range r.byFirst[buf[i]] { // longest first
			if len(p.value) > len(rest) {
				if !final && bytes.HasPrefix(p.value, rest) {
					// A longer secret may still match here: wait for
					// more before deciding anything from i on.
					break scan
				}
				continue
			}
			if bytes.HasPrefix(rest, p.value) {
				out = append(out, p.repl...)
				i += len(p.value)
				continue scan
			}
		}
		out = append(out, buf[i])
		i++
	}
	r.pending = append(r.pending[:0], buf[i:]...)
	if len(out) == 0 {
		return nil
	}
	if _, err := r.w.Write(out); err != nil {
		r.err = err
		return err
	}
	return nil
}
