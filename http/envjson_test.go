package http

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

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

// The hand-written var list encoder must give exactly encoding/json's bytes.
func FuzzVarListJSONMatchesEncodingJSON(f *testing.F) {
	f.Add("a/b", "id-1", "NAME", "value \"q\" \n é", "desc\t<&>", "admin", true, true, int64(3), int64(1700000000123456789))
	f.Add("", "", "", "", "", "", false, false, int64(0), int64(0))
	f.Fuzz(func(t *testing.T, scope, id, name, value, desc, by string, secret, masked bool, version, nanos int64) {
		at := time.Unix(0, nanos)
		v := envy.VarView{ID: id, Name: name, Secret: secret, Description: desc, Version: version, Revision: version + 1, CreatedAt: at, UpdatedAt: at.Add(time.Second), UpdatedBy: by}
		val := envy.NewSensitive(value)
		if masked {
			m := envy.Mask(val)
			v.MaskedValue = &m
		} else {
			v.Value = &val
		}
		vl := envy.VarList{Scope: scope, Revision: nanos, Items: []envy.VarView{v, v}}
		rec := httptest.NewRecorder()
		writeVarListJSON(rec, vl)
		want := varListJSON{Scope: vl.Scope, Revision: vl.Revision, Items: []varJSON{varView(v), varView(v)}}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(want); err != nil {
			t.Fatal(err)
		}
		if got := rec.Body.String(); got != buf.String() {
			t.Fatalf("writeVarListJSON = %q\nencoding/json = %q", got, buf.String())
		}
	})
}
