package runner

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/client"
)

// A health check's reason can be longer than the server takes (a
// certificate's many names, a reply quoted) and hold control characters:
// the runner's report is cut to what the server takes, so that the
// rollout pauses, rather than refused on every try while the rollout
// goes on past the failed instance.
func TestALongUnhealthyReasonStillPausesTheRollout(t *testing.T) {
	s := newServer(t)
	rev, _ := s.merge(t, "acme/web", map[string]any{"V": "1"})
	if r := s.Do(t, "PUT", "/v1/scopes/acme/web", s.Admin, `{"rollout":{"max_unavailable":1,"health_timeout":"5s","debounce":"5s"}}`); r.Status != 200 {
		t.Fatalf("policy: %d %s", r.Status, r.Body)
	}
	var log bytes.Buffer
	r := &runner{cfg: Config{Client: client.New(s.URL, s.token), Scope: "acme/web", ConsumerID: "web-1"}, log: &log}
	why := "--health-url: tls: failed to verify certificate: x509: certificate is valid for " + strings.Repeat("service-00.internal.example.com, ", 40) + "\nnot localhost: é"
	newReporter(r).failNow(context.Background(), rev, 1, why)
	if strings.Contains(log.String(), "can't tell envy") {
		t.Fatalf("the report was refused: %s", log.String())
	}
	if st := s.status(t, "acme/web"); st.Rollout == nil || st.Rollout.State != "paused" {
		t.Fatalf("the rollout is not paused: %+v", st.Rollout)
	}
	for _, w := range []string{why[:40], "é", strings.Repeat("é", 300)} {
		got := unhealthyReason(w)
		if len(got) > envy.MaxUnhealthyBytes || !utf8.ValidString(got) || !envy.Printable(got) {
			t.Errorf("unhealthyReason(%.20q…) = %.20q… (%d bytes)", w, got, len(got))
		}
	}
}
