package wire

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

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
