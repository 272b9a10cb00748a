package main

import (
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/envy-dev/envy/client"
)

func (a *app) newScopesCmd() *cobra.Command {
	return group("scopes", "List, show, create and delete scopes",
		a.newScopesLsCmd(), a.newScopesGetCmd(), a.newScopesCreateCmd(), a.newScopesRmCmd())
}

func (a *app) newScopesLsCmd() *cobra.Command {
	var (
		limit  int
		cursor string
	)
	cmd := &cobra.Command{
		Use:     "ls [PREFIX]",
		Aliases: []string{"list"},
		Short:   "List the scopes you may read",
		Args:    rangeArgs(0, 1, "at most a PREFIX"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			prefix := ""
			if len(args) == 1 {
				prefix = args[0]
			}
			ctx, raw := capture(cmd.Context())
			page, err := c.ListScopes(ctx, prefix, cursor, limit)
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return a.printJSON(*raw, nil)
			}
			t := newTable(a.stdout, "PATH", "REVISION", "INHERITS", "DESCRIPTION", "UPDATED")
			for _, s := range page.Items {
				t.row(s.Path, strconv.FormatInt(s.Revision, 10), orDash(strings.Join(s.Inherits, ",")),
					orDash(s.Description), fmtTime(s.UpdatedAt))
			}
			if err := t.flush(); err != nil {
				return err
			}
			a.moreNote(page.NextCursor, "--cursor")
			return nil
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 0, "scopes per page, 1-1000 (default 100)")
	cmd.Flags().StringVar(&cursor, "cursor", "", "the next_cursor of the previous page")
	return cmd
}

// moreNote tells, on stderr, how to get the next page.
func (a *app) moreNote(next client.Cursor, flag string) {
	if next != "" {
		a.notef("(more: add %s %s)\n", flag, string(next))
	}
}

func (a *app) newScopesGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get SCOPE",
		Short: "Show a scope",
		Args:  exactArgs(1, "SCOPE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, raw := capture(cmd.Context())
			s, err := c.GetScope(ctx, args[0])
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return a.printJSON(*raw, nil)
			}
			vars := "-"
			if s.VarCount != nil {
				vars = strconv.Itoa(*s.VarCount)
			}
			return kvTable(a.stdout,
				"path", s.Path,
				"description", orDash(s.Description),
				"inherits", orDash(strings.Join(s.Inherits, ", ")),
				"revision", strconv.FormatInt(s.Revision, 10),
				"vars", vars,
				"created", fmtTime(s.CreatedAt),
				"updated", fmtTime(s.UpdatedAt),
			)
		},
	}
}

func (a *app) newScopesCreateCmd() *cobra.Command {
	var (
		description string
		inherits    []string
		ifMatch     int64
	)
	cmd := &cobra.Command{
		Use:   "create SCOPE",
		Short: "Create a scope, or update its description and inherits",
		Long: "Create a scope, or update an existing one. --inherits takes the scopes whose\n" +
			"vars it inherits, in order (later ones override earlier ones, its own vars\n" +
			"override all); --inherits '' clears the list.",
		Example: "  envy scopes create acme/web/prod --description 'web, production' --inherits acme/common,acme/web",
		Args:    exactArgs(1, "SCOPE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			var in client.ScopeInput
			if cmd.Flags().Changed("description") {
				in.Description = &description
			}
			if cmd.Flags().Changed("inherits") {
				in.Inherits = []string{}
				for _, s := range inherits {
					if s = strings.TrimSpace(s); s != "" {
						in.Inherits = append(in.Inherits, s)
					}
				}
			}
			ctx, raw := capture(cmd.Context())
			res, err := c.PutScope(ctx, args[0], in, writeOpts(ifMatch)...)
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
			a.printf("%s scope %s (revision %d)\n", verb, res.Path, res.Revision)
			return nil
		},
	}
	cmd.Flags().StringVar(&description, "description", "", "what the scope is for")
	cmd.Flags().StringSliceVar(&inherits, "inherits", nil, "scopes to inherit from, comma-separated, in order")
	addIfMatch(cmd, &ifMatch)
	return cmd
}

func (a *app) newScopesRmCmd() *cobra.Command {
	var ifMatch int64
	cmd := &cobra.Command{
		Use:     "rm SCOPE",
		Aliases: []string{"delete"},
		Short:   "Delete a scope and all its vars",
		Args:    exactArgs(1, "SCOPE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			res, err := c.DeleteScope(cmd.Context(), args[0], writeOpts(ifMatch)...)
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return a.printJSON(nil, map[string]any{"scope": res.Scope, "revision": res.Revision, "deleted": true})
			}
			a.printf("deleted scope %s\n", args[0])
			return nil
		},
	}
	addIfMatch(cmd, &ifMatch)
	return cmd
}

// addIfMatch adds --if-revision: make a write conditional on the scope's
// revision (the server answers 412 when it has moved on).
func addIfMatch(cmd *cobra.Command, rev *int64) {
	cmd.Flags().Int64Var(rev, "if-revision", 0, "write only if the scope is still at this revision (If-Match)")
}

func writeOpts(ifMatch int64) []client.WriteOption {
	if ifMatch > 0 {
		return []client.WriteOption{client.WithIfMatch(ifMatch)}
	}
	return nil
}
