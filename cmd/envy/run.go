package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/envy-dev/envy/runner"
)

// exitStatus makes envy exit with a status of its own choosing rather
// than 1: `envy run` passes on its command's. err, when set, is printed
// first, as any error is.
type exitStatus struct {
	code int
	err  error
}

func (e *exitStatus) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return fmt.Sprintf("exit status %d", e.code)
}

func (e *exitStatus) Unwrap() error { return e.err }

func (a *app) newRunCmd() *cobra.Command {
	var (
		scope, signalName, fallback, consumerID string
		shellCommand, healthCmd, healthURL      string
		readyAfter                              time.Duration
		preserve, watch, restart, noRedact      bool
		redact                                  bool
		grace, timeout, debounce, fallbackAge   time.Duration
		jwt                                     jwtAuth
	)
	cmd := &cobra.Command{
		Use:   "run [--scope SCOPE] [flags] (-- COMMAND [ARG...] | --command 'SHELL LINE')",
		Short: "Run a command with a scope's env, and keep it up to date",
		Long: "Run a command with the resolved env of a scope, forward signals to it and\n" +
			"exit with its exit status (128+n when signal n killed it). --command runs a\n" +
			"line through /bin/sh -c instead, so that `--command 'migrate && serve'` works.\n" +
			"Without --scope, the default scope (ENVY_SCOPE, or `envy setup`).\n\n" +
			"The scope's values override the environment envy run inherits;\n" +
			"--preserve-env makes the inherited values win instead.\n\n" +
			"--watch follows the scope: on a change, envy run fetches the new env and,\n" +
			"once no newer change has come for --debounce (default 1s; at most 10\n" +
			"times that after the first change of a burst), restarts the command\n" +
			"with the newest (SIGTERM, --grace to exit, then SIGKILL), or with\n" +
			"--signal NAME sends it that signal instead (it keeps its environment and\n" +
			"counts as on the new revision once the signal is delivered). It reports\n" +
			"the revision the command runs to the server every 20 s, so that\n" +
			"`envy status SCOPE` and every write tell whether it has a change.\n\n" +
			"When the scope has a rollout policy (envy scopes update SCOPE\n" +
			"--max-unavailable N), the server grants restarts in waves: this instance\n" +
			"restarts (or is signalled) only when its turn comes, and reports the new\n" +
			"revision once the command is up and healthy again: --health-cmd 'CMD'\n" +
			"exits 0 (run with the command's env, tried again until the policy's\n" +
			"health_timeout), or --health-url URL answers 2xx, or, with neither, the\n" +
			"command has run for --ready-after (default 5s) without exiting. Not\n" +
			"healthy in time, the rollout pauses (envy rollout resume SCOPE).\n\n" +
			"Every secret value (4 characters or more) in the command's stdout and\n" +
			"stderr is replaced with [REDACTED:NAME]; the output is then a pipe, not\n" +
			"the terminal. --no-redact lets it through as it is (--redact, the\n" +
			"default, is still accepted).\n\n" +
			"The token: --token-file FILE (or ENVY_TOKEN_FILE) keeps it out of envy run's\n" +
			"environment, which the command (same user) could read in /proc; ENVY_TOKEN\n" +
			"is never passed on to the command either way.\n\n" +
			"--auth jwt/NAME with --jwt-file PATH (or --jwt-env VAR) signs in with a JWT\n" +
			"the workload has, such as a Kubernetes projected service-account token,\n" +
			"through the JWT trust NAME, and trades it again (reading the file again)\n" +
			"before each token expires, without restarting the command.\n\n" +
			"--fallback FILE keeps an encrypted copy (mode 0600, readable only with the\n" +
			"same token) of the env last fetched, and starts from it, with a warning,\n" +
			"when the server can't be reached within --timeout, unless it is older\n" +
			"than --fallback-max-age (default 24h). While it runs from the copy, a\n" +
			"watching run tells the server so (envy status: on fallback since …).\n" +
			"Without a usable copy, the command is not started.",
		Example: "  envy run --scope acme/web/prod -- ./server --port 8080\n" +
			"  envy run --scope acme/web/prod --watch --fallback /var/lib/web/env.enc -- ./server\n" +
			"  envy run --scope acme/web/prod --watch --signal HUP -- nginx -g 'daemon off;'",
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			switch {
			case shellCommand != "" && len(args) > 0:
				return usageErrorf("give the command after -- or with --command, not both")
			case shellCommand != "":
				args = []string{"/bin/sh", "-c", shellCommand}
			case len(args) == 0:
				return usageErrorf("envy run needs a command: -- COMMAND [ARG...], or --command 'SHELL LINE'")
			}
			if scope == "" {
				def, _, err := a.defaultScope()
				if err != nil {
					return err
				}
				if def == "" {
					return usageErrorf("envy run needs --scope SCOPE (or a default scope: ENVY_SCOPE, or `envy setup`)")
				}
				scope = def
			}
			var sendSig syscall.Signal
			if f.Changed("signal") {
				if f.Changed("restart") {
					return usageErrorf("--restart and --signal exclude each other: a change either restarts the command or signals it")
				}
				s, err := runner.ParseSignal(signalName)
				if err != nil {
					return usageErr(fmt.Errorf("--signal: %w", err))
				}
				sendSig = s
			}
			if !watch && (f.Changed("signal") || f.Changed("restart") || f.Changed("grace") || f.Changed("debounce")) {
				return usageErrorf("--restart, --signal, --grace and --debounce take effect only with --watch")
			}
			if grace <= 0 || timeout <= 0 || fallbackAge <= 0 {
				return usageErrorf("--grace, --timeout and --fallback-max-age must be positive durations")
			}
			if readyAfter <= 0 {
				return usageErrorf("--ready-after must be a positive duration")
			}
			if healthCmd != "" && healthURL != "" {
				return usageErrorf("--health-cmd and --health-url exclude each other: give one way to tell the command is healthy")
			}
			if !watch && (healthCmd != "" || healthURL != "" || f.Changed("ready-after")) {
				return usageErrorf("--health-cmd, --health-url and --ready-after take effect only with --watch")
			}
			if healthURL != "" {
				if u, err := url.Parse(healthURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					return usageErrorf("--health-url %q must be an http:// or https:// URL", healthURL)
				}
			}
			if debounce < 0 {
				return usageErrorf("--debounce must not be negative (0 acts on every change at once)")
			}
			if f.Changed("redact") && f.Changed("no-redact") && redact == noRedact {
				return usageErrorf("--redact and --no-redact exclude each other")
			}
			noRedact = noRedact || !redact
			if debounce == 0 {
				debounce = -1 // runner: negative is none, 0 the default
			}
			if consumerID != "" && !runner.ValidConsumerID(consumerID) {
				return usageErrorf("--consumer-id %q must match [A-Za-z0-9][A-Za-z0-9._~-]{0,99}", consumerID)
			}
			addr, token, err := a.settings()
			if err != nil {
				return err
			}
			if jwt.enabled() {
				token = ""
				if _, err := jwt.trust(); err != nil {
					return err
				}
			} else if token == "" {
				return fmt.Errorf("no token: run `envy login`, or set ENVY_TOKEN, ENVY_TOKEN_FILE or --token-file")
			}
			c, err := a.newClient(addr, token, "envy-run")
			if err != nil {
				return err
			}
			if jwt.enabled() {
				// Trade the JWT now, and again before each token expires,
				// while the command runs.
				l, err := jwt.login(cmd.Context(), c, a.getenv)
				if err != nil {
					return err
				}
				token = l.Token
				c.SetToken(token)
				rctx, stop := context.WithCancel(context.WithoutCancel(cmd.Context()))
				defer stop()
				go jwt.renew(rctx, c, l, a.getenv, a.stderr)
			}
			code, err := runner.Run(
				// Signals go to the command, which decides when envy run
				// ends; they must not cancel the run itself.
				context.WithoutCancel(cmd.Context()),
				runner.Config{
					Client:         c,
					Token:          token,
					Scope:          scope,
					Command:        args,
					Env:            os.Environ(),
					PreserveEnv:    preserve,
					Watch:          watch,
					Signal:         sendSig,
					Grace:          grace,
					Debounce:       debounce,
					NoRedact:       noRedact,
					Fallback:       fallback,
					FallbackMaxAge: fallbackAge,
					HealthCmd:      healthCmd,
					HealthURL:      healthURL,
					ReadyAfter:     readyAfter,
					Timeout:        timeout,
					ConsumerID:     consumerID,
					Stdin:          a.stdin,
					Stdout:         a.stdout,
					Stderr:         a.stderr,
					Log:            a.stderr,
				})
			if err == nil && code == 0 {
				return nil
			}
			return &exitStatus{code: code, err: err}
		},
	}
	// Everything after the command's name is the command's, flags too:
	// `envy run --scope s node app.js --port 3`.
	cmd.Flags().SetInterspersed(false)
	f := cmd.Flags()
	f.StringVarP(&scope, "scope", "s", "", "the scope whose resolved env the command runs with (default: ENVY_SCOPE, or the scope envy setup saved)")
	f.BoolVar(&preserve, "preserve-env", false, "let the inherited environment win over the scope's values")
	f.BoolVar(&watch, "watch", false, "follow the scope and restart (or signal) the command on a change")
	f.BoolVar(&restart, "restart", true, "on a change, restart the command (the default with --watch)")
	f.StringVar(&signalName, "signal", "", "on a change, send this signal (HUP, USR1, …) instead of restarting")
	f.DurationVar(&grace, "grace", runner.DefaultGrace, "how long a restarted command has to exit after SIGTERM before SIGKILL")
	f.DurationVar(&debounce, "debounce", runner.DefaultDebounce, "act on a change once no newer one has come for this long (at most 10 times it in all; 0: at once)")
	f.BoolVar(&redact, "redact", true, "replace secret values in the command's output with [REDACTED:NAME] (the default; see --no-redact)")
	f.BoolVar(&noRedact, "no-redact", false, "let the command's output through as it is, secret values included")
	f.StringVar(&fallback, "fallback", "", "keep an encrypted copy of the env in `FILE` and use it when the server can't be reached")
	f.DurationVar(&fallbackAge, "fallback-max-age", runner.DefaultFallbackMaxAge, "refuse a fallback copy older than this")
	f.DurationVar(&timeout, "timeout", runner.DefaultTimeout, "how long to try to reach the server at start")
	f.StringVar(&consumerID, "consumer-id", "", "the name of this run in envy status (default <hostname>-<pid>)")
	f.StringVar(&shellCommand, "command", "", "run this line through /bin/sh -c (instead of -- COMMAND)")
	f.StringVar(&healthCmd, "health-cmd", "", "under a rollout policy: the command is healthy once this shell line exits 0")
	f.StringVar(&healthURL, "health-url", "", "under a rollout policy: the command is healthy once this URL answers 2xx")
	f.DurationVar(&readyAfter, "ready-after", runner.DefaultReadyAfter, "under a rollout policy, without a health check: the command is up once it has run this long")
	jwt.flags(f)
	return cmd
}
