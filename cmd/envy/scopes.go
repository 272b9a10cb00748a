package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/envy-dev/envy/client"
)

func (a *app) newScopesCmd() *cobra.Command {
	return group("scopes", "List, show, create and delete scopes",
		a.newScopesLsCmd(), a.newScopesGetCmd(), a.newScopesCreateCmd(), a.newScopesUpdateCmd(), a.newScopesRmCmd(), a.newScopesCopyCmd())
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
			c, err := a.pagedClient(cmd, limit)
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
			return a.flushPage(t, page.NextCursor)
		},
	}
	addPaging(cmd, "scopes", &limit, &cursor)
	return cmd
}

// checkLimit refuses a --limit outside what the server takes (1-1000),
// before any request.
func checkLimit(cmd *cobra.Command, limit int) error {
	if cmd.Flags().Changed("limit") && (limit < 1 || limit > 1000) {
		return usageErrorf("--limit must be 1-1000, not %d", limit)
	}
	return nil
}

// addPaging adds --limit and --cursor to a command that lists what, a
// page at a time.
func addPaging(cmd *cobra.Command, what string, limit *int, cursor *string) {
	cmd.Flags().IntVar(limit, "limit", 0, what+" per page, 1-1000 (default 100)")
	cmd.Flags().StringVar(cursor, "cursor", "", "the next_cursor of the previous page")
}

// pagedClient is checkLimit, then the client to ask.
func (a *app) pagedClient(cmd *cobra.Command, limit int) (*client.Client, error) {
	if err := checkLimit(cmd, limit); err != nil {
		return nil, err
	}
	return a.client()
}

// flushPage prints a page's table, then how to get the next page.
func (a *app) flushPage(t *table, next client.Cursor) error {
	if err := t.flush(); err != nil {
		return err
	}
	a.moreNote(next, "--cursor")
	return nil
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
			rows := []string{
				"path", s.Path,
				"description", orDash(s.Description),
				"inherits", orDash(strings.Join(s.Inherits, ", ")),
				"revision", strconv.FormatInt(s.Revision, 10),
				"vars", vars,
				"created", fmtTime(s.CreatedAt),
				"updated", fmtTime(s.UpdatedAt),
			}
			if s.Rollout != nil {
				rows = append(rows, "rollout", policyNote(s.Rollout))
			}
			return kvTable(a.stdout, rows...)
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
			a.subject = errSubject{scope: args[0]}
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
			cur, err := c.GetScope(cmd.Context(), args[0])
			if err != nil && !client.IsNotFound(err) {
				return err
			}
			if cur != nil && sameScope(cur, in) && ifMatch == 0 {
				// Nothing new: no write, no revision, no restart.
				if a.jsonOut() {
					return a.printJSON(nil, map[string]any{"path": cur.Path, "revision": cur.Revision, "changed": false})
				}
				a.printf("scope %s already exists with that description and inherits: nothing changed (revision %d)\n", cur.Path, cur.Revision)
				return nil
			}
			ctx, raw := capture(cmd.Context())
			res, err := c.PutScope(ctx, args[0], in, writeOpts(ifMatch)...)
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return a.printJSON(*raw, nil)
			}
			switch {
			case res.Created:
				a.printf("created scope %s (revision %d)\n", res.Path, res.Revision)
			case cur != nil && res.Revision == cur.Revision:
				a.printf("scope %s unchanged (revision %d)\n", res.Path, res.Revision)
			default:
				a.printf("updated scope %s (revision %d)\n", res.Path, res.Revision)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&description, "description", "", "what the scope is for")
	cmd.Flags().StringSliceVar(&inherits, "inherits", nil, "scopes to inherit from, comma-separated, in order")
	addIfMatch(cmd, &ifMatch)
	return cmd
}

// sameScope reports whether writing in to cur would change nothing.
func sameScope(cur *client.Scope, in client.ScopeInput) bool {
	if in.Description != nil && *in.Description != cur.Description {
		return false
	}
	if in.Inherits != nil && strings.Join(in.Inherits, "\x00") != strings.Join(cur.Inherits, "\x00") {
		return false
	}
	return true
}

func (a *app) newScopesRmCmd() *cobra.Command {
	var (
		ifMatch int64
		yes     bool
	)
	cmd := &cobra.Command{
		Use:     "rm SCOPE",
		Aliases: []string{"delete"},
		Short:   "Delete a scope and all its vars",
		Long: "Delete a scope and all its vars. It asks first on a terminal, and warns when\n" +
			"running workloads watch the scope; --yes deletes without asking (needed when\n" +
			"stdin is not a terminal).",
		Args: exactArgs(1, "SCOPE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, scope := cmd.Context(), args[0]
			c, err := a.client()
			if err != nil {
				return err
			}
			sc, err := c.GetScope(ctx, scope)
			if client.IsType(err, client.TypeForbidden) {
				sc, err = &client.Scope{Path: scope}, nil // may delete, may not read: the server decides
			}
			if client.IsNotFound(err) {
				if a.jsonOut() {
					return a.printJSON(nil, map[string]any{"scope": scope, "deleted": false})
				}
				a.printf("scope %s does not exist: nothing deleted\n", scope)
				return nil
			}
			if err != nil {
				return err
			}
			live := 0
			if st, err := c.Status(ctx, scope); err == nil {
				live = len(st.Consumers)
			}
			if live > 0 {
				a.notef("warning: %d running %s %s; deleting it leaves %s without its env on the next restart\n",
					live, plural(live, "workload watches", "workloads watch"), scope, plural(live, "it", "them"))
			}
			if !yes {
				if !isTerminal(a.stdin) {
					return usageErrorf("deleting scope %s and its %s needs --yes when stdin is not a terminal", scope, countVars(sc.VarCount))
				}
				ok, err := a.confirm(ctx, fmt.Sprintf("Delete scope %s and its %s? [y/N] ", scope, countVars(sc.VarCount)))
				if err != nil {
					return err
				}
				if !ok {
					a.printf("nothing deleted\n")
					return nil
				}
			}
			res, err := c.DeleteScope(ctx, scope, writeOpts(ifMatch)...)
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return a.printJSON(nil, map[string]any{"scope": res.Scope, "revision": res.Revision, "deleted": true})
			}
			a.printf("deleted scope %s and its %s\n", scope, countVars(sc.VarCount))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "delete without asking")
	addIfMatch(cmd, &ifMatch)
	return cmd
}

func countVars(n *int) string {
	if n == nil {
		return "vars"
	}
	return fmt.Sprintf("%d %s", *n, plural(*n, "var", "vars"))
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

// newScopesCopyCmd returns `envy scopes copy SRC DST`: SRC's own vars,
// with their values, secret flags and descriptions, written to DST as
// one revision (one bulk PATCH, like doppler configs clone).
func (a *app) newScopesCopyCmd() *cobra.Command {
	var w scopeWrite
	cmd := &cobra.Command{
		Use:   "copy SRC DST",
		Short: "Copy a scope's own vars, flags and descriptions, to another scope as one revision",
		Long: "Copy the vars of SRC (its own, not those it inherits) to DST: each value, its\n" +
			"secret flag and its description, in one change (one revision, all or nothing).\n" +
			"DST keeps the vars SRC does not have. Reading SRC's secrets needs the reveal\n" +
			"permission on it. A DST that does not exist is created only with --create, or\n" +
			"when you say yes on a terminal.",
		Example: "  envy scopes copy acme/web/prod acme/web/staging --create",
		Args:    exactArgs(2, "SRC DST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			src, dst := args[0], args[1]
			a.subject = errSubject{scope: dst, bulk: true}
			c, err := a.client()
			if err != nil {
				return err
			}
			list, err := c.ListVars(ctx, src, true)
			if err != nil {
				return fmt.Errorf("reading %s: %w", src, err)
			}
			if len(list.Items) == 0 {
				return fmt.Errorf("scope %s has no vars of its own: nothing copied", src)
			}
			changes := make(map[string]*client.VarInput, len(list.Items))
			secrets := 0
			for _, v := range list.Items {
				if v.Value == nil {
					return fmt.Errorf("the value of %s in %s did not come back (does this token have reveal on %s?): nothing copied", v.Name, src, src)
				}
				changes[v.Name] = &client.VarInput{Value: client.String(*v.Value), Secret: client.Bool(v.Secret), Description: client.String(v.Description)}
				if v.Secret {
					secrets++
				}
			}
			c, before, err := a.beginWrite(ctx, dst, w.create)
			if err != nil {
				return err
			}
			wctx, raw := capture(ctx)
			res, err := c.MergeVars(wctx, dst, changes, writeOpts(w.ifMatch)...)
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return a.printJSON(*raw, nil)
			}
			if before > 0 && res.Revision == before {
				a.nothingChanged(dst, len(changes), res.Revision)
				return nil
			}
			a.printf("copied %d %s (%d secret) from %s to %s: revision %d (%s)\n", len(changes), plural(len(changes), "var", "vars"), secrets, src, dst, res.Revision, syncedNote(res.Synced))
			return nil
		},
	}
	w.addFlags(cmd)
	return cmd
}
