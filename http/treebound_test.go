package http_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/envy-dev/envy/internal/testenv"
)

func TestAnInheritsWriteOverTheTreeBoundIs422NamingIt(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	// 300 scopes: one write names them all.
	var all []string
	body := map[string]string{}
	for i := range 300 {
		p := fmt.Sprintf("wide/s%03d", i)
		if r := e.Do(t, "PATCH", "/v1/scopes/"+p+"/-/vars", e.Admin, `{"A":"1"}`); r.Status != 200 {
			t.Fatal(r.Status)
		}
		all = append(all, p)
		body[p] = "x"
	}
	// 16 at a time (the most a scope inherits directly), in a two-level
	// tree of 19 hubs.
	var hubs []string
	for h := 0; h*16 < len(all); h++ {
		hub := fmt.Sprintf("wide/hub%02d", h)
		e.Do(t, "PATCH", "/v1/scopes/"+hub+"/-/vars", e.Admin, `{"A":"1"}`)
		b, _ := json.Marshal(map[string]any{"inherits": all[h*16 : min(len(all), (h+1)*16)]})
		if r := e.Do(t, "PUT", "/v1/scopes/"+hub, e.Admin, string(b)); r.Status != 200 {
			t.Fatalf("hub %d: %d %s", h, r.Status, r.Body)
		}
		hubs = append(hubs, hub)
	}
	b, _ := json.Marshal(map[string]any{"inherits": hubs[:16]})
	r := e.Do(t, "PUT", "/v1/scopes/wide/top", e.Admin, string(b))
	if r.Status != 422 || !strings.Contains(string(r.Body), "too_many_scopes") || !strings.Contains(string(r.Body), "256") {
		t.Fatalf("a tree of %d scopes: %d %s", 1+16+16*16, r.Status, r.Body)
	}
	b, _ = json.Marshal(map[string]any{"inherits": hubs[:15]})
	if r := e.Do(t, "PUT", "/v1/scopes/wide/top", e.Admin, string(b)); r.Status != 201 {
		t.Fatalf("a tree of %d scopes: %d %s", 1+15+15*16, r.Status, r.Body)
	}
}
