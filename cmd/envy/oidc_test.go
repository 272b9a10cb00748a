package main

import (
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/envy-dev/envy/identity/oidctest"
	"github.com/envy-dev/envy/internal/testenv"
)

// TestLoginWithOIDC: `envy login --oidc corp` prints the provider's URL,
// the person signs in there (an HTTP client drives the real provider's
// login page), the provider redirects to the command's loopback listener,
// and the command stores a token named after the person, with the role's
// grants; a person no role matches is refused, saying so.
func TestLoginWithOIDC(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	p := oidctest.New(t, []string{"http://127.0.0.1/callback"},
		oidctest.User{Subject: "u-alice", Username: "alice", Email: "alice@acme.example", Claims: map[string]any{"groups": []string{"platform"}}},
		oidctest.User{Subject: "u-bob", Username: "bob", Claims: map[string]any{"groups": []string{"sales"}}})
	if r := e.Do(t, "PUT", "/v1/auth/oidc/corp", e.Admin, `{"issuer":"`+p.Issuer+`","client_id":"`+p.ClientID+`","client_secret":"`+p.ClientSecret+`",
		"redirect_uris":["http://127.0.0.1/callback"],"scopes":["openid","email"],
		"roles":[{"name":"platform","claim":"groups","value":"platform","permissions":[{"scopes":"acme/**","actions":["read"]}]}]}`); r.Status != 201 {
		t.Fatalf("PUT provider: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "GET", "/v1/auth/oidc/corp", e.Admin, ""); r.Status != 200 || strings.Contains(string(r.Body), p.ClientSecret) || strings.Contains(string(r.Body), "secret") {
		t.Fatalf("GET provider shows its secret: %d %s", r.Status, r.Body)
	}
	e.Do(t, "PUT", "/v1/scopes/acme/web/-/vars/GREETING", e.Admin, `{"value":"hello"}`)

	login := func(username string) (int, string, string, string) {
		t.Helper()
		cfg := filepath.Join(t.TempDir(), "config.json")
		var out, errOut syncBuffer
		code := make(chan int, 1)
		ev := env{"ENVY_ADDR": e.URL, "ENVY_CONFIG": cfg}
		go func() {
			code <- run([]string{"login", "--oidc", "corp", "--no-browser"}, strings.NewReader(""), &out, &errOut, ev.get)
		}()
		re := regexp.MustCompile(`(?m)^\s+(http://\S+)$`)
		waitFor(t, "the sign-in URL", 20*time.Second, func() bool { return re.MatchString(errOut.String()) })
		back, err := p.SignIn(t.Context(), re.FindStringSubmatch(errOut.String())[1], username)
		if err != nil {
			t.Fatal(err)
		}
		if back.Hostname() != "127.0.0.1" || back.Path != "/callback" {
			t.Fatalf("the provider redirected to %s", back)
		}
		resp, err := http.Get(back.String()) // the browser, back at the command's listener
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		select {
		case c := <-code:
			return c, out.String(), errOut.String(), cfg
		case <-time.After(30 * time.Second):
			t.Fatal("envy login --oidc did not end after the redirect")
		}
		return 0, "", "", ""
	}
	code, out, errOut, cfg := login("alice")
	if code != 0 || !strings.Contains(out, "as oidc:corp:u-alice <alice@acme.example> until ") || strings.Contains(out+errOut, "envy_") {
		t.Fatalf("login: exit %d, %q, %q", code, out, errOut)
	}
	mine := env{"ENVY_ADDR": e.URL, "ENVY_CONFIG": cfg}
	if out := must(t, mine, "", "vars", "get", "acme/web", "GREETING"); !strings.Contains(out, "hello") {
		t.Fatalf("vars get with the signed-in token: %q", out)
	}
	if out := must(t, mine, "", "whoami"); !strings.Contains(out, "corp") || !strings.Contains(out, "u-alice") {
		t.Fatalf("whoami: %q", out)
	}

	code, _, errOut, _ = login("bob")
	if code != 1 || !strings.Contains(errOut, "no role of OIDC provider corp matches you") {
		t.Fatalf("bob: exit %d, %q", code, errOut)
	}

	// Deleting the provider revokes alice's token.
	if r := e.Do(t, "DELETE", "/v1/auth/oidc/corp", e.Admin, ""); r.Status != 204 {
		t.Fatalf("DELETE: %d %s", r.Status, r.Body)
	}
	if code, _, errOut := runEnvy(t, mine, "", "whoami"); code != 1 || !strings.Contains(errOut, "unauthenticated") {
		t.Fatalf("whoami after the provider's deletion: exit %d, %q", code, errOut)
	}
}
