package dialect_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/http/compat/internal/dialect"
	"github.com/envy-dev/envy/http/wire"
	"github.com/envy-dev/envy/internal/testenv"
)

func TestEveryDialectReadsBodiesUpToTheServersMaxBody(t *testing.T) {
	e := allDialects(t, 64)
	big := `{"name":"A","value":"` + strings.Repeat("x", 64) + `"}`
	for _, tc := range []struct{ method, path string }{
		{"POST", "/api/2/hooks/envs"},
		{"POST", "/v2/acts/a1/versions/0.1/env-vars"},
		{"POST", "/api/v1/user/secrets"},
		{"PATCH", "/api/v1/containers/c1/env"},
		{"POST", "/api/v2/hooks/h1/secrets"},
	} {
		r := e.Do(t, tc.method, tc.path, e.Admin, big)
		if !strings.Contains(string(r.Body), "larger than 64 bytes") {
			t.Errorf("%s %s: %d %s, want the server's limit of 64 bytes", tc.method, tc.path, r.Status, r.Body)
		}
		if r := e.Do(t, tc.method, tc.path, e.Admin, `{"A":"v"}`); strings.Contains(string(r.Body), "larger than") {
			t.Errorf("%s %s: a small body is refused: %s", tc.method, tc.path, r.Body)
		}
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func TestADialectLogsInternalErrorsToTheServersLogger(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	x := dialect.New(e.API, e.Svc, dialect.Config{Name: "probe", Table: dialect.Table{Types: map[envy.Code]string{envy.EInternal: "internal"}},
		Envelope: func(dialect.Entry, *envy.Error) any { return struct{}{} }, ContentType: wire.ContentTypeJSON}).Errors
	w := httptest.NewRecorder()
	x.Write(w, httptest.NewRequest("GET", "/", nil), errString("the store caught fire"))
	if w.Code != http.StatusInternalServerError {
		t.Errorf("status %d", w.Code)
	}
	if logs := e.Logs.String(); !strings.Contains(logs, "probe: internal error") || !strings.Contains(logs, "the store caught fire") {
		t.Errorf("the server's log lacks the error: %s", logs)
	}
}
