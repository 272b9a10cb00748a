package http_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/envy-dev/envy/internal/testenv"
	"github.com/envy-dev/envy/service"
	"github.com/envy-dev/envy/webhook"
)

func TestWebhookRoutesNameTheFieldAndShowTheSecretOnce(t *testing.T) {
	e := testenv.New(t, testenv.Options{HTTP: httpOptsNoLimits()})
	for _, c := range []struct{ body, loc string }{
		{`{"scopes":"acme/**","events":["vars.changed"]}`, "body.url"},
		{`{"url":"http://hooks.example/x","scopes":"acme/**","events":["vars.changed"]}`, "body.url"},
		{`{"url":"https://10.1.2.3/x","scopes":"acme/**","events":["vars.changed"]}`, "body.url"},
		{`{"url":"https://hooks.example/x","events":["vars.changed"]}`, "body.scopes"},
		{`{"url":"https://hooks.example/x","scopes":"acme/**","events":["vars.changed","scope.exploded"]}`, "body.events[1]"},
		{`{"url":"https://hooks.example/x","scopes":"acme/**","events":[]}`, "body.events"},
		{`{"url":"https://hooks.example/x","scopes":"acme/**","events":["vars.changed"],"secret":"mine"}`, "body.secret"},
	} {
		r := e.Do(t, "POST", "/v1/webhooks", e.Admin, c.body)
		if r.Status != 422 && r.Status != 400 || !strings.Contains(string(r.Body), `"`+c.loc+`"`) {
			t.Fatalf("POST %s: %d %s, want the field %s named", c.body, r.Status, r.Body, c.loc)
		}
	}
	r := e.Do(t, "POST", "/v1/webhooks", e.Admin, `{"url":"https://hooks.example/x","scopes":"acme/**","events":["vars.changed","rollout.paused"],"description":"deploys"}`)
	if r.Status != 201 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	created := r.JSON(t)
	secret, id := created["secret"].(string), created["id"].(string)
	if !strings.HasPrefix(secret, "whsec_") || created["state"] != "active" {
		t.Fatalf("create: %s", r.Body)
	}
	for _, path := range []string{"/v1/webhooks", "/v1/webhooks/" + id, "/v1/webhooks/" + id + "/deliveries"} {
		if r := e.Do(t, "GET", path, e.Admin, ""); r.Status != 200 || strings.Contains(string(r.Body), secret) || strings.Contains(string(r.Body), `"secret"`) {
			t.Fatalf("GET %s: %d %s", path, r.Status, r.Body)
		}
	}
	if r := e.Do(t, "PATCH", "/v1/webhooks/"+id, e.Admin, `{}`); r.Status != 422 || !strings.Contains(string(r.Body), `"body"`) {
		t.Fatalf("an empty PATCH: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "PATCH", "/v1/webhooks/"+id, e.Admin, `{"rotate_secret":true,"overlap":"9999h"}`); r.Status != 422 || !strings.Contains(string(r.Body), `"body.overlap"`) {
		t.Fatalf("a long overlap: %d %s", r.Status, r.Body)
	}
	r = e.Do(t, "PATCH", "/v1/webhooks/"+id, e.Admin, `{"rotate_secret":true,"overlap":"1h"}`)
	if s, _ := r.JSON(t)["secret"].(string); r.Status != 200 || s == secret || !strings.HasPrefix(s, "whsec_") || r.JSON(t)["rotation_until"] == nil {
		t.Fatalf("rotate: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "PATCH", "/v1/webhooks/"+id, e.Admin, `{"paused":true}`); r.Status != 200 || r.JSON(t)["state"] != "paused" || r.JSON(t)["secret"] != nil {
		t.Fatalf("pause: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "POST", "/v1/webhooks/"+id+"/deliveries/x/redeliver", e.Admin, ""); r.Status != 422 || !strings.Contains(string(r.Body), `"path.delivery"`) {
		t.Fatalf("a bad delivery id: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "POST", "/v1/webhooks/"+id+"/deliveries/999/redeliver", e.Admin, ""); r.Status != 404 {
		t.Fatalf("a missing delivery: %d %s", r.Status, r.Body)
	}
	m := e.Do(t, "GET", "/metrics", "", "")
	for _, want := range []string{`envy_webhooks{state="paused"} 1`, `envy_webhooks{state="active"} 0`, `envy_webhook_attempts_total{outcome="delivered"} 0`} {
		if !strings.Contains(string(m.Body), want) {
			t.Fatalf("/metrics lacks %s", want)
		}
	}
	if r := e.Do(t, "DELETE", "/v1/webhooks/"+id, e.Admin, ""); r.Status != 204 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "GET", "/v1/webhooks/"+id, e.Admin, ""); r.Status != 404 {
		t.Fatalf("after delete: %d %s", r.Status, r.Body)
	}
}

// A webhook disabled for its failures and then paused is both, but the
// metrics count it once, as the API shows it: disabled.
func TestAWebhookDisabledThenPausedIsCountedUnderOneState(t *testing.T) {
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }))
	defer rc.Close()
	e := testenv.New(t, testenv.Options{HTTP: httpOptsNoLimits(), Service: service.Options{Webhooks: service.WebhookOptions{
		Sender: webhook.NewSender(webhook.Options{AllowPrivate: true}), AllowPrivate: true,
		RetryBase: 10 * time.Millisecond, Poll: 20 * time.Millisecond, GiveUpAfter: time.Nanosecond, MaxFailures: 1}}})
	r := e.Do(t, "POST", "/v1/webhooks", e.Admin, `{"url":"`+rc.URL+`","scopes":"**","events":["vars.changed"]}`)
	if r.Status != 201 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	id := r.JSON(t)["id"].(string)
	if r := e.Do(t, "PUT", "/v1/scopes/acme/web/-/vars/A", e.Admin, `{"value":"1"}`); r.Status/100 != 2 {
		t.Fatalf("set: %d %s", r.Status, r.Body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.Do(t, "GET", "/v1/webhooks/"+id, e.Admin, "").JSON(t)["state"] != "disabled" {
		if time.Now().After(deadline) {
			t.Fatal("the webhook was never disabled")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r := e.Do(t, "PATCH", "/v1/webhooks/"+id, e.Admin, `{"paused":true}`); r.Status != 200 {
		t.Fatalf("pause: %d %s", r.Status, r.Body)
	}
	if s := e.Do(t, "GET", "/v1/webhooks/"+id, e.Admin, "").JSON(t)["state"]; s != "disabled" {
		t.Errorf("the API shows the disabled and paused webhook as %v", s)
	}
	m := string(e.Do(t, "GET", "/metrics", "", "").Body)
	for state, n := range map[string]string{"active": "0", "paused": "0", "disabled": "1"} {
		if want := `envy_webhooks{state="` + state + `"} ` + n; !strings.Contains(m, want+"\n") {
			t.Errorf("metrics lack %s:\n%s", want, grepLines(m, "envy_webhooks{"))
		}
	}
}
