package http

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/api"
	"github.com/envy-dev/envy/http/wire"
	"github.com/envy-dev/envy/service"
)

// The webhooks' routes (docs/webhooks.md): thin, as every handler is; the
// Service checks that the caller holds admin on the webhook's scopes.

func (s *Server) handleCreateWebhook(w http.ResponseWriter, r *http.Request) error {
	o, err := s.body.Object(w, r)
	if err != nil {
		return err
	}
	if err := o.Only("url", "scopes", "events", "description"); err != nil {
		return err
	}
	var in envy.WebhookInput
	for _, f := range []struct {
		name string
		dst  *string
	}{{"url", &in.URL}, {"scopes", &in.Scopes}, {"description", &in.Description}} {
		if *f.dst, _, err = o.String(f.name); err != nil {
			return err
		}
	}
	if in.Events, err = events(o); err != nil {
		return err
	}
	created, err := s.svc.CreateWebhook(r.Context(), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, api.WebhookSecret{Webhook: webhookView(created.Webhook), Secret: created.Secret.Reveal()})
	return nil
}

// handleListWebhooks pages the webhooks (limit, cursor; next_cursor as
// every list has). Without a limit a page holds 1000, the most there are
// by default (--max-webhooks): a client of the route from before it was
// paged, which reads no next_cursor, still gets them all.
func (s *Server) handleListWebhooks(w http.ResponseWriter, r *http.Request) error {
	n, err := queryLimitOr(r, 1000)
	if err != nil {
		return err
	}
	page, err := s.svc.ListWebhooksPage(r.Context(), r.URL.Query().Get("cursor"), n)
	return writeList(w, page, err, webhookView)
}

func (s *Server) handleGetWebhook(w http.ResponseWriter, r *http.Request) error {
	h, err := s.svc.GetWebhook(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, webhookView(h))
	return nil
}

func (s *Server) handlePatchWebhook(w http.ResponseWriter, r *http.Request) error {
	o, err := s.body.Object(w, r)
	if err != nil {
		return err
	}
	if err := o.Only("url", "events", "description", "paused", "rotate_secret", "overlap"); err != nil {
		return err
	}
	var in envy.WebhookUpdate
	if in.URL, err = o.StringPtr("url"); err != nil {
		return err
	}
	if in.Description, err = o.StringPtr("description"); err != nil {
		return err
	}
	if in.Events, err = events(o); err != nil {
		return err
	}
	if in.Paused, err = o.Bool("paused"); err != nil {
		return err
	}
	rotate, err := o.Bool("rotate_secret")
	if err != nil {
		return err
	}
	in.RotateSecret = rotate != nil && *rotate
	if in.Overlap, _, err = o.String("overlap"); err != nil {
		return err
	}
	up, err := s.svc.UpdateWebhook(r.Context(), r.PathValue("id"), in)
	if err != nil {
		return err
	}
	if in.RotateSecret {
		writeJSON(w, http.StatusOK, api.WebhookSecret{Webhook: webhookView(up.Webhook), Secret: up.Secret.Reveal()})
		return nil
	}
	writeJSON(w, http.StatusOK, webhookView(up.Webhook))
	return nil
}

func (s *Server) handleDeleteWebhook(w http.ResponseWriter, r *http.Request) error {
	if err := s.svc.DeleteWebhook(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) handleDeliveries(w http.ResponseWriter, r *http.Request) error {
	limit, err := queryLimit(r)
	if err != nil {
		return err
	}
	page, err := s.svc.Deliveries(r.Context(), r.PathValue("id"), r.URL.Query().Get("cursor"), limit)
	return writeList(w, page, err, deliveryView)
}

func (s *Server) handleRedeliver(w http.ResponseWriter, r *http.Request) error {
	id, err := strconv.ParseInt(r.PathValue("delivery"), 10, 64)
	if err != nil || id <= 0 {
		return envy.Invalid(envy.Field("path.delivery", "invalid_id", "a delivery's id is a positive integer"))
	}
	d, err := s.svc.Redeliver(r.Context(), r.PathValue("id"), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, deliveryView(d))
	return nil
}

func (s *Server) handleTestWebhook(w http.ResponseWriter, r *http.Request) error {
	d, err := s.svc.TestWebhook(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, deliveryView(d))
	return nil
}

// events reads the member events, nil when absent.
func events(o *wire.Object) ([]string, error) {
	evs, err := o.StringList("events")
	if err != nil || evs == nil {
		return nil, err
	}
	return *evs, nil
}

func webhookView(h envy.Webhook) api.Webhook {
	v := api.Webhook{ID: h.ID, URL: h.URL, Scopes: h.Scopes, Events: h.Events, Description: h.Description, State: h.State(),
		Failures: h.Failures, CreatedAt: h.CreatedAt.UTC(), CreatedBy: h.CreatedBy}
	if v.Events == nil {
		v.Events = []string{}
	}
	if v.State == envy.WebhookDisabled {
		v.DisabledAt = timePtr(h.DisabledAt)
	}
	if h.OldSecret != nil && time.Now().Before(h.OldUntil) {
		v.RotationUntil = timePtr(h.OldUntil)
	}
	return v
}

func deliveryView(d envy.Delivery) api.Delivery {
	v := api.Delivery{ID: d.ID, MessageID: d.MessageID, Type: d.Type, Scope: d.Scope, Revision: d.Revision, Status: d.Status, Attempts: d.Attempts,
		LastError: d.LastError, ResponseCode: d.ResponseCode, LatencyMS: float64(d.Latency.Microseconds()) / 1000, CreatedAt: d.CreatedAt.UTC()}
	if d.Status == envy.DeliveryPending && !d.NextAt.IsZero() {
		v.NextAt = timePtr(d.NextAt)
	}
	if !d.DoneAt.IsZero() {
		v.DoneAt = timePtr(d.DoneAt)
	}
	return v
}

func timePtr(t time.Time) *time.Time {
	u := t.UTC()
	return &u
}

// webhookCollector reports the deliveries of this server and the state of
// the webhooks (service.Service.WebhookStats) at each scrape.
type webhookCollector struct {
	stats                        func(context.Context) service.WebhookStats
	attempts, inFlight, webhooks *prometheus.Desc
}

func newWebhookCollector(stats func(context.Context) service.WebhookStats) *webhookCollector {
	return &webhookCollector{
		stats:    stats,
		attempts: prometheus.NewDesc("envy_webhook_attempts_total", "Delivery attempts made by this server, by outcome: delivered, retry (failed, to be retried) or failed (given up).", []string{"outcome"}, nil),
		inFlight: prometheus.NewDesc("envy_webhook_requests_in_flight", "Webhook requests this server is making.", nil, nil),
		webhooks: prometheus.NewDesc("envy_webhooks", "Webhooks, all servers', by state: active, paused, or disabled after failed deliveries in a row.", []string{"state"}, nil),
	}
}

func (c *webhookCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.attempts, c.inFlight, c.webhooks} {
		ch <- d
	}
}

func (c *webhookCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st := c.stats(ctx)
	ch <- prometheus.MustNewConstMetric(c.attempts, prometheus.CounterValue, float64(st.Delivered), "delivered")
	ch <- prometheus.MustNewConstMetric(c.attempts, prometheus.CounterValue, float64(st.Retried), "retry")
	ch <- prometheus.MustNewConstMetric(c.attempts, prometheus.CounterValue, float64(st.Failed), "failed")
	ch <- prometheus.MustNewConstMetric(c.inFlight, prometheus.GaugeValue, float64(st.InFlight))
	ch <- prometheus.MustNewConstMetric(c.webhooks, prometheus.GaugeValue, float64(st.Webhooks-st.Paused-st.Disabled), envy.WebhookActive)
	ch <- prometheus.MustNewConstMetric(c.webhooks, prometheus.GaugeValue, float64(st.Paused), envy.WebhookPaused)
	ch <- prometheus.MustNewConstMetric(c.webhooks, prometheus.GaugeValue, float64(st.Disabled), envy.WebhookDisabled)
}
