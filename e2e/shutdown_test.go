package e2e

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/envy-dev/envy"
)

// waitUntil polls f until it returns true, failing after a generous deadline.
func waitUntil(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// exited waits for the server process to exit and returns its exit code.
func (s *server) exited(t *testing.T) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatalf("wait: %v", err)
		}
		return 0
	case <-time.After(60 * time.Second):
		t.Fatalf("the server did not exit; log:\n%s", s.log())
		return -1
	}
}

// slowPut is a PUT of one var whose body is not sent yet: the server has
// started handling it (it asked for the body with 100 Continue).
type slowPut struct {
	conn net.Conn
	rd   *bufio.Reader
	body string
}

func startSlowPut(t *testing.T, s *server, scope, name, value, requestID string) *slowPut {
	t.Helper()
	host := strings.TrimPrefix(s.addr, "http://")
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	b, _ := json.Marshal(map[string]any{"value": value})
	fmt.Fprintf(conn, "PUT /v1/scopes/%s/-/vars/%s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\nX-Request-Id: %s\r\n\r\n",
		scope, name, host, s.token, len(b), requestID)
	p := &slowPut{conn: conn, rd: bufio.NewReader(conn), body: string(b)}
	line, err := p.rd.ReadString('\n')
	if err != nil || !strings.Contains(line, "100 Continue") {
		t.Fatalf("want 100 Continue, got %q, %v", line, err)
	}
	if _, err := p.rd.ReadString('\n'); err != nil { // the empty line
		t.Fatal(err)
	}
	return p
}

// finish sends the body and returns the reply's status.
func (p *slowPut) finish(t *testing.T) int {
	t.Helper()
	if _, err := io.WriteString(p.conn, p.body); err != nil {
		t.Fatalf("send the body of the request in flight: %v", err)
	}
	res, err := http.ReadResponse(p.rd, nil)
	if err != nil {
		t.Fatalf("read the reply of the request in flight: %v", err)
	}
	res.Body.Close()
	return res.StatusCode
}

func TestGracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	token := envy.NewTokenValue()
	s := startServerWith(t, token, "--data-dir", dir, "--shutdown-timeout", "30s", "--shutdown-delay", "5s")
	if st, b := s.do(t, "PUT", "/v1/scopes/ops/stop/-/vars/A", map[string]any{"value": "secret-value-a", "secret": true}); st != 201 {
		t.Fatalf("set A: %d %s", st, b)
	}

	// A watch stream, which must end when the server starts draining.
	req, _ := http.NewRequest("GET", s.addr+"/v1/scopes/ops/stop/-/watch", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("watch: %v %v", res, err)
	}
	watchEnded := make(chan struct{})
	go func() {
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		close(watchEnded)
	}()

	// A reveal, whose audit entry is written in the background.
	rreq, _ := http.NewRequest("GET", s.addr+"/v1/scopes/ops/stop/-/vars/A?reveal=true", nil)
	rreq.Header.Set("Authorization", "Bearer "+token)
	rreq.Header.Set("X-Request-Id", "reveal-before-sigterm")
	rres, err := http.DefaultClient.Do(rreq)
	if err != nil || rres.StatusCode != 200 {
		t.Fatalf("reveal: %v %v", rres, err)
	}
	rres.Body.Close()

	// A write in flight: the server is reading its body when SIGTERM comes.
	put := startSlowPut(t, s, "ops/stop", "B", "written while draining", "put-in-flight")

	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// /readyz fails from the first moment, while the listener still accepts.
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	waitUntil(t, "/readyz to answer 503 after SIGTERM", func() bool {
		res, err := fresh.Get(s.addr + "/readyz")
		if err != nil {
			t.Fatalf("/readyz refused before it said 503 (the shutdown delay passed?): %v", err)
		}
		res.Body.Close()
		return res.StatusCode == 503
	})
	select {
	case <-watchEnded:
	case <-time.After(30 * time.Second):
		t.Fatal("the watch stream did not end after SIGTERM")
	}
	if st := put.finish(t); st != 201 {
		t.Fatalf("the write in flight answered %d, want 201", st)
	}
	if code := s.exited(t); code != 0 {
		t.Fatalf("exit code %d after SIGTERM; log:\n%s", code, s.log())
	}
	if _, err := fresh.Get(s.addr + "/healthz"); err == nil {
		t.Fatal("the server still accepts after it exited")
	}

	// Everything acknowledged is there, the audit of the reveal included.
	s2 := startServerWith(t, token, "--data-dir", dir)
	st, b := s2.do(t, "GET", "/v1/scopes/ops/stop/-/vars/B?reveal=true", nil)
	if st != 200 || !strings.Contains(string(b), "written while draining") {
		t.Fatalf("the write in flight is lost: %d %s", st, b)
	}
	st, b = s2.do(t, "GET", "/v1/audit?limit=1000", nil)
	if st != 200 {
		t.Fatalf("audit: %d %s", st, b)
	}
	for _, id := range []string{"reveal-before-sigterm", "put-in-flight"} {
		if !strings.Contains(string(b), `"`+id+`"`) {
			t.Errorf("the audit has no entry of request %s after a graceful shutdown", id)
		}
	}
}

func TestShutdownTimeoutCutsAStuckRequest(t *testing.T) {
	dir := t.TempDir()
	token := envy.NewTokenValue()
	s := startServerWith(t, token, "--data-dir", dir, "--shutdown-timeout", "1s")
	put := startSlowPut(t, s, "ops/stuck", "B", "never sent", "stuck")
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := s.exited(t); code != 0 {
		t.Fatalf("exit code %d; log:\n%s", code, s.log())
	}
	if !strings.Contains(s.log(), "shutdown timeout passed") {
		t.Fatalf("no word of the cut request in the log:\n%s", s.log())
	}
	// The stuck request was cut, not answered.
	put.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := http.ReadResponse(put.rd, nil); err == nil {
		t.Fatal("the stuck request got a reply")
	}
}

func TestBadShutdownTimeoutStopsTheServer(t *testing.T) {
	cmd := exec.Command(envyBin, "server", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--shutdown-timeout", "-1s")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--shutdown-timeout") {
		t.Fatalf("want a one-line error naming --shutdown-timeout, got %v: %s", err, out)
	}
}

// writeCert writes a new self-signed certificate for 127.0.0.1 with the
// given serial to certFile and keyFile.
func writeCert(t *testing.T, certFile, keyFile string, serial int64) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "envy test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	// Write beside, then rename: the server never reads half a file.
	for file, block := range map[string]*pem.Block{certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "EC PRIVATE KEY", Bytes: kb}} {
		if err := os.WriteFile(file+".new", pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(file+".new", file); err != nil {
			t.Fatal(err)
		}
	}
}

// tlsClient returns a client that keeps its connections and records the
// serial of the certificate each new connection saw.
func tlsClient(serials chan<- int64) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, // the test checks which certificate it got, not who signed it
		VerifyConnection: func(cs tls.ConnectionState) error {
			serials <- cs.PeerCertificates[0].SerialNumber.Int64()
			return nil
		},
	}}}
}

func TestTLSCertificateReloadsOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeCert(t, certFile, keyFile, 1)
	token := envy.NewTokenValue()
	s := startServerWith(t, token, "--data-dir", dir, "--tls-cert", certFile, "--tls-key", keyFile)
	if !strings.HasPrefix(s.addr, "https://") {
		t.Fatalf("ready at %s, want https", s.addr)
	}

	get := func(c *http.Client) (reused bool) {
		t.Helper()
		req, _ := http.NewRequest("GET", s.addr+"/healthz", nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
		}))
		res, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET /healthz: %v", err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("GET /healthz: %d", res.StatusCode)
		}
		return reused
	}
	oldSerials := make(chan int64, 10)
	old := tlsClient(oldSerials)
	get(old)
	if got := <-oldSerials; got != 1 {
		t.Fatalf("first certificate has serial %d, want 1", got)
	}

	writeCert(t, certFile, keyFile, 2)
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a new connection to get the new certificate", func() bool {
		serials := make(chan int64, 10)
		c := tlsClient(serials)
		get(c)
		c.CloseIdleConnections()
		return <-serials == 2
	})

	// The keep-alive connection opened before the reload still works.
	if !get(old) {
		t.Fatal("the old connection was not reused: was it dropped by the reload?")
	}
	select {
	case sn := <-oldSerials:
		t.Fatalf("the old client made a new connection (serial %d)", sn)
	default:
	}

	// A broken certificate file on SIGHUP keeps the current certificate.
	os.WriteFile(certFile, []byte("not a certificate"), 0o600)
	s.cmd.Process.Signal(syscall.SIGHUP)
	waitUntil(t, "the failed reload to be logged", func() bool {
		return strings.Contains(s.log(), "cannot reload the TLS certificate")
	})
	serials := make(chan int64, 10)
	get(tlsClient(serials))
	if sn := <-serials; sn != 2 {
		t.Fatalf("after a failed reload the server serves serial %d, want 2", sn)
	}
}
