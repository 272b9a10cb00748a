package main

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/client"
)

func (a *app) newTokensCmd() *cobra.Command {
	return group("tokens", "Create, list and revoke API tokens (admin)",
		a.newTokensCreateCmd(), a.newTokensLsCmd(), a.newTokensRevokeCmd())
}

var actions = map[string]bool{"read": true, "write": true, "reveal": true, "admin": true}

// parseGrant reads 'GLOB=ACTION,ACTION', such as 'acme/**=read,write'.
func parseGrant(s string) (client.Permission, error) {
	glob, acts, ok := strings.Cut(s, "=")
	glob = strings.TrimSpace(glob)
	if !ok || glob == "" || strings.TrimSpace(acts) == "" {
		return client.Permission{}, usageErrorf("--grant %q: want SCOPES=ACTIONS, such as 'acme/**=read,write'", s)
	}
	p := client.Permission{Scopes: glob}
	for _, act := range strings.Split(acts, ",") {
		act = strings.ToLower(strings.TrimSpace(act))
		if !actions[act] {
			return client.Permission{}, usageErrorf("--grant %q: unknown action %q (want read, write, reveal or admin)", s, act)
		}
		if slices.Contains(p.Actions, act) {
			return client.Permission{}, usageErrorf("--grant %q: action %q is given twice", s, act)
		}
		p.Actions = append(p.Actions, act)
	}
	return p, nil
}

func permissionsText(ps []client.Permission) string {
	parts := make([]string, 0, len(ps))
	for _, p := range ps {
		parts = append(parts, p.Scopes+"="+strings.Join(p.Actions, ","))
	}
	return orDash(strings.Join(parts, " "))
}

func (a *app) newTokensCreateCmd() *cobra.Command {
	var (
		grants    []string
		owner     string
		expiresIn string
		expiresAt string
	)
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a token and print it, this once",
		Example: "  envy tokens create ci-deploy --grant 'acme/**=read,write' --expires-in 720h\n" +
			"  envy tokens create web-prod --grant 'acme/web/prod=read,reveal' --owner team-web",
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(grants) > envy.MaxGrants {
				return usageErrorf("at most %d --grant flags: a glob such as 'acme/**' covers many scopes", envy.MaxGrants)
			}
			in := client.TokenInput{Name: args[0], Owner: owner, Permissions: []client.Permission{}}
			for _, g := range grants {
				p, err := parseGrant(g)
				if err != nil {
					return err
				}
				in.Permissions = append(in.Permissions, p)
			}
			if expiresIn != "" && expiresAt != "" {
				return usageErrorf("give --expires-in or --expires-at, not both")
			}
			if expiresIn != "" {
				if _, err := time.ParseDuration(expiresIn); err != nil {
					return usageErrorf("--expires-in %q: want a duration such as 12h or 30m", expiresIn)
				}
				in.ExpiresIn = expiresIn
			}
			if expiresAt != "" {
				t, err := time.Parse(time.RFC3339, expiresAt)
				if err != nil {
					return usageErrorf("--expires-at %q: want an RFC 3339 time such as 2030-01-02T15:04:05Z", expiresAt)
				}
				in.ExpiresAt = &t
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, raw := capture(cmd.Context())
			tok, err := c.CreateToken(ctx, in)
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return a.printJSON(*raw, nil)
			}
			if err := kvTable(a.stdout,
				"id", tok.ID,
				"name", tok.Name,
				"owner", tok.Owner,
				"permissions", permissionsText(tok.Permissions),
				"expires", fmtTimePtr(tok.ExpiresAt),
			); err != nil {
				return err
			}
			// The user asked for this token: it is shown here, and only here.
			a.printf("\n%s\n", tok.Token)
			a.notef("\nStore the token now: the server keeps only its hash and cannot show it again.\n")
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&grants, "grant", nil, fmt.Sprintf("a permission, SCOPES=ACTIONS such as 'acme/**=read,write' (repeatable, at most %d)", envy.MaxGrants))
	cmd.Flags().StringVar(&owner, "owner", "", "who the token belongs to (default: its name)")
	cmd.Flags().StringVar(&expiresIn, "expires-in", "", "expire after this long, such as 12h")
	cmd.Flags().StringVar(&expiresAt, "expires-at", "", "expire at this RFC 3339 time")
	return cmd
}

func (a *app) newTokensLsCmd() *cobra.Command {
	var (
		limit  int
		cursor string
	)
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List tokens, by name, then by creation (all of them unless --limit or --cursor)",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.pagedClient(cmd, limit)
			if err != nil {
				return err
			}
			ctx, raw := capture(cmd.Context())
			page, err := c.ListTokens(ctx, cursor, limit)
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return a.printJSON(*raw, nil)
			}
			// Without --limit or --cursor, the table holds every token, so
			// that the order by name holds across pages.
			for cursor == "" && limit == 0 && page.NextCursor != "" {
				next, err := c.ListTokens(cmd.Context(), string(page.NextCursor), 1000)
				if err != nil {
					return err
				}
				page.Items, page.NextCursor = append(page.Items, next.Items...), next.NextCursor
			}
			sort.SliceStable(page.Items, func(i, j int) bool {
				x, y := page.Items[i], page.Items[j]
				if x.Name != y.Name {
					return x.Name < y.Name
				}
				return x.CreatedAt.Before(y.CreatedAt)
			})
			t := newTable(a.stdout, "ID", "NAME", "OWNER", "PERMISSIONS", "EXPIRES", "REVOKED", "CREATED")
			for _, tok := range page.Items {
				t.row(tok.ID, tok.Name, tok.Owner, permissionsText(tok.Permissions),
					fmtTimePtr(tok.ExpiresAt), fmtTimePtr(tok.RevokedAt), fmtTime(tok.CreatedAt))
			}
			return a.flushPage(t, page.NextCursor)
		},
	}
	addPaging(cmd, "tokens", &limit, &cursor)
	return cmd
}

func (a *app) newTokensRevokeCmd() *cobra.Command {
	var force, yes bool
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token and every token it minted, at once",
		Long: `Revoke a token and every live token it minted, transitively, at once.

Revoking the last live token with admin on ** (counting the tokens it
minted) is refused: nobody could administer the server afterwards.
--force revokes it anyway; ` + "`envy server admin-token`" + ` on the server's host
mints a new one. When the revocation ends more than one token it asks
first on a terminal; --yes skips the question and is needed off one.`,
		Args: exactArgs(1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, id := cmd.Context(), args[0]
			if !yes {
				plan, err := c.RevokeToken(ctx, id, client.RevokeOptions{Force: force, DryRun: true})
				if err != nil {
					return err
				}
				if plan.Revoked > 1 {
					what := fmt.Sprintf("token %s and the %d %s it minted (%d tokens)", id, plan.Revoked-1, plural(plan.Revoked-1, "token", "tokens"), plan.Revoked)
					if !isTerminal(a.stdin) {
						return usageErrorf("revoking %s needs --yes when stdin is not a terminal; nothing revoked", what)
					}
					ok, err := a.confirm(ctx, "Revoke "+what+"? [y/N] ")
					if err != nil {
						return err
					}
					if !ok {
						a.printf("nothing revoked\n")
						return nil
					}
				}
			}
			res, err := c.RevokeToken(ctx, id, client.RevokeOptions{Force: force})
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return a.printJSON(nil, res)
			}
			switch res.Revoked {
			case 0:
				a.printf("token %s was already revoked or expired: nothing revoked\n", id)
			case 1:
				a.printf("revoked token %s (1 token)\n", id)
			default:
				a.printf("revoked token %s and the %d %s it minted (%d tokens)\n", id, res.Revoked-1, plural(res.Revoked-1, "token", "tokens"), res.Revoked)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "revoke even the last live token with admin on ** (recover with `envy server admin-token`)")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "revoke without asking, however many tokens it ends")
	return cmd
}

// parseSince reads --since: a duration back from now (24h), an RFC 3339
// time, or a date (2006-01-02, local midnight).
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			d = -d
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02", s, time.Local); err == nil {
		return t, nil
	}
	return time.Time{}, usageErrorf("--since %q: want a duration (24h), a date (2006-01-02) or an RFC 3339 time", s)
}

func (a *app) newAuditCmd() *cobra.Command {
	var (
		scope, actor, since, cursor string
		limit                       int
	)
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Show the audit log (admin), newest first",
		Example: "  envy audit --scope acme/web/prod --since 24h\n" +
			"  envy audit --actor ci-deploy --limit 20",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkLimit(cmd, limit); err != nil {
				return err
			}
			q := client.AuditQuery{Scope: scope, Actor: actor, Limit: limit, Cursor: cursor}
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return err
				}
				q.Since = t
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, raw := capture(cmd.Context())
			page, err := c.Audit(ctx, q)
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return a.printJSON(*raw, nil)
			}
			t := newTable(a.stdout, "AT", "ACTOR", "ACTION", "SCOPE", "NAMES", "STATUS", "REVISION", "CLIENT", "COUNT", "LAST")
			for _, e := range page.Items {
				rev := "-"
				if e.Revision > 0 {
					rev = fmt.Sprint(e.Revision)
				}
				// An entry of several requests (coalesced reveals,
				// aggregated refusals) shows how many and when the last
				// came; AT is the first.
				last := "-"
				if e.Count > 1 {
					last = fmtTime(e.LastAt)
				}
				t.row(fmtTime(e.At), actorCell(e.Actor, e.TokenID), e.Action, orDash(e.Scope), orDash(strings.Join(e.Names, ",")),
					fmt.Sprint(e.Status), rev, orDash(e.Client), fmt.Sprint(max(e.Count, 1)), last)
			}
			return a.flushPage(t, page.NextCursor)
		},
	}
	cmd.Flags().StringVarP(&scope, "scope", "s", "", "only this scope")
	cmd.Flags().StringVar(&actor, "actor", "", "only this actor (token name)")
	cmd.Flags().StringVar(&since, "since", "", "only entries since: 24h, 2006-01-02 or an RFC 3339 time")
	addPaging(cmd, "entries", &limit, &cursor)
	return cmd
}

// actorCell shows an actor's name with the first 8 characters of its
// token's id, so that two tokens of one name are told apart.
func actorCell(name string, tokenID *string) string {
	if tokenID == nil || *tokenID == "" {
		return orDash(name)
	}
	id := *tokenID
	if len(id) > 8 {
		id = id[:8]
	}
	return orDash(name) + " (" + id + ")"
}
