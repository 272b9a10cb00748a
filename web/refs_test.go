package web

import (
	"strings"
	"testing"
)

// The scope page links a value's references to their scopes, masks a
// value that refers to a secret, and shows a broken reference as an error
// on its row.
func TestTheScopePageShowsReferences(t *testing.T) {
	e := newTestEnv(t, false, Options{})
	ctx := e.asToken(t, e.Admin)
	for _, v := range []struct {
		scope, name, value string
		secret             bool
	}{
		{"acme/shared", "DB_PASSWORD", "pw-0123456789abcdef", true},
		{"acme/web", "DATABASE_URL", "postgres://app:${acme/shared:DB_PASSWORD}@db/app", false},
		{"acme/web", "BROKEN", "${acme/nowhere:X}", false},
	} {
		if _, _, err := e.Svc.SetVar(ctx, v.scope, v.name, envyVar(v.value, v.secret), setOpts()); err != nil {
			t.Fatal(err)
		}
	}
	b := e.browser(t)
	b.signIn(e.Admin)
	p := b.get("/ui/scopes/acme/web")
	if !strings.Contains(p.Body, `href="/ui/scopes/acme/shared"><code>acme/shared:DB_PASSWORD</code></a>`) {
		t.Errorf("no link to the referenced scope:\n%s", p.Body)
	}
	if strings.Contains(p.Body, "pw-0123456789abcdef") || strings.Contains(p.Body, "postgres://app:${acme/shared") {
		t.Errorf("the page shows a value built from a secret unmasked")
	}
	if !strings.Contains(p.Body, "BROKEN refers to acme/nowhere:X, whose scope does not exist") {
		t.Errorf("the broken reference is not shown on its row:\n%s", p.Body)
	}
}
