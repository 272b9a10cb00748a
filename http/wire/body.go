package wire

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/andybalholm/brotli"
	"golang.org/x/sync/semaphore"

	"github.com/envy-dev/envy"
)

// DefaultLimit is the largest request body a Body with no Limit reads:
// the default of --max-body.
const DefaultLimit = 16 << 20

// Body reads request bodies: decoded from their Content-Encoding (gzip,
// br or deflate), at most Limit bytes once decoded, as JSON whose text
// encoding/json would not alter.
type Body struct {
	// Limit is the largest body read, as sent and once decoded (413
	// beyond); 0 means DefaultLimit. A compressed body is inflated only up
	// to the limit, so a compression bomb costs no more than an honest
	// body.
	Limit int64
	// RequireJSON refuses a body whose Content-Type is not
	// application/json (415), as the native API does; dialects read any
	// Content-Type as JSON, as their platforms' clients send it.
	RequireJSON bool
	// KeepInvalidText keeps text that is not valid UTF-8 in the strings
	// decoded, for the domain's validation to refuse at its field (the
	// native API); otherwise such a body is refused whole.
	KeepInvalidText bool
	// SyntaxFirst checks the JSON syntax before the text's encoding, so
	// that a body that is both malformed and not UTF-8 reads as malformed.
	SyntaxFirst bool
	// Timeout bounds the time to read a body, from its first byte to its
	// last (400 beyond), so that a slow client can't hold a connection
	// and its memory; 0 means DefaultTimeout.
	Timeout time.Duration
	// Budget, when set, bounds the bytes of bodies that all requests of a
	// server hold at once (503 when a body waits for room longer than
	// Timeout).
	Budget *Budget
	// Words are the API's words for each refusal.
	Words Words
}

// DefaultTimeout is the time a Body with no Timeout waits for a body.
const DefaultTimeout = 30 * time.Second

// Budget bounds the bytes of request bodies held at once across a server.
// Each request takes room as its body arrives (decoded) and gives it back
// when its handler returns.
type Budget struct {
	sem *semaphore.Weighted
}

// NewBudget returns a budget of max bytes.
func NewBudget(max int64) *Budget { return &Budget{sem: semaphore.NewWeighted(max)} }

// budgetReader takes room in a budget for every byte it reads, waiting
// for it until deadline at most (or until ctx, the request's, ends) when
// there is none.
type budgetReader struct {
	r        io.Reader
	b        *Budget
	ctx      context.Context
	deadline time.Time
	h        *budgetHold
}

// budgetHold is the room a request's body holds, given back once when the
// request ends (release); a read after that takes none.
type budgetHold struct {
	mu       sync.Mutex
	taken    int64
	released bool
}

func (h *budgetHold) release(b *Budget) {
	h.mu.Lock()
	n := h.taken
	h.taken, h.released = 0, true
	h.mu.Unlock()
	b.sem.Release(n)
}

func (br budgetReader) Read(p []byte) (int, error) {
	n, err := br.r.Read(p)
	if n > 0 {
		if br.ctx.Err() != nil { // the request ended: its room is given back
			return 0, ErrNoRoom
		}
		// Room at once is the common case: a context with a deadline
		// (and its timer) only for a read that has to wait.
		if !br.b.sem.TryAcquire(int64(n)) {
			ctx, cancel := context.WithDeadline(br.ctx, br.deadline)
			aerr := br.b.sem.Acquire(ctx, int64(n))
			cancel()
			if aerr != nil {
				return 0, ErrNoRoom
			}
		}
		br.h.mu.Lock()
		if br.h.released { // it ended meanwhile: nobody would give this back
			br.h.mu.Unlock()
			br.b.sem.Release(int64(n))
			return 0, ErrNoRoom
		}
		br.h.taken += int64(n)
		br.h.mu.Unlock()
	}
	return n, err
}

// ErrNoRoom is what a read from a Budget's Reader fails with when the
// body finds no room in time, or goes on arriving after its request
// ended; NoRoom is its refusal.
var ErrNoRoom = errors.New("no room for the body")

// NoRoom is the refusal of a body that found no room in its server's
// Budget within its Timeout: 503, retry in a second.
func NoRoom() error {
	return &envy.Error{Code: envy.EUnavailable, RetryAfter: time.Second,
		Message: "the server holds as many request bodies as it may; retry"}
}

// Reader returns body, reading which takes room in b for every byte read,
// as a Body with this Budget reads: a read with no room waits for it until
// deadline at most (or until ctx ends), then fails with ErrNoRoom. The
// room is given back when ctx, the request's, ends: its handler holds
// what it read until then. Readers of bodies that are not a Body's (a
// dashboard form) read through it, so that every body counts against the
// one budget.
func (b *Budget) Reader(ctx context.Context, body io.Reader, deadline time.Time) io.Reader {
	h := &budgetHold{}
	context.AfterFunc(ctx, func() { h.release(b) })
	return budgetReader{r: body, b: b, ctx: ctx, deadline: deadline, h: h}
}

// Bytes reads the request body, decoded. An absent body reads as nil.
func (b *Body) Bytes(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if b.RequireJSON {
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "application/json" {
			return nil, envy.Errorf(envy.EUnsupportedMedia, "the request body must be application/json")
		}
	}
	limit := b.limit()
	if r.ContentLength > limit {
		return nil, b.Words.tooLarge(limit)
	}
	timeout := b.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	rc := http.NewResponseController(w)
	deadline := rc.SetReadDeadline(time.Now().Add(timeout)) == nil
	raw := http.MaxBytesReader(w, r.Body, limit)
	body, err := decode(raw, r.Header.Values("Content-Encoding"))
	if err != nil {
		if ue, ok := err.(unknownEncoding); ok {
			return nil, b.Words.encoding(string(ue))
		}
		return nil, b.readError(w, err, timeout)
	}
	if b.Budget != nil {
		// The room is given back when the request ends: the handler holds
		// the body until then.
		body = b.Budget.Reader(r.Context(), body, time.Now().Add(timeout))
	}
	// One byte beyond the limit tells a body at the limit from a larger
	// one, without inflating the rest.
	data, err := readAll(io.LimitReader(body, limit+1), r.ContentLength)
	if err != nil {
		return nil, b.readError(w, err, timeout)
	}
	if int64(len(data)) > limit {
		return nil, b.Words.tooLarge(limit)
	}
	// A compressed body may end before what carried it did (its
	// trailer, padding): read that too, within the limit and the
	// deadline, so the connection is left at the next request's start
	// rather than closed for a body left unread.
	_, _ = io.Copy(io.Discard, raw)
	if deadline {
		rc.SetReadDeadline(time.Time{})
	}
	return data, nil
}

// readAll is io.ReadAll whose buffer starts at the size the body says it
// has (size, when known; maxPresize at most), plus the byte that tells a
// body past the limit: one allocation for most bodies rather than a
// buffer grown from 512 bytes. A body longer than it said (or decoded to
// more) still reads whole.
func readAll(r io.Reader, size int64) ([]byte, error) {
	if size <= 0 {
		return io.ReadAll(r)
	}
	// No more than a small body's worth before any byte came: what a
	// client says it will send costs the server nothing until it does.
	b := make([]byte, 0, min(size+1, maxPresize))
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // room for more
		}
	}
}

// maxPresize bounds the buffer readAll makes before a body's bytes come.
const maxPresize = 16 << 10

func (b *Body) limit() int64 {
	if b.Limit <= 0 {
		return DefaultLimit
	}
	return b.Limit
}

// readError words a failed read. The rest of the body is still on the
// connection, or never coming: the reply closes it rather than wait to
// discard it.
func (b *Body) readError(w http.ResponseWriter, err error, timeout time.Duration) error {
	w.Header().Set("Connection", "close")
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return b.Words.tooLarge(mbe.Limit)
	case errors.Is(err, ErrNoRoom):
		return NoRoom()
	case errors.Is(err, os.ErrDeadlineExceeded):
		return envy.Errorf(envy.EBadRequest, "the request body did not arrive within %s", timeout)
	}
	return or(b.Words.Unreadable, errUnreadable)
}

// Value reads the request body as one JSON value.
func (b *Body) Value(w http.ResponseWriter, r *http.Request) (json.RawMessage, error) {
	data, err := b.Bytes(w, r)
	if err != nil {
		return nil, err
	}
	return b.Parse(data)
}

// Parse parses a body that Bytes read as one JSON value.
func (b *Body) Parse(data []byte) (json.RawMessage, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, or(b.Words.Empty, errEmpty)
	}
	check := !b.KeepInvalidText
	if check && !b.SyntaxFirst && !ValidText(data) {
		return nil, or(b.Words.InvalidText, errInvalidText)
	}
	var raw json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, b.Words.malformed(err)
	}
	if check && b.SyntaxFirst && !ValidText(data) {
		return nil, or(b.Words.InvalidText, errInvalidText)
	}
	return raw, nil
}

// Object reads the request body as one JSON object.
func (b *Body) Object(w http.ResponseWriter, r *http.Request) (*Object, error) {
	raw, err := b.Value(w, r)
	if err != nil {
		return nil, err
	}
	return b.Words.ObjectAt("body", raw)
}

// unknownEncoding is a Content-Encoding that decode does not know.
type unknownEncoding string

func (e unknownEncoding) Error() string { return "unknown Content-Encoding " + string(e) }

// maxEncodings bounds the codings a body may be wrapped in.
const maxEncodings = 3

// decode undoes the Content-Encodings of a body, the last applied first.
func decode(r io.Reader, headers []string) (io.Reader, error) {
	var codings []string
	for _, h := range headers {
		for _, c := range strings.Split(h, ",") {
			if c = strings.ToLower(strings.TrimSpace(c)); c != "" && c != "identity" {
				codings = append(codings, c)
			}
		}
	}
	if len(codings) > maxEncodings {
		return nil, unknownEncoding(strings.Join(codings, ", "))
	}
	for i := len(codings) - 1; i >= 0; i-- {
		var err error
		switch codings[i] {
		case "gzip", "x-gzip":
			r, err = gzip.NewReader(r)
		case "br":
			r = brotli.NewReader(r)
		case "deflate":
			r, err = inflate(r)
		default:
			return nil, unknownEncoding(codings[i])
		}
		if err != nil {
			return nil, err
		}
	}
	return r, nil
}

// inflate reads "deflate", which HTTP defines as the zlib format and some
// clients send as raw DEFLATE: a zlib header tells them apart.
func inflate(r io.Reader) (io.Reader, error) {
	br := bufio.NewReader(r)
	h, err := br.Peek(2)
	if err == nil && h[0]&0x0F == 8 && (uint16(h[0])<<8|uint16(h[1]))%31 == 0 {
		return zlib.NewReader(br)
	}
	return flate.NewReader(br), nil
}
