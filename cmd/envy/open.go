package main

import (
	"os/exec"
	"runtime"

	"github.com/spf13/cobra"
)

func (a *app) newOpenCmd() *cobra.Command {
	var printOnly bool
	cmd := &cobra.Command{
		Use:   "open [SCOPE]",
		Short: "Print the dashboard page of a scope, and open it in a browser on a terminal",
		Long: "Print the address of the scope's page on the server's dashboard (the\n" +
			"default scope without SCOPE), after checking that the scope exists. When\n" +
			"stdout is a terminal it also opens the page in a browser ($BROWSER, else\n" +
			"xdg-open, or open on macOS), unless --print.",
		Example: "  envy open acme/web/prod\n" +
			"  envy open --print",
		Args: rangeArgs(0, 1, "[SCOPE]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			args, c, err := a.scopeClient(cmd, args, len(args) == 0)
			if err != nil {
				return err
			}
			if _, err := c.GetScope(cmd.Context(), args[0]); err != nil {
				return err
			}
			page := c.DashboardURL(args[0])
			if a.jsonOut() {
				return a.printJSON(nil, map[string]string{"scope": args[0], "url": page})
			}
			a.printf("%s\n", page)
			if printOnly || !isTerminal(a.stdout) {
				return nil
			}
			if err := startBrowser(a.getenv("BROWSER"), page); err != nil {
				a.notef("envy: could not open a browser (%v): open the address above yourself\n", err)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&printOnly, "print", false, "only print the address, even on a terminal")
	return cmd
}

// startBrowser starts a browser on page and does not wait for it.
func startBrowser(browser, page string) error {
	name := browser
	switch {
	case name != "":
	case runtime.GOOS == "darwin":
		name = "open"
	default:
		name = "xdg-open"
	}
	b := exec.Command(name, page)
	b.Stdout, b.Stderr = nil, nil
	if err := b.Start(); err != nil {
		return err
	}
	go b.Wait() // reap it; envy exits soon anyway
	return nil
}
