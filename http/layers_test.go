package http_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/testenv"
)

// doWithin sends one request with its own deadline: a server that walks
// an attacker's graph exponentially never answers within it.
func doWithin(t *testing.T, e *testenv.Env, within time.Duration, method, path, token, body string) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, e.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: no answer within %s (a walk of the inherits that is not linear?): %v", method, path, within, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// TestAnAttackersLayeredInheritsAnswerPromptly is the attacker's case: a
// token that may write one subtree builds layers of scopes, each scope of
// a layer inheriting every scope of the layer below (6 layers of 16).
// Every write and the env read answer (each within its own 10 s: an
// exponential walk takes 16^6 steps), and a scope whose tree would pass
// the bound is refused 422 too_many_scopes.
func TestAnAttackersLayeredInheritsAnswerPromptly(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	tok := e.Token(t, "attacker", envy.Grant{Scopes: "atk/**", Actions: []envy.Action{envy.ActRead, envy.ActWrite, envy.ActReveal}})
	const layers, width, within = 6, 16, 10 * time.Second
	put := func(path string, inherits []string) {
		t.Helper()
		b, _ := json.Marshal(map[string]any{"inherits": inherits})
		if status, body := doWithin(t, e, within, "PUT", "/v1/scopes/"+path, tok, string(b)); status != 201 && status != 200 {
			t.Fatalf("PUT %s: %d %s", path, status, body)
		}
	}
	// stack builds the layers under atk/<name> and a top that inherits
	// the last layer: a tree of 1 + layers*width scopes.
	stack := func(name string) string {
		var below []string
		for l := range layers {
			var layer []string
			for i := range width {
				p := fmt.Sprintf("atk/%s/l%d/s%02d", name, l, i)
				if l == 0 {
					if status, body := doWithin(t, e, within, "PATCH", "/v1/scopes/"+p+"/-/vars", tok, fmt.Sprintf(`{"V%d":"%d"}`, i, i)); status != 200 {
						t.Fatalf("PATCH %s: %d %s", p, status, body)
					}
				} else {
					put(p, below)
				}
				layer = append(layer, p)
			}
			below = layer
		}
		top := "atk/" + name + "/top"
		put(top, below)
		return top
	}
	a := stack("a")
	status, body := doWithin(t, e, within, "GET", "/v1/scopes/"+a+"/-/env", tok, "")
	if status != 200 || !strings.Contains(string(body), `"V15":"15"`) {
		t.Fatalf("env of the layered top: %d %.300s", status, body)
	}
	for _, tail := range []string{"/-/resolved", "/-/vars", "/-/status", ""} {
		if status, body := doWithin(t, e, within, "GET", "/v1/scopes/"+a+tail, tok, ""); status != 200 {
			t.Fatalf("GET %s%s: %d %.300s", a, tail, status, body)
		}
	}
	// Two stacks' tops: 1 + 2*97 scopes, within the bound; three: 292, past it.
	b, c := stack("b"), stack("c")
	put("atk/two", []string{a, b})
	j, _ := json.Marshal(map[string]any{"inherits": []string{a, b, c}})
	status, body = doWithin(t, e, within, "PUT", "/v1/scopes/atk/three", tok, string(j))
	if status != 422 || !strings.Contains(string(body), "too_many_scopes") {
		t.Fatalf("a tree of %d scopes: %d %s; want 422 too_many_scopes", 1+3*(1+layers*width), status, body)
	}
	if status, body := doWithin(t, e, within, "GET", "/v1/scopes/atk/two/-/env", tok, ""); status != 200 {
		t.Fatalf("env of two stacks: %d %.300s", status, body)
	}
}
