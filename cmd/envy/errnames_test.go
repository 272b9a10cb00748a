package main

import (
	"strings"
	"testing"
)

// newToken mints a token with grants through the CLI and returns it.
func newToken(t *testing.T, ev env, name string, grants ...string) string {
	t.Helper()
	args := []string{"tokens", "create", name}
	for _, g := range grants {
		args = append(args, "--grant", g)
	}
	for _, line := range strings.Split(must(t, ev, "", args...), "\n") {
		if strings.HasPrefix(line, "envy_") {
			return line
		}
	}
	t.Fatalf("tokens create %s printed no token", name)
	return ""
}

// Errors name the scope they are about, where the caller may see it: the
// scope that inherits the one `scopes rm` can't delete, the inherited
// scope a reveal is refused on. A caller that may not see it is told
// there is one, without its name.
func TestErrorsNameTheScopeTheyReferTo(t *testing.T) {
	_, ev := server(t)
	must(t, ev, "", "set", "acme/base", "S=base-secret", "--create", "--secret")
	must(t, ev, "", "scopes", "create", "acme/web", "--inherits", "acme/base")
	must(t, ev, "", "set", "acme/web", "A=1")
	as := func(tok string) env { return env{"ENVY_ADDR": ev["ENVY_ADDR"], "ENVY_TOKEN": tok} }
	for _, tc := range []struct {
		who        string
		tok        string
		args       []string
		want, hide string
	}{
		{"an admin", ev["ENVY_TOKEN"], []string{"scopes", "rm", "acme/base", "--yes"},
			"scope acme/base is inherited by acme/web: remove it from the inherits of acme/web first", ""},
		{"a token that may not see the inheritor", newToken(t, ev, "base-admin", "acme/base=admin"), []string{"scopes", "rm", "acme/base", "--yes"},
			"scope acme/base is inherited by another scope", "acme/web"},
		{"a token that reads the inherited scope", newToken(t, ev, "reader", "acme/web=read,reveal", "acme/base=read"), []string{"export", "acme/web"},
			"scope acme/web inherits scope acme/base, which this token may not reveal", ""},
		{"a token that may not see the inherited scope", newToken(t, ev, "web-only", "acme/web=read,reveal"), []string{"export", "acme/web"},
			"scope acme/web inherits a scope that this token may not reveal", "acme/base"},
	} {
		code, out, errOut := runEnvy(t, as(tc.tok), "", tc.args...)
		if code != 1 || out != "" || !strings.Contains(errOut, tc.want) || tc.hide != "" && strings.Contains(errOut, tc.hide) {
			t.Errorf("%s: envy %s: %d %q; want %q without %q", tc.who, strings.Join(tc.args, " "), code, errOut, tc.want, tc.hide)
		}
	}
}
