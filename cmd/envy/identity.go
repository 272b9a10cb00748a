package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3". A build
// without it reports the module version from the build info, if any.
var version = "dev"

// buildInfo returns the version, the VCS commit (with "+dirty" when the
// tree had changes) and the Go version envy was built with.
func buildInfo() (ver, commit, goVersion string) {
	ver, commit, goVersion = version, "unknown", runtime.Version()
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return
	}
	if ver == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		ver = bi.Main.Version
	}
	var dirty bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			commit = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && commit != "unknown" {
		commit += "+dirty"
	}
	return
}

func versionLine() string {
	ver, commit, gov := buildInfo()
	return fmt.Sprintf("envy %s (commit %s, %s, %s/%s)", ver, commit, gov, runtime.GOOS, runtime.GOARCH)
}

func (a *app) newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print envy's version, commit and Go version",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ver, commit, gov := buildInfo()
			if a.jsonOut() {
				return a.printJSON(nil, map[string]string{"version": ver, "commit": commit, "go": gov, "os": runtime.GOOS, "arch": runtime.GOARCH})
			}
			a.printf("%s\n", versionLine())
			return nil
		},
	}
}

func (a *app) newWhoamiCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show the token in use (name, owner, permissions, expiry) and the default scope",
		Long: "Show the token in use: its name, owner, permissions and expiry; and the\n" +
			"default scope of the commands run here, with where it comes from\n" +
			"(ENVY_SCOPE, or the .envy.json that `envy setup` wrote).",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, raw := capture(cmd.Context())
			tok, err := c.Self(ctx)
			if err != nil {
				return err
			}
			scope, from, scopeErr := a.defaultScope()
			if a.jsonOut() {
				var doc map[string]json.RawMessage
				if err := json.Unmarshal(*raw, &doc); err != nil {
					return fmt.Errorf("reading the server's reply: %v", err)
				}
				def := map[string]string{"scope": scope, "from": from}
				if scopeErr != nil {
					def = map[string]string{"error": scopeErr.Error()}
				}
				b, err := json.Marshal(def)
				if err != nil {
					return err
				}
				doc["default_scope"] = b
				return a.printJSON(nil, doc)
			}
			expires := "never"
			if tok.ExpiresAt != nil {
				expires = fmtTime(*tok.ExpiresAt)
			}
			pairs := []string{
				"server", c.Addr(),
				"id", tok.ID,
				"name", tok.Name,
				"owner", tok.Owner,
				"permissions", permissionsText(tok.Permissions),
				"expires", expires,
				"created", fmtTime(tok.CreatedAt),
			}
			switch {
			case strings.HasPrefix(tok.Trust, "signin:"): // minted by a dialect's sign-in
				pairs = append(pairs, "signed in", strings.TrimPrefix(tok.Trust, "signin:"))
			case strings.HasPrefix(tok.Trust, "oidc:"): // a person signed in through an OIDC provider
				pairs = append(pairs, "signed in with", strings.TrimPrefix(tok.Trust, "oidc:"), "subject", tok.Subject)
			case tok.Trust != "": // minted by a JWT login: its lineage
				pairs = append(pairs, "trust", "jwt/"+tok.Trust, "subject", tok.Subject)
			}
			t := newTable(a.stdout)
			for i := 0; i+1 < len(pairs); i += 2 {
				t.row(pairs[i]+":", pairs[i+1])
			}
			t.rowWhole("default scope:", defaultScopeText(scope, from, scopeErr)) // a path, whole
			return t.flush()
		},
	}
}

// defaultScopeText says which scope commands use when none is given, and
// where that comes from.
func defaultScopeText(scope, from string, err error) string {
	switch {
	case err != nil:
		return "none: " + err.Error()
	case scope == "":
		return "none (no ENVY_SCOPE, no .envy.json: see envy setup)"
	}
	return fmt.Sprintf("%s (from %s)", scope, from)
}

func (a *app) newLogoutCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Forget the address and token that `envy login` stored",
		Long: "Logout deletes the config file that `envy login` wrote (ENVY_CONFIG names\n" +
			"another). The token itself stays valid on the server: revoke it with\n" +
			"`envy tokens revoke` if it may have leaked.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			path := a.configPath()
			if path == "" {
				return errors.New("no config directory: nothing to forget")
			}
			err := os.Remove(path)
			if errors.Is(err, fs.ErrNotExist) {
				a.printf("not logged in: %s does not exist; nothing removed\n", path)
				return nil
			}
			if err != nil {
				return fmt.Errorf("removing the config: %w", err)
			}
			a.printf("logged out: removed %s (the token stays valid on the server until revoked)\n", path)
			if a.getenv("ENVY_TOKEN") != "" || a.getenv("ENVY_TOKEN_FILE") != "" {
				a.notef("note: ENVY_TOKEN or ENVY_TOKEN_FILE is still set in this shell\n")
			}
			return nil
		},
	}
}

// plainRemote reports whether addr is plain http:// to a host other than
// this machine.
func plainRemote(addr string) bool {
	u, err := url.Parse(addr)
	if err != nil || u.Scheme != "http" {
		return false
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}

// caTLSConfig returns a TLS config that trusts the system's CAs and those
// of the PEM file path; errors name the setting it came from.
func caTLSConfig(setting, path string) (*tls.Config, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", setting, err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: %s holds no PEM certificate", setting, path)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}
