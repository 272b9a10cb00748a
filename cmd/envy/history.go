package main

import (
	"strconv"

	"github.com/spf13/cobra"
)

func (a *app) newHistoryCmd() *cobra.Command {
	var (
		limit  int
		before int64
		cursor string
	)
	cmd := &cobra.Command{
		Use:   "history SCOPE",
		Short: "Show a scope's changes, newest first",
		Args:  exactArgs(1, "SCOPE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, raw := capture(cmd.Context())
			page, err := c.HistoryPage(ctx, args[0], before, cursor, limit)
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return a.printJSON(*raw, nil)
			}
			t := newTable(a.stdout, "REVISION", "NAME", "OP", "VERSION", "VALUE", "ACTOR", "AT")
			for _, ch := range page.Items {
				value := "-"
				if ch.Op != "delete" {
					value = shownValue(ch.Value, ch.MaskedValue)
				}
				t.row(strconv.FormatInt(ch.Revision, 10), ch.Name, ch.Op, strconv.FormatInt(ch.Version, 10),
					value, orDash(ch.Actor), fmtTime(ch.At))
			}
			if err := t.flush(); err != nil {
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

func (a *app) newRollbackCmd() *cobra.Command {
	var ifMatch int64
	cmd := &cobra.Command{
		Use:   "rollback SCOPE REVISION",
		Short: "Make a new revision whose vars equal those at REVISION",
		Args:  exactArgs(2, "SCOPE REVISION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			rev, err := strconv.ParseInt(args[1], 10, 64)
			if err != nil || rev < 1 {
				return usageErrorf("REVISION must be a positive number, not %q", args[1])
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, raw := capture(cmd.Context())
			res, err := c.Rollback(ctx, args[0], rev, writeOpts(ifMatch)...)
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return a.printJSON(*raw, nil)
			}
			a.printf("rolled %s back to revision %d: now revision %d (%s)\n", args[0], rev, res.Revision, syncedNote(res.Synced))
			return nil
		},
	}
	addIfMatch(cmd, &ifMatch)
	return cmd
}

func (a *app) newStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status SCOPE",
		Short: "Show whether running workloads have a scope's newest revision",
		Args:  exactArgs(1, "SCOPE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
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
			if len(st.Consumers) == 0 {
				return nil
			}
			t := newTable(a.stdout, "CONSUMER", "HOSTNAME", "PID", "REVISION", "BEHIND", "SEEN")
			for _, co := range st.Consumers {
				t.row(co.ID, orDash(co.Hostname), strconv.Itoa(co.PID), strconv.FormatInt(co.Revision, 10),
					yesNo(co.Behind), fmtTime(co.SeenAt))
			}
			return t.flush()
		},
	}
}
