package main

import "github.com/spf13/cobra"

// newServerCmd returns `envy server`. The lead owns this file.
func newServerCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "server",
		Short: "Run the envy server",
		RunE: func(cmd *cobra.Command, args []string) error {
			return nil
		},
	}
}
