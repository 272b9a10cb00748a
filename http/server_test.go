package http

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/http/wire"
	"github.com/envy-dev/envy/service"
)

type contextT = context.Context

var errNotReady = errors.New("database is down")

// TestOpenAPICoversEveryRoute fails when a route is served that the
// document lacks, or the reverse.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi %q", doc.OpenAPI)
	}
	inDoc := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			if method == "parameters" || method == "summary" || method == "description" {
				continue
			}
			inDoc[strings.ToUpper(method)+" "+path] = true
		}
	}
	served := map[string]bool{}
	for _, rt := range routeTable {
		served[rt.Method+" "+rt.Path] = true
	}
	for k := range served {
		if !inDoc[k] {
			t.Errorf("route %s is served but not in openapi.json", k)
		}
	}
	for k := range inDoc {
		// The admin routes are mounted by http/admin, whose tests check
		// them against this document.
		if !served[k] && !strings.Contains(k, " /v1/admin/") {
			t.Errorf("openapi.json has %s, which no route serves", k)
		}
	}

	// And the table is what the server serves: every route answers, with
	// 401 when it needs a token, not 404 or 405.
	base, _ := newTestServer(t)
	for _, rt := range routeTable {
		url := base + strings.NewReplacer("{path}", "acme/web", "{name}", "A", "{id}", "x1").Replace(rt.Path)
		r := do(t, rt.Method, url, "", nil)
		switch {
		case rt.Public && (r.Status == 404 || r.Status == 405):
			t.Errorf("%s %s: %d", rt.Method, rt.Path, r.Status)
		case !rt.Public && r.Status != 401:
			t.Errorf("%s %s without a token: %d, want 401", rt.Method, rt.Path, r.Status)
		}
	}
}

// TestOpenAPIRefsResolve keeps the document well-formed: every $ref points
// at a component that exists, and every operation has responses.
func TestOpenAPIRefsResolve(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatal(err)
	}
	comps := doc["components"].(map[string]any)
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				parts := strings.Split(strings.TrimPrefix(ref, "#/components/"), "/")
				group, _ := comps[parts[0]].(map[string]any)
				if len(parts) != 2 || group == nil || group[parts[1]] == nil {
					t.Errorf("%s: dangling $ref %s", at, ref)
				}
			}
			for k, x := range v {
				walk(x, at+"/"+k)
			}
		case []any:
			for i, x := range v {
				walk(x, fmt.Sprintf("%s/%d", at, i))
			}
		}
	}
	walk(doc, "#")
	for path, ops := range doc["paths"].(map[string]any) {
		for method, op := range ops.(map[string]any) {
			if op.(map[string]any)["responses"] == nil {
				t.Errorf("%s %s has no responses", method, path)
			}
		}
	}
}

func TestMetricsHaveRoutesNeverValues(t *testing.T) {
	e := newTestEnv(t, Options{})
	const value = "metric-probe-value-8d1f"
	wantStatus(t, do(t, "PUT", e.URL+"/v1/scopes/probe-scope-77/-/vars/PROBE_NAME_77", e.Admin, map[string]string{"value": value}), 201)
	wantStatus(t, do(t, "GET", e.URL+"/v1/scopes/probe-scope-77/-/vars/PROBE_NAME_77?reveal=true", e.Admin, nil), 200)
	wantStatus(t, do(t, "GET", e.URL+"/v1/scopes/probe-scope-77/-/vars/MISSING", e.Admin, nil), 404)
	do(t, "GET", e.URL+"/no/such/"+value, "", nil)

	r := do(t, "GET", e.URL+"/metrics", "", nil)
	wantStatus(t, r, 200)
	text := string(r.Body)
	for _, want := range []string{
		`envy_http_requests_total{method="PUT",route="/v1/scopes/{path}/-/vars/{name}",status="201"} 1`,
		`envy_http_requests_total{method="GET",route="/v1/scopes/{path}/-/vars/{name}",status="200"} 1`,
		`envy_http_requests_total{method="GET",route="/v1/scopes/{path}/-/vars/{name}",status="404"} 1`,
		`envy_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`envy_http_request_duration_seconds_bucket{method="PUT",route="/v1/scopes/{path}/-/vars/{name}"`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, leak := range []string{value, "probe-scope-77", "PROBE_NAME_77", e.Admin} {
		if strings.Contains(text, leak) {
			t.Errorf("metrics contain %q", leak)
		}
	}
}

func TestAccessLogNeverHasValues(t *testing.T) {
	e := newTestEnv(t, Options{})
	const value = "log-probe-value-51ce"
	wantStatus(t, do(t, "PUT", e.URL+"/v1/scopes/acme/-/vars/LOGGED", e.Admin, map[string]any{"value": value, "secret": true},
		"X-Custom", "header-probe-0b3a"), 201)
	wantStatus(t, do(t, "GET", e.URL+"/v1/scopes/acme/-/vars/LOGGED?reveal=true&note=query-probe-9f2e", e.Admin, nil), 200)
	do(t, "PUT", e.URL+"/v1/scopes/acme/-/vars/LOGGED", e.Admin, map[string]any{"value": value + "\x00"})

	logs := e.Logs.String()
	if !strings.Contains(logs, `"route":"/v1/scopes/{path}/-/vars/{name}"`) || !strings.Contains(logs, `"status":201`) {
		t.Errorf("access log lacks route and status:\n%s", logs)
	}
	for _, leak := range []string{value, "header-probe-0b3a", "query-probe-9f2e", e.Admin} {
		if strings.Contains(logs, leak) {
			t.Errorf("the log contains %q:\n%s", leak, logs)
		}
	}
}

func TestFailedAuthIsRateLimitedPerAddress(t *testing.T) {
	// A rate so slow that no token comes back during the test, whatever
	// the machine's speed: exactly the burst is answered 401.
	e := newTestEnv(t, Options{AuthFailRate: 1e-6, AuthFailBurst: DefaultAuthFailBurst})
	bad := "envy_" + strings.Repeat("B", 43)
	var last reply
	n401 := 0
	for i := 0; i < DefaultAuthFailBurst+10; i++ {
		last = do(t, "GET", e.URL+"/v1/scopes", bad, nil)
		if last.Status == 401 {
			n401++
		}
		if last.Status == 429 {
			break
		}
	}
	wantProblem(t, last, 429, "rate_limited", "")
	if n401 != DefaultAuthFailBurst {
		t.Errorf("%d 401s before the 429, want the burst of %d", n401, DefaultAuthFailBurst)
	}
	if ra := last.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After %q", ra)
	}
	// A valid token still works from the same address.
	wantStatus(t, do(t, "GET", e.URL+"/v1/scopes", e.Admin, nil), 200)
}

func TestTokenRateLimit(t *testing.T) {
	// A rate so slow that no token comes back during the test: the burst
	// of one is answered, then every request is refused.
	e := newTestEnv(t, Options{RateLimit: 1e-6})
	statuses := []int{}
	for i := 0; i < 4; i++ {
		statuses = append(statuses, do(t, "GET", e.URL+"/v1/scopes", e.Admin, nil).Status)
	}
	if fmt.Sprint(statuses) != "[200 429 429 429]" {
		t.Fatalf("statuses %v, want [200 429 429 429]", statuses)
	}
	r := do(t, "GET", e.URL+"/v1/scopes", e.Admin, nil)
	wantProblem(t, r, 429, "rate_limited", "")
	if r.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	// Public routes are not limited.
	wantStatus(t, do(t, "GET", e.URL+"/healthz", "", nil), 200)
}

func TestRecoverAnswersInternal(t *testing.T) {
	e := newTestEnv(t, Options{})
	e.Srv.Handle("GET /test/panic", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic("boom")
	}))
	e.Srv.Handle("GET /test/error", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.Srv.writeError(w, r, errors.New("disk I/O error"))
	}))
	r := do(t, "GET", e.URL+"/test/panic", "", nil)
	wantProblem(t, r, 500, "internal", "")
	if d := r.JSON(t)["detail"]; d != "Internal error" {
		t.Errorf("detail %v", d)
	}
	r = do(t, "GET", e.URL+"/test/error", "", nil)
	wantProblem(t, r, 500, "internal", "")
	if strings.Contains(string(r.Body), "disk") {
		t.Errorf("an internal error's text is shown: %s", r.Body)
	}
	if !strings.Contains(e.Logs.String(), "disk I/O error") || !strings.Contains(e.Logs.String(), r.Header.Get("X-Request-Id")) {
		t.Errorf("the internal error is not logged with its request id:\n%s", e.Logs.String())
	}
	m := do(t, "GET", e.URL+"/metrics", "", nil)
	if !strings.Contains(string(m.Body), `envy_store_errors_total{code="internal"} 2`) {
		t.Errorf("envy_store_errors_total not counted")
	}
	if !strings.Contains(string(m.Body), `route="GET /test/panic",status="500"`) {
		t.Errorf("a mounted route is not labelled by its pattern")
	}
}

// TestDialectMount shows how a dialect mounts a route and authenticates a
// token it found its own way.
func TestDialectMount(t *testing.T) {
	e := newTestEnv(t, Options{})
	e.Srv.Handle("GET /dialect/{path...}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, err := e.Srv.Authenticate(r, r.URL.Query().Get("token"))
		if err != nil {
			w.WriteHeader(map[envy.Code]int{envy.EUnauthenticated: 401, envy.ERateLimited: 429}[envy.ErrorCode(err)])
			fmt.Fprintf(w, "dialect error: %s", envy.ErrorCode(err))
			return
		}
		c := service.CallerFrom(r.Context())
		fmt.Fprintf(w, "%s %s %t", c.Token.Name, c.Client, c.RequestID != "")
	}))
	r := do(t, "GET", e.URL+"/dialect/x?token="+e.Admin, "", nil)
	wantStatus(t, r, 200)
	if string(r.Body) != "admin 127.0.0.1 true" {
		t.Errorf("dialect saw %q", r.Body)
	}
	r = do(t, "GET", e.URL+"/dialect/x?token=nope", "", nil)
	if r.Status != 401 || string(r.Body) != "dialect error: unauthenticated" || r.Header.Get("X-Request-Id") == "" {
		t.Errorf("dialect refusal: %d %q", r.Status, r.Body)
	}
}

func TestWatch(t *testing.T) {
	e := newTestEnv(t, Options{})
	e.Srv.keepAlive = 100 * time.Millisecond
	s := e.URL + "/v1/scopes/acme/w"
	r := do(t, "PUT", s+"/-/vars/A", e.Admin, `{"value":"1"}`)
	wantStatus(t, r, 201)
	rev1 := int64(r.JSON(t)["revision"].(float64))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s+"/-/watch", nil)
	req.Header.Set("Authorization", "Bearer "+e.Admin)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("watch: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func() string {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the stream ended")
			}
			return l
		case <-ctx.Done():
			t.Fatal("no line in time")
		}
		return ""
	}

	// A keepalive comment comes while nothing happens.
	for l := next(); l != ": keepalive"; l = next() {
	}
	r = do(t, "PUT", s+"/-/vars/A", e.Admin, `{"value":"2"}`)
	rev2 := int64(r.JSON(t)["revision"].(float64))
	var got []string
	for len(got) < 3 {
		l := next()
		if l == "" || strings.HasPrefix(l, ":") {
			continue
		}
		got = append(got, l)
	}
	want := []string{fmt.Sprintf("id: %d", rev2), "event: change", fmt.Sprintf(`data: {"scope":"acme/w","revision":%d}`, rev2)}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("event:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	cancel()

	// Last-Event-ID older than the env: the current revision comes at once.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	req, _ = http.NewRequestWithContext(ctx2, "GET", s+"/-/watch", nil)
	req.Header.Set("Authorization", "Bearer "+e.Admin)
	req.Header.Set("Last-Event-ID", fmt.Sprint(rev1))
	res2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res2.Body.Close()
	sc := bufio.NewScanner(res2.Body)
	found := false
	for sc.Scan() {
		if sc.Text() == fmt.Sprintf("id: %d", rev2) {
			found = true
			break
		}
	}
	if !found {
		t.Errorf("resuming after %d did not deliver %d", rev1, rev2)
	}
	cancel2()

	r = do(t, "GET", s+"/-/watch", e.Admin, nil, "Last-Event-ID", "abc")
	wantProblem(t, r, 422, "validation_error", "header.Last-Event-ID")
}

func TestStringAtKeepsInvalidUTF8(t *testing.T) {
	cases := []struct {
		raw   string
		want  string
		valid bool
	}{
		{`"plain"`, "plain", true},
		{`"a\"b\\c\/d\n\r\t\b\f"`, "a\"b\\c/d\n\r\t\b\f", true},
		{`"\u00e9\u2022"`, "é•", true},
		{`"\ud83d\ude00"`, "😀", true},
		{`"\ud800"`, "\xed\xa0\x80", false},
		{`"\udc00x"`, "\xed\xb0\x80x", false},
		{`"\ud800\u0041"`, "\xed\xa0\x80A", false},
		{"\"\xff\"", "\xff", false},
		{`"\u0000"`, "\x00", true},
	}
	for _, tc := range cases {
		got, err := nativeWords.StringAt("body.value", json.RawMessage(tc.raw))
		if err != nil {
			t.Errorf("%s: %v", tc.raw, err)
			continue
		}
		if got != tc.want || utf8.ValidString(got) != tc.valid {
			t.Errorf("%s: got %q (valid %t), want %q", tc.raw, got, utf8.ValidString(got), tc.want)
		}
	}
	if _, err := nativeWords.StringAt("body.value", json.RawMessage(`5`)); envy.ErrorCode(err) != envy.EInvalid {
		t.Errorf("a number as a string: %v", err)
	}
}

func TestLimitersForgetIdleEntries(t *testing.T) {
	l := newLimiters(10, 50)
	now := time.Unix(1_000_000, 0)
	for i := 0; i < 100; i++ {
		l.allow(fmt.Sprintf("10.0.0.%d", i), now)
	}
	if l.size() != 100 {
		t.Fatalf("size %d", l.size())
	}
	l.allow("10.0.1.1", now.Add(2*time.Minute))
	if l.size() != 1 {
		t.Errorf("idle entries kept: size %d", l.size())
	}
	for i := 0; i < 50; i++ {
		if _, ok := l.allow("x", now); !ok {
			t.Fatalf("refused within the burst at %d", i)
		}
	}
	wait, ok := l.allow("x", now)
	if ok || wait < time.Second {
		t.Errorf("beyond the burst: ok %t, wait %v", ok, wait)
	}
}

func TestIfMatchParsing(t *testing.T) {
	for h, want := range map[string]int64{``: 0, `*`: 0, `"12"`: 12, `12`: 12, ` "7" `: 7} {
		r, _ := http.NewRequest("PUT", "/", nil)
		r.Header.Set("If-Match", h)
		c, err := cond(r)
		if err != nil || c.IfRevision != want {
			t.Errorf("If-Match %q: %v %v", h, c, err)
		}
	}
	for _, h := range []string{`W/"1"`, `"a"`, `"1", "2"`, `0`, `-3`} {
		r, _ := http.NewRequest("PUT", "/", nil)
		r.Header.Set("If-Match", h)
		if _, err := cond(r); envy.ErrorCode(err) != envy.EInvalid {
			t.Errorf("If-Match %q accepted", h)
		}
	}
}

// TestCodeTable keeps the one table complete.
func TestCodeTable(t *testing.T) {
	all := []envy.Code{envy.EBadRequest, envy.EUnauthenticated, envy.EForbidden, envy.ENotFound, envy.EConflict,
		envy.EPrecondition, envy.ETooLarge, envy.EUnsupportedMedia, envy.EInvalid, envy.ERateLimited, envy.EInternal, envy.EUnavailable}
	want := []int{400, 401, 403, 404, 409, 412, 413, 415, 422, 429, 500, 503}
	for i, c := range all {
		if wire.Status(c) != want[i] || titles[c] == "" {
			t.Errorf("%s: %d %q, want %d", c, wire.Status(c), titles[c], want[i])
		}
	}
	if len(titles) != len(all) {
		t.Errorf("the table has %d codes, want %d", len(titles), len(all))
	}
}
