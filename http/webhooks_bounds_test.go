package http_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/envy-dev/envy/internal/testenv"
	"github.com/envy-dev/envy/service"
)

// GET /v1/webhooks is paged as every list is (limit, cursor, next_cursor):
// each webhook once across the pages; without a limit a page holds up to
// 1000, all there are by default. A creation beyond --max-webhooks is 409
// naming the limit.
func TestWebhooksArePagedAndBounded(t *testing.T) {
	e := testenv.New(t, testenv.Options{HTTP: httpOptsNoLimits(), Service: service.Options{Webhooks: service.WebhookOptions{Max: 5}}})
	ids := map[string]bool{}
	for range 5 {
		r := e.Do(t, "POST", "/v1/webhooks", e.Admin, `{"url":"https://hooks.example/x","scopes":"acme/**","events":["vars.changed"]}`)
		if r.Status != 201 {
			t.Fatalf("create: %d %s", r.Status, r.Body)
		}
		ids[r.JSON(t)["id"].(string)] = true
	}
	r := e.Do(t, "POST", "/v1/webhooks", e.Admin, `{"url":"https://hooks.example/x","scopes":"acme/**","events":["vars.changed"]}`)
	if r.Status != 409 || !strings.Contains(string(r.Body), "5 webhooks") || !strings.Contains(string(r.Body), "--max-webhooks") || !strings.Contains(string(r.Body), `"max_webhooks"`) {
		t.Fatalf("a 6th webhook of at most 5: %d %s, want 409 naming the limit", r.Status, r.Body)
	}
	seen := map[string]bool{}
	pages := 0
	for cursor := ""; ; pages++ {
		r := e.Do(t, "GET", "/v1/webhooks?limit=2&cursor="+url.QueryEscape(cursor), e.Admin, "")
		if r.Status != 200 {
			t.Fatalf("GET /v1/webhooks?limit=2: %d %s", r.Status, r.Body)
		}
		page := r.JSON(t)
		items, _ := page["items"].([]any)
		if len(items) > 2 || pages > 5 {
			t.Fatalf("a page of limit 2 holds %d webhooks (page %d): %s", len(items), pages+1, r.Body)
		}
		for _, it := range items {
			id := it.(map[string]any)["id"].(string)
			if seen[id] || !ids[id] {
				t.Fatalf("webhook %s listed twice, or not one created", id)
			}
			seen[id] = true
		}
		if cursor, _ = page["next_cursor"].(string); cursor == "" {
			break
		}
	}
	if len(seen) != 5 || pages != 2 {
		t.Fatalf("%d webhooks across %d pages, want 5 across 3", len(seen), pages+1)
	}
	r = e.Do(t, "GET", "/v1/webhooks", e.Admin, "")
	if items, _ := r.JSON(t)["items"].([]any); r.Status != 200 || len(items) != 5 || r.JSON(t)["next_cursor"] != nil {
		t.Fatalf("GET /v1/webhooks without a limit: %d %s, want all 5 on one page", r.Status, r.Body)
	}
	if r := e.Do(t, "GET", "/v1/webhooks?limit=0", e.Admin, ""); r.Status != 422 || !strings.Contains(string(r.Body), `"query.limit"`) {
		t.Fatalf("limit=0: %d %s", r.Status, r.Body)
	}
}
