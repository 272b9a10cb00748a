package http

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
)

func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write([]byte(s))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func brotlied(t *testing.T, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := brotli.NewWriter(&buf)
	w.Write([]byte(s))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestTheNativeAPIReadsCompressedBodies(t *testing.T) {
	e := newTestEnv(t, Options{MaxBody: 64 << 10})
	v := e.URL + "/v1/scopes/acme/web/-/vars/"
	value := strings.Repeat("quote \" newline \n unicode é🙂 $HOME #x ", 100)
	body := `{"value":` + jsonString(value) + `,"secret":true}`

	wantStatus(t, do(t, "PUT", v+"GZ", e.Admin, gzipped(t, body), "Content-Encoding", "gzip"), 201)
	wantStatus(t, do(t, "PUT", v+"BR", e.Admin, brotlied(t, body), "Content-Encoding", "br"), 201)
	wantStatus(t, do(t, "PATCH", e.URL+"/v1/scopes/acme/web/-/vars", e.Admin, gzipped(t, `{"BULK":`+jsonString(value)+`}`), "Content-Encoding", "gzip"), 200)
	for _, name := range []string{"GZ", "BR", "BULK"} {
		r := do(t, "GET", v+name+"?reveal=true", e.Admin, nil)
		if got := r.JSON(t)["value"]; got != value {
			t.Errorf("%s read back as %q", name, got)
		}
	}

	t.Run("a compressed body over --max-body once decoded is 413", func(t *testing.T) {
		big := `{"value":"` + strings.Repeat("0", 65<<10) + `"}`
		bomb := brotlied(t, big)
		if len(bomb) > 1024 {
			t.Fatalf("bomb of %d bytes", len(bomb))
		}
		wantProblem(t, do(t, "PUT", v+"BOMB", e.Admin, bomb, "Content-Encoding", "br"), 413, "payload_too_large", "")
	})
	t.Run("an unknown encoding is 415", func(t *testing.T) {
		r := do(t, "PUT", v+"Z", e.Admin, []byte(body), "Content-Encoding", "zstd")
		wantProblem(t, r, 415, "unsupported_media_type", "")
		if !strings.Contains(string(r.Body), `\"zstd\" is not supported`) {
			t.Errorf("detail: %s", r.Body)
		}
	})
	t.Run("a body that does not decode is 400", func(t *testing.T) {
		wantProblem(t, do(t, "PUT", v+"Z", e.Admin, []byte(body), "Content-Encoding", "gzip"), 400, "bad_request", "")
	})
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
