package main

import (
	"bytes"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/envy-dev/envy/client"
	"github.com/envy-dev/envy/dotenv"
)

// assignment is one K=V argument of `envy set`.
type assignment struct {
	name      string
	value     string
	fromStdin bool // a bare K, or K=-
}

// parseAssignments reads K=V arguments. A bare K or K=- takes its value
// from stdin, which can be read once: at most one such argument.
func parseAssignments(args []string) ([]assignment, error) {
	out := make([]assignment, 0, len(args))
	stdin := ""
	for _, arg := range args {
		name, value, hasValue := strings.Cut(arg, "=")
		if name == "" {
			// Not even a name to show: the argument may be a value.
			return nil, usageErrorf("argument %d is not NAME=VALUE", len(out)+1)
		}
		if strings.ContainsAny(name, " \t\n") {
			return nil, usageErrorf("argument %d is not NAME=VALUE", len(out)+1)
		}
		a := assignment{name: name, value: value}
		if !hasValue || value == "-" {
			if stdin != "" {
				return nil, usageErrorf("only one value can come from stdin (%s and %s both ask for it)", stdin, name)
			}
			stdin = name
			a.value, a.fromStdin = "", true
		}
		out = append(out, a)
	}
	return out, nil
}

// bulkChanges makes the body of one bulk PATCH from kvs: the short form
// (a plain string) unless secret is set.
func bulkChanges(kvs []dotenv.KV, secret bool) map[string]*client.VarInput {
	changes := make(map[string]*client.VarInput, len(kvs))
	for _, kv := range kvs {
		if secret {
			changes[kv.Name] = client.SecretValue(kv.Value)
		} else {
			changes[kv.Name] = client.Value(kv.Value)
		}
	}
	return changes
}

func (a *app) newSetCmd() *cobra.Command {
	var (
		secret   bool
		fromFile string
		ifMatch  int64
	)
	cmd := &cobra.Command{
		Use:   "set SCOPE [NAME=VALUE|NAME|NAME=-]...",
		Short: "Set several vars at once, as one revision",
		Long: "Set several vars in one change (one revision, all or nothing). A bare NAME or\n" +
			"NAME=- reads that one value from stdin, keeping it out of shell history;\n" +
			"--from-file reads a dotenv (or .json/.yaml/.sh) file first, and NAME=VALUE\n" +
			"arguments override it. --secret marks every var set secret.",
		Example: "  envy set acme/web PORT=8080 LOG_LEVEL=info\n" +
			"  envy set acme/web DB_PASSWORD --secret        # prompts for the value\n" +
			"  envy set acme/web --from-file .env",
		Args: minArgs(1, "SCOPE [NAME=VALUE]..."),
		RunE: func(cmd *cobra.Command, args []string) error {
			scope := args[0]
			assigns, err := parseAssignments(args[1:])
			if err != nil {
				return err
			}
			var kvs []dotenv.KV
			if fromFile != "" {
				if kvs, err = a.readVarsFile(fromFile, ""); err != nil {
					return err
				}
			}
			for _, as := range assigns {
				if as.fromStdin {
					as.value, err = a.readStdinValue(cmd.Context(), "Value for "+as.name+": ", true)
					if err != nil {
						return err
					}
				}
				kvs = append(kvs, dotenv.KV{Name: as.name, Value: as.value})
			}
			if len(kvs) == 0 {
				return usageErrorf("nothing to set: give NAME=VALUE arguments or --from-file")
			}
			return a.merge(cmd, scope, kvs, secret, false, ifMatch)
		},
	}
	cmd.Flags().BoolVar(&secret, "secret", false, "mark every var set secret")
	cmd.Flags().StringVar(&fromFile, "from-file", "", "read vars from a dotenv file (- for stdin)")
	addIfMatch(cmd, &ifMatch)
	return cmd
}

// merge writes kvs to scope as one revision: a bulk PATCH, or with replace
// a PUT of the whole set. A name given twice keeps its last value.
func (a *app) merge(cmd *cobra.Command, scope string, kvs []dotenv.KV, secret, replace bool, ifMatch int64) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	changes := bulkChanges(kvs, secret)
	ctx, raw := capture(cmd.Context())
	var res *client.WriteResult
	if replace {
		res, err = c.ReplaceVars(ctx, scope, changes, writeOpts(ifMatch)...)
	} else {
		res, err = c.MergeVars(ctx, scope, changes, writeOpts(ifMatch)...)
	}
	if err != nil {
		return err
	}
	if a.jsonOut() {
		return a.printJSON(*raw, nil)
	}
	a.printf("set %d %s in %s: revision %d (%s)\n", len(changes), plural(len(changes), "var", "vars"), scope, res.Revision, syncedNote(res.Synced))
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func (a *app) newUnsetCmd() *cobra.Command {
	var ifMatch int64
	cmd := &cobra.Command{
		Use:   "unset SCOPE NAME...",
		Short: "Delete several vars at once, as one revision",
		Args:  minArgs(2, "SCOPE NAME..."),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.unset(cmd, args[0], args[1:], ifMatch)
		},
	}
	addIfMatch(cmd, &ifMatch)
	return cmd
}

// readVarsFile reads a vars file in format, or in the format its name
// suggests when format is "" (dotenv for stdin and unknown names).
func (a *app) readVarsFile(path, format string) ([]dotenv.KV, error) {
	f := dotenv.FormatDotenv
	if format != "" {
		var err error
		if f, err = dotenv.ParseFormatName(format); err != nil {
			return nil, usageErr(err)
		}
	} else if path != "-" {
		f = dotenv.FormatFromPath(path)
	}
	r, err := a.openInput(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	kvs, err := dotenv.ParseFormat(r, f)
	if err != nil {
		// The parser's errors name a line, never a value.
		return nil, fmt.Errorf("%s: %w", displayPath(path), err)
	}
	return kvs, nil
}

func displayPath(path string) string {
	if path == "-" {
		return "stdin"
	}
	return path
}

func (a *app) newImportCmd() *cobra.Command {
	var (
		format  string
		secret  bool
		replace bool
		ifMatch int64
	)
	cmd := &cobra.Command{
		Use:   "import SCOPE FILE",
		Short: "Set the vars of a file in a scope, as one revision",
		Long: "Import a dotenv, JSON, YAML or shell file into a scope as one change (one\n" +
			"revision, all or nothing). The format comes from --format, else from the file's\n" +
			"extension (.json, .yaml/.yml, .sh), else dotenv. FILE - reads stdin. With\n" +
			"--replace the scope's own vars become exactly the file's.",
		Example: "  envy import acme/web/prod .env.production --secret\n" +
			"  envy export acme/web/staging | envy import acme/web/prod -",
		Args: exactArgs(2, "SCOPE FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			scope, path := args[0], args[1]
			kvs, err := a.readVarsFile(path, format)
			if err != nil {
				return err
			}
			if len(kvs) == 0 {
				if replace {
					return fmt.Errorf("%s holds no variables: refusing to replace the scope's vars with nothing (use `envy unset`)", displayPath(path))
				}
				return fmt.Errorf("%s holds no variables", displayPath(path))
			}
			return a.merge(cmd, scope, kvs, secret, replace, ifMatch)
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "dotenv, json, yaml or shell (default: from the extension, else dotenv)")
	cmd.Flags().BoolVar(&secret, "secret", false, "mark every imported var secret")
	cmd.Flags().BoolVar(&replace, "replace", false, "make the scope's own vars exactly the file's (deletes the others)")
	addIfMatch(cmd, &ifMatch)
	return cmd
}

func (a *app) newExportCmd() *cobra.Command {
	var (
		format string
		file   string
	)
	cmd := &cobra.Command{
		Use:   "export SCOPE",
		Short: "Print a scope's resolved env, plaintext, as a file",
		Long: "Print the resolved env of a scope (inherited vars included, secrets in\n" +
			"plaintext: this needs the reveal permission) as dotenv, json, yaml or shell,\n" +
			"to stdout or to --file (created with mode 0600).",
		Example: "  envy export acme/web/prod > .env\n" +
			"  envy export acme/web/prod --format shell --file env.sh",
		Args: exactArgs(1, "SCOPE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := dotenv.FormatDotenv
			switch {
			case format != "":
				var err error
				if f, err = dotenv.ParseFormatName(format); err != nil {
					return usageErr(err)
				}
			case a.jsonOut():
				f = dotenv.FormatJSON
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			env, err := c.Env(cmd.Context(), args[0])
			if err != nil {
				return err
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
			if err := dotenv.WriteFormat(&buf, f, kvs); err != nil {
				return err
			}
			if file == "" || file == "-" {
				_, err := a.stdout.Write(buf.Bytes())
				return err
			}
			if err := writePrivateFile(file, buf.Bytes()); err != nil {
				return err
			}
			a.notef("wrote %d %s of %s (revision %d) to %s\n", len(kvs), plural(len(kvs), "var", "vars"), env.Scope, env.Revision, file)
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "dotenv, json, yaml or shell (default dotenv)")
	cmd.Flags().StringVar(&file, "file", "", "write to this file (mode 0600) instead of stdout")
	return cmd
}

// writePrivateFile writes secrets to path, which only the user can read
// when it is created. An existing file is truncated and keeps its mode.
func writePrivateFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
