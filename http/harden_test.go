package http_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/internal/testenv"
	"github.com/envy-dev/envy/service"
)

// mint creates a token with the given body through another token and
// returns the reply.
func mint(t *testing.T, e *testenv.Env, by string, body map[string]any) testenv.Response {
	t.Helper()
	if body["permissions"] == nil {
		body["permissions"] = []envy.Grant{{Scopes: "acme/**", Actions: []envy.Action{envy.ActRead, envy.ActReveal, envy.ActAdmin}}}
	}
	b, _ := json.Marshal(body)
	return e.Do(t, "POST", "/v1/tokens", by, string(b))
}

// minted creates a token like mint and returns its id and plaintext.
func minted(t *testing.T, e *testenv.Env, by string, body map[string]any) (id, token string) {
	t.Helper()
	r := mint(t, e, by, body)
	if r.Status != 201 {
		t.Fatalf("create token %v: %d %s", body["name"], r.Status, r.Body)
	}
	m := r.JSON(t)
	return m["id"].(string), m["token"].(string)
}

func wantProblem(t *testing.T, r testenv.Response, status int, loc string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	if loc != "" && !strings.Contains(string(r.Body), `"loc":"`+loc+`"`) {
		t.Fatalf("the problem does not name %s: %s", loc, r.Body)
	}
}

func TestMintedTokenNeverOutlivesItsParent(t *testing.T) {
	clock := newTestClock()
	e := testenv.New(t, testenv.Options{Service: service.Options{Now: clock.Now}})
	_, parent := minted(t, e, e.Admin, map[string]any{"name": "parent", "expires_in": "3s"})
	parentExp := clock.Now().Add(3 * time.Second).UTC()
	for _, body := range []map[string]any{
		{"name": "no-expiry"},
		{"name": "later", "expires_in": "1h"},
		{"name": "later-at", "expires_at": clock.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)},
	} {
		r := mint(t, e, parent, body)
		if r.Status != 201 {
			t.Fatalf("%v: %d %s", body["name"], r.Status, r.Body)
		}
		exp, _ := r.JSON(t)["expires_at"].(string)
		got, err := time.Parse(time.RFC3339Nano, exp)
		if err != nil || got.After(parentExp) {
			t.Fatalf("child %v expires at %q, after its parent's %v", body["name"], exp, parentExp)
		}
	}
	_, child := minted(t, e, parent, map[string]any{"name": "child"})
	// A child asked to expire sooner keeps its own expiry.
	r := mint(t, e, parent, map[string]any{"name": "sooner", "expires_in": "1s"})
	if exp, _ := r.JSON(t)["expires_at"].(string); r.Status != 201 || !strings.HasPrefix(exp, clock.Now().Add(time.Second).UTC().Format("2006-01-02T15:04:05")) {
		t.Fatalf("sooner child: %d, expires %q", r.Status, exp)
	}
	if r := e.Do(t, "GET", "/v1/tokens/self", child, ""); r.Status != 200 {
		t.Fatalf("child before its parent expires: %d", r.Status)
	}
	clock.Advance(3 * time.Second)
	if r := e.Do(t, "GET", "/v1/tokens/self", child, ""); r.Status != 401 {
		t.Fatalf("child after its parent expired: %d %s, want 401", r.Status, r.Body)
	}
}

func TestRevokingATokenRevokesWhatItMinted(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	if r := e.Do(t, "PUT", "/v1/scopes/acme/app/-/vars/A", e.Admin, `{"value":"s3cret-value","secret":true}`); r.Status != 201 {
		t.Fatalf("seed: %d %s", r.Status, r.Body)
	}
	parentID, parent := minted(t, e, e.Admin, map[string]any{"name": "parent"})
	_, child := minted(t, e, parent, map[string]any{"name": "child"})
	_, grandchild := minted(t, e, child, map[string]any{"name": "grandchild"})
	_, sibling := minted(t, e, e.Admin, map[string]any{"name": "sibling"})
	// Warm every cache with each token's reveal.
	for _, tok := range []string{parent, child, grandchild, sibling} {
		if r := e.Do(t, "GET", "/v1/scopes/acme/app/-/env", tok, ""); r.Status != 200 {
			t.Fatalf("reveal before revoke: %d %s", r.Status, r.Body)
		}
	}
	if r := e.Do(t, "DELETE", "/v1/tokens/"+parentID, e.Admin, ""); r.Status != 200 {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	for name, tok := range map[string]string{"parent": parent, "child": child, "grandchild": grandchild} {
		if r := e.Do(t, "GET", "/v1/scopes/acme/app/-/env", tok, ""); r.Status != 401 {
			t.Errorf("%s reveals after its ancestor was revoked: %d", name, r.Status)
		}
	}
	if r := e.Do(t, "GET", "/v1/scopes/acme/app/-/env", sibling, ""); r.Status != 200 {
		t.Errorf("a token minted by another one stopped working: %d", r.Status)
	}
}

func TestRevokingAParentEndsItsChildsWatch(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	e.Do(t, "PUT", "/v1/scopes/acme/app/-/vars/A", e.Admin, `{"value":"1"}`)
	parentID, parent := minted(t, e, e.Admin, map[string]any{"name": "parent"})
	_, child := minted(t, e, parent, map[string]any{"name": "child"})
	stream := openWatch(t, e, "/v1/scopes/acme/app/-/watch", child)
	if r := e.Do(t, "DELETE", "/v1/tokens/"+parentID, e.Admin, ""); r.Status != 200 {
		t.Fatalf("revoke: %d", r.Status)
	}
	stream.waitEnd(t)
}

func TestTheMinterMaySeeAndRevokeItsToken(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	_, parent := minted(t, e, e.Admin, map[string]any{"name": "parent"})
	childID, child := minted(t, e, parent, map[string]any{"name": "child"})
	otherID, _ := minted(t, e, e.Admin, map[string]any{"name": "other"})
	r := e.Do(t, "GET", "/v1/tokens/"+childID, parent, "")
	if r.Status != 200 || r.JSON(t)["name"] != "child" {
		t.Fatalf("the minter reads its token: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "GET", "/v1/tokens/"+otherID, parent, ""); r.Status != 403 {
		t.Fatalf("reading a token minted by another: %d, want 403", r.Status)
	}
	if r := e.Do(t, "DELETE", "/v1/tokens/"+otherID, parent, ""); r.Status != 403 {
		t.Fatalf("revoking a token minted by another: %d, want 403", r.Status)
	}
	if r := e.Do(t, "DELETE", "/v1/tokens/"+childID, parent, ""); r.Status != 200 {
		t.Fatalf("the minter revokes its token: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "GET", "/v1/tokens/self", child, ""); r.Status != 401 {
		t.Fatalf("the revoked child: %d", r.Status)
	}
}

func TestAuditEntriesCarryTheTokenID(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	id, tok := minted(t, e, e.Admin, map[string]any{"name": "writer",
		"permissions": []envy.Grant{{Scopes: "acme/**", Actions: []envy.Action{envy.ActWrite, envy.ActReveal}}}})
	e.Do(t, "PUT", "/v1/scopes/acme/app/-/vars/A", tok, `{"value":"1"}`)
	e.Do(t, "GET", "/v1/scopes/acme/app/-/env", tok, "")
	r := e.Do(t, "GET", "/v1/audit?actor=writer", e.Admin, "")
	var page struct {
		Items []struct {
			Action  string  `json:"action"`
			TokenID *string `json:"token_id"`
			Count   int64   `json:"count"`
		} `json:"items"`
	}
	if err := json.Unmarshal(r.Body, &page); err != nil || len(page.Items) != 2 {
		t.Fatalf("audit: %v %s", err, r.Body)
	}
	for _, it := range page.Items {
		if it.TokenID == nil || *it.TokenID != id || it.Count != 1 {
			t.Errorf("%s: token_id %v count %d, want %s and 1", it.Action, it.TokenID, it.Count, id)
		}
	}
}

func TestTokenNamesAreUniquePerOwner(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	id, _ := minted(t, e, e.Admin, map[string]any{"name": "ci", "owner": "team-a"})
	r := mint(t, e, e.Admin, map[string]any{"name": "ci", "owner": "team-a"})
	wantProblem(t, r, 409, "body.name")
	if !strings.Contains(string(r.Body), "team-a") {
		t.Errorf("the conflict does not name the owner: %s", r.Body)
	}
	minted(t, e, e.Admin, map[string]any{"name": "ci", "owner": "team-b"})
	// A revoked token's name is free again.
	e.Do(t, "DELETE", "/v1/tokens/"+id, e.Admin, "")
	minted(t, e, e.Admin, map[string]any{"name": "ci", "owner": "team-a"})
}

func TestTokenExpiryFarInTheFutureIsRefused(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	for _, tt := range []struct {
		body map[string]any
		loc  string
	}{
		{map[string]any{"name": "a", "expires_at": "2262-04-12T00:00:00Z"}, "body.expires_at"},
		{map[string]any{"name": "b", "expires_at": "9999-12-31T23:59:59Z"}, "body.expires_at"},
		{map[string]any{"name": "c", "expires_at": time.Now().AddDate(101, 0, 0).UTC().Format(time.RFC3339)}, "body.expires_at"},
		{map[string]any{"name": "d", "expires_in": "900000h"}, "body.expires_in"},
		{map[string]any{"name": "e", "expires_in": "99999999999h"}, "body.expires_in"},
	} {
		wantProblem(t, mint(t, e, e.Admin, tt.body), 422, tt.loc)
	}
	minted(t, e, e.Admin, map[string]any{"name": "f", "expires_at": time.Now().AddDate(99, 0, 0).UTC().Format(time.RFC3339)})
}

// watchStream is an open /-/watch stream read in the background.
type watchStream struct{ ended chan struct{} }

func openWatch(t *testing.T, e *testenv.Env, path, token string) *watchStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", e.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 {
		t.Fatalf("watch: %d", res.StatusCode)
	}
	w := &watchStream{ended: make(chan struct{})}
	go func() {
		defer close(w.ended)
		defer res.Body.Close()
		io.Copy(io.Discard, res.Body)
	}()
	return w
}

// waitEnd waits for the server to end the stream.
func (w *watchStream) waitEnd(t *testing.T) {
	t.Helper()
	select {
	case <-w.ended:
	case <-time.After(20 * time.Second):
		t.Fatal("the watch stream did not end")
	}
}

func TestHiddenScopesAreNamedNowhere(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	for _, req := range [][3]string{
		{"PUT", "/v1/scopes/secret/prod/-/vars/DB", `{"value":"hunter2-hunter2","secret":true}`},
		{"PUT", "/v1/scopes/acme/shared/-/vars/X", `{"value":"1"}`},
		{"PUT", "/v1/scopes/acme/base", `{"inherits":["acme/shared","secret/prod"]}`},
	} {
		if r := e.Do(t, req[0], req[1], e.Admin, req[2]); r.Status >= 300 {
			t.Fatalf("%s %s: %d %s", req[0], req[1], r.Status, r.Body)
		}
	}
	tok := e.Token(t, "acme", envy.Grant{Scopes: "acme/**", Actions: []envy.Action{envy.ActRead, envy.ActWrite, envy.ActReveal}})
	for _, req := range [][3]string{
		{"GET", "/v1/scopes/acme/base", ""},
		{"GET", "/v1/scopes?prefix=acme", ""},
		{"PUT", "/v1/scopes/acme/base", `{"description":"d"}`},
		{"GET", "/v1/scopes/acme/base/-/env", ""},
		{"DELETE", "/v1/scopes/acme/shared", ""},
	} {
		r := e.Do(t, req[0], req[1], tok, req[2])
		if strings.Contains(string(r.Body), "secret/prod") {
			t.Errorf("%s %s names the hidden scope: %d %s", req[0], req[1], r.Status, r.Body)
		}
		if req[0] == "GET" && r.Status == 200 && !strings.Contains(string(r.Body), `"inherits":["acme/shared","(hidden)"]`) {
			t.Errorf("%s %s: inherits not shown with the hidden scope: %s", req[0], req[1], r.Body)
		}
	}
	// The admin, who may read it, still sees its name.
	if r := e.Do(t, "GET", "/v1/scopes/acme/base", e.Admin, ""); !strings.Contains(string(r.Body), `"inherits":["acme/shared","secret/prod"]`) {
		t.Errorf("admin: %s", r.Body)
	}
}

func TestWriteRepliesWithoutReadHoldNoValue(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	e.Do(t, "PUT", "/v1/scopes/acme/app/-/vars/A", e.Admin, `{"value":"old-value-123456"}`)
	tok := e.Token(t, "write-only", envy.Grant{Scopes: "acme/**", Actions: []envy.Action{envy.ActWrite}})
	for _, req := range [][3]string{
		{"PUT", "/v1/scopes/acme/app/-/vars/A", `{"value":"new-value-123456"}`},
		{"PATCH", "/v1/scopes/acme/app/-/vars/A", `{"description":"d"}`},
		{"PUT", "/v1/scopes/acme/app/-/vars/S", `{"value":"secret-value-123456","secret":true}`},
		{"PATCH", "/v1/scopes/acme/app/-/vars/S", `{"description":"d"}`},
	} {
		r := e.Do(t, req[0], req[1], tok, req[2])
		if r.Status >= 300 {
			t.Fatalf("%s %s: %d %s", req[0], req[1], r.Status, r.Body)
		}
		m := r.JSON(t)
		if m["value"] != nil || m["masked_value"] != nil || strings.Contains(string(r.Body), "value-123456") || strings.Contains(string(r.Body), "•") {
			t.Errorf("%s %s: the reply shows the value: %s", req[0], req[1], r.Body)
		}
	}
	// A writer who may read still gets the value back.
	rw := e.Token(t, "read-write", envy.Grant{Scopes: "acme/**", Actions: []envy.Action{envy.ActRead, envy.ActWrite}})
	if r := e.Do(t, "PUT", "/v1/scopes/acme/app/-/vars/A", rw, `{"value":"v"}`); r.JSON(t)["value"] != "v" {
		t.Errorf("read-write: %s", r.Body)
	}
}

func TestConsumerReportsAreNotTakenOnTrust(t *testing.T) {
	clock := newTestClock()
	e := testenv.New(t, testenv.Options{Service: service.Options{Now: clock.Now, MaxConsumers: 3, SweepEvery: -1}})
	r := e.Do(t, "PUT", "/v1/scopes/acme/app/-/vars/A", e.Admin, `{"value":"1"}`)
	rev := int(r.JSON(t)["revision"].(float64))
	tok := e.Token(t, "reader", envy.Grant{Scopes: "acme/**", Actions: []envy.Action{envy.ActRead}})
	report := func(id string, rev int) testenv.Response {
		return e.Do(t, "PUT", "/v1/scopes/acme/app/-/consumers/"+id, tok, fmt.Sprintf(`{"revision":%d}`, rev))
	}

	// A revision from the future is refused.
	wantProblem(t, report("c0", rev+1), 422, "body.revision")
	wantProblem(t, report("c0", math.MaxInt64), 422, "body.revision")
	if r := e.Do(t, "GET", "/v1/scopes/acme/app/-/status", tok, ""); !strings.Contains(string(r.Body), `"synced":true`) {
		t.Fatalf("a refused report changed the status: %s", r.Body)
	}

	// At most MaxConsumers live ones; one that stopped reporting makes room.
	for _, id := range []string{"c1", "c2", "c3"} {
		if r := report(id, rev); r.Status != 201 {
			t.Fatalf("report %s: %d %s", id, r.Status, r.Body)
		}
	}
	r = report("c4", rev)
	if r.Status != 409 || !strings.Contains(string(r.Body), "3 live consumers") {
		t.Fatalf("a fourth consumer: %d %s, want 409 saying the cap", r.Status, r.Body)
	}
	if r := report("c1", rev); r.Status != 200 {
		t.Fatalf("a known consumer of a full scope: %d %s", r.Status, r.Body)
	}
	clock.Advance(61 * time.Second)
	report("c1", rev)
	if r := report("c4", rev); r.Status != 201 {
		t.Fatalf("a new consumer once others went stale: %d %s", r.Status, r.Body)
	}

	// Consumers that stopped reporting are deleted by the sweep.
	clock.Advance(25 * time.Hour)
	report("c4", rev)
	if err := e.Svc.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	kept, err := e.Store.Consumers(t.Context(), "acme/app", time.Time{})
	if err != nil || len(kept) != 1 || kept[0].ID != "c4" {
		t.Fatalf("after the sweep: %+v, %v; want c4 only", kept, err)
	}
}

func TestStatusPagesItsConsumers(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	r := e.Do(t, "PUT", "/v1/scopes/acme/app/-/vars/A", e.Admin, `{"value":"1"}`)
	rev := int(r.JSON(t)["revision"].(float64))
	for i := range 5 {
		e.Do(t, "PUT", fmt.Sprintf("/v1/scopes/acme/app/-/consumers/c%d", i), e.Admin, fmt.Sprintf(`{"revision":%d}`, rev-1+i/4))
	}
	var ids []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("no end of pages")
		}
		r := e.Do(t, "GET", "/v1/scopes/acme/app/-/status?limit=2&cursor="+cursor, e.Admin, "")
		var st struct {
			Synced    bool `json:"synced"`
			Consumers []struct {
				ID string `json:"id"`
			} `json:"consumers"`
			Next *string `json:"next_cursor"`
		}
		if err := json.Unmarshal(r.Body, &st); err != nil || r.Status != 200 || len(st.Consumers) > 2 {
			t.Fatalf("status page: %d %s", r.Status, r.Body)
		}
		if st.Synced {
			t.Fatalf("synced, though consumers c0..c3 run an old revision: %s", r.Body)
		}
		for _, c := range st.Consumers {
			ids = append(ids, c.ID)
		}
		if st.Next == nil {
			break
		}
		cursor = *st.Next
	}
	if strings.Join(ids, ",") != "c0,c1,c2,c3,c4" {
		t.Fatalf("pages gave %v", ids)
	}
	wantProblem(t, e.Do(t, "GET", "/v1/scopes/acme/app/-/status?limit=0", e.Admin, ""), 422, "query.limit")
}

func TestAFullDiskRefusesWritesAndRevealsAndLosesNothing(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	if r := e.Do(t, "PUT", "/v1/scopes/acme/app/-/vars/SEED", e.Admin, `{"value":"seed-value","secret":true}`); r.Status != 201 {
		t.Fatalf("seed: %d %s", r.Status, r.Body)
	}
	// Secrets to reveal one by one once the disk is full: reveals of one
	// token, client, scope and names within a second add to one audit
	// row, so revealing one name over and over may never need a new row.
	const reveals = 400
	for i := range reveals {
		if r := e.Do(t, "PUT", fmt.Sprintf("/v1/scopes/acme/app/-/vars/R%d", i), e.Admin, `{"value":"r","secret":true}`); r.Status != 201 {
			t.Fatalf("seed R%d: %d %s", i, r.Status, r.Body)
		}
	}
	if err := e.Store.SetMaxSize(t.Context(), 1); err != nil { // no room beyond what is there
		t.Fatal(err)
	}
	// Fill what room the pages have left until a write is refused.
	acked := map[string]string{}
	value := strings.Repeat("x", 4000)
	var full testenv.Response
	for i := 0; ; i++ {
		if i > 1000 {
			t.Fatal("no write was refused")
		}
		name := fmt.Sprintf("V%d", i)
		r := e.Do(t, "PUT", "/v1/scopes/acme/app/-/vars/"+name, e.Admin, `{"value":"`+value+name+`"}`)
		if r.Status == 201 {
			acked[name] = value + name
			continue
		}
		full = r
		break
	}
	if full.Status != 503 || !strings.Contains(string(full.Body), "disk is full") || full.Header.Get("Retry-After") == "" {
		t.Fatalf("a write on a full disk: %d %s, want 503 saying the disk is full, with Retry-After; log: %s", full.Status, full.Body, e.Logs)
	}
	if r := e.Do(t, "GET", "/readyz", "", ""); r.Status != 503 || !strings.Contains(string(r.Body), "disk is full") {
		t.Fatalf("/readyz while writes fail: %d %s", r.Status, r.Body)
	}
	// A reveal whose audit entry can't be made durable is refused: reveal
	// until the audit table's last page is full too, each reveal of
	// another name, so that each needs a row of its own.
	for i := 0; ; i++ {
		if i == reveals {
			t.Fatalf("%d reveals of as many names were each recorded on a full disk", reveals)
		}
		r := e.Do(t, "GET", fmt.Sprintf("/v1/scopes/acme/app/-/vars/R%d?reveal=true", i), e.Admin, "")
		if r.Status == 503 {
			break
		}
		if r.Status != 200 {
			t.Fatalf("reveal %d on a full disk: %d %.200s", i, r.Status, r.Body)
		}
	}
	for _, path := range []string{"/v1/scopes/acme/app/-/env", "/v1/scopes/acme/app/-/vars/SEED?reveal=true", "/v1/scopes/acme/app/-/vars?reveal=true"} {
		r := e.Do(t, "GET", path, e.Admin, "")
		if r.Status != 503 || strings.Contains(string(r.Body), "seed-value") {
			t.Fatalf("GET %s on a full disk: %d %.200s, want 503 and no value", path, r.Status, r.Body)
		}
	}

	// Room again: writes and reveals work, /readyz is ready, nothing
	// acknowledged is lost.
	if err := e.Store.SetMaxSize(t.Context(), 1<<30); err != nil {
		t.Fatal(err)
	}
	if r := e.Do(t, "PUT", "/v1/scopes/acme/app/-/vars/AFTER", e.Admin, `{"value":"1"}`); r.Status != 201 {
		t.Fatalf("a write after space came back: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "GET", "/readyz", "", ""); r.Status != 200 {
		t.Fatalf("/readyz after a write succeeded: %d %s", r.Status, r.Body)
	}
	r := e.Do(t, "GET", "/v1/scopes/acme/app/-/env", e.Admin, "")
	var env struct {
		Env map[string]string `json:"env"`
	}
	if err := json.Unmarshal(r.Body, &env); err != nil || r.Status != 200 {
		t.Fatalf("env: %d %.200s", r.Status, r.Body)
	}
	for name, v := range acked {
		if env.Env[name] != v {
			t.Errorf("acknowledged var %s was lost", name)
		}
	}
	if env.Env["SEED"] != "seed-value" {
		t.Error("the seed was lost")
	}
}

func TestRefusalsWithoutATokenAreAggregated(t *testing.T) {
	e := testenv.New(t, testenv.Options{HTTP: envyhttp.Options{AuthFailBurst: 1000, AuthFailRate: 1000}})
	for range 50 {
		if r := e.Do(t, "GET", "/v1/scopes/acme/-/vars", "envy_"+strings.Repeat("0", 43), ""); r.Status != 401 {
			t.Fatalf("bad token: %d", r.Status)
		}
	}
	// One row a minute: two if the minute turned during the loop.
	if rows, total := auditRows(t, e, "", "auth"); total != 50 || rows > 2 {
		t.Fatalf("50 refusals gave %d rows counting %d", rows, total)
	}
}

// auditRows counts the audit entries of an action (of one actor, when
// given) and the requests they stand for; every one must carry a token id
// when the actor is given.
func auditRows(t *testing.T, e *testenv.Env, actor, action string) (rows, total int64) {
	t.Helper()
	r := e.Do(t, "GET", "/v1/audit?limit=1000&actor="+actor, e.Admin, "")
	var page struct {
		Items []struct {
			Action  string  `json:"action"`
			TokenID *string `json:"token_id"`
			Count   int64   `json:"count"`
		} `json:"items"`
	}
	if err := json.Unmarshal(r.Body, &page); err != nil {
		t.Fatal(err)
	}
	for _, it := range page.Items {
		if it.Action != action {
			continue
		}
		rows++
		total += it.Count
		if actor != "" && it.TokenID == nil {
			t.Errorf("an entry of %s lost its token id", actor)
		}
	}
	return rows, total
}

func TestTheSweepDeletesAuditEntriesPastTheRetention(t *testing.T) {
	clock := newTestClock()
	e := testenv.New(t, testenv.Options{Service: service.Options{Now: clock.Now, AuditRetention: 48 * time.Hour, SweepEvery: -1}})
	e.Do(t, "PUT", "/v1/scopes/acme/app/-/vars/OLD", e.Admin, `{"value":"1"}`)
	clock.Advance(47 * time.Hour)
	e.Do(t, "PUT", "/v1/scopes/acme/app/-/vars/NEW", e.Admin, `{"value":"1"}`)
	clock.Advance(2 * time.Hour)
	if err := e.Svc.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	r := e.Do(t, "GET", "/v1/audit?scope=acme/app", e.Admin, "")
	if strings.Contains(string(r.Body), `"OLD"`) || !strings.Contains(string(r.Body), `"NEW"`) {
		t.Fatalf("audit after the sweep: %s", r.Body)
	}
}

func TestAWriterCantConfirmAGuessFromTheRevision(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	if r := e.Do(t, "PUT", "/v1/scopes/acme/app/-/vars", e.Admin, `{"S":{"value":"the-real-secret","secret":true},"P":"plain"}`); r.Status != 200 {
		t.Fatalf("seed: %d %s", r.Status, r.Body)
	}
	revision := func() float64 {
		r := e.Do(t, "GET", "/v1/scopes/acme/app", e.Admin, "")
		return r.JSON(t)["revision"].(float64)
	}
	same := `{"S":{"value":"the-real-secret","secret":true},"P":"plain"}`
	for _, tt := range []struct {
		name    string
		actions []envy.Action
		newRev  bool
	}{
		{"write only", []envy.Action{envy.ActWrite}, true},
		{"read and write, a secret unseen", []envy.Action{envy.ActRead, envy.ActWrite}, true},
		{"reveal and write", []envy.Action{envy.ActReveal, envy.ActWrite}, false},
	} {
		tok := e.Token(t, strings.ReplaceAll(tt.name, " ", "-"), envy.Grant{Scopes: "acme/**", Actions: tt.actions})
		before := revision()
		if r := e.Do(t, "PUT", "/v1/scopes/acme/app/-/vars", tok, same); r.Status != 200 {
			t.Fatalf("%s: %d %s", tt.name, r.Status, r.Body)
		}
		if got := revision() != before; got != tt.newRev {
			t.Errorf("%s: a replace with the right values took a new revision: %v, want %v", tt.name, got, tt.newRev)
		}
	}
	// Read and write without reveal: a plain var it may see keeps the
	// shortcut, the secret it may not see does not.
	tok := e.Token(t, "rw", envy.Grant{Scopes: "acme/**", Actions: []envy.Action{envy.ActRead, envy.ActWrite}})
	e.Do(t, "PUT", "/v1/scopes/acme/app/-/vars", tok, same)
	r := e.Do(t, "GET", "/v1/scopes/acme/app/-/vars", e.Admin, "")
	var list struct {
		Items []struct {
			Name    string `json:"name"`
			Version int    `json:"version"`
		} `json:"items"`
	}
	json.Unmarshal(r.Body, &list)
	versions := map[string]int{}
	for _, it := range list.Items {
		versions[it.Name] = it.Version
	}
	// P: rewritten by the write-only token alone; S: by each of the three
	// writers who could not see it.
	if versions["P"] != 2 || versions["S"] != 4 {
		t.Errorf("versions after replaces: %v; want P at 2 and S at 4", versions)
	}
}

func TestHiddenInheritsAreKeptWhenSentBack(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	for _, req := range [][3]string{
		{"PUT", "/v1/scopes/secret/prod/-/vars/DB", `{"value":"1"}`},
		{"PUT", "/v1/scopes/acme/shared/-/vars/X", `{"value":"1"}`},
		{"PUT", "/v1/scopes/acme/other/-/vars/Y", `{"value":"1"}`},
		{"PUT", "/v1/scopes/acme/base", `{"inherits":["acme/shared","secret/prod"]}`},
	} {
		if r := e.Do(t, req[0], req[1], e.Admin, req[2]); r.Status >= 300 {
			t.Fatalf("%s %s: %d %s", req[0], req[1], r.Status, r.Body)
		}
	}
	tok := e.Token(t, "acme", envy.Grant{Scopes: "acme/**", Actions: []envy.Action{envy.ActRead, envy.ActWrite}})
	r := e.Do(t, "PUT", "/v1/scopes/acme/base", tok, `{"inherits":["(hidden)","acme/other","acme/shared"]}`)
	if r.Status != 200 || !strings.Contains(string(r.Body), `"inherits":["(hidden)","acme/other","acme/shared"]`) {
		t.Fatalf("sending the hidden scope back: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "GET", "/v1/scopes/acme/base", e.Admin, ""); !strings.Contains(string(r.Body), `"inherits":["secret/prod","acme/other","acme/shared"]`) {
		t.Fatalf("the admin sees: %s", r.Body)
	}
	wantProblem(t, e.Do(t, "PUT", "/v1/scopes/acme/base", tok, `{"inherits":["(hidden)","(hidden)"]}`), 422, "body.inherits[1]")
	// Leaving it out removes it.
	if r := e.Do(t, "PUT", "/v1/scopes/acme/base", tok, `{"inherits":["acme/shared"]}`); r.Status != 200 {
		t.Fatalf("dropping the hidden scope: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "GET", "/v1/scopes/acme/base", e.Admin, ""); !strings.Contains(string(r.Body), `"inherits":["acme/shared"]`) {
		t.Fatalf("after dropping: %s", r.Body)
	}
}

func TestRefusalsOverATokensRateLimitAreAggregated(t *testing.T) {
	e := testenv.New(t, testenv.Options{HTTP: envyhttp.Options{RateLimit: 1}})
	tok := e.Token(t, "flood", envy.Grant{Scopes: "acme/**", Actions: []envy.Action{envy.ActRead}})
	refused := 0
	for range 50 {
		if r := e.Do(t, "GET", "/v1/tokens/self", tok, ""); r.Status == 429 {
			refused++
		}
	}
	if refused < 40 {
		t.Fatalf("only %d of 50 requests were over the limit", refused)
	}
	rows, total := auditRows(t, e, "flood", "rate_limit")
	if total != int64(refused) || rows > 2 {
		t.Fatalf("%d refusals gave %d rows counting %d", refused, rows, total)
	}
}

// TestDeletesTellAWriterWhoMayNotReadNothing: deleting a var answers a
// caller who may not read the scope the same way whether the var existed
// or not: a new revision each time, never the one the scope was at.
func TestDeletesTellAWriterWhoMayNotReadNothing(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	e.Do(t, "PUT", "/v1/scopes/acme/app/-/vars/THERE", e.Admin, `{"value":"x"}`)
	tok := e.Token(t, "write-only", envy.Grant{Scopes: "acme/**", Actions: []envy.Action{envy.ActWrite}})
	revision := func() int64 {
		r := e.Do(t, "GET", "/v1/scopes/acme/app", e.Admin, "")
		return int64(r.JSON(t)["revision"].(float64))
	}
	for _, c := range []struct{ method, path, body string }{
		{"DELETE", "/v1/scopes/acme/app/-/vars/NOT_THERE", ""},
		{"DELETE", "/v1/scopes/acme/app/-/vars/THERE", ""},
		{"DELETE", "/v1/scopes/acme/app/-/vars/THERE", ""}, // gone by now
		{"PATCH", "/v1/scopes/acme/app/-/vars", `{"NOT_THERE":null,"NOR_THIS":null}`},
	} {
		before := revision()
		r := e.Do(t, c.method, c.path, tok, c.body)
		if r.Status >= 300 {
			t.Fatalf("%s %s: %d %s", c.method, c.path, r.Status, r.Body)
		}
		if want := fmt.Sprintf(`"%d"`, before+1); r.Header.Get("ETag") != want {
			t.Errorf("%s %s %s: ETag %s, want %s (a new revision, whether the var existed or not)", c.method, c.path, c.body, r.Header.Get("ETag"), want)
		}
	}
	// A caller who may read still takes no revision for a delete of
	// nothing.
	before := revision()
	if r := e.Do(t, "DELETE", "/v1/scopes/acme/app/-/vars/NOT_THERE", e.Admin, ""); r.Header.Get("ETag") != fmt.Sprintf(`"%d"`, before) {
		t.Errorf("admin: ETag %s, want the current revision %d", r.Header.Get("ETag"), before)
	}
}

// TestAGlobOfTooManyWildcardsIsRefusedAtMint: a scoped admin can't mint a
// token whose glob holds more than envy.MaxGlobWildcards wildcards (each
// read would match it against the scope); at the bound it may.
func TestAGlobOfTooManyWildcardsIsRefusedAtMint(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	_, scoped := minted(t, e, e.Admin, map[string]any{"name": "scoped"})
	grant := func(n int) []envy.Grant {
		return []envy.Grant{{Scopes: "acme/" + strings.TrimSuffix(strings.Repeat("**/", n), "/"), Actions: []envy.Action{envy.ActRead}}}
	}
	r := mint(t, e, scoped, map[string]any{"name": "many", "permissions": grant(envy.MaxGlobWildcards + 1)})
	wantProblem(t, r, 422, "body.permissions[0].scopes")
	if !strings.Contains(string(r.Body), "too_many_wildcards") || !strings.Contains(string(r.Body), fmt.Sprint(envy.MaxGlobWildcards)) {
		t.Fatalf("the refusal does not name the bound: %s", r.Body)
	}
	_, tok := minted(t, e, scoped, map[string]any{"name": "eight", "permissions": grant(envy.MaxGlobWildcards)})
	e.Do(t, "PUT", "/v1/scopes/acme/a/b/c/d/e/f/g/h/i/-/vars/X", e.Admin, `{"value":"1"}`)
	if r := e.Do(t, "GET", "/v1/scopes/acme/a/b/c/d/e/f/g/h/i/-/vars", tok, ""); r.Status != 200 {
		t.Fatalf("a read with the %d-wildcard glob: %d %s", envy.MaxGlobWildcards, r.Status, r.Body)
	}
}

// TestChildrenShareTheirLineagesRateLimit: the per-token rate limit is
// counted per lineage (the token's root below a global admin), so a
// scoped admin can't multiply its limit by minting children; a token a
// global admin mints starts a lineage of its own. One request a lineage
// (a burst of 1, refilled after 1000 s).
func TestChildrenShareTheirLineagesRateLimit(t *testing.T) {
	e := testenv.New(t, testenv.Options{HTTP: envyhttp.Options{RateLimit: 0.001}})
	// The global admin's one request mints the scoped admin...
	_, scoped := minted(t, e, e.Admin, map[string]any{"name": "scoped"})
	// ... whose own lineage still has its one request: it mints a child.
	childID, child := minted(t, e, scoped, map[string]any{"name": "child",
		"permissions": []envy.Grant{{Scopes: "acme/**", Actions: []envy.Action{envy.ActRead}}}})
	r := e.Do(t, "GET", "/v1/tokens/self", child, "")
	if r.Status != 429 {
		t.Fatalf("the child of a scoped admin whose lineage spent its limit: %d %s; want 429 (children must not multiply the limit)", r.Status, r.Body)
	}
	tok, err := e.Svc.Store().GetToken(t.Context(), childID)
	if err != nil || tok.Root() != tok.ParentID {
		t.Fatalf("the child's root is %q, want its minter %q (%v)", tok.Root(), tok.ParentID, err)
	}
}

// TestAConsumerBelongsToTheTokenThatFirstReportedIt: another reader can't
// report a consumer it does not run (and so make /-/status claim synced);
// the first report of each consumer is audited.
func TestAConsumerBelongsToTheTokenThatFirstReportedIt(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	r := e.Do(t, "PUT", "/v1/scopes/acme/app/-/vars/A", e.Admin, `{"value":"1"}`)
	old := int(r.JSON(t)["revision"].(float64))
	web := e.Token(t, "web", envy.Grant{Scopes: "acme/**", Actions: []envy.Action{envy.ActRead}})
	other := e.Token(t, "other", envy.Grant{Scopes: "acme/**", Actions: []envy.Action{envy.ActRead}})
	if r := e.Do(t, "PUT", "/v1/scopes/acme/app/-/consumers/web-1", web, fmt.Sprintf(`{"revision":%d}`, old)); r.Status != 201 {
		t.Fatalf("web's first report: %d %s", r.Status, r.Body)
	}
	r = e.Do(t, "PUT", "/v1/scopes/acme/app/-/vars/A", e.Admin, `{"value":"2"}`)
	now := int(r.JSON(t)["revision"].(float64))
	r = e.Do(t, "PUT", "/v1/scopes/acme/app/-/consumers/web-1", other, fmt.Sprintf(`{"revision":%d}`, now))
	wantProblem(t, r, 409, "path.id")
	if !strings.Contains(string(r.Body), "consumer_taken") || !strings.Contains(string(r.Body), "another token") {
		t.Fatalf("the refusal does not say why: %s", r.Body)
	}
	if r := e.Do(t, "GET", "/v1/scopes/acme/app/-/status", e.Admin, ""); !strings.Contains(string(r.Body), `"synced":false`) {
		t.Fatalf("another token's report made the scope look synced: %s", r.Body)
	}
	// web itself moves on.
	if r := e.Do(t, "PUT", "/v1/scopes/acme/app/-/consumers/web-1", web, fmt.Sprintf(`{"revision":%d}`, now)); r.Status != 200 {
		t.Fatalf("web's next report: %d %s", r.Status, r.Body)
	}
	if rows, total := auditRows(t, e, "web", "consumer.report"); rows != 1 || total != 1 {
		t.Fatalf("web's reports gave %d audit rows counting %d; want the first one, audited once", rows, total)
	}
	if r := e.Do(t, "GET", "/v1/audit?actor=other", e.Admin, ""); !strings.Contains(string(r.Body), `"status":409`) {
		t.Fatalf("the refused report is not audited: %s", r.Body)
	}
	// Nor may another reader make it go away; a writer of the scope may.
	if r := e.Do(t, "DELETE", "/v1/scopes/acme/app/-/consumers/web-1", other, ""); r.Status != 409 {
		t.Fatalf("another token's goodbye for web-1: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "GET", "/v1/scopes/acme/app/-/status", e.Admin, ""); !strings.Contains(string(r.Body), `"web-1"`) {
		t.Fatalf("another token's goodbye removed web-1: %s", r.Body)
	}
	if r := e.Do(t, "DELETE", "/v1/scopes/acme/app/-/consumers/web-1", e.Admin, ""); r.Status != 204 {
		t.Fatalf("a writer's goodbye for web-1: %d %s", r.Status, r.Body)
	}
}

// TestRefusalsToManyPathsAddNoRows: a client that floods refusals, each
// naming another path, adds one row a minute (per action and outcome),
// not one per path: the path it chose is not recorded for them.
func TestRefusalsToManyPathsAddNoRows(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	const n = 300
	for i := range n {
		r := e.Do(t, "GET", fmt.Sprintf("/v1/scopes/x%d/y%d/-/vars", i, i*7919), "envy_"+strings.Repeat("0", 43), "")
		if r.Status != 401 && r.Status != 429 {
			t.Fatalf("bad token: %d", r.Status)
		}
	}
	auth, authTotal := auditRows(t, e, "", "auth")
	limited, limitedTotal := auditRows(t, e, "", "rate_limit")
	// One row of each a minute: two if the minute turned during the loop.
	if authTotal+limitedTotal != n || auth > 2 || limited > 2 {
		t.Fatalf("%d refusals to %d paths gave %d auth rows and %d rate_limit rows counting %d", n, n, auth, limited, authTotal+limitedTotal)
	}
}

// TestAClientsRefusalRowsAreCapped: a client whose refusals carry many
// tokens (each over its rate limit) adds at most
// service.MaxRefusalRowsPerClient rows a minute, then one more row.
func TestAClientsRefusalRowsAreCapped(t *testing.T) {
	e := testenv.New(t, testenv.Options{HTTP: envyhttp.Options{RateLimit: 0.001}})
	admin, err := e.Svc.Authenticate(t.Context(), e.Admin)
	if err != nil {
		t.Fatal(err)
	}
	ctx := service.WithCaller(t.Context(), &service.Caller{Token: admin, Client: "test"})
	const tokens = 2*(service.MaxRefusalRowsPerClient+1) + 8 // more rows than the bound even if the minute turns
	refused := 0
	for i := range tokens {
		// Minted by the global admin: each a lineage, a rate limit, of its own.
		_, plain, err := e.Svc.CreateToken(ctx, envy.TokenInput{Name: fmt.Sprintf("t%02d", i),
			Permissions: []envy.Grant{{Scopes: "acme/**", Actions: []envy.Action{envy.ActRead}}}})
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if r := e.Do(t, "GET", "/v1/tokens/self", plain, ""); r.Status == 429 {
				refused++
			}
		}
	}
	if refused != 2*tokens {
		t.Fatalf("%d of %d requests refused, want %d", refused, 3*tokens, 2*tokens)
	}
	rows, total := auditRows(t, e, "", "rate_limit")
	// Per minute, the cap and one overflow row: twice that if the minute
	// turned during the loop.
	if total != int64(refused) || rows > 2*(service.MaxRefusalRowsPerClient+1) {
		t.Fatalf("%d refusals of %d tokens gave %d rows counting %d; want at most %d rows a minute", refused, tokens, rows, total, service.MaxRefusalRowsPerClient+1)
	}
}

// TestLookAlikeTokenNamesAreRefused: a scoped admin can't mint a token
// whose name or owner passes for another's in the audit, the history and
// the dashboard.
func TestLookAlikeTokenNamesAreRefused(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	_, scoped := minted(t, e, e.Admin, map[string]any{"name": "scoped"})
	for _, tc := range []struct{ name, owner, loc string }{
		{"admin", "admin ", "body.owner"},
		{"admin ", "", "body.name"},
		{"adm\u200bin", "ops", "body.name"},
		{"ci", "ad\u00a0min", "body.owner"},
	} {
		body := map[string]any{"name": tc.name}
		if tc.owner != "" {
			body["owner"] = tc.owner
		}
		r := mint(t, e, scoped, body)
		wantProblem(t, r, 422, tc.loc)
	}
	minted(t, e, scoped, map[string]any{"name": "ci deploy", "owner": "équipe web"})
}

// TestVarsAndHistoryNameTheActingToken: two tokens of one name are told
// apart by their ids, in a var's reply and in the history.
func TestVarsAndHistoryNameTheActingToken(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	grant := []envy.Grant{{Scopes: "acme/**", Actions: []envy.Action{envy.ActRead, envy.ActReveal, envy.ActWrite}}}
	id1, t1 := minted(t, e, e.Admin, map[string]any{"name": "deploy", "owner": "team-a", "permissions": grant})
	id2, t2 := minted(t, e, e.Admin, map[string]any{"name": "deploy", "owner": "team-b", "permissions": grant})
	if r := e.Do(t, "PUT", "/v1/scopes/acme/app/-/vars/A", t1, `{"value":"1"}`); r.Status != 201 || r.JSON(t)["updated_by_token"] != id1 {
		t.Fatalf("the write's reply: %d %s; want updated_by_token %s", r.Status, r.Body, id1)
	}
	e.Do(t, "PUT", "/v1/scopes/acme/app/-/vars/B", t2, `{"value":"2"}`)
	for _, path := range []string{"/v1/scopes/acme/app/-/vars", "/v1/scopes/acme/app/-/vars?reveal=true"} {
		r := e.Do(t, "GET", path, e.Admin, "")
		if !strings.Contains(string(r.Body), `"updated_by":"deploy","updated_by_token":"`+id1+`"`) || !strings.Contains(string(r.Body), `"updated_by_token":"`+id2+`"`) {
			t.Fatalf("%s: %s; want each var's token id", path, r.Body)
		}
	}
	r := e.Do(t, "GET", "/v1/scopes/acme/app/-/history", e.Admin, "")
	var page struct {
		Items []struct {
			Name       string `json:"name"`
			Actor      string `json:"actor"`
			ActorToken string `json:"actor_token"`
		} `json:"items"`
	}
	if err := json.Unmarshal(r.Body, &page); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, it := range page.Items {
		got[it.Name] = it.Actor + "/" + it.ActorToken
	}
	if got["A"] != "deploy/"+id1 || got["B"] != "deploy/"+id2 {
		t.Fatalf("history: %v; want A by deploy/%s and B by deploy/%s", got, id1, id2)
	}
}
