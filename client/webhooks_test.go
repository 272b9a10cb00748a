package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestListWebhooksFollowsThePages: GET /v1/webhooks is paged; the client's
// list is every page's, each once, not the first page alone.
func TestListWebhooksFollowsThePages(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Query().Get("cursor") {
		case "":
			w.Write([]byte(`{"items":[{"id":"wh_1"},{"id":"wh_2"}],"next_cursor":"wh_2"}`))
		case "wh_2":
			w.Write([]byte(`{"items":[{"id":"wh_3"}],"next_cursor":""}`))
		default:
			http.Error(w, `{"title":"bad cursor"}`, http.StatusUnprocessableEntity)
		}
	}))
	defer srv.Close()
	hooks, err := New(srv.URL, "token").ListWebhooks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, h := range hooks {
		ids = append(ids, h.ID)
	}
	if len(ids) != 3 || ids[0] != "wh_1" || ids[2] != "wh_3" {
		t.Fatalf("ListWebhooks = %v, want the webhooks of both pages: wh_1, wh_2, wh_3", ids)
	}
}
