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
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/andybalholm/brotli"

	"github.com/envy-dev/envy"
)

func read(t *testing.T, b *Body, body string) (json.RawMessage, error) {
	t.Helper()
	r := httptest.NewRequest("POST", "/", strings.NewReader(body))
	return b.Value(httptest.NewRecorder(), r)
}

func TestABodyIsRefusedInTheDialectsWordsOrTheDefaultOnes(t *testing.T) {
	own := envy.Errorf(envy.EBadRequest, "own")
	words := &Body{Limit: 8, Words: Words{
		TooLarge:    func(int64) error { return own },
		Unreadable:  own,
		Empty:       own,
		Malformed:   func(error) error { return own },
		InvalidText: own,
	}}
	for _, tc := range []struct {
		name, body, def string
	}{
		{"an empty body", " \n", "a JSON request body is required"},
		{"a body over the limit", `"123456789"`, "the request body is larger than 8 bytes"},
		{"malformed JSON, at its byte", `{"a":`, "malformed JSON at byte 5"},
		{"data after the value", `{} {}`, "malformed JSON at byte 4"},
		{"bytes that are not UTF-8", "\"\xff\"", "body: the body holds text that is not valid UTF-8"},
		{"a lone surrogate", `"\ud800"`, "body: the body holds text that is not valid UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := read(t, &Body{Limit: 8}, tc.body); envy.ErrorMessage(err) != tc.def {
				t.Errorf("default: %v, want %q", err, tc.def)
			}
			if _, err := read(t, words, tc.body); err != own {
				t.Errorf("the dialect's words: %v, want its own error", err)
			}
		})
	}
}

func TestSyntaxFirstDecidesWhatABodyBothMalformedAndNotUTF8Reads(t *testing.T) {
	body := "\xff"
	if _, err := read(t, &Body{}, body); envy.ErrorCode(err) != envy.EInvalid {
		t.Errorf("encoding first: %v, want invalid_utf8", err)
	}
	if _, err := read(t, &Body{SyntaxFirst: true}, body); envy.ErrorMessage(err) != "malformed JSON at byte 1" {
		t.Errorf("syntax first: %v, want malformed", err)
	}
}

func TestOnlyTextThatEncodingJSONWouldAlterIsRefused(t *testing.T) {
	for body, refused := range map[string]bool{
		`"\ud83d\ude80"`: false, // a pair
		`"\\ud800"`:      false, // an escaped backslash, then text
		`"é🚀"`:           false,
		`"\ud800"`:       true,
		`"\udc00"`:       true,
		`"\ud800\u0041"`: true,
		`"\ud800x"`:      true,
		`"\ud83d"`:       true, // a high half at the very end
	} {
		raw, err := read(t, &Body{}, body)
		if got := err != nil; got != refused {
			t.Errorf("%s: refused %v (%v), want %v", body, got, err, refused)
		}
		if !refused {
			var s string
			if json.Unmarshal(raw, &s) != nil || strings.ContainsRune(s, '\uFFFD') {
				t.Errorf("%s: read as %q", body, s)
			}
		}
	}
}

func TestObjectRefusesAnotherJSONType(t *testing.T) {
	for _, body := range []string{`[]`, `"s"`, `1`, `null`} {
		r := httptest.NewRequest("POST", "/", strings.NewReader(body))
		if _, err := (&Body{}).Object(httptest.NewRecorder(), r); envy.ErrorCode(err) != envy.EInvalid {
			t.Errorf("%s: %v, want a type error", body, err)
		}
	}
	r := httptest.NewRequest("POST", "/", strings.NewReader(`{"b":1,"a":"x","c":2}`))
	o, err := (&Body{}).Object(httptest.NewRecorder(), r)
	if err != nil || len(o.Members) != 3 {
		t.Fatalf("%v %v", o, err)
	}
	err = o.Only("a")
	if e := envy.AsError(err); e == nil || len(e.Fields) != 2 || e.Fields[0].Loc != "body.b" || e.Fields[1].Loc != "body.c" {
		t.Errorf("Only = %v, want body.b and body.c refused in order", err)
	}
}

// encode compresses data as the Content-Encoding enc does.
func encode(t *testing.T, enc string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	switch enc {
	case "gzip":
		w = gzip.NewWriter(&buf)
	case "br":
		w = brotli.NewWriter(&buf)
	case "deflate":
		w = zlib.NewWriter(&buf)
	case "raw-deflate":
		w, _ = flate.NewWriter(&buf, flate.BestSpeed)
	default:
		t.Fatalf("no encoder for %s", enc)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readEncoded(b *Body, enc string, body []byte) ([]byte, error) {
	r := httptest.NewRequest("POST", "/", bytes.NewReader(body))
	r.Header.Set("Content-Encoding", enc)
	return b.Bytes(httptest.NewRecorder(), r)
}

func TestCompressedBodiesAreReadDecoded(t *testing.T) {
	value := `{"value":"` + strings.Repeat("héllo $HOME #1 \"q\"\n", 100) + `"}`
	for _, enc := range []string{"gzip", "br", "deflate", "raw-deflate"} {
		t.Run(enc, func(t *testing.T) {
			header := enc
			if enc == "raw-deflate" {
				header = "deflate" // as some clients send it
			}
			got, err := readEncoded(&Body{}, header, encode(t, enc, []byte(value)))
			if err != nil || string(got) != value {
				t.Fatalf("read %q, %v", got, err)
			}
		})
	}
	t.Run("codings in a list are undone last first", func(t *testing.T) {
		body := encode(t, "br", encode(t, "gzip", []byte(value)))
		if got, err := readEncoded(&Body{}, "gzip, br", body); err != nil || string(got) != value {
			t.Fatalf("read %q, %v", got, err)
		}
	})
	t.Run("identity and upper case are understood", func(t *testing.T) {
		if got, err := readEncoded(&Body{}, "GZIP", encode(t, "gzip", []byte(value))); err != nil || string(got) != value {
			t.Fatalf("read %q, %v", got, err)
		}
		if got, err := readEncoded(&Body{}, "identity", []byte(value)); err != nil || string(got) != value {
			t.Fatalf("read %q, %v", got, err)
		}
	})
}

func TestTheLimitAppliesToTheDecodedBody(t *testing.T) {
	const limit = 1 << 20
	// 64 MiB of zeros compress to 64 KiB with gzip and to a few hundred
	// bytes with brotli; none may be inflated past the limit.
	zeros := make([]byte, 64<<20)
	for _, enc := range []string{"gzip", "br", "deflate"} {
		t.Run(enc, func(t *testing.T) {
			bomb := encode(t, enc, zeros)
			if len(bomb) >= limit {
				t.Fatalf("the bomb is %d bytes, not under the limit", len(bomb))
			}
			in := &countingReader{r: bytes.NewReader(bomb)}
			r := httptest.NewRequest("POST", "/", in)
			r.Header.Set("Content-Encoding", enc)
			got, err := (&Body{Limit: limit}).Bytes(httptest.NewRecorder(), r)
			if envy.ErrorCode(err) != envy.ETooLarge || got != nil {
				t.Fatalf("%d bytes, %v; want 413", len(got), err)
			}
			// The limit is some 1/64 of the bomb: reading much more than
			// that of it means the decoded body was read past the limit.
			// (Brotli's bomb is too small to tell.)
			if enc != "br" && in.n > int64(len(bomb))/4 {
				t.Errorf("%d of the bomb's %d bytes were read: the decompressed body must be read only up to its limit", in.n, len(bomb))
			}
			if !strings.Contains(envy.ErrorMessage(err), "larger than 1048576 bytes") {
				t.Errorf("message %q", envy.ErrorMessage(err))
			}
		})
	}
	t.Run("a body exactly at the limit is read", func(t *testing.T) {
		body := bytes.Repeat([]byte("a"), limit)
		if got, err := readEncoded(&Body{Limit: limit}, "gzip", encode(t, "gzip", body)); err != nil || len(got) != limit {
			t.Fatalf("%d bytes, %v", len(got), err)
		}
	})
}

func TestAnUnknownOrBrokenEncodingIsRefused(t *testing.T) {
	for _, enc := range []string{"compress", "zstd", "gzip, gzip, gzip, gzip"} {
		_, err := readEncoded(&Body{}, enc, []byte("{}"))
		if envy.ErrorCode(err) != envy.EUnsupportedMedia || !strings.Contains(envy.ErrorMessage(err), "not supported") {
			t.Errorf("%s: %v, want 415", enc, err)
		}
	}
	own := envy.Errorf("own", "own")
	if _, err := readEncoded(&Body{Words: Words{Encoding: func(string) error { return own }}}, "zstd", []byte("{}")); err != own {
		t.Errorf("the API's words: %v", err)
	}
	for _, enc := range []string{"gzip", "br", "deflate"} {
		if _, err := readEncoded(&Body{}, enc, []byte(`{"not":"compressed"}`)); envy.ErrorCode(err) != envy.EBadRequest {
			t.Errorf("%s of plain text: %v, want 400", enc, err)
		}
	}
}

func TestABodyThatDoesNotArriveInTimeIsRefused(t *testing.T) {
	// A real connection: the deadline is the connection's.
	b := &Body{Timeout: 100 * time.Millisecond}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := b.Bytes(w, r)
		w.WriteHeader(400)
		io.WriteString(w, envy.ErrorMessage(err))
	}))
	defer srv.Close()
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"a\":")
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no reply while the body is late: %v", err)
	}
	msg, _ := io.ReadAll(res.Body)
	if !strings.Contains(string(msg), "did not arrive within 100ms") {
		t.Errorf("%d %s", res.StatusCode, msg)
	}
}

func TestTheBytesOfBodiesInFlightAreBounded(t *testing.T) {
	budget := NewBudget(1000)
	// Request A holds 900 bytes: its body is still coming.
	pr, pw := io.Pipe()
	ctxA, endA := context.WithCancel(context.Background())
	reqA := httptest.NewRequest("POST", "/", pr).WithContext(ctxA)
	reqA.ContentLength = 950
	doneA := make(chan error, 1)
	go func() {
		_, err := (&Body{Budget: budget, Timeout: time.Minute}).Bytes(httptest.NewRecorder(), reqA)
		doneA <- err
	}()
	pw.Write(bytes.Repeat([]byte("a"), 900))

	// B's 500 bytes find no room while A holds its 900.
	tryB := func() error {
		// Each try a request that ends, as a server's do: a B that got
		// its room before A took A's gives it back.
		ctx, end := context.WithCancel(context.Background())
		defer end()
		r := httptest.NewRequest("POST", "/", strings.NewReader(strings.Repeat("b", 500))).WithContext(ctx)
		_, err := (&Body{Budget: budget, Timeout: 50 * time.Millisecond}).Bytes(httptest.NewRecorder(), r)
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	var err error
	for err = tryB(); envy.ErrorCode(err) != envy.EUnavailable && time.Now().Before(deadline); err = tryB() {
	}
	if e := envy.AsError(err); e == nil || e.Code != envy.EUnavailable || e.RetryAfter <= 0 {
		t.Fatalf("B: %v, want 503 with a Retry-After", err)
	}
	// When A's request ends its room comes back.
	pw.CloseWithError(io.ErrUnexpectedEOF)
	<-doneA
	endA()
	for err = tryB(); err != nil && time.Now().Before(deadline); err = tryB() {
	}
	if err != nil {
		t.Fatalf("B after A ended: %v", err)
	}
}

// countingReader counts the bytes read from r.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// A member named twice is refused with a 400 that names it, at any depth
// that is read as an object: encoding/json would keep the last, and two
// readers of one body must not disagree on what it says.
func TestAMemberNamedTwiceIsRefusedNamingIt(t *testing.T) {
	var ws Words
	for _, tc := range []struct{ body, loc, name string }{
		{`{"value":"a","value":"b"}`, "body", "value"},
		{`{"a":1,"b":2,"a":3}`, "body", "a"},
		{`{"v\u0061lue":"a","value":"b"}`, "body", "value"}, // the same name, escaped
	} {
		_, err := ws.ObjectAt("body", json.RawMessage(tc.body))
		e := envy.AsError(err)
		if e == nil || e.Code != envy.EBadRequest || !strings.Contains(e.Message, `"`+tc.name+`"`) {
			t.Fatalf("%s: %v; want a 400 (bad_request) naming %q", tc.body, err, tc.name)
		}
		if len(e.Fields) != 1 || e.Fields[0].Loc != tc.loc+"."+tc.name {
			t.Errorf("%s: fields %+v, want one at %s.%s", tc.body, e.Fields, tc.loc, tc.name)
		}
	}
	o, err := ws.ObjectAt("body", json.RawMessage(`{"outer":{"x":1,"x":2}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Object("outer"); envy.ErrorCode(err) != envy.EBadRequest || !strings.Contains(envy.ErrorMessage(err), `"x"`) {
		t.Errorf("a nested object with x twice: %v; want a 400 naming x", err)
	}
	if o, err := ws.ObjectAt("body", json.RawMessage(`{"a":1,"b":2}`)); err != nil || len(o.Order) != 2 {
		t.Errorf("distinct members: %v %+v", err, o)
	}
}

// TestReadAllReadsWhateverTheBodyHolds: the buffer starts at the size the
// body says it has, and the body is read whole whether it holds that, less
// or more (a compressed body decodes to more), as io.ReadAll reads it.
func TestReadAllReadsWhateverTheBodyHolds(t *testing.T) {
	for _, c := range []struct {
		body string
		size int64
	}{
		{"", 0}, {"", 5}, {"abc", 3}, {"abc", 10}, {strings.Repeat("x", 5000), 3}, {strings.Repeat("y", 3000), -1}, {"abc", 2 << 20},
	} {
		for _, r := range []io.Reader{strings.NewReader(c.body), iotest.OneByteReader(strings.NewReader(c.body)), iotest.DataErrReader(strings.NewReader(c.body))} {
			got, err := readAll(r, c.size)
			if err != nil || string(got) != c.body {
				t.Errorf("a body of %d bytes said to hold %d: read %d bytes, %v", len(c.body), c.size, len(got), err)
			}
		}
	}
	broken := errors.New("broken")
	if _, err := readAll(io.MultiReader(strings.NewReader("ab"), iotest.ErrReader(broken)), 10); err != broken {
		t.Errorf("a body that fails: %v, want its error", err)
	}
}

// chunks gives its parts one Read each, calling between (when set) after
// the first.
type chunks struct {
	parts   []string
	between func()
}

func (c *chunks) Read(p []byte) (int, error) {
	if len(c.parts) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.parts[0])
	c.parts = c.parts[1:]
	if c.between != nil {
		c.between()
		c.between = nil
	}
	return n, nil
}

// TestABodyReadAfterItsRequestEndedHoldsNoRoom: a body that goes on
// arriving (a decoder still giving bytes, a stream reset with data
// buffered) after its request's context ended takes no room for it: the
// room it held was given back when the request ended, and room taken
// after would never be.
func TestABodyReadAfterItsRequestEndedHoldsNoRoom(t *testing.T) {
	budget := NewBudget(1000)
	ctx, end := context.WithCancel(context.Background())
	body := &chunks{parts: []string{strings.Repeat("a", 400), strings.Repeat("b", 400)}, between: end}
	r := httptest.NewRequest("POST", "/", body).WithContext(ctx)
	r.ContentLength = 800
	if _, err := (&Body{Budget: budget, Timeout: time.Minute}).Bytes(httptest.NewRecorder(), r); envy.ErrorCode(err) != envy.EUnavailable {
		t.Fatalf("a body read on after its request ended: %v, want refused", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !budget.sem.TryAcquire(1000) {
		if time.Now().After(deadline) {
			t.Fatal("room of the budget is still held after the request ended")
		}
		time.Sleep(time.Millisecond)
	}
	if got, err := readAll(strings.NewReader("abc"), 1<<20); err != nil || string(got) != "abc" || cap(got) > maxPresize {
		t.Fatalf("a 3-byte body said to hold 1 MiB: %q, %v, a buffer of %d bytes", got, err, cap(got))
	}
}
