package runner

import (
	"bytes"
	"strings"
	"testing"
)

// recorder keeps every write it gets, to see what was passed on when.
type recorder struct {
	writes []string
}

func (r *recorder) Write(p []byte) (int, error) {
	r.writes = append(r.writes, string(p))
	return len(p), nil
}

func (r *recorder) String() string { return strings.Join(r.writes, "") }

func TestRedactorReplacesSecretValues(t *testing.T) {
	secrets := map[string]string{
		"API_KEY":  "sk-live-123456",
		"API_PREF": "sk-live", // a prefix of API_KEY: the longer one wins where both match
		"PIN":      "123",     // shorter than 4: left alone
		"FOUR":     "wxyz",    // exactly 4: redacted
		"EMOJI":    "pässwörd",
		"MULTI":    "line1\nline2",
	}
	tests := []struct {
		name   string
		writes []string
		want   string
	}{
		{"a value in one write", []string{"key=sk-live-123456 ok\n"}, "key=[REDACTED:API_KEY] ok\n"},
		{"a value split across two writes", []string{"key=sk-live-", "123456 ok\n"}, "key=[REDACTED:API_KEY] ok\n"},
		{"a value written a byte at a time", strings.Split("[sk-live-123456]", ""), "[[REDACTED:API_KEY]]"},
		{"the longest value first when values overlap", []string{"sk-live-123456 sk-live-9"}, "[REDACTED:API_KEY] [REDACTED:API_PREF]-9"},
		{"the shorter value when the longer one does not follow", []string{"sk-live", "-12", "x"}, "[REDACTED:API_PREF]-12x"},
		{"a value shorter than 4 characters is left alone", []string{"pin 123\n"}, "pin 123\n"},
		{"a value of exactly 4 characters is redacted", []string{"code wxyz\n"}, "code [REDACTED:FOUR]\n"},
		{"4 characters, not 4 bytes", []string{"wxy", "z"}, "[REDACTED:FOUR]"},
		{"a value counted in characters, not bytes", []string{"p\xc3\xa4ssw", "\xc3\xb6rd"}, "[REDACTED:EMOJI]"},
		{"a value over several lines", []string{"line1\n", "line2\n"}, "[REDACTED:MULTI]\n"},
		{"a prefix at the end that never completes is passed on at the end", []string{"sk-live-12"}, "[REDACTED:API_PREF]-12"},
		{"nothing secret", []string{"hello ", "world\n"}, "hello world\n"},
		{"several values in one write", []string{"sk-live-123456sk-live-123456"}, "[REDACTED:API_KEY][REDACTED:API_KEY]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var rec recorder
			r := NewRedactor(&rec, secrets)
			for _, w := range tc.writes {
				if n, err := r.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if err := r.Flush(); err != nil {
				t.Fatal(err)
			}
			if got := rec.String(); got != tc.want {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// Only what could still be a secret is held back: the rest goes out at
// once, so that output is not delayed when it has nothing to do with a
// secret.
func TestRedactorHoldsBackOnlyWhatCouldStillBeASecret(t *testing.T) {
	var rec recorder
	r := NewRedactor(&rec, map[string]string{"K": "abcdef"})
	steps := []struct{ write, passed string }{
		{"hello ab", "hello "},      // "ab" may start the secret
		{"x and abc", "abx and "},   // "abx" can't; "abc" may
		{"de", ""},                  // "abcde" still may
		{"f!", "[REDACTED:K]!"},     // it was
		{"zzz", "zzz"},              // nothing to hold
		{"a", ""},                   // "a" may
		{"a", "a"},                  // "aa" can't start it; the second "a" may
		{"bcdefg", "[REDACTED:K]g"}, // and it did
	}
	for _, s := range steps {
		before := len(rec.writes)
		r.Write([]byte(s.write))
		got := strings.Join(rec.writes[before:], "")
		if got != s.passed {
			t.Fatalf("after %q: passed on %q, want %q", s.write, got, s.passed)
		}
	}
}

func TestRedactorWithoutSecretsPassesEverythingOn(t *testing.T) {
	var buf bytes.Buffer
	r := NewRedactor(&buf, map[string]string{"SHORT": "abc", "EMPTY": ""})
	r.Write([]byte("abc"))
	if buf.String() != "abc" {
		t.Errorf("%q held back or changed", buf.String())
	}
}
