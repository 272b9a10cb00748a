// Command envy is the envy server, its command-line client and the runtime
// injector (`envy run`), in one binary.
//
// This file holds the root command, the global flags and the error
// handling: every error ends as one line on stderr, `envy: <message>`, with
// exit status 1, or 2 for a usage error. The client commands talk to the
// server only through the client package, never through the server's own
// packages.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/envy-dev/envy/client"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

// app is what the commands share: the standard streams, the environment
// and the global flags. Tests build one with their own streams and
// environment.
type app struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string

	root   *cobra.Command
	addr   string // --addr
	token  string // --token
	output string // -o/--output, resolved in PersistentPreRunE
}

// run runs envy with args and returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	root := a.newRootCmd()
	root.SetArgs(args)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var es *exitStatus // envy run: its command's exit status
	if errors.As(err, &es) && es.err == nil {
		return es.code
	}
	fmt.Fprintf(stderr, "envy: %s\n", oneLine(errorMessage(err)))
	if es != nil {
		return es.code
	}
	if isUsage(err) {
		return 2
	}
	return 1
}

func (a *app) newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "envy",
		Short: "envy keeps the environment variables and secrets of your workloads",
		Long: "envy keeps the environment variables and secrets of your workloads.\n\n" +
			"The client commands talk to the server at --addr (ENVY_ADDR) with --token\n" +
			"(ENVY_TOKEN); `envy login` stores both in your config directory.",
		SilenceUsage:  true,
		SilenceErrors: true,
		// Parent commands without a subcommand print their help; an
		// unknown subcommand is a usage error.
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return a.resolveGlobals()
		},
	}
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr(err) })
	root.CompletionOptions.DisableDefaultCmd = true

	pf := root.PersistentFlags()
	pf.StringVar(&a.addr, "addr", "", "server address (env ENVY_ADDR; default "+client.DefaultAddr+")")
	pf.StringVar(&a.token, "token", "", "API token (env ENVY_TOKEN)")
	pf.StringVarP(&a.output, "output", "o", "table", "output format: table or json (env ENVY_OUTPUT)")

	a.root = root
	root.AddCommand(
		newServerCmd(),
		a.newLoginCmd(),
		a.newScopesCmd(),
		a.newVarsCmd(),
		a.newSetCmd(),
		a.newUnsetCmd(),
		a.newImportCmd(),
		a.newExportCmd(),
		a.newHistoryCmd(),
		a.newRollbackCmd(),
		a.newStatusCmd(),
		a.newRunCmd(),
		a.newTokensCmd(),
		a.newAuditCmd(),
	)
	return root
}

// resolveGlobals applies ENVY_<FLAG> to the global flags that were not
// given, and checks them.
func (a *app) resolveGlobals() error {
	pf := a.root.PersistentFlags()
	if !pf.Changed("output") {
		if v := a.getenv("ENVY_OUTPUT"); v != "" {
			a.output = v
		}
	}
	switch a.output {
	case "table", "json":
	default:
		return usageErrorf("--output must be table or json, not %q", a.output)
	}
	return nil
}

// jsonOut reports whether the user asked for -o json.
func (a *app) jsonOut() bool { return a.output == "json" }

// settings returns the server address and token: a flag wins over
// ENVY_ADDR/ENVY_TOKEN, which win over the config file that `envy login`
// wrote.
func (a *app) settings() (addr, token string, err error) {
	cfg, err := loadConfig(a.configPath())
	if err != nil {
		return "", "", err
	}
	pf := a.root.PersistentFlags()
	addr = firstNonEmpty(flagIfChanged(pf, "addr", a.addr), a.getenv("ENVY_ADDR"), cfg.Addr, client.DefaultAddr)
	token = firstNonEmpty(flagIfChanged(pf, "token", a.token), a.getenv("ENVY_TOKEN"), cfg.Token)
	return addr, token, nil
}

// client returns a client for the configured server, or an error when no
// token is configured.
func (a *app) client() (*client.Client, error) {
	addr, token, err := a.settings()
	if err != nil {
		return nil, err
	}
	if token == "" {
		return nil, errors.New("no token: run `envy login`, or set ENVY_TOKEN or --token")
	}
	return client.New(addr, token, client.WithUserAgent("envy-cli")), nil
}

func flagIfChanged(fs *pflag.FlagSet, name, value string) string {
	if fs.Changed(name) {
		return value
	}
	return ""
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// Errors.

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErr(err error) error { return &usageError{err: err} }

func usageErrorf(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

func isUsage(err error) bool {
	var ue *usageError
	if errors.As(err, &ue) {
		return true
	}
	// Cobra's own: an unknown command or flag that reaches us unwrapped.
	msg := err.Error()
	return strings.HasPrefix(msg, "unknown command") || strings.HasPrefix(msg, "unknown flag") ||
		strings.HasPrefix(msg, "unknown shorthand flag") || strings.HasPrefix(msg, "invalid argument")
}

// errorMessage adds a hint to the errors that have an obvious next step.
func errorMessage(err error) string {
	var ce *client.Error
	if errors.As(err, &ce) {
		switch ce.Type {
		case client.TypeUnauthenticated:
			return ce.Error() + " (check --token, ENVY_TOKEN or the token `envy login` stored)"
		}
	}
	return err.Error()
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// Argument checks that fail as usage errors.

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("unknown command %q for %q", args[0], cmd.CommandPath())
	}
	return nil
}

func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("%s takes %s (got %s)", cmd.CommandPath(), names, countArgs(len(args)))
		}
		return nil
	}
}

func rangeArgs(lo, hi int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < lo || len(args) > hi {
			return usageErrorf("%s takes %s (got %s)", cmd.CommandPath(), names, countArgs(len(args)))
		}
		return nil
	}
}

func minArgs(lo int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < lo {
			return usageErrorf("%s takes %s (got %s)", cmd.CommandPath(), names, countArgs(len(args)))
		}
		return nil
	}
}

func countArgs(n int) string {
	if n == 1 {
		return "1 argument"
	}
	return fmt.Sprintf("%d arguments", n)
}

// group returns a parent command that only holds subcommands.
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{Use: use, Short: short, Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() }}
	c.AddCommand(subs...)
	return c
}
