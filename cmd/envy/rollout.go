package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/envy-dev/envy/client"
)

// newScopesUpdateCmd is `envy scopes update`: a scope's rollout policy.
func (a *app) newScopesUpdateCmd() *cobra.Command {
	var (
		maxUnavailable    string
		healthTimeout     time.Duration
		debounce          time.Duration
		noRollout         bool
		ifMatch           int64
		description       string
		changedAnyRollout bool
	)
	cmd := &cobra.Command{
		Use:   "update SCOPE",
		Short: "Update a scope: its description, or its rollout policy",
		Long: "Update an existing scope. The rollout policy makes the instances of the\n" +
			"scope (envy run --watch) restart in waves when its env changes:\n" +
			"--max-unavailable N (or P%, of the live instances, rounded up) restart at\n" +
			"a time, each given --health-timeout to come back healthy (default 30s)\n" +
			"before the rollout pauses; the first restart of a change waits until no\n" +
			"newer change has come for --debounce (default 1s). Flags left out keep\n" +
			"the policy's current values. --no-rollout removes the policy: every\n" +
			"instance then restarts on its own at a change.",
		Example: "  envy scopes update acme/web/prod --max-unavailable 2 --health-timeout 30s --debounce 5s\n" +
			"  envy scopes update acme/web/prod --max-unavailable 25%\n" +
			"  envy scopes update acme/web/prod --no-rollout",
		Args: exactArgs(1, "SCOPE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			a.subject = errSubject{scope: args[0]}
			f := cmd.Flags()
			changedAnyRollout = f.Changed("max-unavailable") || f.Changed("health-timeout") || f.Changed("debounce")
			if noRollout && changedAnyRollout {
				return usageErrorf("--no-rollout removes the policy: it excludes --max-unavailable, --health-timeout and --debounce")
			}
			if !noRollout && !changedAnyRollout && !f.Changed("description") {
				return usageErrorf("nothing to update: give --max-unavailable, --health-timeout, --debounce, --no-rollout or --description")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			cur, err := c.GetScope(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			var in client.ScopeInput
			if f.Changed("description") {
				in.Description = &description
			}
			in.NoRollout = noRollout
			if changedAnyRollout {
				p := client.RolloutPolicy{}
				if cur.Rollout != nil {
					p = *cur.Rollout
				}
				if f.Changed("max-unavailable") {
					p.MaxUnavailable = client.MaxUnavailable(strings.TrimSpace(maxUnavailable))
				}
				if p.MaxUnavailable == "" {
					return usageErrorf("scope %s has no rollout policy yet: give --max-unavailable", cur.Path)
				}
				if f.Changed("health-timeout") {
					p.HealthTimeout = healthTimeout.String()
				}
				if f.Changed("debounce") {
					p.Debounce = debounce.String()
				}
				in.Rollout = &p
			}
			ctx, raw := capture(cmd.Context())
			res, err := c.PutScope(ctx, args[0], in, writeOpts(ifMatch)...)
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return a.printJSON(*raw, nil)
			}
			if res.Rollout == nil {
				a.printf("updated scope %s (revision %d): %s\n", res.Path, res.Revision, policyNote(nil))
				return nil
			}
			a.printf("updated scope %s (revision %d): rollout %s\n", res.Path, res.Revision, policyNote(res.Rollout))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&maxUnavailable, "max-unavailable", "", "how many instances restart at a time: a number, or a percentage such as 25%")
	f.DurationVar(&healthTimeout, "health-timeout", 30*time.Second, "how long a restarted instance has to come back healthy before the rollout pauses")
	f.DurationVar(&debounce, "debounce", time.Second, "wait until no newer change has come for this long before the first restart")
	f.BoolVar(&noRollout, "no-rollout", false, "remove the rollout policy")
	f.StringVar(&description, "description", "", "what the scope is for")
	addIfMatch(cmd, &ifMatch)
	return cmd
}

// policyNote describes a rollout policy in a line.
func policyNote(p *client.RolloutPolicy) string {
	if p == nil {
		return "no rollout policy (every instance restarts on its own at a change)"
	}
	return fmt.Sprintf("max_unavailable %s, health_timeout %s, debounce %s", p.MaxUnavailable, p.HealthTimeout, p.Debounce)
}

func (a *app) newRolloutCmd() *cobra.Command {
	return group("rollout", "Follow and resume the rolling restarts of a scope's instances",
		&cobra.Command{
			Use:   "resume [SCOPE]",
			Short: "Let a paused rollout go on",
			Long: "A rollout pauses when an instance does not come back healthy after its\n" +
				"restart. resume lets it go on: the instances not yet restarted are\n" +
				"granted their turn again, at most max_unavailable at a time. A newer\n" +
				"change (a write, a rollback) starts a new rollout without it.",
			Args: rangeArgs(0, 1, "[SCOPE]"),
			RunE: func(cmd *cobra.Command, args []string) error {
				args, c, err := a.scopeClient(cmd, args, len(args) == 0)
				if err != nil {
					return err
				}
				was, err := c.ResumeRollout(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if a.jsonOut() {
					return a.printJSON(nil, map[string]any{"scope": args[0], "resumed": was})
				}
				if !was {
					a.printf("the rollout of %s was not paused: nothing to resume\n", args[0])
					return nil
				}
				a.printf("resumed the rollout of %s\n", args[0])
				return nil
			},
		})
}

// printRollout prints a status's rollout, when the scope has a policy.
func (a *app) printRollout(st *client.Status) {
	r := st.Rollout
	if r == nil {
		return
	}
	switch r.State {
	case "paused":
		a.printf("rollout: paused at revision %d: %s\n", r.Revision, r.Reason)
		a.printf("  failed: %s\n", strings.Join(r.Failed, ", "))
		a.printf("  the instances not restarted yet keep their values; go on with: envy rollout resume %s\n", st.Scope)
	case "rolling":
		a.printf("rollout: rolling out revision %d, %d at a time (%s)\n", r.Revision, r.Slots, policyNote(&r.Policy))
	default:
		a.printf("rollout: done: every live instance runs the env of revision %d (%s)\n", r.Revision, policyNote(&r.Policy))
	}
	for _, l := range r.Restarting {
		a.printf("  restarting: %s to revision %d since %s (slot freed by %s at the latest)\n",
			l.Instance, l.Revision, fmtTime(l.GrantedAt), fmtTime(l.LeaseExpiresAt))
	}
}
