package web

import (
	"fmt"
	"testing"
)

// BenchmarkScopeListPage serves the scope list page with 1,000 scopes
// (bench/ measures the same through a real server).
func BenchmarkScopeListPage(b *testing.B) {
	e := newTestEnv(b, false, Options{})
	ctx := e.asToken(b, e.Admin)
	for i := 0; i < 1000; i++ {
		if _, _, err := e.Svc.SetVar(ctx, fmt.Sprintf("ui/team%02d/app%03d", i/50, i), "A", envyVar("1", false), setOpts()); err != nil {
			b.Fatal(err)
		}
	}
	br := e.browser(b)
	br.signIn(e.Admin)
	b.ResetTimer()
	for b.Loop() {
		if p := br.get("/ui/scopes"); p.Status != 200 {
			b.Fatalf("status %d", p.Status)
		}
	}
}
