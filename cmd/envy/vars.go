package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/envy-dev/envy/client"
)

func (a *app) newVarsCmd() *cobra.Command {
	return group("vars", "List, show, set, edit and unset the vars of a scope",
		a.newVarsLsCmd(), a.newVarsGetCmd(), a.newVarsSetCmd(), a.newVarsEditCmd(), a.newVarsUnsetCmd())
}

func (a *app) newVarsLsCmd() *cobra.Command {
	var reveal, resolved, onlyNames bool
	cmd := &cobra.Command{
		Use:     "ls [SCOPE]",
		Aliases: []string{"list"},
		Short:   "List a scope's own vars, or with --resolved its inherited ones too",
		Long: "List a scope's own vars (secrets masked unless --reveal). --resolved lists\n" +
			"the vars of the scopes it inherits too, each with the scope it comes from; a\n" +
			"var that a later scope overrides is marked shadowed. Without SCOPE, the\n" +
			"default scope (ENVY_SCOPE, or `envy setup`).",
		Args: rangeArgs(0, 1, "[SCOPE]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			args, c, err := a.scopeClient(cmd, args, len(args) == 0)
			if err != nil {
				return err
			}
			if resolved {
				return a.resolvedVars(cmd.Context(), c, args[0], reveal)
			}
			if onlyNames && (reveal || resolved) {
				return usageErrorf("--only-names lists the scope's own names: leave out --reveal and --resolved")
			}
			ctx, raw := capture(cmd.Context())
			list, err := c.ListVars(ctx, args[0], reveal)
			if err != nil {
				return err
			}
			if onlyNames {
				names := make([]string, len(list.Items))
				for i, v := range list.Items {
					names[i] = v.Name
				}
				if a.jsonOut() {
					return a.printJSON(nil, names)
				}
				if len(names) == 0 {
					return nil
				}
				_, err := io.WriteString(a.stdout, strings.Join(names, "\n")+"\n")
				return err
			}
			if a.jsonOut() {
				return a.printJSON(*raw, nil)
			}
			return a.varsTable(list.Items)
		},
	}
	cmd.Flags().BoolVar(&reveal, "reveal", false, "show secrets' values (needs the reveal permission)")
	cmd.Flags().BoolVar(&resolved, "resolved", false, "list inherited vars too, with the scope each comes from")
	cmd.Flags().BoolVar(&onlyNames, "only-names", false, "the names alone, one a line (-o json: a list of names)")
	return cmd
}

// varsTable shows vars for people: a secret shows its masked value unless
// the read revealed it.
func (a *app) varsTable(vars []client.Var) error {
	t := newTable(a.stdout, "NAME", "VALUE", "SECRET", "VERSION", "UPDATED", "BY", "DESCRIPTION")
	for _, v := range vars {
		t.row(v.Name, shownValue(v.Value, v.MaskedValue), yesNo(v.Secret), strconv.FormatInt(v.Version, 10),
			fmtTime(v.UpdatedAt), actorCell(v.UpdatedBy, &v.UpdatedByToken), orDash(v.Description))
	}
	return t.flush()
}

func (a *app) newVarsGetCmd() *cobra.Command {
	var reveal, rawValue, plain bool
	cmd := &cobra.Command{
		Use:   "get [SCOPE] NAME...",
		Short: "Print vars' values (a secret's masked value unless --reveal)",
		Long: "Print one var's value, alone, so that $(envy vars get S NAME --reveal) is the value.\n" +
			"A secret shows its masked value unless --reveal is given. References in the\n" +
			"value (${NAME}, ${scope:NAME}) are expanded as the scope's env has them; --raw\n" +
			"prints the value as stored. -o json prints the whole var, as stored.\n\n" +
			"Several names print a table of names and values, or with --plain the values\n" +
			"alone, one a line in the order given (a value holding a line break is refused:\n" +
			"use -o json). With several names the first argument is the SCOPE; to use the\n" +
			"default scope, give it with -s.",
		Example: "  envy vars get acme/web PORT\n" +
			"  envy vars get acme/web HOST PORT --plain\n" +
			"  envy vars get -s acme/web DB_USER DB_PASSWORD --plain --reveal",
		Args: minArgs(1, "[SCOPE] NAME..."),
		RunE: func(cmd *cobra.Command, args []string) error {
			args, c, err := a.scopeClient(cmd, args, len(args) == 1)
			if err != nil {
				return err
			}
			scope, names := args[0], args[1:]
			for _, n := range names {
				if strings.Contains(n, "/") {
					return usageErrorf("NAME %q holds a /: a var name has none (the SCOPE goes first, or with --scope, once)", n)
				}
			}
			if len(names) > 1 {
				return a.getVars(cmd.Context(), c, scope, names, reveal, rawValue, plain)
			}
			ctx, raw := capture(cmd.Context())
			v, err := c.GetVar(ctx, scope, names[0], reveal)
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return a.printJSON(*raw, nil)
			}
			if v.Value == nil && v.MaskedValue != nil {
				a.notef("%s is secret or refers to a secret: this is its masked value (add --reveal for the value)\n", v.Name)
			}
			value := v.Value
			if !rawValue {
				if value, err = resolvedValue(cmd.Context(), c, scope, v, reveal); err != nil {
					return err
				}
			}
			return a.printValue(shownValue(value, v.MaskedValue))
		},
	}
	cmd.Flags().BoolVar(&reveal, "reveal", false, "show a secret's value (needs the reveal permission)")
	cmd.Flags().BoolVar(&rawValue, "raw", false, "the value as stored: references (${NAME}, ${scope:NAME}) not expanded")
	cmd.Flags().BoolVar(&plain, "plain", false, "several names: the values alone, one a line, in the order given")
	return cmd
}

// getVars prints several vars of scope: a table of names and values, the
// values alone one a line (plain), or the vars as stored (-o json). Every
// var is read before anything is printed, so that a missing one prints
// nothing.
func (a *app) getVars(ctx context.Context, c *client.Client, scope string, names []string, reveal, rawValue, plain bool) error {
	vars := make([]*client.Var, len(names))
	values := make([]string, len(names))
	var masked []string
	for i, name := range names {
		v, err := c.GetVar(ctx, scope, name, reveal)
		if err != nil {
			return err
		}
		value := v.Value
		if !rawValue {
			if value, err = resolvedValue(ctx, c, scope, v, reveal); err != nil {
				return err
			}
		}
		if value == nil && v.MaskedValue != nil {
			masked = append(masked, v.Name)
		}
		vars[i], values[i] = v, shownValue(value, v.MaskedValue)
		if plain && strings.ContainsAny(values[i], "\r\n") {
			return fmt.Errorf("the value of %s holds a line break, which --plain can't print one a line; use -o json (nothing printed)", v.Name)
		}
	}
	if a.jsonOut() {
		return a.printJSON(nil, map[string]any{"scope": scope, "items": vars})
	}
	if len(masked) > 0 {
		a.notef("%s %s secret or %s to a secret: masked values shown (add --reveal for the values)\n",
			strings.Join(masked, ", "), plural(len(masked), "is", "are"), plural(len(masked), "refers", "refer"))
	}
	if plain {
		_, err := io.WriteString(a.stdout, strings.Join(values, "\n")+"\n")
		return err
	}
	t := newTable(a.stdout, "NAME", "VALUE")
	for i, v := range vars {
		t.row(v.Name, values[i])
	}
	return t.flush()
}

// printValue prints a value exactly; on a terminal it ends the line too.
func (a *app) printValue(v string) error {
	if isTerminal(a.stdout) && (v == "" || v[len(v)-1] != '\n') {
		v += "\n"
	}
	_, err := io.WriteString(a.stdout, v)
	return err
}

func (a *app) newVarsSetCmd() *cobra.Command {
	var (
		v        varFlags
		fromFile string
		w        scopeWrite
	)
	cmd := &cobra.Command{
		Use:   "set SCOPE NAME [VALUE|-]",
		Short: "Create or update one var",
		Long: "Create or update one var. Without VALUE, or with -, the value is read from stdin\n" +
			"(a prompt without echo on a terminal; from a pipe, all of it less one trailing\n" +
			"newline); --from-file PATH takes a file's content exactly. Both keep the value\n" +
			"out of your shell history. An empty value is stored only when given as an\n" +
			"argument (''): an empty stdin (/dev/null, cron, CI), or one holding only a\n" +
			"line break, is refused. A VALUE that starts with \"-\" goes after --\n" +
			"(envy vars set SCOPE NAME -- -VALUE): before it, it would be read as flags,\n" +
			"and is refused, unquoted, with nothing sent.\n\n" +
			"--secret marks it secret, --secret=false plain (and says so when it was\n" +
			"secret); without --secret or --description an existing var\n" +
			"keeps its flag and description. To change only the flag or the description\n" +
			"and keep the value, use `envy vars edit`.\n\n" +
			"A scope that does not exist is created only with --create (or when you say\n" +
			"yes on a terminal), so that a typo does not make a new scope.",
		Example: "  envy vars set acme/web PORT 8080\n" +
			"  envy vars set acme/web API_KEY --secret          # prompts for the value\n" +
			"  pass show api-key | envy vars set acme/web API_KEY - --secret\n" +
			"  envy vars set acme/web TLS_KEY --secret --from-file key.pem",
		Args: rangeArgs(1, 3, "SCOPE NAME [VALUE]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			args, err := a.scopeFirst(cmd, args, len(args) == 1)
			if err != nil {
				return err
			}
			scope, name := args[0], args[1]
			var value string
			switch {
			case fromFile != "" && len(args) == 3:
				return usageErrorf("give the value as an argument or with --from-file, not both")
			case fromFile != "":
				value, err = a.readFileValue(cmd.Context(), name, fromFile)
			case len(args) == 3 && args[2] != "-":
				value = args[2]
			default:
				value, err = a.readStdinValue(cmd.Context(), name)
			}
			if err != nil {
				return err
			}
			c, before, err := a.beginWrite(cmd.Context(), scope, w.create)
			if err != nil {
				return err
			}
			in := v.input(cmd, &value)
			var unsecret []string
			if in.Secret != nil && !*in.Secret {
				if unsecret, err = secretsMadePlain(cmd.Context(), c, scope, map[string]*client.VarInput{name: &in}); err != nil {
					return err
				}
			}
			if w.canSkip(before) {
				// The var as it is: when it already holds what is asked
				// for, nothing is written (no revision, no restart).
				cur, err := c.GetVar(cmd.Context(), scope, name, false)
				if err == nil && sameValue(*cur, in) {
					if a.jsonOut() {
						return a.printJSON(nil, map[string]any{"scope": scope, "name": name, "revision": before, "changed": false})
					}
					a.printf("unchanged: %s in %s already was so (still revision %d; nothing written, no workload restarted)\n", name, scope, before)
					return nil
				}
			}
			ctx, raw := capture(cmd.Context())
			res, err := c.SetVar(ctx, scope, name, in, writeOpts(w.ifMatch)...)
			if err != nil {
				return err
			}
			if err := a.varWritten(*raw, scope, res, before); err != nil || a.jsonOut() || len(unsecret) == 0 {
				return err
			}
			a.printf("no longer secret (reads now show the value): %s\n", name)
			return nil
		},
	}
	v.addFlags(cmd, "mark the var secret (reads show it masked)")
	cmd.Flags().StringVar(&fromFile, "from-file", "", "read the value from this file, exactly (- for stdin); an empty file is refused")
	cmd.Flags().BoolVar(&a.allowEmpty, "allow-empty", false, "with --from-file, store an empty file's empty value")
	w.addFlags(cmd)
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		// An argument pflag could not take may be the VALUE itself (a PEM
		// key starts with -----): no error of this command quotes one.
		var missing *pflag.ValueRequiredError
		if errors.As(err, &missing) {
			return usageErr(err) // names the flag; it has no value to show
		}
		var invalid *pflag.InvalidValueError
		if errors.As(err, &invalid) && invalid.GetFlag() != nil {
			return usageErrorf("invalid value for --%s (not shown: it may be a value); %s", invalid.GetFlag().Name, dashValueHint)
		}
		return usageErrorf("not a flag of envy vars set (not shown: it may be a value); %s", dashValueHint)
	})
	return cmd
}

// isOutputFormat reports whether o names an output format.
func isOutputFormat(o string) bool { _, ok := outputFormat(o); return ok }

// dashValueHint says where a VALUE that starts with "-" goes.
const dashValueHint = `a VALUE that starts with "-" goes after --: envy vars set SCOPE NAME -- VALUE, or comes from stdin (nothing sent)`

// checkDashValue refuses an argument of `envy vars set` (args, those after
// the command's name) that pflag would read as shorthand flags taking a
// value from it: -s3cret is --scope 3cret, which would be sent to the
// server as a scope path (and kept in its audit log) and named in the
// error; -o3cret is --output 3cret, named in its error. Such an argument
// is most likely a VALUE that starts with "-". -s and -o given apart or
// with = (-s=acme/web), -o with a format attached (-ojson), and a flag's
// value given as the next argument are flags as ever.
func checkDashValue(cmd *cobra.Command, args []string) error {
	lookup := func(name string, short bool) *pflag.Flag {
		for _, fs := range []*pflag.FlagSet{cmd.Flags(), cmd.InheritedFlags()} {
			if short {
				if f := fs.ShorthandLookup(name); f != nil {
					return f
				}
			} else if f := fs.Lookup(name); f != nil {
				return f
			}
		}
		return nil
	}
	// Walk the arguments as pflag does: a flag that takes a value and has
	// none attached takes the next argument, whatever it looks like.
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			return nil
		}
		if strings.HasPrefix(arg, "--") {
			if name, _, eq := strings.Cut(arg[2:], "="); !eq {
				if f := lookup(name, false); f != nil && f.Value.Type() != "bool" {
					i++
				}
			}
			continue // an unknown or malformed one: the flag error says so, unquoted
		}
		if len(arg) < 2 || arg[0] != '-' {
			continue
		}
		for k := 1; k < len(arg); k++ {
			f := lookup(arg[k:k+1], true)
			if f == nil {
				break // an unknown flag: the flag error says so, unquoted
			}
			if f.Value.Type() == "bool" {
				continue
			}
			rest := arg[k+1:]
			switch {
			case rest == "":
				i++ // its value is the next argument
			case rest[0] == '=', f.Name == "output" && isOutputFormat(rest):
				// -s=acme/web, -ojson: a flag given its value
			default:
				return usageErrorf("-%s takes the rest of its argument as its value (not shown: it may be a value); give -%s apart, and %s", f.Shorthand, f.Shorthand, dashValueHint)
			}
			break
		}
	}
	return nil
}

// varWritten reports a single-var write: created, updated, or (when the
// scope's revision did not move) unchanged.
func (a *app) varWritten(raw []byte, scope string, res *client.VarWrite, before int64) error {
	if a.jsonOut() {
		return a.printJSON(raw, nil)
	}
	switch {
	case res.Created:
		a.printf("created %s in %s: version %d, revision %d (%s)\n", res.Name, scope, res.Version, res.Revision, syncedNote(res.Synced, res.Behind...))
	case before > 0 && res.Revision == before:
		a.printf("unchanged: %s in %s already was so (still revision %d; nothing written, no workload restarted)\n", res.Name, scope, res.Revision)
	default:
		a.printf("updated %s in %s: version %d, revision %d (%s)\n", res.Name, scope, res.Version, res.Revision, syncedNote(res.Synced, res.Behind...))
	}
	return nil
}

func (a *app) newVarsEditCmd() *cobra.Command {
	var (
		v       varFlags
		ifMatch int64
	)
	cmd := &cobra.Command{
		Use:   "edit [SCOPE] NAME (--secret=BOOL | --description TEXT)",
		Short: "Change a var's secret flag or description, keeping its value",
		Long: "Edit changes an existing var's secret flag or description and keeps its value\n" +
			"(a PATCH that sends no value). Turning a secret into a non-secret needs the\n" +
			"reveal permission.",
		Example: "  envy vars edit acme/web PORT --secret=false --description 'the port it listens on'",
		Args:    rangeArgs(1, 2, "[SCOPE] NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			args, err := a.scopeFirst(cmd, args, len(args) == 1)
			if err != nil {
				return err
			}
			in := v.input(cmd, nil)
			if in.Secret == nil && in.Description == nil {
				return usageErrorf("nothing to edit: give --secret=true|false or --description (to change the value, use `envy vars set`)")
			}
			c, before, err := a.beginWrite(cmd.Context(), args[0], true)
			if err != nil {
				return err
			}
			ctx, raw := capture(cmd.Context())
			res, err := c.UpdateVar(ctx, args[0], args[1], in, writeOpts(ifMatch)...)
			if err != nil {
				return err
			}
			return a.varWritten(*raw, args[0], res, before)
		},
	}
	v.addFlags(cmd, "mark the var secret, or with --secret=false not secret")
	addIfMatch(cmd, &ifMatch)
	return cmd
}

func (a *app) newVarsUnsetCmd() *cobra.Command {
	var ifMatch int64
	cmd := &cobra.Command{
		Use:     "unset SCOPE NAME...",
		Aliases: []string{"rm"},
		Short:   "Delete vars (several names: one revision)",
		Args:    minArgs(1, "SCOPE NAME..."),
		RunE:    a.unsetRunE(&ifMatch),
	}
	addIfMatch(cmd, &ifMatch)
	return cmd
}

// unsetRunE runs `envy unset` and `envy vars unset`: [SCOPE] NAME...,
// the default scope when only NAME is given.
func (a *app) unsetRunE(ifMatch *int64) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		args, err := a.scopeFirst(cmd, args, len(args) == 1)
		if err != nil {
			return err
		}
		return a.unset(cmd, args[0], args[1:], *ifMatch)
	}
}

// unset deletes names from scope: one DELETE for one name, one bulk PATCH
// (one revision) for several. It says what it deleted and what was not
// there, from the scope's vars before and the reply's revision after.
func (a *app) unset(cmd *cobra.Command, scope string, names []string, ifMatch int64) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	list, err := c.ListVars(cmd.Context(), scope, false)
	if client.IsType(err, client.TypeForbidden) {
		// A token that may write but not read: it can't be told what
		// existed before.
		list, err = &client.VarList{Revision: -1}, nil
	}
	if client.IsNotFound(err) {
		if a.jsonOut() {
			return a.printJSON(nil, map[string]any{"scope": scope, "deleted": []string{}, "absent": names, "changed": false})
		}
		a.printf("scope %s does not exist: nothing deleted\n", scope)
		return nil
	}
	if err != nil {
		return err
	}
	present := map[string]bool{}
	for _, v := range list.Items {
		present[v.Name] = true
	}
	var res *client.WriteResult
	if len(names) == 1 {
		res, err = c.DeleteVar(cmd.Context(), scope, names[0], writeOpts(ifMatch)...)
	} else {
		changes := make(map[string]*client.VarInput, len(names))
		for _, n := range names {
			changes[n] = nil
		}
		res, err = c.MergeVars(cmd.Context(), scope, changes, writeOpts(ifMatch)...)
	}
	if err != nil {
		return err
	}
	changed := res.Revision != list.Revision
	deleted, absent := []string{}, []string{}
	for _, n := range names {
		if present[n] && changed {
			deleted = append(deleted, n)
		} else {
			absent = append(absent, n)
		}
	}
	if list.Revision < 0 {
		if a.jsonOut() {
			return a.printJSON(nil, map[string]any{"scope": scope, "revision": res.Revision})
		}
		a.printf("unset %s in %s: revision %d (this token may not read %s, so it can't tell what existed)\n", strings.Join(names, ", "), scope, res.Revision, scope)
		return nil
	}
	if a.jsonOut() {
		return a.printJSON(nil, map[string]any{"scope": scope, "revision": res.Revision, "deleted": deleted, "absent": absent, "changed": changed})
	}
	if !changed {
		a.printf("nothing deleted: %s %s not in %s (still revision %d)\n", strings.Join(names, ", "), plural(len(names), "is", "are"), scope, res.Revision)
		return nil
	}
	a.printf("deleted %s from %s (revision %d)\n", strings.Join(deleted, ", "), scope, res.Revision)
	if len(absent) > 0 {
		a.printf("not there, nothing to delete: %s\n", strings.Join(absent, ", "))
	}
	return nil
}

// varFlags are --secret and --description of a single-var write: each
// changes the var only when it is given.
type varFlags struct {
	secret      bool
	description string
}

func (f *varFlags) addFlags(cmd *cobra.Command, secretUsage string) {
	cmd.Flags().BoolVar(&f.secret, "secret", false, secretUsage)
	cmd.Flags().StringVar(&f.description, "description", "", "what the var is for")
}

// input is the write of value (nil for none) and of the flags given.
func (f *varFlags) input(cmd *cobra.Command, value *string) client.VarInput {
	in := client.VarInput{Value: value}
	if cmd.Flags().Changed("secret") {
		in.Secret = &f.secret
	}
	if cmd.Flags().Changed("description") {
		in.Description = &f.description
	}
	return in
}

// scopeWrite holds --create and --if-revision of a command that writes
// vars to a scope.
type scopeWrite struct {
	create  bool  // create the scope if it does not exist
	ifMatch int64 // write only if the scope is at this revision (0: any)
}

func (w *scopeWrite) addFlags(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&w.create, "create", false, "create the scope if it does not exist")
	addIfMatch(cmd, &w.ifMatch)
}

// canSkip reports whether a write that would change nothing can be left
// out: the scope exists (at revision before) and the write is not bound to
// another revision, so what the scope holds can be compared first.
func (w scopeWrite) canSkip(before int64) bool {
	return before > 0 && (w.ifMatch == 0 || w.ifMatch == before)
}

// beginWrite returns a client and a scope's revision before a write, after
// checking that it exists (a missing one is created only with create or a
// yes on a terminal); 0 for a scope that does not exist yet.
func (a *app) beginWrite(ctx context.Context, scope string, create bool) (*client.Client, int64, error) {
	c, err := a.client()
	if err != nil {
		return nil, 0, err
	}
	sc, err := c.GetScope(ctx, scope)
	switch {
	case err == nil:
		return c, sc.Revision, nil
	case client.IsType(err, client.TypeForbidden):
		// A token that may write but not read: whether the scope exists
		// can't be known here; the server decides.
		return c, 0, nil
	case client.IsNotFound(err):
		return c, 0, a.mayCreate(ctx, scope, create)
	}
	return nil, 0, err
}
