package main

import (
	"strings"

	"github.com/spf13/cobra"
)

// addCompletions makes the shell complete scope paths, from the server,
// for the commands that take a SCOPE first and their --scope (envy run's and
// envy audit's too), and
// var names for the NAME after it.
func (a *app) addCompletions(root *cobra.Command) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if c.Flags().Lookup("scope") != nil {
			c.RegisterFlagCompletionFunc("scope", func(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
				return a.completeScopes(cmd, toComplete), cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
			})
		}
		fields := strings.Fields(c.Use)
		if len(fields) < 2 || c.ValidArgsFunction != nil {
			return
		}
		first := strings.Trim(fields[1], "[]")
		if first != "SCOPE" {
			return
		}
		nameSecond := len(fields) > 2 && strings.HasPrefix(strings.Trim(fields[2], "[]"), "NAME")
		c.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			if cmd.Flags().Changed("scope") { // --scope/-s is the SCOPE (addScopeFlags)
				args = append([]string{a.scopeFlag}, args...)
			}
			switch {
			case len(args) == 0:
				return a.completeScopes(cmd, toComplete), cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
			case len(args) == 1 && nameSecond:
				return a.completeNames(cmd, args[0], toComplete), cobra.ShellCompDirectiveNoFileComp
			}
			return nil, cobra.ShellCompDirectiveDefault
		}
	}
	walk(root)
}

// completeScopes lists the scopes whose path starts with prefix; nothing
// when the server can't be asked.
func (a *app) completeScopes(cmd *cobra.Command, prefix string) []string {
	if a.resolveGlobals() != nil {
		return nil
	}
	c, err := a.client()
	if err != nil {
		return nil
	}
	page, err := c.ListScopes(cmd.Context(), prefix, "", 1000)
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(page.Items))
	for _, s := range page.Items {
		out = append(out, s.Path)
	}
	return out
}

// completeNames lists the names of a scope's own vars that start with
// prefix.
func (a *app) completeNames(cmd *cobra.Command, scope, prefix string) []string {
	c, err := a.client()
	if err != nil {
		return nil
	}
	list, err := c.ListVars(cmd.Context(), scope, false)
	if err != nil {
		return nil
	}
	var out []string
	for _, v := range list.Items {
		if strings.HasPrefix(v.Name, prefix) {
			out = append(out, v.Name)
		}
	}
	return out
}
