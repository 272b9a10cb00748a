// Package webhook sends the Service's webhook messages over HTTP, signed
// as the Standard Webhooks specification says (https://www.standardwebhooks.com):
// the headers webhook-id, webhook-timestamp and webhook-signature, the
// latter "v1,<base64 of HMAC-SHA256(secret, id.timestamp.body)>" for each
// signing secret ("whsec_<base64>").
//
// A webhook's URL is chosen by whoever may create one, so the requests
// are made with care for the network they start from: no proxy from the
// environment, no redirect followed, a time-out, at most 64 KiB of a
// reply read (and none of it kept), and no connection to a loopback,
// private, link-local or otherwise internal address unless AllowPrivate
// — checked on the address dialled, after DNS, so that a name that
// resolves (or is re-bound) to one is refused too.
//
// It imports the domain and the standard library only; the Service takes
// it as an envy.WebhookSender.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/envy-dev/envy"
)

// SecretPrefix starts every signing secret.
const SecretPrefix = "whsec_"

// MaxReplyBytes is how much of a receiver's reply is read (and dropped).
const MaxReplyBytes = 64 << 10

// NewSecret returns a new signing secret: whsec_ and 32 random bytes in
// base64.
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return SecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// Sign returns the signature of one message under secret: "v1,<base64>".
func Sign(secret, msgID string, at time.Time, body []byte) (string, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil || len(key) == 0 {
		return "", errors.New("webhook: a signing secret is whsec_ and base64")
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msgID))
	mac.Write([]byte{'.'})
	mac.Write([]byte(strconv.FormatInt(at.Unix(), 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// Options configure a Sender.
type Options struct {
	// Timeout bounds one request, from dial to the end of the reply's
	// body read (default 10 s).
	Timeout time.Duration
	// AllowPrivate lets requests go to loopback, private and link-local
	// addresses (--webhook-allow-private).
	AllowPrivate bool
	// UserAgent is sent with every request (default "envy-webhooks").
	UserAgent string
}

// Sender sends webhook messages. It is safe for concurrent use.
type Sender struct {
	client *http.Client
	ua     string
}

var _ envy.WebhookSender = (*Sender)(nil)

// NewSender returns a Sender.
func NewSender(o Options) *Sender {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.UserAgent == "" {
		o.UserAgent = "envy-webhooks"
	}
	d := &net.Dialer{Timeout: o.Timeout}
	if !o.AllowPrivate {
		d.Control = refusePrivate
	}
	tr := &http.Transport{
		Proxy:                 nil, // never the environment's: the check is on the real target
		DialContext:           d.DialContext,
		TLSHandshakeTimeout:   o.Timeout,
		ResponseHeaderTimeout: o.Timeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &Sender{
		client: &http.Client{
			Transport: tr,
			Timeout:   o.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse // a redirect is the reply, not followed
			},
		},
		ua: o.UserAgent,
	}
}

// errPrivate is a refused dial's error.
type errPrivate struct{ addr netip.Addr }

func (e errPrivate) Error() string {
	return fmt.Sprintf("refused to connect to %s: a loopback, private or internal address (the server allows those only with --webhook-allow-private)", e.addr)
}

// refusePrivate is the dialer's check of the address it is about to
// connect to: after DNS, so that no name leads to an internal address.
func refusePrivate(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("refused to connect to %q: not an IP address", address)
	}
	if Private(ap.Addr()) {
		return errPrivate{ap.Addr().Unmap()}
	}
	return nil
}

// Private reports whether a is an address no webhook may reach without
// AllowPrivate (envy.InternalAddr).
func Private(a netip.Addr) bool { return envy.InternalAddr(a) }

// Send makes one attempt at m: a POST of its body with its signatures.
// A 2xx reply is a success; anything else, a redirect included, is a
// failure whose reason Err tells (never with the reply's body).
func (s *Sender) Send(ctx context.Context, m envy.WebhookMessage) envy.WebhookResult {
	start := time.Now()
	res := func(status int, err string) envy.WebhookResult {
		return envy.WebhookResult{Status: status, Err: err, Latency: time.Since(start)}
	}
	var sigs []string
	for _, sec := range m.Secrets {
		sig, err := Sign(sec.Reveal(), m.MessageID, m.At, m.Body)
		if err != nil {
			return res(0, err.Error())
		}
		sigs = append(sigs, sig)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.URL, strings.NewReader(string(m.Body)))
	if err != nil {
		return res(0, "bad request: "+describe(err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", s.ua)
	req.Header.Set("webhook-id", m.MessageID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(m.At.Unix(), 10))
	req.Header.Set("webhook-signature", strings.Join(sigs, " "))
	resp, err := s.client.Do(req)
	if err != nil {
		return res(0, describe(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxReplyBytes))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		msg := "HTTP " + strconv.Itoa(resp.StatusCode)
		if loc := resp.Header.Get("Location"); resp.StatusCode >= 300 && resp.StatusCode < 400 && loc != "" {
			msg += ": a redirect, not followed"
		}
		return res(resp.StatusCode, msg)
	}
	return res(resp.StatusCode, "")
}

// describe is a failed request's reason in a few words.
func describe(err error) string {
	var p errPrivate
	if errors.As(err, &p) {
		return p.Error()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timed out"
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return oe.Op + ": " + oe.Err.Error()
	}
	// net/http's errors name the request's URL ("Post \"https://…\": …"),
	// whose path or query may hold the receiver's credential: the reason
	// is kept and logged, so it says what failed, never where.
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Op + ": " + ue.Err.Error()
	}
	return err.Error()
}
