package main

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/envy-dev/envy/internal/testenv"
)

// A start that fails on a flag, a TLS file or the listener leaves nothing
// behind: no data dir, no master key, no admin token shown.
func TestAFailedStartCreatesNothing(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	junk := filepath.Join(t.TempDir(), "junk.pem")
	os.WriteFile(junk, []byte("not a certificate"), 0o600)
	tests := []struct {
		name string
		args []string
		want string // the start of the error
	}{
		{"a port out of range", []string{"--listen", "127.0.0.1:99999"}, `envy: invalid --listen "127.0.0.1:99999": the port must be a number from 0 to 65535`},
		{"a port taken", []string{"--listen", taken.Addr().String()}, "envy: cannot listen on --listen " + taken.Addr().String() + ": "},
		{"a missing certificate", []string{"--listen", "127.0.0.1:0", "--tls-cert", "/no/such.pem", "--tls-key", junk}, "envy: invalid --tls-cert: stat /no/such.pem: no such file or directory"},
		{"a missing key", []string{"--listen", "127.0.0.1:0", "--tls-cert", junk, "--tls-key", "/no/such.key"}, "envy: invalid --tls-key: stat /no/such.key: no such file or directory"},
		{"a bad certificate", []string{"--listen", "127.0.0.1:0", "--tls-cert", junk, "--tls-key", junk}, "envy: invalid --tls-cert/--tls-key (" + junk + ", " + junk + "): "},
		{"a bad log level", []string{"--log-level", "loud"}, `envy: invalid --log-level "loud": want debug, info, warn or error`},
		{"an audit retention under an hour", []string{"--audit-retention", "5m"}, "envy: invalid --audit-retention 5m0s: must be at least 1h"},
		{"no consumers at all", []string{"--max-consumers", "0"}, "envy: invalid --max-consumers 0: must be at least 1"},
		{"an audit stream of no known kind", []string{"--audit-stream", "kafka://broker:9092"}, `envy: invalid --audit-stream "kafka://broker:9092": want file:PATH, stdout, syslog:`},
		{"an audit socket nobody listens on", []string{"--listen", "127.0.0.1:0", "--audit-stream", "unix:/no/such.sock"}, `envy: invalid --audit-stream "unix:/no/such.sock": dial unix /no/such.sock: connect: no such file or directory`},
		{"an audit stream given empty", []string{"--audit-stream=", "--listen", "127.0.0.1:99999"}, `envy: invalid --audit-stream "": empty`},
		{"an audit file rotated at nothing", []string{"--audit-stream", "stdout", "--audit-stream-max-size", "10"}, "envy: invalid audit stream limits: --audit-stream-max-size 10 must be at least 4096 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			code, out, errOut := runEnvy(t, env{}, "", append([]string{"server", "--data-dir", dir}, tc.args...)...)
			if code == 0 || !strings.HasPrefix(errOut, tc.want) || strings.Count(errOut, "\n") != 1 {
				t.Errorf("exit %d, stderr %q\nwant it to start with %q", code, errOut, tc.want)
			}
			if out != "" {
				t.Errorf("stdout %q: want no admin token", out)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("the data dir was created (%v)", err)
			}
		})
	}
}

// startServer runs `envy server` in this process until the test ends and
// returns its URL and its log.
func startServer(t *testing.T, args ...string) (string, *testenv.Buffer) {
	t.Helper()
	url, logs, _ := startServerOut(t, args...)
	return url, logs
}

// startServerOut is startServer that also returns the server's stdout.
func startServerOut(t *testing.T, args ...string) (string, *testenv.Buffer, *testenv.Buffer) {
	t.Helper()
	cmd := newServerCmd()
	logs, out := &testenv.Buffer{}, &testenv.Buffer{}
	cmd.SetOut(out)
	cmd.SetErr(logs)
	cmd.SetArgs(append([]string{"--data-dir", filepath.Join(t.TempDir(), "data"), "--listen", "127.0.0.1:0"}, args...))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	ready := regexp.MustCompile(`msg="envy is ready" url=(\S+)`)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if m := ready.FindStringSubmatch(logs.String()); m != nil {
			return m[1], logs, out
		}
		select {
		case err := <-done:
			t.Fatalf("the server stopped: %v\n%s", err, logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("the server is not ready:\n%s", logs.String())
	return "", nil, nil
}

func TestLogLevelDebugLogsEveryRequest(t *testing.T) {
	url, logs := startServer(t, "--log-level", "debug")
	res, err := http.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(logs.String(), `level=DEBUG msg="http request"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no debug line for the request:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A server whose certificate a private CA signed is trusted with
// --ca-file or ENVY_CA_FILE, and refused without.
func TestCAFile(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	target, _ := url.Parse(e.URL)
	ts := httptest.NewTLSServer(httputil.NewSingleHostReverseProxy(target))
	defer ts.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	pemData := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	if err := os.WriteFile(ca, pemData, 0o600); err != nil {
		t.Fatal(err)
	}
	ev := env{"ENVY_ADDR": ts.URL, "ENVY_TOKEN": e.Admin}
	code, _, errOut := runEnvy(t, ev, "", "whoami")
	if code != 1 || !strings.Contains(errOut, "certificate") {
		t.Errorf("without the CA: %d %q", code, errOut)
	}
	if out := must(t, ev, "", "whoami", "--ca-file", ca); !strings.Contains(out, "admin") {
		t.Errorf("--ca-file: %q", out)
	}
	ev["ENVY_CA_FILE"] = ca
	if code, out, errOut := runEnvy(t, ev, "", "whoami"); code != 0 || errOut != "" || !strings.Contains(out, "admin") {
		t.Errorf("ENVY_CA_FILE: %d %q %q", code, out, errOut)
	}
	ev["ENVY_CA_FILE"] = e.Dir + "/master.key"
	code, _, errOut = runEnvy(t, ev, "", "whoami")
	if code != 1 || errOut != "envy: ENVY_CA_FILE: "+e.Dir+"/master.key holds no PEM certificate\n" {
		t.Errorf("a file without a certificate: %d %q", code, errOut)
	}
}

// `envy server --audit-stream` sends every audit entry to each stream as
// a JSON line: to a file created 0600, and to stdout, which then carries
// nothing else (the first start's admin token goes to stderr).
func TestServerAuditStreamFlags(t *testing.T) {
	file := filepath.Join(t.TempDir(), "log", "audit.jsonl")
	url, logs, out := startServerOut(t, "--audit-stream", "file:"+file, "--audit-stream", "stdout", "--audit-stream-max-size", "65536")
	m := regexp.MustCompile(`envy_[0-9A-Za-z]{43,}`).FindString(logs.String())
	if m == "" {
		t.Fatalf("no admin token on stderr:\n%s", logs.String())
	}
	req, _ := http.NewRequest("PUT", url+"/v1/scopes/acme/-/vars/PORT", strings.NewReader(`{"value":"8080"}`))
	req.Header.Set("Authorization", "Bearer "+m)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 201 {
		t.Fatalf("write: %d", res.StatusCode)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), `"action":"var.set"`) {
		if time.Now().After(deadline) {
			t.Fatalf("stdout has no var.set line:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var x map[string]any
		if err := json.Unmarshal([]byte(l), &x); err != nil {
			t.Fatalf("stdout holds a line that is not JSON: %q", l)
		}
	}
	if strings.Contains(out.String(), m) {
		t.Fatal("the admin token is on stdout, among the audit lines")
	}
	b, err := os.ReadFile(file)
	if err != nil || !strings.Contains(string(b), `"action":"token.create"`) || !strings.Contains(string(b), `"action":"var.set"`) {
		t.Fatalf("the audit file: %v\n%s", err, b)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Fatalf("the audit file has mode %v, want 0600", fi.Mode().Perm())
	}
}
