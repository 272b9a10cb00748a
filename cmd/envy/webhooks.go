package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/envy-dev/envy/client"
)

func (a *app) newWebhooksCmd() *cobra.Command {
	return group("webhooks", "Send the changes of scopes to other systems, signed (admin of the scopes)",
		a.newWebhooksCreateCmd(), a.newWebhooksLsCmd(), a.newWebhooksRmCmd(), a.newWebhooksDeliveriesCmd(),
		a.newWebhooksRedeliverCmd(), a.newWebhooksTestCmd(), a.newWebhooksPauseCmd(true), a.newWebhooksPauseCmd(false),
		a.newWebhooksRotateCmd())
}

// webhookTable prints one webhook.
func (a *app) webhookTable(w client.Webhook) error {
	state := w.State
	if w.DisabledAt != nil {
		state += fmt.Sprintf(" (since %s, after %d failed deliveries in a row; resume it to enable it)", fmtTimePtr(w.DisabledAt), w.Failures)
	}
	pairs := []string{"id", w.ID, "url", w.URL, "scopes", w.Scopes, "events", strings.Join(w.Events, ","), "description", orDash(w.Description), "state", state}
	if w.RotationUntil != nil {
		pairs = append(pairs, "old secret signs until", fmtTimePtr(w.RotationUntil))
	}
	return kvTable(a.stdout, pairs...)
}

// withSecret prints a webhook with its signing secret, shown this once,
// and a note on stderr.
func (a *app) withSecret(raw []byte, h *client.WebhookSecret, err error, note string) error {
	if err != nil {
		return err
	}
	if a.jsonOut() {
		return a.printJSON(raw, nil)
	}
	if err := a.webhookTable(h.Webhook); err != nil {
		return err
	}
	a.printf("\n%s\n", h.Secret)
	a.notef("\n%s\n", note)
	return nil
}

func (a *app) newWebhooksCreateCmd() *cobra.Command {
	var (
		scopes, description string
		events              []string
	)
	cmd := &cobra.Command{
		Use:   "create URL",
		Short: "Create a webhook and print its signing secret, this once",
		Example: "  envy webhooks create https://ci.example.com/hooks/envy --scopes 'acme/web/**' --events vars.changed,scope.deleted\n" +
			"  envy webhooks create https://chat.example.com/in/42 --scopes 'acme/**' --events rollout.paused --description 'ops channel'",
		Args: exactArgs(1, "URL"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if scopes == "" {
				return usageErrorf("--scopes is required: a glob of the scopes whose changes to send, such as 'acme/web/**'")
			}
			if len(events) == 0 {
				return usageErrorf("--events is required: vars.changed, scope.changed, scope.deleted or rollout.paused (comma-separated)")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, raw := capture(cmd.Context())
			h, err := c.CreateWebhook(ctx, client.WebhookInput{URL: args[0], Scopes: scopes, Events: events, Description: description})
			return a.withSecret(*raw, h, err, "Store the signing secret now: the receiver verifies each message with it (docs/webhooks.md); it is not shown again.")
		},
	}
	cmd.Flags().StringVar(&scopes, "scopes", "", "a glob of the scopes it covers, such as 'acme/web/**' (you need admin on them)")
	cmd.Flags().StringSliceVar(&events, "events", nil, "the events to send: vars.changed, scope.changed, scope.deleted, rollout.paused")
	cmd.Flags().StringVar(&description, "description", "", "what the webhook is for")
	return cmd
}

func (a *app) newWebhooksLsCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the webhooks whose scopes you administer",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, raw := capture(cmd.Context())
			hooks, err := c.ListWebhooks(ctx)
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return a.printJSON(*raw, nil)
			}
			t := newTable(a.stdout, "ID", "URL", "SCOPES", "EVENTS", "STATE", "FAILURES", "CREATED")
			for _, h := range hooks {
				t.row(h.ID, h.URL, h.Scopes, strings.Join(h.Events, ","), h.State, strconv.Itoa(h.Failures), fmtTime(h.CreatedAt))
			}
			return t.flush()
		},
	}
}

func (a *app) newWebhooksRmCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rm ID",
		Short: "Delete a webhook and its deliveries",
		Args:  exactArgs(1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.DeleteWebhook(cmd.Context(), args[0]); err != nil {
				return err
			}
			if a.jsonOut() {
				return a.printJSON(nil, map[string]any{"id": args[0], "deleted": true})
			}
			a.printf("deleted webhook %s\n", args[0])
			return nil
		},
	}
}

func (a *app) newWebhooksDeliveriesCmd() *cobra.Command {
	var (
		limit  int
		cursor string
	)
	cmd := &cobra.Command{
		Use:   "deliveries ID",
		Short: "List a webhook's deliveries, newest first: status, attempts, response, latency, last error",
		Args:  exactArgs(1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.pagedClient(cmd, limit)
			if err != nil {
				return err
			}
			ctx, raw := capture(cmd.Context())
			page, err := c.Deliveries(ctx, args[0], cursor, limit)
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return a.printJSON(*raw, nil)
			}
			t := newTable(a.stdout, "ID", "TYPE", "SCOPE", "REVISION", "STATUS", "ATTEMPTS", "RESPONSE", "LATENCY", "NEXT", "LAST ERROR")
			for _, d := range page.Items {
				rev, code := "-", "-"
				if d.Revision > 0 {
					rev = strconv.FormatInt(d.Revision, 10)
				}
				if d.ResponseCode > 0 {
					code = strconv.Itoa(d.ResponseCode)
				}
				t.row(strconv.FormatInt(d.ID, 10), d.Type, d.Scope, rev, d.Status, strconv.Itoa(d.Attempts), code,
					fmt.Sprintf("%.0fms", d.LatencyMS), fmtTimePtr(d.NextAt), orDash(d.LastError))
			}
			return a.flushPage(t, page.NextCursor)
		},
	}
	addPaging(cmd, "deliveries", &limit, &cursor)
	return cmd
}

// queued prints a delivery just queued.
func (a *app) queued(raw []byte, hook string, d *client.Delivery, what string) error {
	if a.jsonOut() {
		return a.printJSON(raw, nil)
	}
	a.printf("queued %s as delivery %d (message %s); see envy webhooks deliveries %s\n", what, d.ID, d.MessageID, hook)
	return nil
}

func (a *app) newWebhooksRedeliverCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "redeliver ID DELIVERY",
		Short: "Send a delivery again (the same message id and body), after the webhook's queue",
		Args:  exactArgs(2, "ID DELIVERY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.ParseInt(args[1], 10, 64)
			if err != nil || n <= 0 {
				return usageErrorf("DELIVERY %q: want a delivery's id, a positive number (envy webhooks deliveries %s)", args[1], args[0])
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, raw := capture(cmd.Context())
			d, err := c.Redeliver(ctx, args[0], n)
			if err != nil {
				return err
			}
			return a.queued(*raw, args[0], d, "delivery "+args[1]+" again")
		},
	}
}

func (a *app) newWebhooksTestCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "test ID",
		Short: "Send the webhook a webhook.test message",
		Args:  exactArgs(1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, raw := capture(cmd.Context())
			d, err := c.TestWebhook(ctx, args[0])
			if err != nil {
				return err
			}
			return a.queued(*raw, args[0], d, "a webhook.test message")
		},
	}
}

func (a *app) newWebhooksPauseCmd(pause bool) *cobra.Command {
	use, short, done := "pause ID", "Stop sending a webhook's messages; they wait in its queue", "paused"
	if !pause {
		use, short, done = "resume ID", "Send a paused or disabled webhook's messages again, from the oldest waiting", "resumed"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  exactArgs(1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, raw := capture(cmd.Context())
			if _, err := c.UpdateWebhook(ctx, args[0], client.WebhookUpdate{Paused: &pause}); err != nil {
				return err
			}
			if a.jsonOut() {
				return a.printJSON(*raw, nil)
			}
			a.printf("%s webhook %s\n", done, args[0])
			return nil
		},
	}
}

func (a *app) newWebhooksRotateCmd() *cobra.Command {
	var overlap string
	cmd := &cobra.Command{
		Use:   "rotate ID",
		Short: "Make a new signing secret and print it, this once; the old one keeps signing for --overlap",
		Args:  exactArgs(1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, raw := capture(cmd.Context())
			h, err := c.UpdateWebhook(ctx, args[0], client.WebhookUpdate{RotateSecret: true, Overlap: overlap})
			return a.withSecret(*raw, h, err, "Give the receiver the new secret before the old one stops signing.")
		},
	}
	cmd.Flags().StringVar(&overlap, "overlap", "", "how long the old secret keeps signing too (default 24h; 0s: not at all)")
	return cmd
}
