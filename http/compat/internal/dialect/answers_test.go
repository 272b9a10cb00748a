package dialect

import (
	"net/http"
	"testing"

	"github.com/envy-dev/envy"
)

func TestAnswersMakeTheTableTheyDescribe(t *testing.T) {
	table := Answers{
		envy.EInvalid:      {Type: "invalid", Status: http.StatusBadRequest, Message: "Bad input", Detail: true},
		envy.ENotFound:     {Type: "missing", Message: "Not here"},
		envy.EInternal:     {Type: "internal"},
		CodeNoRoute:        {Type: "no_route"},
		envy.EPrecondition: {Type: "stale", Status: http.StatusConflict},
	}.Table()
	for _, tc := range []struct {
		code envy.Code
		want Entry
	}{
		{envy.EInvalid, Entry{Status: http.StatusBadRequest, Type: "invalid", Message: "Bad input", Detail: true}},
		{envy.ENotFound, Entry{Status: http.StatusNotFound, Type: "missing", Message: "Not here"}},
		{envy.EInternal, Entry{Status: http.StatusInternalServerError, Type: "internal"}},
		{CodeNoRoute, Entry{Status: http.StatusNotFound, Type: "no_route"}},
		{envy.EPrecondition, Entry{Status: http.StatusConflict, Type: "stale"}},
	} {
		got, ok := table.entry(tc.code)
		if !ok || got != tc.want {
			t.Errorf("%s: got %+v (%v), want %+v", tc.code, got, ok, tc.want)
		}
	}
	if _, ok := table.entry(envy.EConflict); ok {
		t.Error("a code the answers lack has an entry")
	}
}
