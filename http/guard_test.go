package http_test

// Tests that guard the checks whose loss would open a hole without any
// other test turning red: each one was written against a hand-made
// mutation of the code it guards (see docs/testing.md).

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/testenv"
)

func TestEnvNeedsRevealOnEveryInheritedScope(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	const canary = "inherited-canary-7f3a9c"
	if r := e.Do(t, "PUT", "/v1/scopes/acme/base/-/vars/DB_PASSWORD", e.Admin, `{"value":"`+canary+`","secret":true}`); r.Status != 201 {
		t.Fatalf("seed base: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "PUT", "/v1/scopes/acme/app", e.Admin, `{"inherits":["acme/base"]}`); r.Status != 201 {
		t.Fatalf("create app: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "PUT", "/v1/scopes/acme/app/-/vars/PORT", e.Admin, `{"value":"8080"}`); r.Status != 201 {
		t.Fatalf("seed app: %d %s", r.Status, r.Body)
	}
	// Reveal on the scope itself, read on everything: the inherited scope's
	// secrets stay out of reach.
	tok := e.Token(t, "app-only",
		envy.Grant{Scopes: "acme/**", Actions: []envy.Action{envy.ActRead}},
		envy.Grant{Scopes: "acme/app", Actions: []envy.Action{envy.ActReveal}})
	for _, q := range []string{"", "?format=dotenv", "?format=shell"} {
		r := e.Do(t, "GET", "/v1/scopes/acme/app/-/env"+q, tok, "")
		if r.Status != 403 {
			t.Errorf("env%s with reveal on the scope only: %d, want 403; body %s", q, r.Status, r.Body)
		}
		if strings.Contains(string(r.Body), canary) {
			t.Fatalf("env%s leaked the inherited secret: %s", q, r.Body)
		}
	}
	// With reveal on both, the same request succeeds: the refusal above is
	// about the inherited scope, not something else.
	both := e.Token(t, "both", envy.Grant{Scopes: "acme/**", Actions: []envy.Action{envy.ActRead, envy.ActReveal}})
	if r := e.Do(t, "GET", "/v1/scopes/acme/app/-/env", both, ""); r.Status != 200 || !strings.Contains(string(r.Body), canary) {
		t.Fatalf("env with reveal on both: %d %s", r.Status, r.Body)
	}
}

func TestAGrantMustBeCoveredNotMerelyMatched(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	sub := e.Token(t, "one-level-admin", envy.Grant{Scopes: "acme/*", Actions: []envy.Action{envy.ActAdmin}})
	// "acme/*" matches the string "acme/**" segment by segment, but it does
	// not cover every scope "acme/**" names (acme/a/b is not in acme/*).
	for _, glob := range []string{"acme/**", "acme/*/*", "acme/*/prod"} {
		body := `{"name":"wider-` + strings.NewReplacer("*", "s", "/", "-").Replace(glob) + `","permissions":[{"scopes":"` + glob + `","actions":["admin"]}]}`
		if r := e.Do(t, "POST", "/v1/tokens", sub, body); r.Status != 403 {
			t.Errorf("admin on acme/* minted admin on %s: %d %s, want 403", glob, r.Status, r.Body)
		}
	}
	if r := e.Do(t, "POST", "/v1/tokens", sub, `{"name":"narrower","permissions":[{"scopes":"acme/web","actions":["admin"]}]}`); r.Status != 201 {
		t.Fatalf("a covered grant was refused: %d %s", r.Status, r.Body)
	}
}

func TestDeleteOfAVarHonoursIfMatch(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	r := e.Do(t, "PUT", "/v1/scopes/acme/im/-/vars/A", e.Admin, `{"value":"1"}`)
	if r.Status != 201 {
		t.Fatalf("seed: %d %s", r.Status, r.Body)
	}
	stale := r.Header.Get("ETag")
	if r := e.Do(t, "PUT", "/v1/scopes/acme/im/-/vars/B", e.Admin, `{"value":"2"}`); r.Status != 201 {
		t.Fatalf("move on: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "DELETE", "/v1/scopes/acme/im/-/vars/A", e.Admin, "", "If-Match", stale); r.Status != 412 {
		t.Fatalf("delete with a stale If-Match %s: %d %s, want 412", stale, r.Status, r.Body)
	}
	if r := e.Do(t, "GET", "/v1/scopes/acme/im/-/vars/A", e.Admin, ""); r.Status != 200 {
		t.Fatalf("the refused delete deleted: %d", r.Status)
	}
	cur := e.Do(t, "GET", "/v1/scopes/acme/im", e.Admin, "").Header.Get("ETag")
	if r := e.Do(t, "DELETE", "/v1/scopes/acme/im/-/vars/A", e.Admin, "", "If-Match", cur); r.Status != 204 {
		t.Fatalf("delete with the current If-Match %s: %d %s", cur, r.Status, r.Body)
	}
	if r := e.Do(t, "DELETE", "/v1/scopes/acme/im", e.Admin, "", "If-Match", stale); r.Status != 412 {
		t.Fatalf("scope delete with a stale If-Match: %d %s, want 412", r.Status, r.Body)
	}
}

func TestWatchersOfADeletedScopeHearOfIt(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	if r := e.Do(t, "PUT", "/v1/scopes/acme/gone/-/vars/A", e.Admin, `{"value":"1"}`); r.Status != 201 {
		t.Fatalf("seed: %d %s", r.Status, r.Body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.URL+"/v1/scopes/acme/gone/-/watch", nil)
	req.Header.Set("Authorization", "Bearer "+e.Admin)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("watch: %d", res.StatusCode)
	}
	ids := make(chan string, 8)
	go func() {
		defer close(ids)
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			if id, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
				ids <- id
			}
		}
	}()
	r := e.Do(t, "DELETE", "/v1/scopes/acme/gone", e.Admin, "")
	if r.Status != 204 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	want := strings.Trim(r.Header.Get("ETag"), `"`)
	select {
	case id, ok := <-ids:
		if !ok {
			t.Fatal("the stream ended without an event for the delete")
		}
		if id != want {
			t.Fatalf("event id %s, want the delete's revision %s", id, want)
		}
	case <-ctx.Done():
		t.Fatal("no watch event for the deleted scope")
	}
}

func TestRollbackToANonSecretNeedsReveal(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	r := e.Do(t, "PUT", "/v1/scopes/acme/rb/-/vars/KEY", e.Admin, `{"value":"plain-then-secret"}`)
	if r.Status != 201 {
		t.Fatalf("seed: %d %s", r.Status, r.Body)
	}
	before := r.JSON(t)["revision"].(float64)
	if r := e.Do(t, "PATCH", "/v1/scopes/acme/rb/-/vars/KEY", e.Admin, `{"secret":true}`); r.Status != 200 {
		t.Fatalf("make secret: %d %s", r.Status, r.Body)
	}
	writer := e.Token(t, "writer", envy.Grant{Scopes: "acme/**", Actions: []envy.Action{envy.ActRead, envy.ActWrite}})
	body := `{"revision":` + strconv.FormatInt(int64(before), 10) + `}`
	if r := e.Do(t, "POST", "/v1/scopes/acme/rb/-/rollback", writer, body); r.Status != 403 {
		t.Fatalf("a writer without reveal unmasked a secret by rollback: %d %s, want 403", r.Status, r.Body)
	}
	r = e.Do(t, "GET", "/v1/scopes/acme/rb/-/vars/KEY", e.Admin, "")
	if r.JSON(t)["secret"] != true {
		t.Fatalf("the refused rollback changed the var: %s", r.Body)
	}
	revealer := e.Token(t, "revealer", envy.Grant{Scopes: "acme/**", Actions: []envy.Action{envy.ActRead, envy.ActWrite, envy.ActReveal}})
	if r := e.Do(t, "POST", "/v1/scopes/acme/rb/-/rollback", revealer, body); r.Status != 200 {
		t.Fatalf("rollback with reveal: %d %s", r.Status, r.Body)
	}
}
