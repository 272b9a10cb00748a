package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/envy-dev/envy/api"
)

// Webhook is a webhook; WebhookSecret one with its signing secret (on
// creation and rotation); Delivery one message to a webhook.
type (
	Webhook       = api.Webhook
	WebhookSecret = api.WebhookSecret
	Delivery      = api.Delivery
)

// WebhookInput is the body of CreateWebhook (see docs/webhooks.md).
type WebhookInput struct {
	URL         string   `json:"url"`
	Scopes      string   `json:"scopes"`
	Events      []string `json:"events"`
	Description string   `json:"description,omitempty"`
}

// WebhookUpdate is the body of UpdateWebhook; nil members stay.
type WebhookUpdate struct {
	URL          *string  `json:"url,omitempty"`
	Events       []string `json:"events,omitempty"`
	Description  *string  `json:"description,omitempty"`
	Paused       *bool    `json:"paused,omitempty"`
	RotateSecret bool     `json:"rotate_secret,omitempty"`
	Overlap      string   `json:"overlap,omitempty"`
}

func webhookPath(id string) string { return "/v1/webhooks/" + url.PathEscape(id) }

// CreateWebhook creates a webhook; its secret is in the reply only.
func (c *Client) CreateWebhook(ctx context.Context, in WebhookInput) (*WebhookSecret, error) {
	var out WebhookSecret
	if _, err := c.call(ctx, request{method: http.MethodPost, path: "/v1/webhooks", body: in}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListWebhooks returns the webhooks whose scopes the token administers.
func (c *Client) ListWebhooks(ctx context.Context) ([]Webhook, error) {
	var all []Webhook
	q := url.Values{}
	for {
		var out Page[Webhook]
		if _, err := c.call(ctx, request{method: http.MethodGet, path: "/v1/webhooks", query: q}, &out); err != nil {
			return nil, err
		}
		all = append(all, out.Items...)
		if out.NextCursor == "" || string(out.NextCursor) == q.Get("cursor") {
			return all, nil
		}
		q.Set("cursor", string(out.NextCursor))
	}
}

// GetWebhook returns a webhook.
func (c *Client) GetWebhook(ctx context.Context, id string) (*Webhook, error) {
	var out Webhook
	if _, err := c.call(ctx, request{method: http.MethodGet, path: webhookPath(id)}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateWebhook changes a webhook; with RotateSecret the reply's Secret is
// the new one.
func (c *Client) UpdateWebhook(ctx context.Context, id string, in WebhookUpdate) (*WebhookSecret, error) {
	var out WebhookSecret
	if _, err := c.call(ctx, request{method: http.MethodPatch, path: webhookPath(id), body: in}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteWebhook deletes a webhook with its deliveries.
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	_, err := c.call(ctx, request{method: http.MethodDelete, path: webhookPath(id)}, nil)
	return err
}

// Deliveries returns a page of a webhook's deliveries, newest first.
func (c *Client) Deliveries(ctx context.Context, id, cursor string, limit int) (*Page[Delivery], error) {
	q := url.Values{}
	setNonEmpty(q, "cursor", cursor)
	setLimit(q, limit)
	var out Page[Delivery]
	if _, err := c.call(ctx, request{method: http.MethodGet, path: webhookPath(id) + "/deliveries", query: q}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Redeliver queues a delivery again.
func (c *Client) Redeliver(ctx context.Context, id string, delivery int64) (*Delivery, error) {
	var out Delivery
	path := webhookPath(id) + "/deliveries/" + strconv.FormatInt(delivery, 10) + "/redeliver"
	if _, err := c.call(ctx, request{method: http.MethodPost, path: path}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// TestWebhook queues a webhook.test message.
func (c *Client) TestWebhook(ctx context.Context, id string) (*Delivery, error) {
	var out Delivery
	if _, err := c.call(ctx, request{method: http.MethodPost, path: webhookPath(id) + "/test"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
