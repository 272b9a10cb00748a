package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/envy-dev/envy/client"
)

func (a *app) newHistoryCmd() *cobra.Command {
	var (
		limit  int
		before int64
		cursor string
	)
	cmd := &cobra.Command{
		Use:   "history [SCOPE [NAME]]",
		Short: "Show a scope's changes, or one var's, newest first",
		Long: "Show a scope's changes, newest first; with NAME, only that var's. Without\n" +
			"SCOPE, the default scope (ENVY_SCOPE, or `envy setup`).",
		Example: "  envy history acme/web/prod\n" +
			"  envy history acme/web/prod STRIPE_KEY",
		Args: rangeArgs(0, 2, "[SCOPE [NAME]]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkLimit(cmd, limit); err != nil {
				return err
			}
			args, c, err := a.scopeClient(cmd, args, len(args) == 0)
			if err != nil {
				return err
			}
			if len(args) == 2 {
				return a.varHistory(cmd.Context(), c, args[0], args[1], before, cursor, limit)
			}
			ctx, raw := capture(cmd.Context())
			page, err := c.HistoryPage(ctx, args[0], before, cursor, limit)
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return a.printJSON(*raw, nil)
			}
			if err := a.historyTable(page.Items); err != nil {
				return err
			}
			a.moreNote(page.NextCursor, "--cursor")
			return nil
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 0, "changes per page, 1-1000 (default 100)")
	cmd.Flags().Int64Var(&before, "before", 0, "only changes before this revision")
	cmd.Flags().StringVar(&cursor, "cursor", "", "resume after the page that printed this cursor")
	return cmd
}

func (a *app) historyTable(items []client.Change) error {
	t := newTable(a.stdout, "REVISION", "NAME", "OP", "VERSION", "VALUE", "ACTOR", "AT")
	for _, ch := range items {
		value := "-"
		if ch.Op != "delete" {
			value = shownValue(ch.Value, ch.MaskedValue)
		}
		t.row(strconv.FormatInt(ch.Revision, 10), ch.Name, ch.Op, strconv.FormatInt(ch.Version, 10),
			value, actorCell(ch.Actor, &ch.ActorToken), fmtTime(ch.At))
	}
	return t.flush()
}

// varHistory shows the changes of one var: it reads the scope's history
// page by page and keeps that var's, up to limit (default 100).
func (a *app) varHistory(ctx context.Context, c *client.Client, scope, name string, before int64, cursor string, limit int) error {
	if limit == 0 {
		limit = 100
	}
	var items []client.Change
	next := client.Cursor(cursor)
	for {
		page, err := c.HistoryPage(ctx, scope, before, string(next), 1000)
		if err != nil {
			return err
		}
		for _, ch := range page.Items {
			if ch.Name == name && len(items) < limit {
				items = append(items, ch)
			}
		}
		next = page.NextCursor
		if next == "" || len(items) >= limit {
			break
		}
	}
	if a.jsonOut() {
		return a.printJSON(nil, map[string]any{"scope": scope, "name": name, "items": items})
	}
	if len(items) == 0 {
		a.notef("%s has no changes of %s\n", scope, name)
		return nil
	}
	return a.historyTable(items)
}

// fullHistory reads all of a scope's history, newest first.
func fullHistory(ctx context.Context, c *client.Client, scope string) ([]client.Change, error) {
	var all []client.Change
	next := client.Cursor("")
	for {
		page, err := c.HistoryPage(ctx, scope, 0, string(next), 1000)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		if next = page.NextCursor; next == "" {
			return all, nil
		}
	}
}

// rollbackPlan is what a rollback changes: names added back, removed and
// changed.
type rollbackPlan struct {
	Added   []string `json:"added"`
	Removed []string `json:"removed"`
	Changed []string `json:"changed"`
}

func (p rollbackPlan) empty() bool { return len(p.Added)+len(p.Removed)+len(p.Changed) == 0 }

// planRollback computes, from the scope's history and its vars now, what a
// rollback to rev changes. It refuses a revision before the scope's first
// change: rolling back to it would empty the scope.
func planRollback(ctx context.Context, c *client.Client, scope string, rev int64) (rollbackPlan, int64, error) {
	var plan rollbackPlan
	list, err := c.ListVars(ctx, scope, false)
	if err != nil {
		return plan, 0, err
	}
	if rev > list.Revision {
		// Later revisions of the store may exist; none of them touched
		// this scope, whose vars are then those it has now. One that no
		// scope has reached does not exist (yet): refused.
		newest, err := newestRevision(ctx, c)
		if err != nil {
			return plan, 0, err
		}
		if rev > newest {
			return plan, 0, fmt.Errorf("revision %d does not exist: the newest revision this token can see is %d (see `envy history %s`); nothing rolled back", rev, newest, scope)
		}
		rev = list.Revision
	}
	hist, err := fullHistory(ctx, c, scope)
	if err != nil {
		return plan, 0, err
	}
	if len(hist) > 0 {
		if first := hist[len(hist)-1].Revision; rev < first {
			return plan, 0, fmt.Errorf("scope %s did not exist at revision %d: its first change is revision %d; rolling back to before it would delete every var (use `envy unset` or `envy scopes rm` for that)", scope, rev, first)
		}
	}
	// The state at rev: each name's newest change at or before rev.
	type state struct {
		version int64
		value   *string
	}
	then := map[string]state{}
	done := map[string]bool{}
	for _, ch := range hist { // newest first
		if ch.Revision > rev || done[ch.Name] {
			continue
		}
		done[ch.Name] = true
		if ch.Op != "delete" {
			then[ch.Name] = state{ch.Version, ch.Value}
		}
	}
	now := map[string]client.Var{}
	for _, v := range list.Items {
		now[v.Name] = v
	}
	for name, st := range then {
		v, ok := now[name]
		switch {
		case !ok:
			plan.Added = append(plan.Added, name)
		case v.Version != st.version && !(v.Value != nil && st.value != nil && *v.Value == *st.value):
			plan.Changed = append(plan.Changed, name)
		}
	}
	for name := range now {
		if _, ok := then[name]; !ok {
			plan.Removed = append(plan.Removed, name)
		}
	}
	sort.Strings(plan.Added)
	sort.Strings(plan.Removed)
	sort.Strings(plan.Changed)
	return plan, list.Revision, nil
}

func (a *app) newRollbackCmd() *cobra.Command {
	var (
		ifMatch int64
		dryRun  bool
	)
	cmd := &cobra.Command{
		Use:   "rollback [SCOPE] REVISION",
		Short: "Make a new revision whose vars equal those at REVISION",
		Long: "Rollback makes a new revision whose vars equal those the scope had at\n" +
			"REVISION, and prints what it changes: the vars it adds back, removes and\n" +
			"changes. --dry-run prints that without changing anything. A revision before\n" +
			"the scope's first change is refused.",
		Example: "  envy rollback acme/web/prod 12 --dry-run\n" +
			"  envy rollback acme/web/prod 12",
		Args: rangeArgs(1, 2, "[SCOPE] REVISION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			args, err := a.scopeFirst(cmd, args, len(args) == 1)
			if err != nil {
				return err
			}
			scope := args[0]
			rev, err := strconv.ParseInt(args[1], 10, 64)
			if err != nil || rev < 1 {
				return usageErrorf("REVISION must be a positive number, not %q", args[1])
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			plan, current, err := planRollback(cmd.Context(), c, scope, rev)
			if err != nil {
				return err
			}
			if dryRun || plan.empty() {
				if a.jsonOut() {
					return a.printJSON(nil, map[string]any{"scope": scope, "revision": current, "to": rev, "dry_run": dryRun, "added": plan.Added, "removed": plan.Removed, "changed": plan.Changed})
				}
				if plan.empty() {
					a.printf("%s already has the vars it had at revision %d: nothing to roll back (revision %d)\n", scope, rev, current)
					return nil
				}
				a.printf("rolling %s back to revision %d would:\n", scope, rev)
				a.printPlan(plan)
				a.printf("(dry run: nothing changed)\n")
				return nil
			}
			// The plan holds only while the scope stays at the revision it
			// was computed from: the write is conditional on it.
			if ifMatch == 0 {
				ifMatch = current
			}
			ctx, raw := capture(cmd.Context())
			res, err := c.Rollback(ctx, scope, rev, writeOpts(ifMatch)...)
			if client.IsType(err, client.TypePrecondition) {
				return fmt.Errorf("%s changed while the rollback was planned: nothing rolled back; run it again", scope)
			}
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return a.printJSON(*raw, nil)
			}
			a.printf("rolled %s back to revision %d: now revision %d (%s)\n", scope, rev, res.Revision, syncedNote(res.Synced, res.Behind...))
			a.printPlan(plan)
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what the rollback would change, and change nothing")
	addIfMatch(cmd, &ifMatch)
	return cmd
}

func (a *app) printPlan(p rollbackPlan) {
	for _, l := range []struct {
		what  string
		names []string
	}{{"added", p.Added}, {"removed", p.Removed}, {"changed", p.Changed}} {
		if len(l.names) > 0 {
			a.printf("  %-8s %s\n", l.what+":", strings.Join(l.names, ", "))
		}
	}
}

func (a *app) newStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status [SCOPE]",
		Short: "Show whether running workloads have a scope's newest revision",
		Args:  rangeArgs(0, 1, "[SCOPE]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			args, c, err := a.scopeClient(cmd, args, len(args) == 0)
			if err != nil {
				return err
			}
			ctx, raw := capture(cmd.Context())
			st, err := c.Status(ctx, args[0])
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return a.printJSON(*raw, nil)
			}
			a.printf("%s at revision %d: %s\n", st.Scope, st.Revision, syncedNote(st.Synced))
			a.printRollout(st)
			if len(st.Consumers) == 0 {
				return nil
			}
			t := newTable(a.stdout, "CONSUMER", "HOSTNAME", "PID", "REVISION", "BEHIND", "SEEN")
			for _, co := range st.Consumers {
				t.row(co.ID, orDash(co.Hostname), strconv.Itoa(co.PID), strconv.FormatInt(co.Revision, 10),
					yesNo(co.Behind), fmtTime(co.SeenAt))
			}
			if err := t.flush(); err != nil {
				return err
			}
			// A workload on its fallback copy runs with values saved
			// earlier, not ones envy gave it: worth a line of its own.
			for _, co := range st.Consumers {
				if co.OnFallbackSince != nil {
					a.printf("%s: on fallback since %s (it runs with its saved copy: envy was unreachable when it started)\n", co.ID, fmtTime(*co.OnFallbackSince))
				}
			}
			return nil
		},
	}
}

// newestRevision is the largest revision of the scopes the token can list.
func newestRevision(ctx context.Context, c *client.Client) (int64, error) {
	var newest int64
	cursor := ""
	for {
		page, err := c.ListScopes(ctx, "", cursor, 1000)
		if err != nil {
			return 0, err
		}
		for _, sc := range page.Items {
			newest = max(newest, sc.Revision)
		}
		if page.NextCursor == "" {
			return newest, nil
		}
		cursor = string(page.NextCursor)
	}
}
