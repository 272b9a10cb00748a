package main

import (
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/envy-dev/envy/client"
)

func (a *app) newVarsCmd() *cobra.Command {
	return group("vars", "List, show, set and unset the vars of a scope",
		a.newVarsLsCmd(), a.newVarsGetCmd(), a.newVarsSetCmd(), a.newVarsUnsetCmd())
}

func (a *app) newVarsLsCmd() *cobra.Command {
	var reveal bool
	cmd := &cobra.Command{
		Use:     "ls SCOPE",
		Aliases: []string{"list"},
		Short:   "List a scope's own vars (secrets masked unless --reveal)",
		Args:    exactArgs(1, "SCOPE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, raw := capture(cmd.Context())
			list, err := c.ListVars(ctx, args[0], reveal)
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return a.printJSON(*raw, nil)
			}
			return a.varsTable(list.Items)
		},
	}
	cmd.Flags().BoolVar(&reveal, "reveal", false, "show secrets' values (needs the reveal permission)")
	return cmd
}

// varsTable shows vars for people: a secret shows its masked value unless
// the read revealed it.
func (a *app) varsTable(vars []client.Var) error {
	t := newTable(a.stdout, "NAME", "VALUE", "SECRET", "VERSION", "UPDATED", "BY", "DESCRIPTION")
	for _, v := range vars {
		t.row(v.Name, shownValue(v.Value, v.MaskedValue), yesNo(v.Secret), strconv.FormatInt(v.Version, 10),
			fmtTime(v.UpdatedAt), orDash(v.UpdatedBy), orDash(v.Description))
	}
	return t.flush()
}

func (a *app) newVarsGetCmd() *cobra.Command {
	var reveal bool
	cmd := &cobra.Command{
		Use:   "get SCOPE NAME",
		Short: "Print one var's value (a secret's masked value unless --reveal)",
		Long: "Print one var's value, alone, so that $(envy vars get S NAME --reveal) is the value.\n" +
			"A secret shows its masked value unless --reveal is given. -o json prints the\n" +
			"whole var.",
		Args: exactArgs(2, "SCOPE NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, raw := capture(cmd.Context())
			v, err := c.GetVar(ctx, args[0], args[1], reveal)
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return a.printJSON(*raw, nil)
			}
			if v.Value == nil && v.Secret {
				a.notef("%s is secret: this is its masked value (add --reveal for the value)\n", v.Name)
			}
			return a.printValue(shownValue(v.Value, v.MaskedValue))
		},
	}
	cmd.Flags().BoolVar(&reveal, "reveal", false, "show a secret's value (needs the reveal permission)")
	return cmd
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
		secret      bool
		description string
		fromFile    string
		ifMatch     int64
	)
	cmd := &cobra.Command{
		Use:   "set SCOPE NAME [VALUE|-]",
		Short: "Create or update one var",
		Long: "Create or update one var. Without VALUE, or with -, the value is read from stdin\n" +
			"(a prompt without echo on a terminal; from a pipe, all of it less one trailing\n" +
			"newline); --from-file PATH takes a file's content exactly. Both keep the value\n" +
			"out of your shell history. --secret marks it secret; without --secret or\n" +
			"--description an existing var keeps its flag and description.",
		Example: "  envy vars set acme/web PORT 8080\n" +
			"  envy vars set acme/web API_KEY --secret          # prompts for the value\n" +
			"  pass show api-key | envy vars set acme/web API_KEY - --secret\n" +
			"  envy vars set acme/web TLS_KEY --secret --from-file key.pem",
		Args: rangeArgs(2, 3, "SCOPE NAME [VALUE]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			scope, name := args[0], args[1]
			var (
				value string
				err   error
			)
			switch {
			case fromFile != "" && len(args) == 3:
				return usageErrorf("give the value as an argument or with --from-file, not both")
			case fromFile != "":
				value, err = a.readFileValue(cmd.Context(), fromFile)
			case len(args) == 3 && args[2] != "-":
				value = args[2]
			default:
				value, err = a.readStdinValue(cmd.Context(), "Value for "+name+": ", true)
			}
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			in := client.VarInput{Value: &value}
			if cmd.Flags().Changed("secret") {
				in.Secret = &secret
			}
			if cmd.Flags().Changed("description") {
				in.Description = &description
			}
			ctx, raw := capture(cmd.Context())
			res, err := c.SetVar(ctx, scope, name, in, writeOpts(ifMatch)...)
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return a.printJSON(*raw, nil)
			}
			verb := "updated"
			if res.Created {
				verb = "created"
			}
			a.printf("%s %s in %s: version %d, revision %d (%s)\n", verb, res.Name, scope, res.Version, res.Revision, syncedNote(res.Synced))
			return nil
		},
	}
	cmd.Flags().BoolVar(&secret, "secret", false, "mark the var secret (reads show it masked)")
	cmd.Flags().StringVar(&description, "description", "", "what the var is for")
	cmd.Flags().StringVar(&fromFile, "from-file", "", "read the value from this file, exactly (- for stdin)")
	addIfMatch(cmd, &ifMatch)
	return cmd
}

func (a *app) newVarsUnsetCmd() *cobra.Command {
	var ifMatch int64
	cmd := &cobra.Command{
		Use:     "unset SCOPE NAME...",
		Aliases: []string{"rm"},
		Short:   "Delete vars (several names: one revision)",
		Args:    minArgs(2, "SCOPE NAME..."),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.unset(cmd, args[0], args[1:], ifMatch)
		},
	}
	addIfMatch(cmd, &ifMatch)
	return cmd
}

// unset deletes names from scope: one DELETE for one name, one bulk PATCH
// (one revision) for several.
func (a *app) unset(cmd *cobra.Command, scope string, names []string, ifMatch int64) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	ctx, raw := capture(cmd.Context())
	var res *client.WriteResult
	if len(names) == 1 {
		res, err = c.DeleteVar(ctx, scope, names[0], writeOpts(ifMatch)...)
	} else {
		changes := make(map[string]*client.VarInput, len(names))
		for _, n := range names {
			changes[n] = nil
		}
		res, err = c.MergeVars(ctx, scope, changes, writeOpts(ifMatch)...)
	}
	if err != nil {
		return err
	}
	if a.jsonOut() {
		return a.printJSON(*raw, map[string]any{"scope": scope, "revision": res.Revision})
	}
	if len(names) == 1 {
		a.printf("deleted %s from %s (revision %d)\n", names[0], scope, res.Revision)
	} else {
		a.printf("deleted %d vars from %s (revision %d)\n", len(names), scope, res.Revision)
	}
	return nil
}
