package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"os/exec"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/envy-dev/envy/client"
)

func (a *app) newLoginCmd() *cobra.Command {
	var jwt jwtAuth
	var oidc oidcAuth
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
			if oidc.name != "" && jwt.enabled() {
				return usageErrorf("give --oidc NAME or --auth jwt/NAME, not both")
			}
			if oidc.name != "" {
				return a.loginOIDC(cmd.Context(), addr, &oidc)
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
	cmd.Flags().StringVar(&oidc.name, "oidc", "", "sign in through the OIDC provider `NAME` in a browser (a loopback redirect to this command)")
	cmd.Flags().BoolVar(&oidc.noBrowser, "no-browser", false, "with --oidc: only print the URL to open, do not open a browser")
	cmd.Flags().DurationVar(&oidc.wait, "oidc-timeout", 5*time.Minute, "with --oidc: how long to wait for the sign-in in the browser")
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
	return a.saveLogin(c, l)
}

// saveLogin stores a login's token as a typed one would be, and says so.
func (a *app) saveLogin(c *client.Client, l *client.JWTLogin) error {
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

type oidcAuth struct {
	name      string
	noBrowser bool
	wait      time.Duration
}

// loginOIDC is `envy login --oidc NAME`, as `vault login -method=oidc`:
// a listener on a random loopback port receives the provider's redirect,
// and the server, which holds the client secret, exchanges the code. The
// client nonce, which only this command knows, binds the two halves.
func (a *app) loginOIDC(ctx context.Context, addr string, o *oidcAuth) error {
	c, err := a.newClient(addr, "", "envy-cli")
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("cannot listen on a loopback port for the sign-in's redirect: %w", err)
	}
	defer ln.Close()
	redirect := "http://" + ln.Addr().String() + "/callback"
	nonce := rand.Text()
	authURL, err := c.OIDCAuthURL(ctx, o.name, redirect, nonce)
	if err != nil {
		return err
	}
	type result struct {
		l   *client.JWTLogin
		err error
	}
	done := make(chan result, 1)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r)
			return
		}
		q := r.URL.Query()
		var res result
		if e := q.Get("error"); e != "" {
			res.err = fmt.Errorf("the identity provider did not sign you in: %s %s", e, q.Get("error_description"))
		} else {
			res.l, res.err = c.OIDCCallback(ctx, o.name, q.Get("state"), q.Get("code"), nonce)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if res.err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintf(w, "<!doctype html><title>envy</title><p>Sign-in failed: %s</p>", html.EscapeString(oneLine(a.speakCLI(res.err))))
		} else {
			fmt.Fprintf(w, "<!doctype html><title>envy</title><p>Signed in to envy as %s. You may close this window.</p>", html.EscapeString(res.l.Name))
		}
		// The page is out before the command goes on to end, and with it
		// this server: closed first, the browser got no page at all.
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		select {
		case done <- res:
		default:
		}
	})}
	go srv.Serve(ln)
	defer func() {
		// Ended gracefully: the browser's request gets its page.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			srv.Close()
		}
	}()
	fmt.Fprintf(a.stderr, "Complete the sign-in with %s in your browser:\n\n    %s\n\n", o.name, authURL)
	if !o.noBrowser {
		openBrowser(authURL)
	}
	wctx, cancel := context.WithTimeout(ctx, o.wait)
	defer cancel()
	select {
	case res := <-done:
		if res.err != nil {
			return res.err
		}
		return a.saveLogin(c, res.l)
	case <-wctx.Done():
		if errors.Is(wctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("no sign-in within %v: run envy login --oidc %s again", o.wait, o.name)
		}
		return wctx.Err()
	}
}

// openBrowser tries to open u in the desktop's browser; the URL is printed
// anyway, for a machine without one.
func openBrowser(u string) {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", u)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", u)
	default:
		cmd = exec.Command("xdg-open", u)
	}
	if cmd.Start() == nil {
		go cmd.Wait()
	}
}
