package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/envy-dev/envy/identity"
	"github.com/envy-dev/envy/identity/idtest"
	"github.com/envy-dev/envy/internal/testenv"
	"github.com/envy-dev/envy/service"
)

// syncBuffer is a bytes.Buffer safe to read while the CLI writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// waitFor polls cond until it holds, failing the test after its own deadline.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func jwtServer(t *testing.T) (*testenv.Env, *idtest.Provider, idtest.Key) {
	k := idtest.NewKey(t, "sa-1", jose.RS256)
	p := idtest.New(t, k)
	e := testenv.New(t, testenv.Options{Service: service.Options{Verifier: identity.New(identity.Options{})}})
	return e, p, k
}

func writeJWT(t *testing.T, path string, p *idtest.Provider, k idtest.Key, sub string) {
	t.Helper()
	tmp := path + ".tmp" // the kubelet swaps the file whole
	if err := os.WriteFile(tmp, []byte(idtest.Sign(t, k, p.Claims("envy", sub, time.Now(), nil))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestRunRenewsItsTokenFromARotatingJWTFile: `envy run --auth jwt/NAME
// --jwt-file PATH` trades the JWT at start and, before each token
// expires, reads the file again and trades what it holds now; the
// command is never restarted, and after the first token expired, what
// envy run does (fetching the env on a change) is done with a renewed one.
func TestRunRenewsItsTokenFromARotatingJWTFile(t *testing.T) {
	e, p, k := jwtServer(t)
	if r := e.Do(t, "PUT", "/v1/auth/jwt/k8s", e.Admin, `{"issuer":"`+p.URL+`","audience":"envy","ttl":"3s",
		"permissions":[{"scopes":"acme/web/**","actions":["read","reveal"]}]}`); r.Status != 201 {
		t.Fatalf("PUT trust: %d %s", r.Status, r.Body)
	}
	e.Do(t, "PUT", "/v1/scopes/acme/web/prod/-/vars/GREETING", e.Admin, `{"value":"one"}`)
	dir := t.TempDir()
	jwtFile := filepath.Join(dir, "token")
	writeJWT(t, jwtFile, p, k, "system:serviceaccount:web:pod-1")
	// The command gets envy run's own environment, not the test's: the
	// directory is in the script.
	script := strings.ReplaceAll(`echo started >> "D/starts"; trap 'echo "$GREETING" >> "D/signals"' USR1
		while [ ! -f "D/stop" ]; do sleep 0.05; done`, "D/", dir+"/")
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runIO(t, env{"ENVY_ADDR": e.URL}, strings.NewReader(""), &out, &errOut,
			"run", "--scope", "acme/web/prod", "--auth", "jwt/k8s", "--jwt-file", jwtFile, "--watch", "--signal", "USR1", "--", "sh", "-c", script)
	}()
	t.Cleanup(func() {
		os.WriteFile(filepath.Join(dir, "stop"), nil, 0o600)
		if t.Failed() {
			t.Logf("envy run's stderr: %s", errOut.String())
			for _, l := range strings.Split(e.Logs.String(), "\n") {
				if !strings.Contains(l, "/v1/tokens") && !strings.Contains(l, "/-/watch") {
					t.Log(l)
				}
			}
		}
	})

	tokens := func() []map[string]any {
		r := e.Do(t, "GET", "/v1/tokens?limit=500", e.Admin, "")
		var page struct {
			Items []map[string]any `json:"items"`
		}
		json.Unmarshal(r.Body, &page)
		return page.Items
	}
	named := func(suffix string) map[string]any {
		for _, tok := range tokens() {
			if strings.HasSuffix(tok["name"].(string), suffix) {
				return tok
			}
		}
		return nil
	}
	waitFor(t, "the first login", 20*time.Second, func() bool { return named("pod-1") != nil })
	first := named("pod-1")
	if first["trust"] != "k8s" || first["subject"] != "system:serviceaccount:web:pod-1" {
		t.Fatalf("the first token %v lacks its lineage", first)
	}
	// The kubelet rotates the file: the renewal must read it again.
	writeJWT(t, jwtFile, p, k, "system:serviceaccount:web:pod-2")
	waitFor(t, "a renewal with the rotated JWT", 20*time.Second, func() bool { return named("pod-2") != nil })
	exp, _ := time.Parse(time.RFC3339Nano, first["expires_at"].(string))
	waitFor(t, "the first token's expiry", 20*time.Second, func() bool { return time.Now().After(exp.Add(time.Second)) })

	e.Do(t, "PUT", "/v1/scopes/acme/web/prod/-/vars/GREETING", e.Admin, `{"value":"two"}`)
	waitFor(t, "the command signalled after the change", 20*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "signals"))
		if len(b) == 0 && strings.Contains(errOut.String(), "fail") {
			t.Logf("envy run: %s", errOut.String())
		}
		return len(b) > 0
	})
	audit := string(e.Do(t, "GET", "/v1/audit?limit=500", e.Admin, "").Body)
	if !strings.Contains(audit, `"actor":"jwt:k8s:system:serviceaccount:web:pod-2"`) {
		t.Fatalf("nothing was done with the renewed token:\n%s", audit)
	}
	os.WriteFile(filepath.Join(dir, "stop"), nil, 0o600)
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("envy run exited %d: %s", code, errOut.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("envy run did not end with its command")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "starts")); string(b) != "started\n" {
		t.Fatalf("the command started %q: a renewal restarted it", b)
	}
	for _, s := range []string{out.String(), errOut.String()} {
		if strings.Contains(s, "envy_") || strings.Contains(s, "eyJ") {
			t.Fatalf("a token or JWT in envy run's output: %s", s)
		}
	}
}

// TestLoginWithAJWT: `envy login --auth jwt/NAME --jwt-env VAR` stores
// the minted token, which later commands use; flag mistakes are usage
// errors; a refused JWT says only "invalid token".
func TestLoginWithAJWT(t *testing.T) {
	e, p, k := jwtServer(t)
	admin := env{"ENVY_ADDR": e.URL, "ENVY_TOKEN": e.Admin}
	out := must(t, admin, "", "trusts", "set", "ci", "--issuer", p.URL, "--audience", "envy", "--claim", "repository=acme/*", "--grant", "acme/**=read", "--ttl", "20m")
	if !strings.Contains(out, "repository=acme/*") || !strings.Contains(out, "20m0s") {
		t.Fatalf("trusts set: %s", out)
	}
	if out := must(t, admin, "", "trusts", "ls"); !strings.Contains(out, "ci") || !strings.Contains(out, p.URL) {
		t.Fatalf("trusts ls: %s", out)
	}
	if out := must(t, admin, "", "trusts", "show", "ci"); !strings.Contains(out, "acme/**=read") {
		t.Fatalf("trusts show: %s", out)
	}
	cfg := filepath.Join(t.TempDir(), "config.json")
	good := idtest.Sign(t, k, p.Claims("envy", "repo:acme/web:ref:refs/heads/main", time.Now(), map[string]any{"repository": "acme/web"}))
	ev := env{"ENVY_ADDR": e.URL, "ENVY_CONFIG": cfg, "CI_JWT": good}
	out = must(t, ev, "", "login", "--auth", "jwt/ci", "--jwt-env", "CI_JWT")
	if !strings.Contains(out, "as jwt:ci:repo:acme/web:ref:refs/heads/main until ") || strings.Contains(out, "envy_") {
		t.Fatalf("login said %q", out)
	}
	who := must(t, env{"ENVY_ADDR": e.URL, "ENVY_CONFIG": cfg}, "", "whoami", "--output", "json")
	var self map[string]any
	json.Unmarshal([]byte(who), &self)
	if self["trust"] != "ci" || self["subject"] != "repo:acme/web:ref:refs/heads/main" {
		t.Fatalf("whoami --json: %s", who)
	}
	who = must(t, env{"ENVY_ADDR": e.URL, "ENVY_CONFIG": cfg}, "", "whoami")
	if !strings.Contains(who, "jwt/ci") || !strings.Contains(who, "repo:acme/web:ref:refs/heads/main") {
		t.Fatalf("whoami: %s", who)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"login", "--auth", "ci", "--jwt-env", "CI_JWT"}, "--auth must be jwt/NAME"},
		{[]string{"login", "--auth", "jwt/ci"}, "give --jwt-file PATH or --jwt-env VAR"},
		{[]string{"login", "--auth", "jwt/ci", "--jwt-env", "CI_JWT", "--jwt-file", "x"}, "give --jwt-file PATH or --jwt-env VAR"},
	} {
		code, _, errOut := runEnvy(t, ev, "", c.args...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, %q", c.args, code, errOut)
		}
	}
	must(t, admin, "", "trusts", "rm", "ci")
	if code, _, errOut := runEnvy(t, env{"ENVY_ADDR": e.URL, "ENVY_CONFIG": cfg}, "", "whoami"); code != 1 || !strings.Contains(errOut, "unauthenticated") {
		t.Fatalf("whoami after the trust's deletion: exit %d, %q", code, errOut)
	}
	must(t, admin, "", "trusts", "set", "ci", "--issuer", p.URL, "--audience", "envy", "--claim", "repository=acme/*", "--grant", "acme/**=read")
	ev["CI_JWT"] = idtest.Sign(t, k, p.Claims("envy", "repo:evil/web", time.Now(), map[string]any{"repository": "evil/web"}))
	code, _, errOut := runEnvy(t, ev, "", "login", "--auth", "jwt/ci", "--jwt-env", "CI_JWT")
	if code != 1 || !strings.Contains(errOut, "invalid token") || strings.Contains(errOut, "repository") {
		t.Fatalf("a refused JWT: exit %d, %q", code, errOut)
	}
}
