package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/envy-dev/envy/client"
)

func (a *app) newSetupCmd() *cobra.Command {
	var create bool
	cmd := &cobra.Command{
		Use:   "setup [SCOPE]",
		Short: "Set the default scope of the commands run in this directory and below",
		Long: "Setup writes " + projectFileName + " in the working directory: the scope that every\n" +
			"command run in this directory or below uses when none is given (as `doppler\n" +
			"setup` and `infisical init` do). ENVY_SCOPE overrides it; a SCOPE argument or\n" +
			"--scope overrides both. Without SCOPE, setup asks for it on a terminal.\n" +
			"The scope must exist (--create creates it). The file holds no secret: commit it\n" +
			"if the whole team uses the same scope.",
		Example: "  envy setup acme/web/dev\n" +
			"  envy vars ls            # lists acme/web/dev\n" +
			"  envy run -- npm start   # runs with acme/web/dev's env",
		Args: rangeArgs(0, 1, "at most a SCOPE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var scope string
			if len(args) == 1 {
				scope = args[0]
			} else {
				if !isTerminal(a.stdin) {
					return usageErrorf("envy setup needs a SCOPE")
				}
				var err error
				if scope, err = a.promptLine(ctx, "Scope for this directory: ", false); err != nil {
					return err
				}
				if scope == "" {
					return usageErrorf("no scope typed: nothing written")
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := a.ensureScope(ctx, c, scope, create); err != nil {
				return err
			}
			wd, err := os.Getwd()
			if err != nil {
				return err
			}
			path, err := writeProject(wd, project{Scope: scope})
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return a.printJSON(nil, map[string]string{"scope": scope, "file": path})
			}
			a.printf("commands run in %s and below now use scope %s (saved in %s)\n", wd, scope, path)
			return nil
		},
	}
	cmd.Flags().BoolVar(&create, "create", false, "create the scope if it does not exist")
	return cmd
}

// ensureScope checks that a scope exists before a write would create it:
// a typo must not make a new scope silently. A missing scope is created
// with create; else a terminal is asked, and anything else is refused.
func (a *app) ensureScope(ctx context.Context, c *client.Client, scope string, create bool) error {
	_, err := c.GetScope(ctx, scope)
	if client.IsNotFound(err) {
		return a.mayCreate(ctx, scope, create)
	}
	return err
}

// mayCreate decides whether a write may create the missing scope.
func (a *app) mayCreate(ctx context.Context, scope string, create bool) error {
	if create {
		return nil
	}
	if isTerminal(a.stdin) {
		ok, err := a.confirm(ctx, fmt.Sprintf("Scope %s does not exist. Create it? [y/N] ", scope))
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		return fmt.Errorf("scope %s does not exist: nothing written", scope)
	}
	return fmt.Errorf("scope %s does not exist (or this token may not read it): check the name, or add --create to create it; nothing written", scope)
}

// confirm asks a yes/no question on the terminal; only y or yes is yes.
func (a *app) confirm(ctx context.Context, question string) (bool, error) {
	answer, err := a.promptLine(ctx, question, false)
	if err != nil {
		return false, err
	}
	switch strings.ToLower(answer) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}
