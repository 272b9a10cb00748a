package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	texttemplate "text/template"

	"github.com/spf13/cobra"

	"github.com/envy-dev/envy/client"
	"github.com/envy-dev/envy/dotenv"
)

func (a *app) newExportCmd() *cobra.Command {
	var (
		format    string
		file      string
		dir       string
		template  string
		withFlags bool
	)
	cmd := &cobra.Command{
		Use:   "export [SCOPE...]",
		Short: "Print a scope's resolved env, plaintext, as a file",
		Long: "Print the resolved env of a scope (inherited vars included, secrets in\n" +
			"plaintext: this needs the reveal permission) to stdout or to --output-file\n" +
			"(or --file), mode 0600 even when the file existed with a wider one. With --dir, each scope given goes to a file of its own below\n" +
			"DIR, named after its path (acme/web/prod.env), with a line on stderr as each\n" +
			"is written. --format is one of:\n\n" +
			"  dotenv         NAME=value, quoted where needed (the default)\n" +
			"  dotenv-export  the same, each line starting with `export `, for a shell to\n" +
			"                 source (a value holding a line break is an error naming\n" +
			"                 the var: use shell)\n" +
			"  docker         NAME=value unquoted, as `docker run --env-file` reads it\n" +
			"                 (a value holding a line break is an error naming the var)\n" +
			"  shell          export NAME='value', for a shell to source\n" +
			"  json, yaml     one object of names to values (json --with-flags:\n" +
			"                 {\"NAME\": {\"value\": \"…\", \"secret\": true|false}})\n\n" +
			"dotenv and dotenv-export mark each secret with a `# envy:secret` line before\n" +
			"it (a comment to every other reader), so that `envy import` keeps it secret;\n" +
			"so is a var that refers to a secret (masked on reads: its value holds it).\n\n" +
			"--template FILE renders a Go template (text/template) instead: .Env is the\n" +
			"map of names to values (a missing name is an error), .Vars the list of\n" +
			"{.Name, .Value} by name, .Scope and .Revision; the functions quote (a shell\n" +
			"single-quoted word) and json (a JSON string) are there.",
		Example: "  envy export acme/web/prod > .env\n" +
			"  envy export acme/web/prod --format docker > web.env && docker run --env-file web.env web\n" +
			"  envy export acme/web/prod --format shell --output-file env.sh\n" +
			"  envy export acme/web/prod --template config.tmpl --file config.ini\n" +
			"  envy export acme/web/prod acme/api/prod acme/worker/prod --dir backup",
		RunE: func(cmd *cobra.Command, args []string) error {
			scopes, err := a.scopeFirst(cmd, args, len(args) == 0)
			if err != nil {
				return err
			}
			f := dotenv.FormatDotenv
			switch {
			case template != "" && format != "":
				return usageErrorf("give --format or --template, not both")
			case dir != "" && file != "":
				return usageErrorf("give --output-file or --dir, not both")
			case len(scopes) > 1 && dir == "":
				return usageErrorf("several scopes go to files of their own: give --dir DIR")
			case format != "":
				if f, err = dotenv.ParseFormatName(format); err != nil {
					return usageErr(fmt.Errorf("--format: %w", err))
				}
			case a.output == "json":
				f = dotenv.FormatJSON
			case a.output == "yaml":
				f = dotenv.FormatYAML
			}
			if withFlags && (f != dotenv.FormatJSON || template != "") {
				return usageErrorf("--with-flags is for --format json (dotenv marks secrets anyway)")
			}
			var tmpl *texttemplate.Template
			if template != "" {
				if tmpl, err = parseTemplate(template); err != nil {
					return err
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			for i, scope := range scopes {
				data, env, err := a.exportOne(cmd.Context(), c, scope, f, tmpl, withFlags)
				if err != nil {
					if len(scopes) > 1 {
						return fmt.Errorf("%s: %w (%d of %d scopes written)", scope, err, i, len(scopes))
					}
					return err
				}
				path := file
				if dir != "" {
					path = filepath.Join(dir, filepath.FromSlash(scope)+exportExt(f, template))
					if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
						return err
					}
				}
				if path == "" || path == "-" {
					if _, err := a.stdout.Write(data); err != nil {
						return err
					}
					continue
				}
				if err := writePrivateFile(path, data); err != nil {
					return err
				}
				step := ""
				if len(scopes) > 1 {
					step = fmt.Sprintf("[%d/%d] ", i+1, len(scopes))
				}
				a.notef("%swrote %d %s of %s (revision %d) to %s\n", step, len(env.Env), plural(len(env.Env), "var", "vars"), env.Scope, env.Revision, path)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "dotenv, dotenv-export, docker, shell, json or yaml (default dotenv)")
	cmd.Flags().StringVar(&file, "output-file", "", "write to this file, mode 0600 (an existing file is replaced, never left wider), instead of stdout")
	cmd.Flags().StringVar(&file, "file", "", "the same as --output-file")
	cmd.Flags().StringVar(&dir, "dir", "", "write each scope to a file of its own below this directory")
	cmd.Flags().StringVar(&template, "template", "", "render this Go template file instead of a format")
	cmd.Flags().BoolVar(&withFlags, "with-flags", false, `json: write each var as {"value": …, "secret": true|false}, which envy import reads`)
	var raw bool
	cmd.Flags().BoolVar(&raw, "raw", false, "the values as stored: references (${NAME}, ${scope:NAME}) not expanded")
	cmd.PreRun = func(cmd *cobra.Command, _ []string) { cmd.SetContext(withRawEnv(cmd.Context(), raw)) }
	return cmd
}

// exportOne renders the resolved env of scope in format f, or through
// tmpl when it is set.
func (a *app) exportOne(ctx context.Context, c *client.Client, scope string, f dotenv.Format, tmpl *texttemplate.Template, withFlags bool) ([]byte, *client.Env, error) {
	env, err := envFor(ctx, c, scope)
	if err != nil {
		return nil, nil, err
	}
	names := make([]string, 0, len(env.Env))
	for n := range env.Env {
		names = append(names, n)
	}
	sort.Strings(names)
	kvs := make([]dotenv.KV, 0, len(names))
	for _, n := range names {
		kvs = append(kvs, dotenv.KV{Name: n, Value: env.Env[n]})
	}
	var buf bytes.Buffer
	if tmpl != nil {
		err = renderTemplate(&buf, tmpl, env, kvs)
	} else if f == dotenv.FormatDotenv || f == dotenv.FormatDotenvExport || withFlags {
		var flags dotenv.Flags
		if flags, err = secretFlags(ctx, c, scope); err != nil {
			return nil, nil, err
		}
		err = dotenv.WriteFlagged(&buf, f, kvs, flags)
	} else {
		err = dotenv.WriteFormat(&buf, f, kvs)
	}
	return buf.Bytes(), env, err
}

// secretFlags is the secret flag of each var of scope's resolved env, as
// the server resolves it (GET /-/resolved, values masked). A var counts as
// secret when that read masks it: a secret, and a plain var whose value
// refers to a secret (DB_URL=postgres://u:${PW}@db/app), which export
// writes with the secret expanded in it; under --raw such a var is
// written as stored (${PW}, no secret in it) and keeps its own flag.
func secretFlags(ctx context.Context, c *client.Client, scope string) (dotenv.Flags, error) {
	raw, _ := ctx.Value(rawEnvKey{}).(bool)
	res, err := c.Resolved(ctx, scope, false)
	if err != nil {
		return nil, fmt.Errorf("reading the secret flags of %s: %w", scope, err)
	}
	flags := dotenv.Flags{}
	for _, l := range res.Layers {
		for _, v := range l.Vars {
			if v.ShadowedBy == "" {
				flags[v.Name] = v.Secret || (!raw && v.Value == nil && v.MaskedValue != nil)
			}
		}
	}
	return flags, nil
}

// exportExt is the extension of the files export --dir writes.
func exportExt(f dotenv.Format, template string) string {
	if template != "" {
		if ext := filepath.Ext(strings.TrimSuffix(filepath.Base(template), ".tmpl")); ext != "" {
			return ext
		}
		return ".txt"
	}
	switch f {
	case dotenv.FormatJSON:
		return ".json"
	case dotenv.FormatYAML:
		return ".yaml"
	case dotenv.FormatShell:
		return ".sh"
	}
	return ".env"
}

// parseTemplate reads a --template file.
func parseTemplate(path string) (*texttemplate.Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--template: %v", err)
	}
	t, err := texttemplate.New(filepath.Base(path)).Option("missingkey=error").Funcs(texttemplate.FuncMap{
		"quote": func(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" },
		"json": func(s string) (string, error) {
			b, err := json.Marshal(s)
			return string(b), err
		},
	}).Parse(string(data))
	if err != nil {
		return nil, fmt.Errorf("--template: %v", err)
	}
	return t, nil
}

// renderTemplate renders the env through t. An error names the template's
// place, never a value.
func renderTemplate(w io.Writer, t *texttemplate.Template, env *client.Env, kvs []dotenv.KV) error {
	data := struct {
		Scope    string
		Revision int64
		Env      map[string]string
		Vars     []dotenv.KV
	}{env.Scope, env.Revision, env.Env, kvs}
	if err := t.Execute(w, data); err != nil {
		return fmt.Errorf("--template: %v", err)
	}
	return nil
}

// writePrivateFile writes secrets to path with mode 0600, never wider:
// they go to a new file (created 0600) beside it, which then replaces
// path, so that an existing file's wider mode is not kept and a failure
// leaves path as it was, never half-written.
func writePrivateFile(path string, data []byte) error {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("%s is a directory (nothing written)", path)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %v (nothing written)", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after the rename, nothing is left to remove
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %v (nothing written)", path, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %v (nothing written)", path, err)
	}
	return nil
}
