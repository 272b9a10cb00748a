package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestWebhooksCommands(t *testing.T) {
	_, ev := server(t)
	out := must(t, ev, "", "webhooks", "create", "https://ci.example.com/hooks/envy", "--scopes", "acme/web/**", "--events", "vars.changed,scope.deleted", "--description", "deploys")
	if !strings.Contains(out, "whsec_") || !strings.Contains(out, "state:        active") {
		t.Fatalf("create:\n%s", out)
	}
	js := must(t, ev, "", "webhooks", "ls", "-o", "json")
	var page struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(js), &page); err != nil || len(page.Items) != 1 || strings.Contains(js, "whsec_") {
		t.Fatalf("ls -o json: %v\n%s", err, js)
	}
	id := page.Items[0].ID
	if out := must(t, ev, "", "webhooks", "ls"); !strings.Contains(out, id) || !strings.Contains(out, "vars.changed,scope.deleted") {
		t.Fatalf("ls:\n%s", out)
	}
	if out := must(t, ev, "", "webhooks", "test", id); !strings.Contains(out, "queued a webhook.test message as delivery 1") {
		t.Fatalf("test: %s", out)
	}
	if out := must(t, ev, "", "webhooks", "deliveries", id); !strings.Contains(out, "webhook.test") || !strings.Contains(out, "pending") {
		t.Fatalf("deliveries:\n%s", out)
	}
	if out := must(t, ev, "", "webhooks", "redeliver", id, "1"); !strings.Contains(out, "as delivery 2") {
		t.Fatalf("redeliver: %s", out)
	}
	if out := must(t, ev, "", "webhooks", "pause", id); out != "paused webhook "+id+"\n" {
		t.Fatalf("pause: %q", out)
	}
	if out := must(t, ev, "", "webhooks", "resume", id); out != "resumed webhook "+id+"\n" {
		t.Fatalf("resume: %q", out)
	}
	if out := must(t, ev, "", "webhooks", "rotate", id, "--overlap", "2h"); !strings.Contains(out, "whsec_") || !strings.Contains(out, "old secret signs until") {
		t.Fatalf("rotate:\n%s", out)
	}
	code, _, errOut := runEnvy(t, ev, "", "webhooks", "create", "https://127.0.0.1/x", "--scopes", "acme/**", "--events", "vars.changed")
	if code == 0 || !strings.Contains(errOut, "url") {
		t.Fatalf("a private URL: exit %d, %s", code, errOut)
	}
	if code, _, errOut := runEnvy(t, ev, "", "webhooks", "create", "https://x.example/h", "--events", "vars.changed"); code == 0 || !strings.Contains(errOut, "--scopes is required") {
		t.Fatalf("no --scopes: exit %d, %s", code, errOut)
	}
	if out := must(t, ev, "", "webhooks", "rm", id); out != "deleted webhook "+id+"\n" {
		t.Fatalf("rm: %q", out)
	}
	if code, _, errOut := runEnvy(t, ev, "", "webhooks", "deliveries", id); code == 0 || !strings.Contains(errOut, "not found") {
		t.Fatalf("deliveries of a deleted webhook: exit %d, %s", code, errOut)
	}
}
