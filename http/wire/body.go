package wire

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/andybalholm/brotli"

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
	// Words are the API's words for each refusal.
	Words Words
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
	raw := http.MaxBytesReader(w, r.Body, limit)
	body, err := decode(raw, r.Header.Values("Content-Encoding"))
	if err != nil {
		if ue, ok := err.(unknownEncoding); ok {
			return nil, b.Words.encoding(string(ue))
		}
		return nil, b.readError(err)
	}
	// One byte beyond the limit tells a body at the limit from a larger
	// one, without inflating the rest.
	data, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return nil, b.readError(err)
	}
	if int64(len(data)) > limit {
		return nil, b.Words.tooLarge(limit)
	}
	return data, nil
}

func (b *Body) limit() int64 {
	if b.Limit <= 0 {
		return DefaultLimit
	}
	return b.Limit
}

func (b *Body) readError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return b.Words.tooLarge(mbe.Limit)
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
