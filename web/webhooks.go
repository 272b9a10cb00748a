package web

import (
	"net/http"
	"time"

	"github.com/envy-dev/envy"
)

// The webhooks' pages: the list of the webhooks whose scopes the token
// administers, and a page per webhook with its deliveries (docs/webhooks.md).
// They read through the same Service calls as the API; creating and
// changing webhooks is the API's and the CLI's.

type webhookRow struct {
	envy.Webhook
	State string
}

type webhooksData struct {
	Hooks []webhookRow
}

func (h *Handler) webhooksPage(w http.ResponseWriter, r *http.Request) {
	hooks, err := h.svc.ListWebhooks(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	d := webhooksData{}
	for _, wh := range hooks {
		d.Hooks = append(d.Hooks, webhookRow{wh, wh.State()})
	}
	h.render(w, r, http.StatusOK, "webhooks", &view{Title: "Webhooks", Section: "webhooks", Data: d})
}

type deliveryRow struct {
	envy.Delivery
	LatencyMS string
}

type webhookData struct {
	Hook       webhookRow
	Deliveries []deliveryRow
	Next       string
}

func (h *Handler) webhookPage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	wh, err := h.svc.GetWebhook(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	p, err := h.svc.Deliveries(r.Context(), id, r.URL.Query().Get("cursor"), 50)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	d := webhookData{Hook: webhookRow{wh, wh.State()}, Next: p.NextCursor}
	for _, dl := range p.Items {
		d.Deliveries = append(d.Deliveries, deliveryRow{dl, dl.Latency.Round(time.Millisecond).String()})
	}
	h.render(w, r, http.StatusOK, "webhook", &view{Title: "Webhook " + id, Section: "webhooks", Data: d})
}
