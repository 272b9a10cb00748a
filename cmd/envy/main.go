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
	"regexp"
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

	root       *cobra.Command
	addr       string     // --addr
	token      string     // --token
	tokenFile  string     // --token-file
	caFile     string     // --ca-file
	output     string     // -o/--output, resolved in PersistentPreRunE
	warned     bool       // the plain-HTTP warning was given
	subject    errSubject // what the command writes, for its errors (errspeak.go)
	allowEmpty bool       // vars set --allow-empty: --from-file may be an empty file
	scopeFlag  string     // --scope/-s of a command that takes a SCOPE (addScopeFlags)
}

// run runs envy with args and returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	root := a.newRootCmd()
	root.SetArgs(args)
	if c, rest, err := root.Find(args); err == nil && c.CommandPath() == "envy vars set" {
		c.InitDefaultHelpFlag() // so that -h counts among its flags
		if err := checkDashValue(c, rest); err != nil {
			fmt.Fprintf(stderr, "envy: %s\n", err)
			return 2
		}
	}
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
	fmt.Fprintf(stderr, "envy: %s\n", oneLine(a.speakCLI(err)))
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
			"(ENVY_TOKEN) or --token-file (ENVY_TOKEN_FILE); `envy login` stores an address\n" +
			"and a token in your config directory. A command that takes a SCOPE first uses\n" +
			"the default scope when it is left out: ENVY_SCOPE, or the one `envy setup`\n" +
			"saved for the working directory.",
		SilenceUsage:  true,
		SilenceErrors: true,
		// Parent commands without a subcommand print their help; an
		// unknown subcommand is a usage error.
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return a.resolveGlobals()
		},
		Version: versionLine(),
	}
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr(flagError(err)) })
	root.SetVersionTemplate("{{.Version}}\n")
	root.CompletionOptions.HiddenDefaultCmd = false

	pf := root.PersistentFlags()
	pf.StringVar(&a.addr, "addr", "", "server address (env ENVY_ADDR; default "+client.DefaultAddr+")")
	pf.StringVar(&a.token, "token", "", "API token (env ENVY_TOKEN); other users of this machine see a command line (ps): prefer ENVY_TOKEN or --token-file")
	pf.StringVar(&a.tokenFile, "token-file", "", "read the API token from this file (env ENVY_TOKEN_FILE)")
	pf.StringVar(&a.caFile, "ca-file", "", "PEM file of the CA that signed the server's certificate (env ENVY_CA_FILE)")
	pf.StringVarP(&a.output, "output", "o", "table", "output format: table, json or yaml (env ENVY_OUTPUT)")

	a.root = root
	root.AddCommand(
		newServerCmdWithRecovery(),
		newMigrateCmd(),
		a.newLoginCmd(),
		a.newScopesCmd(),
		a.newVarsCmd(),
		a.newSetCmd(),
		a.newUnsetCmd(),
		a.newImportCmd(),
		a.newExportCmd(),
		a.newOpenCmd(),
		a.newHistoryCmd(),
		a.newRollbackCmd(),
		a.newStatusCmd(),
		a.newRolloutCmd(),
		a.newRunCmd(),
		a.newTokensCmd(),
		a.newTrustsCmd(),
		a.newWebhooksCmd(),
		a.newAuditCmd(),
		a.newVersionCmd(),
		a.newWhoamiCmd(),
		a.newLogoutCmd(),
		a.newSetupCmd(),
		a.newKeysCmd(),
		a.newBackupCmd(),
		a.newRestoreCmd(),
	)
	a.addScopeFlags(root)
	a.addCompletions(root)
	// `envy completion tcsh` is refused, not answered with help and 0.
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			c.Args = func(cmd *cobra.Command, args []string) error {
				if len(args) > 0 {
					return usageErrorf("unknown shell %q: envy completion takes bash, zsh, fish or powershell", args[0])
				}
				return nil
			}
			c.RunE = func(cmd *cobra.Command, args []string) error { return cmd.Help() }
		}
	}
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
	o, ok := outputFormat(a.output)
	if !ok {
		return usageErrorf("--output must be table, json or yaml, not %q", a.output)
	}
	a.output = o
	return nil
}

// outputFormat returns the output format o names (in any case), and
// whether it names one.
func outputFormat(o string) (string, bool) {
	switch o = strings.ToLower(strings.TrimSpace(o)); o {
	case "table", "json", "yaml":
		return o, true
	case "yml":
		return "yaml", true
	}
	return "", false
}

// jsonOut reports whether the user asked for output for scripts: -o json
// or -o yaml (printJSON writes either).
func (a *app) jsonOut() bool { return a.output == "json" || a.output == "yaml" }

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
	token, err = a.tokenSetting()
	if err != nil {
		return "", "", err
	}
	return addr, firstNonEmpty(token, cfg.Token), nil
}

// tokenSetting returns the token given on the command line or in the
// environment, in this order: --token, --token-file, ENVY_TOKEN,
// ENVY_TOKEN_FILE; "" when none is.
func (a *app) tokenSetting() (string, error) {
	pf := a.root.PersistentFlags()
	if t := flagIfChanged(pf, "token", a.token); t != "" {
		return t, nil
	}
	if f := flagIfChanged(pf, "token-file", a.tokenFile); f != "" {
		return readTokenFile("--token-file", f)
	}
	if t := a.getenv("ENVY_TOKEN"); t != "" {
		return t, nil
	}
	if f := a.getenv("ENVY_TOKEN_FILE"); f != "" {
		return readTokenFile("ENVY_TOKEN_FILE", f)
	}
	return "", nil
}

// readTokenFile reads a token from its file: the first line, trimmed. The
// error names the setting, never the file's content.
func readTokenFile(setting, path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %v", setting, err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	if t := strings.TrimSpace(line); t != "" {
		return t, nil
	}
	return "", fmt.Errorf("%s: %s holds no token", setting, path)
}

// scopeClient is scopeFirst, then the client to ask.
func (a *app) scopeClient(cmd *cobra.Command, args []string, short bool) ([]string, *client.Client, error) {
	args, err := a.scopeFirst(cmd, args, short)
	if err != nil {
		return nil, nil, err
	}
	c, err := a.client()
	if err != nil {
		return nil, nil, err
	}
	return args, c, nil
}

// client returns a client for the configured server, or an error when no
// token is configured.
func (a *app) client() (*client.Client, error) {
	addr, token, err := a.settings()
	if err != nil {
		return nil, err
	}
	if token == "" {
		return nil, errors.New("no token: run `envy login`, or set ENVY_TOKEN, ENVY_TOKEN_FILE or --token")
	}
	return a.newClient(addr, token, "envy-cli")
}

// newClient returns a client for addr with the CA of --ca-file
// (ENVY_CA_FILE), and warns once, on stderr, when it would send the token
// in the clear to a host that is not this machine.
func (a *app) newClient(addr, token, userAgent string) (*client.Client, error) {
	opts := []client.Option{client.WithUserAgent(userAgent)}
	caFile, setting := flagIfChanged(a.root.PersistentFlags(), "ca-file", a.caFile), "--ca-file"
	if caFile == "" {
		caFile, setting = a.getenv("ENVY_CA_FILE"), "ENVY_CA_FILE"
	}
	if caFile != "" {
		cfg, err := caTLSConfig(setting, caFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, client.WithTLSConfig(cfg))
	}
	c := client.New(addr, token, opts...)
	if !a.warned && token != "" && plainRemote(c.Addr()) {
		a.warned = true
		a.notef("envy: warning: sending the token over plain HTTP to %s, where anyone on the way can read it; use https://\n", c.Addr())
	}
	return c, nil
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

// flagError rewrites pflag's error for a flag value that does not parse,
// such as `invalid argument "abc" for "--rate-limit" flag:
// strconv.ParseFloat: parsing "abc": invalid syntax`, into one that names
// the flag and what it wants.
func flagError(err error) error {
	m := badFlagValue.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	return fmt.Errorf("invalid %s %q: %s", m[2], m[1], parseWhy(m[3]))
}

// parseWhy says what a flag wants, from the error of its parser.
func parseWhy(why string) string {
	switch {
	case strings.Contains(why, "ParseFloat"):
		why = "want a number"
	case strings.Contains(why, "ParseInt"), strings.Contains(why, "ParseUint"), strings.Contains(why, "Atoi"):
		if strings.Contains(why, "out of range") {
			why = "number out of range"
		} else {
			why = "want a whole number"
		}
	case strings.Contains(why, "ParseBool"):
		why = "want true or false"
	case strings.Contains(why, "time: "):
		why = "want a duration such as 30s or 5m"
	}
	return why
}

var badFlagValue = regexp.MustCompile(`^invalid argument "(.*)" for "(?:-\w, )?(--[\w-]+)" flag: (.*)$`)

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// Argument checks that fail as usage errors.

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		if cmd.SuggestionsMinimumDistance <= 0 {
			cmd.SuggestionsMinimumDistance = 2 // cobra's default, which SuggestionsFor does not set
		}
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			return usageErrorf("unknown command %q for %q; did you mean %s?", args[0], cmd.CommandPath(), strings.Join(s, " or "))
		}
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
