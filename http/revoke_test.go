package http_test

import (
	"strings"
	"testing"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/testenv"
)

// DELETE /v1/tokens/{id} answers how many tokens it ended, and refuses
// (409) to end the last global admin unless force=true.
func TestRevokeSaysHowManyAndKeepsTheLastAdmin(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	self := e.Do(t, "GET", "/v1/tokens/self", e.Admin, "").JSON(t)["id"].(string)
	deputy := e.Token(t, "deputy", envy.Grant{Scopes: "acme/**", Actions: []envy.Action{envy.ActAdmin}})
	deputyID := e.Do(t, "GET", "/v1/tokens/self", deputy, "").JSON(t)["id"].(string)
	body := `{"name":"ci","permissions":[{"scopes":"acme/**","actions":["read"]}]}`
	if r := e.Do(t, "POST", "/v1/tokens", deputy, body); r.Status != 201 {
		t.Fatalf("mint under deputy: %d %s", r.Status, r.Body)
	}

	r := e.Do(t, "DELETE", "/v1/tokens/"+deputyID+"?dry_run=true", e.Admin, "")
	if m := r.JSON(t); r.Status != 200 || m["revoked"] != float64(2) || m["dry_run"] != true {
		t.Fatalf("dry run: %d %s", r.Status, r.Body)
	}
	r = e.Do(t, "DELETE", "/v1/tokens/"+deputyID, e.Admin, "")
	if m := r.JSON(t); r.Status != 200 || m["revoked"] != float64(2) || m["id"] != deputyID {
		t.Fatalf("revoke deputy: %d %s; want 200 and 2 revoked", r.Status, r.Body)
	}
	r = e.Do(t, "DELETE", "/v1/tokens/"+self, e.Admin, "")
	if r.Status != 409 || !strings.Contains(string(r.Body), "last live token with admin on **") {
		t.Fatalf("revoke the last admin: %d %s; want 409 naming why", r.Status, r.Body)
	}
	if r := e.Do(t, "DELETE", "/v1/tokens/"+self+"?force=maybe", e.Admin, ""); r.Status != 422 && r.Status != 400 {
		t.Fatalf("force=maybe: %d %s", r.Status, r.Body)
	}
	r = e.Do(t, "DELETE", "/v1/tokens/"+self+"?force=true", e.Admin, "")
	if m := r.JSON(t); r.Status != 200 || m["revoked"] != float64(1) {
		t.Fatalf("forced: %d %s", r.Status, r.Body)
	}
}
