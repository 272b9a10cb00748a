package http

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/envy-dev/envy"
)

// The hand-written env encoder must give exactly encoding/json's bytes.
func FuzzEnvJSONMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{"", "plain", "quote\" back\\slash", "nl\n cr\r tab\t \b \f \x01 \x1f", "<html> & 'q'", "é 🙂 \u2028 \u2029", "bad \xff utf8", "\x7f"} {
		f.Add("NAME", s, true)
	}
	f.Fuzz(func(t *testing.T, name, value string, secret bool) {
		env := envy.Env{Scope: "a/b", Revision: 42, Vars: []envy.EnvVar{
			{Name: "A_FIRST", Value: envy.NewSensitive("x")},
			{Name: name, Value: envy.NewSensitive(value), Secret: secret},
		}}
		rec := httptest.NewRecorder()
		writeEnvJSON(rec, env)
		want := envJSON{Scope: env.Scope, Revision: env.Revision, Env: map[string]string{"A_FIRST": "x", name: value}, Secrets: []string{}}
		if secret {
			want.Secrets = []string{name}
		}
		if name == "A_FIRST" || name < "A_FIRST" {
			return // the encoder relies on sorted, distinct names, as Env gives them
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(want); err != nil {
			t.Fatal(err)
		}
		if got := rec.Body.String(); got != buf.String() {
			t.Fatalf("writeEnvJSON = %q\nencoding/json = %q", got, buf.String())
		}
	})
}
