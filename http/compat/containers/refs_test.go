package containers_test

import (
	"strings"
	"testing"

	"github.com/envy-dev/envy"
)

// The dialect writes values as stored and reads them resolved: a
// reference is expanded, a value that refers to a secret is masked, a
// literal "${" is written "$${", and a reference the token may not follow
// is refused in the dialect's envelope (whose messages are the
// platform's: the native API's 403 names the reference).
func TestReadsGiveResolvedValues(t *testing.T) {
	e := newEnv(t)
	createContainer(t, e, "cnt_refs")
	if r := e.Do(t, "PATCH", "/v1/scopes/shared/-/vars", e.Admin, `{"HOST":"db1","KEY":{"value":"k-0123456789abcdef","secret":true}}`); r.Status != 200 {
		t.Fatalf("shared: %d %s", r.Status, r.Body)
	}
	r := e.Do(t, "PATCH", envPath("cnt_refs"), e.Admin, `{"URL":"http://${shared:HOST}/","AUTH":"Bearer ${shared:KEY}","LIT":"$${x}"}`)
	if r.Status != 200 {
		t.Fatalf("merge: %d %s", r.Status, r.Body)
	}
	r = e.Do(t, "GET", envPath("cnt_refs"), e.Admin, "")
	body := string(r.Body)
	if r.Status != 200 || !strings.Contains(body, `"URL":"http://db1/"`) || !strings.Contains(body, `"LIT":"${x}"`) || strings.Contains(body, "k-0123456789abcdef") {
		t.Fatalf("list: %d %s", r.Status, body)
	}
	if got := nativeVars(t, e, "containers/cnt_refs")["URL"]; got != "http://${shared:HOST}/" {
		t.Errorf("stored URL %q, want the raw value", got)
	}
	tok := e.Token(t, "cnt", envy.Grant{Scopes: "containers/**", Actions: []envy.Action{envy.ActRead, envy.ActWrite}})
	r = e.Do(t, "GET", envPath("cnt_refs"), tok, "")
	// The dialect's own envelope, whose messages are the platform's.
	wantError(t, r, 403, "RESOURCE_ACCESS_DENIED")
	if strings.Contains(string(r.Body), "db1") {
		t.Errorf("the refusal holds a value: %s", r.Body)
	}
}
