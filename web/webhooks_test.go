package web

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/envy-dev/envy"
)

func TestWebhookPagesShowEachWebhookWithItsDeliveries(t *testing.T) {
	e := newTestEnv(t, false, Options{})
	ctx := e.asToken(t, e.Admin)
	created, err := e.Svc.CreateWebhook(ctx, envy.WebhookInput{URL: "https://hooks.example/envy", Scopes: "acme/**", Events: []string{envy.EventVarsChanged}, Description: "deploys"})
	if err != nil {
		t.Fatal(err)
	}
	id := created.Webhook.ID
	if _, err := e.Svc.TestWebhook(ctx, id); err != nil {
		t.Fatal(err)
	}
	b := e.browser(t)
	b.signIn(e.Admin)
	list := b.get("/ui/webhooks")
	if list.Status != http.StatusOK || !strings.Contains(list.Body, `data-webhook="`+id+`"`) || !strings.Contains(list.Body, "deploys") || strings.Contains(list.Body, "whsec_") {
		t.Fatalf("list: %d\n%s", list.Status, list.Body)
	}
	one := b.get("/ui/webhooks/" + id)
	if one.Status != http.StatusOK || !strings.Contains(one.Body, `data-delivery="1"`) || !strings.Contains(one.Body, "webhook.test") || !strings.Contains(one.Body, "pending") {
		t.Fatalf("webhook page: %d\n%s", one.Status, one.Body)
	}
	paused := true
	if _, err := e.Svc.UpdateWebhook(ctx, id, envy.WebhookUpdate{Paused: &paused}); err != nil {
		t.Fatal(err)
	}
	if one := b.get("/ui/webhooks/" + id); !strings.Contains(one.Body, `<dd id="webhook-state">paused</dd>`) {
		t.Fatalf("a paused webhook's page:\n%s", one.Body)
	}
	// To a token that does not administer its scopes it does not exist.
	_, reader := e.mint(t, "reader", "acme/** read,reveal")
	rb := e.browser(t)
	rb.signIn(reader)
	if p := rb.get("/ui/webhooks/" + id); p.Status != http.StatusNotFound {
		t.Fatalf("a reader's view of the webhook: %d", p.Status)
	}
	if p := rb.get("/ui/webhooks"); p.Status != http.StatusOK || strings.Contains(p.Body, id) {
		t.Fatalf("a reader's list: %d\n%s", p.Status, p.Body)
	}
}

func TestBrowserWebhookPages(t *testing.T) {
	ctx := newBrowser(t)
	e := newTestEnv(t, false, Options{})
	actx := e.asToken(t, e.Admin)
	created, err := e.Svc.CreateWebhook(actx, envy.WebhookInput{URL: "https://hooks.example/envy", Scopes: "acme/**", Events: []string{envy.EventVarsChanged}, Description: "deploys"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Svc.TestWebhook(actx, created.Webhook.ID); err != nil {
		t.Fatal(err)
	}
	signInBrowser(t, ctx, e.URL, e.Admin)
	run(t, ctx, "webhooks page",
		chromedp.Navigate(e.URL+"/ui/webhooks"),
		chromedp.WaitVisible(`#webhooks`, chromedp.ByQuery),
	)
	checkA11y(t, ctx)
	run(t, ctx, "a webhook's page",
		chromedp.Click(`tr[data-webhook="`+created.Webhook.ID+`"] a`, chromedp.ByQuery),
		chromedp.WaitVisible(`#deliveries`, chromedp.ByQuery),
	)
	waitText(t, ctx, "#deliveries", "webhook.test")
	checkA11y(t, ctx)
}
