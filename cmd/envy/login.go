package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/envy-dev/envy/client"
)

func (a *app) newLoginCmd() *cobra.Command {
	var jwt jwtAuth
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Check an address and token with the server and store them",
		Long: "Login asks for the server address and a token (or takes them from --addr and\n" +
			"--token, or ENVY_ADDR and ENVY_TOKEN), checks them with the server, and stores\n" +
			"them in your config directory (mode 0600; ENVY_CONFIG names another file).\n" +
			"Flags and ENVY_ADDR/ENVY_TOKEN still override the stored ones later.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cfg, err := loadConfig(a.configPath())
			if err != nil {
				return err
			}
			pf := a.root.PersistentFlags()
			// One line per prompt, from a terminal or a pipe: the address
			// (empty for the default), then the token.
			addr := firstNonEmpty(flagIfChanged(pf, "addr", a.addr), a.getenv("ENVY_ADDR"))
			if addr == "" {
				def := firstNonEmpty(cfg.Addr, client.DefaultAddr)
				typed, err := a.promptLine(ctx, "envy address ["+def+"]: ", false)
				if err != nil {
					return err
				}
				addr = firstNonEmpty(typed, def)
			}
			if jwt.enabled() {
				return a.loginJWT(cmd.Context(), addr, &jwt)
			}
			token, err := a.tokenSetting()
			if err != nil {
				return err
			}
			if token == "" {
				if token, err = a.promptLine(ctx, "Token: ", true); err != nil {
					return err
				}
			}
			if token == "" {
				return usageErrorf("no token given: pass --token, set ENVY_TOKEN or ENVY_TOKEN_FILE, or type it at the prompt")
			}

			c, err := a.newClient(addr, token, "envy-cli")
			if err != nil {
				return err
			}
			jctx, raw := capture(ctx)
			self, err := c.Self(jctx)
			if err != nil {
				return err
			}
			path := a.configPath()
			if err := saveConfig(path, config{Addr: c.Addr(), Token: token}); err != nil {
				return err
			}
			if a.jsonOut() {
				return a.printJSON(*raw, nil)
			}
			a.printf("Logged in to %s as %s (owner %s). Saved to %s.\n", c.Addr(), self.Name, self.Owner, path)
			return nil
		},
	}
	jwt.flags(cmd.Flags())
	return cmd
}

// loginJWT is `envy login --auth jwt/NAME --jwt-file PATH`: the JWT is
// traded for a token, which is stored as a typed one would be.
func (a *app) loginJWT(ctx context.Context, addr string, jwt *jwtAuth) error {
	if _, err := jwt.trust(); err != nil {
		return err
	}
	c, err := a.newClient(addr, "", "envy-cli")
	if err != nil {
		return err
	}
	l, err := jwt.login(ctx, c, a.getenv)
	if err != nil {
		return err
	}
	path := a.configPath()
	if err := saveConfig(path, config{Addr: c.Addr(), Token: l.Token}); err != nil {
		return err
	}
	if a.jsonOut() {
		return a.printJSON(nil, map[string]any{"name": l.Name, "id": l.ID, "expires_at": l.ExpiresAt})
	}
	a.printf("Logged in to %s as %s until %s. Saved to %s.\n", c.Addr(), l.Name, l.ExpiresAt.Local().Format(time.RFC3339), path)
	return nil
}
