package dialect

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/envy-dev/envy"
)

func read(t *testing.T, b *Body, body string) (json.RawMessage, error) {
	t.Helper()
	r := httptest.NewRequest("POST", "/", strings.NewReader(body))
	return b.Read(httptest.NewRecorder(), r)
}

func TestABodyIsRefusedInTheDialectsWordsOrTheDefaultOnes(t *testing.T) {
	own := envy.Errorf(envy.EBadRequest, "own")
	words := &Body{
		Limit:       8,
		TooLarge:    func(int64) error { return own },
		Unreadable:  own,
		Empty:       own,
		Malformed:   func(error) error { return own },
		InvalidUTF8: own,
	}
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
	m, err := (&Body{}).Object(httptest.NewRecorder(), r)
	if err != nil || len(m) != 3 {
		t.Fatalf("%v %v", m, err)
	}
	if got := Unknown(m, "a"); strings.Join(got, ",") != "b,c" {
		t.Errorf("Unknown = %v, want [b c] in order", got)
	}
}

type entry struct {
	status int
	name   string
}

func newTestErrors(log *slog.Logger) *Errors[entry] {
	return &Errors[entry]{
		Dialect: "test",
		Logger:  log,
		Codes: map[envy.Code]entry{
			envy.ERateLimited: {http.StatusTooManyRequests, "slow down"},
			envy.EInternal:    {http.StatusInternalServerError, "internal"},
		},
		Envelope: func(c entry, e *envy.Error) (int, any) {
			return c.status, map[string]string{"name": c.name, "detail": e.Message}
		},
		ContentType: ContentTypeJSONUTF8,
	}
}

func TestErrorsAnswerThroughTheDialectsTableAndEnvelope(t *testing.T) {
	var logs bytes.Buffer
	x := newTestErrors(slog.New(slog.NewJSONHandler(&logs, nil)))
	r := httptest.NewRequest("GET", "/", nil)

	t.Run("a 429 says when to retry, in whole seconds and at least one", func(t *testing.T) {
		for d, want := range map[time.Duration]string{0: "1", 300 * time.Millisecond: "1", 1500 * time.Millisecond: "2", 3 * time.Second: "3"} {
			w := httptest.NewRecorder()
			x.Write(w, r, &envy.Error{Code: envy.ERateLimited, Message: "m", RetryAfter: d})
			if w.Code != 429 || w.Header().Get("Retry-After") != want {
				t.Errorf("%v: %d Retry-After %q, want %q", d, w.Code, w.Header().Get("Retry-After"), want)
			}
		}
	})
	t.Run("an error carries no ETag and the dialect's Content-Type", func(t *testing.T) {
		w := httptest.NewRecorder()
		w.Header().Set("ETag", `"3"`)
		x.Write(w, r, envy.Errorf(envy.ERateLimited, "m"))
		if w.Header().Get("ETag") != "" || w.Header().Get("Content-Type") != ContentTypeJSONUTF8 {
			t.Errorf("headers %v", w.Header())
		}
		if w.Body.String() != "{\"detail\":\"m\",\"name\":\"slow down\"}\n" {
			t.Errorf("body %s", w.Body)
		}
	})
	t.Run("a code the table lacks is answered as internal, without Retry-After", func(t *testing.T) {
		w := httptest.NewRecorder()
		x.Write(w, r, envy.Errorf(envy.EConflict, "taken"))
		if w.Code != 500 || w.Header().Get("Retry-After") != "" {
			t.Errorf("%d %v", w.Code, w.Header())
		}
	})
	t.Run("an error that is not a domain error goes to the server's log, not the reply", func(t *testing.T) {
		w := httptest.NewRecorder()
		x.Write(w, r, errString("disk on fire"))
		if w.Code != 500 || strings.Contains(w.Body.String(), "fire") {
			t.Errorf("%d %s", w.Code, w.Body)
		}
		if !strings.Contains(logs.String(), `"msg":"test: internal error"`) || !strings.Contains(logs.String(), "disk on fire") {
			t.Errorf("log: %s", logs.String())
		}
	})
}

type errString string

func (e errString) Error() string { return string(e) }

func TestIsUUIDTakesAnyLetterCase(t *testing.T) {
	for id, want := range map[string]bool{
		"80f65e4b-4325-4ee6-86af-9e6b8793f125":  true,
		"80F65E4B-4325-4EE6-86AF-9E6B8793F125":  true,
		"80f65e4b-4325-4ee6-86af-9e6b8793f12":   false,
		"80f65e4b_4325_4ee6_86af_9e6b8793f125":  false,
		"zzzzzzzz-4325-4ee6-86af-9e6b8793f125":  false,
		"80f65e4b-4325-4ee6-86af-9e6b8793f1255": false,
	} {
		if IsUUID(id) != want {
			t.Errorf("IsUUID(%q) = %v", id, !want)
		}
	}
}
