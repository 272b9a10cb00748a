package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"
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
// (a plain string) unless secret is set, or flags gives the var's flag.
func bulkChanges(kvs []dotenv.KV, secret bool, flags dotenv.Flags) map[string]*client.VarInput {
	changes := make(map[string]*client.VarInput, len(kvs))
	for _, kv := range kvs {
		if f, ok := flags[kv.Name]; ok && !secret {
			changes[kv.Name] = &client.VarInput{Value: client.String(kv.Value), Secret: client.Bool(f)}
		} else if secret {
			changes[kv.Name] = client.SecretValue(kv.Value)
		} else {
			changes[kv.Name] = client.Value(kv.Value)
		}
	}
	return changes
}

// secretOnly returns the vars that flags marks secret, nil for none.
func secretOnly(flags dotenv.Flags) dotenv.Flags {
	var out dotenv.Flags
	for name, secret := range flags {
		if secret {
			if out == nil {
				out = dotenv.Flags{}
			}
			out[name] = true
		}
	}
	return out
}

func (a *app) newSetCmd() *cobra.Command {
	var (
		secret   bool
		fromFile string
		w        scopeWrite
	)
	cmd := &cobra.Command{
		Use:   "set [SCOPE] [NAME=VALUE|NAME|NAME=-]...",
		Short: "Set several vars at once, as one revision",
		Long: "Set several vars in one change (one revision, all or nothing). A bare NAME or\n" +
			"NAME=- reads that one value from stdin, keeping it out of shell history;\n" +
			"--from-file reads a dotenv (or .json/.yaml/.sh) file first, and NAME=VALUE\n" +
			"arguments override it. --secret marks every var set secret, --secret=false\n" +
			"makes every one plain; without either, a var the file marks secret (a\n" +
			"`# envy:secret` line before it, as `envy export` writes; {\"value\": …,\n" +
			"\"secret\": true} in JSON) is set secret; the others keep their flag (a new\n" +
			"var is plain).\n\n" +
			"When the first argument holds '=' (or there is none), the scope is the\n" +
			"default one (ENVY_SCOPE, or `envy setup`). A scope that does not exist is\n" +
			"created only with --create, or when you say yes on a terminal. A change that\n" +
			"changes nothing takes no revision and restarts no workload.",
		Example: "  envy set acme/web PORT=8080 LOG_LEVEL=info\n" +
			"  envy set acme/web DB_PASSWORD --secret        # prompts for the value\n" +
			"  envy set acme/web --from-file .env\n" +
			"  envy set acme/new-app PORT=80 --create",
		RunE: func(cmd *cobra.Command, args []string) error {
			args, err := a.scopeFirst(cmd, args, len(args) == 0 || strings.Contains(args[0], "="))
			if err != nil {
				return err
			}
			scope := args[0]
			assigns, err := parseAssignments(args[1:])
			if err != nil {
				return err
			}
			var (
				kvs    []dotenv.KV
				marked dotenv.Flags
			)
			if fromFile != "" {
				if kvs, marked, err = a.readVarsFileFlagged(fromFile, ""); err != nil {
					return err
				}
			}
			for _, as := range assigns {
				if as.fromStdin {
					as.value, err = a.readStdinValue(cmd.Context(), as.name)
					if err != nil {
						return err
					}
				}
				kvs = append(kvs, dotenv.KV{Name: as.name, Value: as.value})
			}
			if len(kvs) == 0 {
				return usageErrorf("nothing to set: give NAME=VALUE arguments or --from-file")
			}
			var flags dotenv.Flags
			switch {
			case cmd.Flags().Changed("secret") && !secret:
				// --secret=false: every var set is made plain, as
				// `vars set --secret=false` does, and merge says which
				// were secret.
				flags = dotenv.Flags{}
				for _, kv := range kvs {
					flags[kv.Name] = false
				}
			case !secret:
				// A var the file marks secret (`# envy:secret`, as
				// export writes it; JSON's "secret": true) is set
				// secret. The file makes nothing plain: a var it says
				// nothing of, or calls plain, keeps its flag.
				flags = secretOnly(marked)
			}
			return a.merge(cmd, scope, kvs, secret, flags, false, w)
		},
	}
	cmd.Flags().BoolVar(&secret, "secret", false, "mark every var set secret; --secret=false makes every var set plain")
	cmd.Flags().StringVar(&fromFile, "from-file", "", "read vars from a dotenv file (- for stdin)")
	w.addFlags(cmd)
	return cmd
}

// merge writes kvs to scope as one revision: a bulk PATCH, or with replace
// a PUT of the whole set. A name given twice keeps its last value. It says
// whether the write changed anything: when the scope's revision did not
// move, nothing was written and no workload restarts.
func (a *app) merge(cmd *cobra.Command, scope string, kvs []dotenv.KV, secret bool, flags dotenv.Flags, replace bool, w scopeWrite) error {
	c, before, err := a.beginWrite(cmd.Context(), scope, w.create)
	if err != nil {
		return err
	}
	changes := bulkChanges(kvs, secret, flags)
	kept := 0
	if !replace && w.canSkip(before) {
		// A var that already has the value (and flag) asked for is left
		// out, so that it takes no new version; when none is left, nothing
		// is written: no revision, no workload restarted. Only what this
		// token may read is compared (non-secret values): a secret is
		// sent, and the server decides.
		if kept, err = dropUnchanged(cmd.Context(), c, scope, changes); err != nil {
			return err
		}
		if len(changes) == 0 {
			if a.jsonOut() {
				return a.printJSON(nil, map[string]any{"scope": scope, "revision": before, "changed": false})
			}
			a.nothingChanged(scope, kept, before)
			return nil
		}
	}
	unsecret, err := secretsMadePlain(cmd.Context(), c, scope, changes)
	if err != nil {
		return err
	}
	ctx, raw := capture(cmd.Context())
	done := a.progress(len(changes) >= progressMin, "sending %d vars to %s", len(changes), scope)
	var res *client.WriteResult
	if replace {
		res, err = c.ReplaceVars(ctx, scope, changes, writeOpts(w.ifMatch)...)
	} else {
		res, err = c.MergeVars(ctx, scope, changes, writeOpts(w.ifMatch)...)
	}
	done(err)
	if err != nil {
		return err
	}
	if a.jsonOut() {
		return a.printJSON(*raw, nil)
	}
	if before > 0 && res.Revision == before {
		a.nothingChanged(scope, len(changes), res.Revision)
		return nil
	}
	unchanged := ""
	if kept > 0 {
		unchanged = fmt.Sprintf("; %d already had %s value", kept, plural(kept, "its", "their"))
	}
	secrets := ""
	if n := countSecret(changes); n > 0 && flags != nil { // import: say what it chose
		secrets = fmt.Sprintf(", %d marked secret", n)
	}
	a.printf("set %d %s in %s%s: revision %d (%s%s)\n", len(changes), plural(len(changes), "var", "vars"), scope, secrets, res.Revision, syncedNote(res.Synced, res.Behind...), unchanged)
	if len(unsecret) > 0 {
		a.printf("no longer secret (reads now show the value): %s\n", strings.Join(unsecret, ", "))
	}
	return nil
}

// nothingChanged says that a write of n vars to scope left it at revision
// rev: every var already had the value asked for.
func (a *app) nothingChanged(scope string, n int, rev int64) {
	a.printf("nothing changed in %s: %s already had %s (still revision %d; nothing written, no workload restarted)\n",
		scope, plural(n, "the var", "all "+strconv.Itoa(n)+" vars"), plural(n, "that value", "those values"), rev)
}

// dropUnchanged removes from changes the vars that the scope already holds
// as asked (a readable value equal, the secret flag unchanged or not
// given) and returns how many it removed.
func dropUnchanged(ctx context.Context, c *client.Client, scope string, changes map[string]*client.VarInput) (int, error) {
	list, err := c.ListVars(ctx, scope, false)
	if client.IsType(err, client.TypeForbidden) || client.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	for _, v := range list.Items {
		in, ok := changes[v.Name]
		if ok && in != nil && sameValue(v, *in) {
			delete(changes, v.Name)
			n++
		}
	}
	return n, nil
}

// sameValue reports whether writing in to v would leave it as it is, as
// far as a read without reveal can tell.
func sameValue(v client.Var, in client.VarInput) bool {
	switch {
	case v.Value == nil || in.Value == nil || *v.Value != *in.Value:
		return false
	case in.Secret != nil && *in.Secret != v.Secret:
		return false
	case in.Description != nil && *in.Description != v.Description:
		return false
	}
	return true
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
		Use:   "unset [SCOPE] NAME...",
		Short: "Delete several vars at once, as one revision",
		Long: "Delete vars as one revision. With one argument, it is a NAME in the default\n" +
			"scope (ENVY_SCOPE, or `envy setup`); with more, the first is the SCOPE.\n" +
			"It says which vars it deleted and which were not there.",
		Args: minArgs(1, "[SCOPE] NAME..."),
		RunE: a.unsetRunE(&ifMatch),
	}
	addIfMatch(cmd, &ifMatch)
	return cmd
}

// readVarsFile reads a vars file in format, or in the format its name
// suggests when format is "" (dotenv for stdin and unknown names).
func (a *app) readVarsFile(path, format string) ([]dotenv.KV, error) {
	kvs, _, err := a.readVarsFileFlagged(path, format)
	return kvs, err
}

// readVarsFileFlagged is readVarsFile, with what the file says of its
// vars' secret flags (dotenv.ParseFlagged).
func (a *app) readVarsFileFlagged(path, format string) ([]dotenv.KV, dotenv.Flags, error) {
	f := dotenv.FormatDotenv
	if format != "" {
		var err error
		if f, err = dotenv.ParseFormatName(format); err != nil {
			return nil, nil, usageErr(err)
		}
	} else if path != "-" {
		f = dotenv.FormatFromPath(path)
	}
	r, err := a.openInput(path)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	kvs, flags, err := dotenv.ParseFlagged(r, f)
	if err != nil {
		// The parser's errors name a line, never a value.
		return nil, nil, fmt.Errorf("%s: %w", displayPath(path), err)
	}
	return kvs, flags, nil
}

func displayPath(path string) string {
	if path == "-" {
		return "stdin"
	}
	return path
}

func (a *app) newImportCmd() *cobra.Command {
	var (
		format                          string
		secret, plain, replace, literal bool
		w                               scopeWrite
	)
	cmd := &cobra.Command{
		Use:   "import [SCOPE] FILE",
		Short: "Set the vars of a file in a scope, as one revision",
		Long: "Import a dotenv, JSON, YAML, shell or docker env file into a scope as one\n" +
			"change (one revision, all or nothing). The format comes from --format, else\n" +
			"from the file's extension (.json, .yaml/.yml, .sh), else dotenv. FILE - reads\n" +
			"stdin. With --replace the scope's own vars become exactly the file's. A scope\n" +
			"that does not exist is created only with --create, or when you say yes on a\n" +
			"terminal.\n\n" +
			"Secret flags: a var the file marks (a `# envy:secret` line right before it in\n" +
			"dotenv, as `envy export` writes; {\"value\":…,\"secret\":true|false} in JSON)\n" +
			"gets that flag. Otherwise a var the scope already has keeps its flag, and a\n" +
			"new var is secret, as in the dashboard, unless --plain. --secret makes every\n" +
			"var of the file secret.\n\n" +
			"References: ${NAME} and ${scope:NAME} in a value are references, which the\n" +
			"server expands ($${ is a literal ${), and import names the vars that hold\n" +
			"them. --literal stores every value as the file has it (each ${ sent as $${):\n" +
			"use it for a file of expanded values, such as `envy export` writes without\n" +
			"--raw, or any file whose ${ is meant as text.",
		Example: "  envy import acme/web/prod .env.production --secret\n" +
			"  envy export acme/web/staging --raw | envy import acme/web/prod -\n" +
			"  envy export acme/web/staging | envy import acme/web/prod - --literal",
		Args: rangeArgs(1, 2, "[SCOPE] FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			args, err := a.scopeFirst(cmd, args, len(args) == 1)
			if err != nil {
				return err
			}
			scope, path := args[0], args[1]
			if secret && plain {
				return usageErrorf("give --secret or --plain, not both")
			}
			kvs, flags, err := a.readVarsFileFlagged(path, format)
			if err != nil {
				return err
			}
			if len(kvs) == 0 {
				if replace {
					return fmt.Errorf("%s holds no variables: refusing to replace the scope's vars with nothing (use `envy unset`)", displayPath(path))
				}
				return fmt.Errorf("%s holds no variables", displayPath(path))
			}
			if !secret {
				if flags, err = a.newVarFlags(cmd.Context(), scope, kvs, flags, !plain); err != nil {
					return err
				}
			}
			var refs []string
			if literal {
				kvs = dotenv.Literal(kvs)
			} else {
				refs = dotenv.NamesWithRefs(kvs)
			}
			if err := a.merge(cmd, scope, kvs, secret, flags, replace, w); err != nil {
				return err
			}
			if len(refs) > 0 {
				a.notef("stored with references or $${ escapes, which the server expands (--literal stores the values as written): %s\n", strings.Join(refs, ", "))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "dotenv, json, yaml, shell or docker (default: from the extension, else dotenv)")
	cmd.Flags().BoolVar(&secret, "secret", false, "mark every imported var secret")
	cmd.Flags().BoolVar(&plain, "plain", false, "make new vars that the file does not mark secret plain (default: secret)")
	cmd.Flags().BoolVar(&replace, "replace", false, "make the scope's own vars exactly the file's (deletes the others)")
	cmd.Flags().BoolVar(&literal, "literal", false, "store the values as written: no ${NAME} in them is a reference (each ${ is sent as $${)")
	w.addFlags(cmd)
	return cmd
}

// newVarFlags adds to the file's flags one for each var of kvs that scope
// does not have yet and the file says nothing of: secret unless told
// plain. A var the scope has keeps its flag (none is sent). When the
// token may not list the scope's vars, every var the file says nothing of
// counts as new: secret, unless told plain.
func (a *app) newVarFlags(ctx context.Context, scope string, kvs []dotenv.KV, flags dotenv.Flags, secret bool) (dotenv.Flags, error) {
	c, err := a.client()
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	list, err := c.ListVars(ctx, scope, false)
	switch {
	case err == nil:
		for _, v := range list.Items {
			have[v.Name] = true
		}
	case client.IsNotFound(err) || client.IsType(err, client.TypeForbidden):
	default:
		return nil, err
	}
	out := dotenv.Flags{}
	for _, kv := range kvs {
		if f, ok := flags[kv.Name]; ok {
			out[kv.Name] = f
		} else if !have[kv.Name] {
			out[kv.Name] = secret
		}
	}
	return out, nil
}

// countSecret counts the changes that mark their var secret.
func countSecret(changes map[string]*client.VarInput) int {
	n := 0
	for _, in := range changes {
		if in != nil && in.Secret != nil && *in.Secret {
			n++
		}
	}
	return n
}

// secretsMadePlain lists, sorted, the vars of scope that are secret now
// and that changes makes plain, so that the command can say so.
func secretsMadePlain(ctx context.Context, c *client.Client, scope string, changes map[string]*client.VarInput) ([]string, error) {
	plain := false
	for _, in := range changes {
		plain = plain || in != nil && in.Secret != nil && !*in.Secret
	}
	if !plain {
		return nil, nil
	}
	list, err := c.ListVars(ctx, scope, false)
	if client.IsNotFound(err) || client.IsType(err, client.TypeForbidden) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, v := range list.Items {
		if in := changes[v.Name]; v.Secret && in != nil && in.Secret != nil && !*in.Secret {
			out = append(out, v.Name)
		}
	}
	sort.Strings(out)
	return out, nil
}
