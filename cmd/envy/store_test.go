package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/envy-dev/envy/sqlite"
)

// TestRedactURLHidesEveryPassword: a database URL shown in a log or an
// error holds no password, whether in its userinfo or as a parameter.
func TestRedactURLHidesEveryPassword(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"postgres://envy:S3CRET@db:5432/envy", "postgres://envy:xxxxx@db:5432/envy"},
		{"postgres://envy@db/envy?sslmode=disable&password=S3CRET", "postgres://envy@db/envy?sslmode=disable&password=xxxxx"},
		{"postgres://envy@db/envy?sslpassword=S3CRET&pool_max_conns=4", "postgres://envy@db/envy?sslpassword=xxxxx&pool_max_conns=4"},
		{"postgres://envy@db/envy?Password=S3CRET", "postgres://envy@db/envy?Password=xxxxx"},
		{"postgres://envy@db/envy?pass%77ord=S3CRET", "postgres://envy@db/envy?pass%77ord=xxxxx"},
		{"postgres://envy@db/envy?%zz=S3CRET", "postgres://envy@db/envy?%zz=xxxxx"},
		{"postgres://envy@db/envy?sslmode=verify-full", "postgres://envy@db/envy?sslmode=verify-full"},
	} {
		if got := redactURL(c.in); got != c.want || strings.Contains(got, "S3CRET") {
			t.Errorf("redactURL(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestMigrateNeverPrintsAPasswordParameter: envy migrate names a
// destination it can't reach without the password given as a parameter.
func TestMigrateNeverPrintsAPasswordParameter(t *testing.T) {
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "envy.db"))
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	var stdout, stderr bytes.Buffer
	code := run([]string{"migrate", "--from", "sqlite:" + dir, "--to", "postgres://envy@127.0.0.1:1/envy?sslmode=disable&connect_timeout=1&password=S3CRET"},
		strings.NewReader(""), &stdout, &stderr, func(string) string { return "" })
	if code == 0 {
		t.Fatal("envy migrate to a closed port succeeded")
	}
	if out := stdout.String() + stderr.String(); strings.Contains(out, "S3CRET") || !strings.Contains(out, "password=xxxxx") {
		t.Fatalf("envy migrate said %q", out)
	}
}
