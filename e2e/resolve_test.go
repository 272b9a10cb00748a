package e2e

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// inheritGraph is a scope graph to build on a server: scope → inherits,
// and scope → the names of its own vars. Every var's value is its scope's
// path, so that the env tells where each value comes from.
type inheritGraph struct {
	order    []string // creation order
	inherits map[string][]string
	vars     map[string][]string
}

// fullWalk is the reference resolution: every path of the graph walked
// depth first, a parent's inherits in order before it; each scope's last
// place is its layer, and a later layer's var wins.
func (g inheritGraph) fullWalk(root string) (layers []string, from map[string]string) {
	var walk []string
	var visit func(p string)
	visit = func(p string) {
		for _, q := range g.inherits[p] {
			visit(q)
		}
		walk = append(walk, p)
	}
	visit(root)
	last := map[string]int{}
	for i, p := range walk {
		last[p] = i
	}
	from = map[string]string{}
	for i, p := range walk {
		if last[p] == i {
			layers = append(layers, p)
		}
		for _, n := range g.vars[p] {
			from[n] = p
		}
	}
	return layers, from
}

func (g inheritGraph) build(t *testing.T, s *server) {
	t.Helper()
	for _, p := range g.order {
		body := map[string]any{}
		for _, n := range g.vars[p] {
			body[n] = p
		}
		if len(body) == 0 {
			body["EMPTY_"+strings.NewReplacer("/", "_", "-", "_").Replace(p)] = p
			g.vars[p] = append(g.vars[p], "EMPTY_"+strings.NewReplacer("/", "_", "-", "_").Replace(p))
		}
		if st, b := s.do(t, "PATCH", "/v1/scopes/"+p+"/-/vars", body); st != 200 {
			t.Fatalf("vars of %s: %d %s", p, st, b)
		}
	}
	for _, p := range g.order {
		if len(g.inherits[p]) == 0 {
			continue
		}
		if st, b := s.do(t, "PUT", "/v1/scopes/"+p, map[string]any{"inherits": g.inherits[p]}); st != 200 {
			t.Fatalf("inherits of %s: %d %s", p, st, b)
		}
	}
}

// row is one var of one layer as a reader shows it.
type row struct {
	Name       string `json:"name"`
	From       string `json:"from"`
	ShadowedBy string `json:"shadowed_by"`
}

func sortRows(rs []row) []row {
	slices.SortFunc(rs, func(a, b row) int {
		return strings.Compare(a.Name+"\x00"+a.From, b.Name+"\x00"+b.From)
	})
	return rs
}

var dashRowRE = regexp.MustCompile(`(?s)<tr(?: class="shadowed")?>\s*<th scope="row"><code>([A-Za-z0-9_]+)</code>.*?<td><a href="[^"]*">([^<]+)</a></td>\s*<td>(?:<span class="badge muted-badge">shadowed by ([^<]+)</span>|<span class="badge ok">in effect</span>)</td>`)

// TestOneResolutionEverywhere builds a diamond and random inherit graphs
// on a real server and checks that the env it serves, GET /-/resolved,
// `envy vars ls --resolved` and the dashboard's scope page all agree with
// the full depth-first walk.
func TestOneResolutionEverywhere(t *testing.T) {
	s := startServer(t, t.TempDir(), "envy_"+strings.Repeat("r", 43))
	graphs := map[string]inheritGraph{
		// a inherits b then c; both inherit d; X is set in b and in d:
		// d's last place is after b, so d's X is in effect.
		"dia/a": {
			order:    []string{"dia/d", "dia/b", "dia/c", "dia/a"},
			inherits: map[string][]string{"dia/a": {"dia/b", "dia/c"}, "dia/b": {"dia/d"}, "dia/c": {"dia/d"}},
			vars:     map[string][]string{"dia/b": {"X"}, "dia/d": {"X", "Y"}, "dia/c": {"Z"}, "dia/a": {"OWN"}},
		},
	}
	rng := rand.New(rand.NewPCG(7, 11))
	names := []string{"A", "B", "C", "D", "E"}
	for gi := range 3 {
		g := inheritGraph{inherits: map[string][]string{}, vars: map[string][]string{}}
		n := 8 + rng.IntN(6)
		for i := n - 1; i >= 0; i-- {
			p := fmt.Sprintf("g%d/s%d", gi, i)
			g.order = append(g.order, p)
			for k := i + 1; k < n; k++ {
				if rng.IntN(3) == 0 && len(g.inherits[p]) < 4 {
					g.inherits[p] = append(g.inherits[p], fmt.Sprintf("g%d/s%d", gi, k))
				}
			}
			rng.Shuffle(len(g.inherits[p]), func(a, b int) { g.inherits[p][a], g.inherits[p][b] = g.inherits[p][b], g.inherits[p][a] })
			for _, nm := range names {
				if rng.IntN(3) == 0 {
					g.vars[p] = append(g.vars[p], nm)
				}
			}
		}
		graphs[fmt.Sprintf("g%d/s0", gi)] = g
	}

	dash := signedInDashboard(t, s)
	for root, g := range graphs {
		g.build(t, s)
		wantLayers, wantFrom := g.fullWalk(root)

		// The env the server serves.
		st, b := s.do(t, "GET", "/v1/scopes/"+root+"/-/env", nil)
		var env struct{ Env map[string]string }
		if st != 200 || json.Unmarshal(b, &env) != nil {
			t.Fatalf("env of %s: %d %s", root, st, b)
		}
		if len(env.Env) != len(wantFrom) {
			t.Errorf("%s: the env has %d vars, the full walk %d", root, len(env.Env), len(wantFrom))
		}
		for n, from := range wantFrom {
			if env.Env[n] != from {
				t.Errorf("%s: the env serves %s from %q, the full walk from %s", root, n, env.Env[n], from)
			}
		}

		// GET /-/resolved.
		st, b = s.do(t, "GET", "/v1/scopes/"+root+"/-/resolved", nil)
		var res struct {
			Layers []struct {
				Scope string
				Vars  []struct {
					Name       string `json:"name"`
					From       string `json:"from"`
					ShadowedBy string `json:"shadowed_by"`
				}
			}
		}
		if st != 200 || json.Unmarshal(b, &res) != nil {
			t.Fatalf("resolved of %s: %d %s", root, st, b)
		}
		var gotLayers []string
		var api, inherited []row
		for _, l := range res.Layers {
			gotLayers = append(gotLayers, l.Scope)
			for _, v := range l.Vars {
				r := row{v.Name, v.From, v.ShadowedBy}
				want := ""
				if wantFrom[v.Name] != v.From {
					want = wantFrom[v.Name]
				}
				if v.From != l.Scope || v.ShadowedBy != want {
					t.Errorf("%s: /-/resolved says %+v in layer %s; want shadowed by %q", root, r, l.Scope, want)
				}
				api = append(api, r)
				if l.Scope != root {
					inherited = append(inherited, r)
				}
			}
		}
		if !slices.Equal(gotLayers, wantLayers) {
			t.Errorf("%s: /-/resolved layers %v, the full walk %v", root, gotLayers, wantLayers)
		}

		// envy vars ls --resolved.
		var cli struct{ Items []row }
		out := s.mustCLI(t, "", "vars", "ls", root, "--resolved", "-o", "json")
		if err := json.Unmarshal([]byte(out), &cli); err != nil {
			t.Fatalf("cli json: %v\n%s", err, out)
		}
		if got, want := sortRows(cli.Items), sortRows(slices.Clone(api)); !slices.Equal(got, want) {
			t.Errorf("%s: envy vars ls --resolved shows\n%v\n/-/resolved says\n%v", root, got, want)
		}

		// The dashboard's scope page: its inherited rows.
		var page []row
		for _, m := range dashRowRE.FindAllStringSubmatch(dash(root), -1) {
			page = append(page, row{m[1], html.UnescapeString(m[2]), html.UnescapeString(m[3])})
		}
		if got, want := sortRows(page), sortRows(inherited); !slices.Equal(got, want) {
			t.Errorf("%s: the dashboard shows\n%v\n/-/resolved says\n%v", root, got, want)
		}
	}
}

// signedInDashboard signs in to s's dashboard with its token and returns
// a function that fetches a scope's page.
func signedInDashboard(t *testing.T, s *server) func(scope string) string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) string {
		t.Helper()
		res, err := c.Get(s.addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 {
			t.Fatalf("GET %s: %d\n%s", path, res.StatusCode, b)
		}
		return string(b)
	}
	m := regexp.MustCompile(`name="signin" value="([^"]+)"`).FindStringSubmatch(get("/ui/signin"))
	if m == nil {
		t.Fatal("no sign-in field on the sign-in page")
	}
	res, err := c.PostForm(s.addr+"/ui/signin", url.Values{"signin": {m[1]}, "token": {s.token}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in: %d", res.StatusCode)
	}
	return func(scope string) string { return get("/ui/scopes/" + scope) }
}
