package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/envy-dev/envy/internal/testenv"
)

// varSecret reads whether scope's var name is secret, over the API.
func varSecret(t *testing.T, e *testenv.Env, scope, name string) bool {
	t.Helper()
	r := e.Do(t, "GET", "/v1/scopes/"+scope+"/-/vars/"+name, e.Admin, "")
	if r.Status != 200 {
		t.Fatalf("GET %s/%s: %d %s", scope, name, r.Status, r.Body)
	}
	return r.JSON(t)["secret"] == true
}

// Export then import keeps a secret secret: dotenv marks it, JSON
// --with-flags says it, and import makes new vars secret unless --plain;
// a var the scope has keeps its flag.
func TestExportThenImportKeepsSecretsSecret(t *testing.T) {
	e, ev := server(t)
	dir := t.TempDir()
	must(t, ev, "", "set", "acme/prod", "PORT=8080", "--create")
	must(t, ev, "sk-live-1", "vars", "set", "acme/prod", "STRIPE_KEY", "--secret")

	env := must(t, ev, "", "export", "acme/prod")
	if !strings.Contains(env, "# envy:secret\nSTRIPE_KEY=sk-live-1\n") || strings.Contains(env, "# envy:secret\nPORT") {
		t.Fatalf("dotenv export does not mark exactly the secret:\n%s", env)
	}
	file := filepath.Join(dir, "prod.env")
	if err := os.WriteFile(file, []byte(env), 0o600); err != nil {
		t.Fatal(err)
	}

	// --plain: the marked secret stays secret, the rest is plain.
	out := must(t, ev, "", "import", "acme/staging", file, "--create", "--plain")
	if !strings.Contains(out, "1 marked secret") {
		t.Errorf("import did not say what it marked secret: %q", out)
	}
	if !varSecret(t, e, "acme/staging", "STRIPE_KEY") || varSecret(t, e, "acme/staging", "PORT") {
		t.Fatal("import --plain: STRIPE_KEY must be secret and PORT plain")
	}
	// By default a new var the file says nothing of is secret...
	must(t, ev, "", "import", "acme/qa", file, "--create")
	if !varSecret(t, e, "acme/qa", "PORT") || !varSecret(t, e, "acme/qa", "STRIPE_KEY") {
		t.Fatal("import: new vars must be secret by default")
	}
	// ...and one the scope has keeps its flag.
	must(t, ev, "", "set", "acme/dev", "PORT=1", "--create")
	must(t, ev, "", "import", "acme/dev", file)
	if varSecret(t, e, "acme/dev", "PORT") || !varSecret(t, e, "acme/dev", "STRIPE_KEY") {
		t.Fatal("import into a scope that has PORT: PORT must stay plain, STRIPE_KEY be secret")
	}
	if v, _ := varValue(t, e, "acme/dev", "PORT"); v != "8080" {
		t.Fatalf("PORT = %q", v)
	}

	// JSON with its flags: both ways.
	js := must(t, ev, "", "export", "acme/prod", "--format", "json", "--with-flags")
	if !strings.Contains(js, `"STRIPE_KEY": {"value": "sk-live-1", "secret": true}`) || !strings.Contains(js, `"PORT": {"value": "8080", "secret": false}`) {
		t.Fatalf("json --with-flags:\n%s", js)
	}
	jf := filepath.Join(dir, "prod.json")
	if err := os.WriteFile(jf, []byte(js), 0o600); err != nil {
		t.Fatal(err)
	}
	must(t, ev, "", "import", "acme/json", jf, "--create")
	if !varSecret(t, e, "acme/json", "STRIPE_KEY") || varSecret(t, e, "acme/json", "PORT") {
		t.Fatal("json import: the flags of the file must be kept")
	}
	if code, _, errOut := runEnvy(t, ev, "", "import", "acme/json", jf, "--secret", "--plain"); code != 2 || !strings.Contains(errOut, "not both") {
		t.Fatalf("--secret --plain: %d %s", code, errOut)
	}
}

// A plain var that refers to a secret is masked on every read, and export
// writes it with the secret expanded in it: so export marks it secret too
// (dotenv's marker line, JSON --with-flags), and export | import --plain
// leaves the secret no more readable than it was. A var that refers only
// to plain vars stays plain.
func TestExportMarksVarsThatReferToSecrets(t *testing.T) {
	e, ev := server(t)
	must(t, ev, "", "set", "src", "HOST=db", "--create")
	must(t, ev, "", "vars", "set", "src", "PW", "hunter2ZQ", "--secret")
	must(t, ev, "", "set", "src", "DB_URL=postgres://u:${PW}@${HOST}/app", "ADDR=${HOST}:5432")

	out := must(t, ev, "", "export", "src")
	if !strings.Contains(out, "# envy:secret\nDB_URL=postgres://u:hunter2ZQ@db/app\n") || strings.Contains(out, "# envy:secret\nADDR") || strings.Contains(out, "# envy:secret\nHOST") {
		t.Fatalf("dotenv export does not mark exactly PW and DB_URL:\n%s", out)
	}
	js := must(t, ev, "", "export", "src", "--format", "json", "--with-flags")
	if !strings.Contains(js, `"DB_URL": {"value": "postgres://u:hunter2ZQ@db/app", "secret": true}`) || !strings.Contains(js, `"ADDR": {"value": "db:5432", "secret": false}`) {
		t.Fatalf("json --with-flags:\n%s", js)
	}

	file := filepath.Join(t.TempDir(), "src.env")
	must(t, ev, "", "export", "src", "--output-file", file)
	must(t, ev, "", "import", "dst", file, "--plain", "--create")
	r := e.Do(t, "GET", "/v1/scopes/dst/-/vars/DB_URL", e.Admin, "")
	if strings.Contains(string(r.Body), "hunter2ZQ") || r.JSON(t)["secret"] != true {
		t.Errorf("after export | import --plain, DB_URL is not a masked secret: %s", r.Body)
	}
	if varSecret(t, e, "dst", "ADDR") || varSecret(t, e, "dst", "HOST") {
		t.Error("import --plain: ADDR and HOST must be plain")
	}
	if v, _ := varValue(t, e, "dst", "DB_URL"); v != "postgres://u:hunter2ZQ@db/app" {
		t.Errorf("DB_URL = %q", v)
	}
	// --raw writes DB_URL as stored, ${PW} and no secret in it: it keeps
	// its own flag, plain.
	rawOut := must(t, ev, "", "export", "src", "--raw")
	if !strings.Contains(rawOut, "DB_URL='postgres://u:${PW}@${HOST}/app'") || strings.Contains(rawOut, "# envy:secret\nDB_URL") || !strings.Contains(rawOut, "# envy:secret\nPW=") {
		t.Errorf("a raw export marks other than PW:\n%s", rawOut)
	}
}

// set --from-file keeps what the file says of secrets, as import does: a
// var an exported dotenv file (or JSON --with-flags) marks is set secret,
// unless --secret=false says plain; the others keep their flag.
func TestSetFromFileKeepsSecretMarkers(t *testing.T) {
	e, ev := server(t)
	dir := t.TempDir()
	must(t, ev, "", "set", "src", "PORT=80", "--create")
	must(t, ev, "", "vars", "set", "src", "API_KEY", "sk-live-ZQ123456", "--secret")
	file := filepath.Join(dir, "src.env")
	must(t, ev, "", "export", "src", "--output-file", file)
	if data, _ := os.ReadFile(file); !strings.Contains(string(data), "# envy:secret\nAPI_KEY=") {
		t.Fatalf("export wrote %q", data)
	}
	jf := filepath.Join(dir, "src.json")
	must(t, ev, "", "export", "src", "--format", "json", "--with-flags", "--output-file", jf)

	for _, f := range []string{file, jf} {
		dst := "dst/" + filepath.Ext(f)[1:]
		must(t, ev, "", "set", dst, "--from-file", f, "--create")
		r := e.Do(t, "GET", "/v1/scopes/"+dst+"/-/vars/API_KEY", e.Admin, "")
		if strings.Contains(string(r.Body), "sk-live-ZQ123456") || r.JSON(t)["secret"] != true {
			t.Errorf("set --from-file %s made API_KEY plain: %s", f, r.Body)
		}
		if out := must(t, ev, "", "vars", "ls", dst); strings.Contains(out, "sk-live-ZQ123456") {
			t.Errorf("vars ls %s (no --reveal) shows the secret:\n%s", dst, out)
		}
		if varSecret(t, e, dst, "PORT") {
			t.Errorf("%s: PORT, which the file does not mark, was made secret", dst)
		}
	}
	// --secret=false still makes every var plain, the marked one too.
	must(t, ev, "", "set", "plain", "--from-file", file, "--create", "--secret=false")
	if varSecret(t, e, "plain", "API_KEY") {
		t.Error("set --from-file --secret=false left API_KEY secret")
	}
}

// scopes copy writes SRC's own vars with their flags and descriptions to
// DST as one revision.
func TestScopesCopyKeepsFlagsAndDescriptions(t *testing.T) {
	e, ev := server(t)
	must(t, ev, "", "set", "acme/base", "REGION=eu", "--create")
	must(t, ev, "", "scopes", "create", "acme/prod", "--inherits", "acme/base")
	must(t, ev, "", "set", "acme/prod", "PORT=8080")
	must(t, ev, "sk-live-1", "vars", "set", "acme/prod", "STRIPE_KEY", "--secret")
	must(t, ev, "", "vars", "edit", "acme/prod", "PORT", "--description", "the port")

	if code, _, errOut := runEnvy(t, ev, "", "scopes", "copy", "acme/prod", "acme/copy"); code == 0 || !strings.Contains(errOut, "--create") {
		t.Fatalf("copy to a missing scope without --create: %d %s", code, errOut)
	}
	out := must(t, ev, "", "scopes", "copy", "acme/prod", "acme/copy", "--create")
	if !strings.HasPrefix(out, "copied 2 vars (1 secret) from acme/prod to acme/copy: revision ") {
		t.Fatalf("copy said %q", out)
	}
	rev := scopeRevision(t, e, "acme/copy")
	if !varSecret(t, e, "acme/copy", "STRIPE_KEY") || varSecret(t, e, "acme/copy", "PORT") {
		t.Fatal("copy lost a flag")
	}
	if v, _ := varValue(t, e, "acme/copy", "STRIPE_KEY"); v != "sk-live-1" {
		t.Fatalf("STRIPE_KEY = %q", v)
	}
	if r := e.Do(t, "GET", "/v1/scopes/acme/copy/-/vars/PORT", e.Admin, ""); r.JSON(t)["description"] != "the port" {
		t.Fatalf("description lost: %s", r.Body)
	}
	if _, ok := varValue(t, e, "acme/copy", "REGION"); ok {
		t.Fatal("copy copied an inherited var")
	}
	if out := must(t, ev, "", "scopes", "copy", "acme/prod", "acme/copy"); !strings.HasPrefix(out, "nothing changed") || scopeRevision(t, e, "acme/copy") != rev {
		t.Fatalf("a copy that changes nothing: %q", out)
	}
}
