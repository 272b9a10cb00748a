package http_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/internal/testenv"
)

// auditRow is an entry of GET /v1/audit as the tests read it.
type auditRow struct {
	Action     string    `json:"action"`
	Scope      string    `json:"scope"`
	Status     int       `json:"status"`
	Client     string    `json:"client"`
	TokenID    *string   `json:"token_id"`
	Count      int64     `json:"count"`
	At         time.Time `json:"at"`
	LastAt     time.Time `json:"last_at"`
	RequestID  string    `json:"request_id"`
	RequestIDs []string  `json:"request_ids"`
}

// Reveals of one token, client, scope and names within a second are one
// audit row with a count, a first and last time and their request ids;
// another token, another client or another scope makes a row of its own.
// The test sends its reveals back to back but never relies on their
// speed: the rows of one key may span as many seconds as the reveals did,
// and never more.
func TestRepeatedRevealsAreOneAuditRow(t *testing.T) {
	e := testenv.New(t, testenv.Options{})
	for _, scope := range []string{"co/app", "co/other"} {
		if r := e.Do(t, "PUT", "/v1/scopes/"+scope+"/-/vars/KEY", e.Admin, `{"value":"s3cret-value","secret":true}`); r.Status/100 != 2 {
			t.Fatalf("seed %s: %d %s", scope, r.Status, r.Body)
		}
	}
	reader := e.Token(t, "reader", envy.Grant{Scopes: "co/**", Actions: []envy.Action{envy.ActRead, envy.ActReveal}})
	// Another client: the same server reached from another loopback
	// address.
	other := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext}}

	reveal := func(c *http.Client, token, scope, id string) {
		t.Helper()
		req, _ := http.NewRequest("GET", e.URL+"/v1/scopes/"+scope+"/-/env", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("X-Request-Id", id)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res, err := c.Do(req.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("reveal %s as %s: %d", scope, id, res.StatusCode)
		}
	}
	const n = 25
	start := time.Now()
	var ids []string
	for i := range n {
		id := fmt.Sprintf("many-%02d", i)
		ids = append(ids, id)
		reveal(http.DefaultClient, reader, "co/app", id)
	}
	reveal(http.DefaultClient, e.Admin, "co/app", "by-admin")
	reveal(other, reader, "co/app", "from-other-client")
	reveal(http.DefaultClient, reader, "co/other", "other-scope")
	end := time.Now()

	r := e.Do(t, "GET", "/v1/audit?limit=1000", e.Admin, "")
	var page struct{ Items []auditRow }
	if err := json.Unmarshal(r.Body, &page); err != nil {
		t.Fatalf("audit: %v: %s", err, r.Body)
	}
	var many []auditRow
	single := map[string]auditRow{}
	for _, row := range page.Items {
		if row.Action != "reveal" {
			continue
		}
		if slices.Contains([]string{"by-admin", "from-other-client", "other-scope"}, row.RequestID) {
			single[row.RequestID] = row
			continue
		}
		many = append(many, row)
	}
	for _, id := range []string{"by-admin", "from-other-client", "other-scope"} {
		row, ok := single[id]
		if !ok || row.Count != 1 || !slices.Equal(row.RequestIDs, []string{id}) || !row.LastAt.Equal(row.At) {
			t.Errorf("reveal %s: row %+v (found %v), want a row of its own with count 1", id, row, ok)
		}
	}
	if c := single["from-other-client"].Client; c != "127.0.0.2" {
		t.Errorf("the other client's reveal was recorded from %q", c)
	}
	windows := int(end.Truncate(envy.RevealWindow).Sub(start.Truncate(envy.RevealWindow))/envy.RevealWindow) + 1
	if len(many) == 0 || len(many) > windows {
		t.Fatalf("%d reveals in %d windows made %d rows: %+v", n, windows, len(many), many)
	}
	var total int64
	var listed []string
	for _, row := range slices.Backward(many) { // oldest first
		total += row.Count
		if row.Client != "127.0.0.1" || row.Scope != "co/app" || row.Status != 200 || len(row.RequestIDs) == 0 || row.RequestID != row.RequestIDs[0] ||
			int64(len(row.RequestIDs)) != min(row.Count, envy.MaxAuditRequestIDs) || row.LastAt.Before(row.At) {
			t.Errorf("coalesced row %+v", row)
		}
		listed = append(listed, row.RequestIDs...)
	}
	if total != n {
		t.Errorf("the rows count %d reveals, want %d", total, n)
	}
	// Each row lists its first ids, in order: the listed ids are the
	// reveals' ids in order, with gaps only where a row's list was full.
	if !isSubsequence(listed, ids) {
		t.Errorf("listed request ids %v are not the reveals' %v in order", listed, ids)
	}
	if len(many) == 1 && !slices.Equal(listed, ids[:envy.MaxAuditRequestIDs]) {
		t.Errorf("one row lists %v, want the first %d ids %v", listed, envy.MaxAuditRequestIDs, ids[:envy.MaxAuditRequestIDs])
	}
}

// isSubsequence reports whether sub is s with some elements left out.
func isSubsequence(sub, s []string) bool {
	i := 0
	for _, x := range s {
		if i < len(sub) && sub[i] == x {
			i++
		}
	}
	return i == len(sub)
}
