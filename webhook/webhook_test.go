package webhook_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/webhook"
)

func message(url string, secrets ...string) envy.WebhookMessage {
	m := envy.WebhookMessage{URL: url, MessageID: "msg_1", At: time.Now(), Body: []byte(`{"type":"vars.changed"}`)}
	for _, s := range secrets {
		m.Secrets = append(m.Secrets, envy.NewSensitive(s))
	}
	return m
}

func TestSignaturesVerifyWithTheStandardWebhooksLibrary(t *testing.T) {
	oldSecret, newSecret := webhook.NewSecret(), webhook.NewSecret()
	if !strings.HasPrefix(newSecret, "whsec_") {
		t.Fatalf("secret %q has no whsec_ prefix", newSecret)
	}
	verifiers := map[string]*standardwebhooks.Webhook{}
	for name, s := range map[string]string{"old": oldSecret, "new": newSecret, "other": webhook.NewSecret()} {
		v, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			t.Fatal(err)
		}
		verifiers[name] = v
	}
	type got struct {
		body []byte
		h    http.Header
	}
	ch := make(chan got, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ch <- got{b, r.Header.Clone()}
	}))
	defer srv.Close()
	s := webhook.NewSender(webhook.Options{AllowPrivate: true})

	// During a rotation's overlap both secrets sign: a receiver with either verifies.
	res := s.Send(t.Context(), message(srv.URL, newSecret, oldSecret))
	if res.Err != "" || res.Status != 200 {
		t.Fatalf("Send = %+v", res)
	}
	g := <-ch
	if g.h.Get("webhook-id") != "msg_1" || g.h.Get("Content-Type") != "application/json" {
		t.Fatalf("headers %v", g.h)
	}
	for _, name := range []string{"old", "new"} {
		if err := verifiers[name].Verify(g.body, g.h); err != nil {
			t.Fatalf("the %s secret does not verify a message both sign: %v", name, err)
		}
	}
	if err := verifiers["other"].Verify(g.body, g.h); err == nil {
		t.Fatal("another secret verifies the message")
	}
	// After it, only the new one.
	s.Send(t.Context(), message(srv.URL, newSecret))
	g = <-ch
	if err := verifiers["new"].Verify(g.body, g.h); err != nil {
		t.Fatal(err)
	}
	if err := verifiers["old"].Verify(g.body, g.h); err == nil {
		t.Fatal("the old secret still verifies after the overlap")
	}
	// A body changed on the way fails.
	if err := verifiers["new"].Verify(append(g.body, ' '), g.h); err == nil {
		t.Fatal("a changed body verifies")
	}
}

func TestPrivateAddressesAreRefusedAtDialTime(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	strict := webhook.NewSender(webhook.Options{})
	port := srv.URL[strings.LastIndex(srv.URL, ":"):]
	// By address, and by a name that resolves to loopback: the check is on
	// the address dialled, not on the URL's host.
	for _, u := range []string{srv.URL, "http://localhost" + port} {
		res := strict.Send(t.Context(), message(u, webhook.NewSecret()))
		if res.Status != 0 || !strings.Contains(res.Err, "refused to connect to") || !strings.Contains(res.Err, "--webhook-allow-private") {
			t.Fatalf("Send(%s) = %+v, want refused", u, res)
		}
	}
	if hits.Load() != 0 {
		t.Fatalf("the receiver was reached %d times", hits.Load())
	}
	if res := webhook.NewSender(webhook.Options{AllowPrivate: true}).Send(t.Context(), message(srv.URL, webhook.NewSecret())); res.Err != "" {
		t.Fatalf("with AllowPrivate: %+v", res)
	}
	for _, c := range []struct {
		addr    string
		private bool
	}{
		{"127.0.0.1", true}, {"10.1.2.3", true}, {"172.16.0.1", true}, {"192.168.1.1", true}, {"169.254.169.254", true},
		{"100.64.0.1", true}, {"0.0.0.0", true}, {"::1", true}, {"fd00::1", true}, {"fe80::1", true}, {"::ffff:127.0.0.1", true},
		{"64:ff9b::a00:1", true}, {"93.184.216.34", false}, {"2606:4700::1111", false},
	} {
		if got := webhook.Private(netip.MustParseAddr(c.addr)); got != c.private {
			t.Errorf("Private(%s) = %v, want %v", c.addr, got, c.private)
		}
	}
}

func TestRedirectsAreNotFollowedAndRepliesAreReadBounded(t *testing.T) {
	var followed atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/target", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/target", func(w http.ResponseWriter, r *http.Request) { followed.Add(1) })
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(500)
		chunk := strings.Repeat("x", 1<<20)
		for i := 0; i < 64; i++ { // 64 MiB if read to the end
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
		}
	})
	stop := make(chan struct{})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer close(stop) // before Close, which waits for the handlers
	s := webhook.NewSender(webhook.Options{AllowPrivate: true, Timeout: 500 * time.Millisecond})
	if res := s.Send(t.Context(), message(srv.URL+"/redirect", webhook.NewSecret())); res.Status != 307 || !strings.Contains(res.Err, "not followed") {
		t.Fatalf("redirect: %+v", res)
	}
	if followed.Load() != 0 {
		t.Fatal("the redirect was followed")
	}
	if res := s.Send(t.Context(), message(srv.URL+"/big", webhook.NewSecret())); res.Status != 500 || res.Err != "HTTP 500" {
		t.Fatalf("big reply: %+v", res)
	}
	if res := s.Send(t.Context(), message(srv.URL+"/slow", webhook.NewSecret())); res.Status != 0 || res.Err != "timed out" {
		t.Fatalf("slow receiver: %+v", res)
	}
}

// Many receivers carry a credential in their URL's path or query (chat
// webhooks do): a failure's reason, kept as the delivery's last error and
// logged, names the failure, never the URL.
func TestAFailuresReasonNeverHoldsTheURL(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	s := webhook.NewSender(webhook.Options{AllowPrivate: true})
	res := s.Send(t.Context(), message(srv.URL+"/services/T0/B0/sekrit-path-token?key=sekrit-query-key", "whsec_"+strings.Repeat("A", 32)))
	if res.Err == "" {
		t.Fatal("a receiver whose certificate is not trusted was reached")
	}
	if strings.Contains(res.Err, "sekrit") || strings.Contains(res.Err, "/services/") {
		t.Fatalf("the reason holds the URL: %s", res.Err)
	}
	if !strings.Contains(res.Err, "certificate") {
		t.Errorf("the reason %q does not say what failed", res.Err)
	}
}
