package dialect

import (
	"bytes"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/http/wire"
)

func newTestErrors(log *slog.Logger) *Errors {
	return &Errors{
		Dialect: "test",
		Logger:  log,
		Table:   Table{Types: map[envy.Code]string{envy.ERateLimited: "slow down", envy.EInternal: "internal"}},
		Envelope: func(c Entry, e *envy.Error) any {
			return map[string]string{"name": c.Type, "detail": e.Message}
		},
		ContentType: wire.ContentTypeJSONUTF8,
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
		if w.Header().Get("ETag") != "" || w.Header().Get("Content-Type") != wire.ContentTypeJSONUTF8 {
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
