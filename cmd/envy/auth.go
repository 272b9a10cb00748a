package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/envy-dev/envy/client"
)

// jwtAuth is `--auth jwt/NAME --jwt-file PATH | --jwt-env VAR`: sign in
// by trading a JWT that the workload already has (a Kubernetes projected
// service-account token, a CI system's OIDC token) for a short-lived envy
// token through the JWT trust NAME (docs/identity.md).
type jwtAuth struct {
	auth, file, env string
}

func (j *jwtAuth) flags(f *pflag.FlagSet) {
	f.StringVar(&j.auth, "auth", "", "sign in through a JWT trust: jwt/NAME (with --jwt-file or --jwt-env)")
	f.StringVar(&j.file, "jwt-file", "", "read the JWT from `PATH` (read again at every renewal: a Kubernetes projected token rotates)")
	f.StringVar(&j.env, "jwt-env", "", "read the JWT from the environment variable `VAR`")
}

func (j *jwtAuth) enabled() bool { return j.auth != "" || j.file != "" || j.env != "" }

// trust checks the flags and returns the trust's name.
func (j *jwtAuth) trust() (string, error) {
	name, ok := strings.CutPrefix(j.auth, "jwt/")
	switch {
	case !ok || name == "":
		return "", usageErrorf("--auth must be jwt/NAME, NAME a JWT trust")
	case (j.file == "") == (j.env == ""):
		return "", usageErrorf("--auth jwt/%s needs the JWT: give --jwt-file PATH or --jwt-env VAR (one of them)", name)
	}
	return name, nil
}

// read returns the JWT, from the file as it is now or the variable.
func (j *jwtAuth) read(getenv func(string) string) (string, error) {
	if j.file != "" {
		b, err := os.ReadFile(j.file)
		if err != nil {
			return "", fmt.Errorf("--jwt-file: %w", err)
		}
		if s := strings.TrimSpace(string(b)); s != "" {
			return s, nil
		}
		return "", fmt.Errorf("--jwt-file %s is empty", j.file)
	}
	if s := strings.TrimSpace(getenv(j.env)); s != "" {
		return s, nil
	}
	return "", fmt.Errorf("--jwt-env: %s is not set", j.env)
}

// login trades the JWT for a token.
func (j *jwtAuth) login(ctx context.Context, c *client.Client, getenv func(string) string) (*client.JWTLogin, error) {
	name, err := j.trust()
	if err != nil {
		return nil, err
	}
	raw, err := j.read(getenv)
	if err != nil {
		return nil, err
	}
	l, err := c.LoginJWT(ctx, name, raw)
	if err != nil {
		return nil, fmt.Errorf("JWT login through %s: %w", name, err)
	}
	return l, nil
}

// renewAt is when to trade the JWT again for a token of the given life:
// after two thirds of it, so that a failed renewal has a third left to
// try again in; never sooner than a second on (a clock far off the
// server's makes the life look spent).
func renewAt(got time.Time, life time.Duration) time.Time { return got.Add(max(life*2/3, time.Second)) }

// renew keeps c's token fresh until ctx ends: before the token expires it
// reads the JWT again (a rotated file gives a new one) and trades it for a
// new token, which c uses from then on. A failed renewal is tried again,
// every tenth of what is left, until the token expires; the command keeps
// running either way. It logs no token and no JWT.
func (j *jwtAuth) renew(ctx context.Context, c *client.Client, first *client.JWTLogin, getenv func(string) string, log io.Writer) {
	got, exp := time.Now(), first.ExpiresAt
	next := renewAt(got, exp.Sub(got))
	for {
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		l, err := j.login(lctx, c, getenv)
		cancel()
		if ctx.Err() != nil {
			return
		}
		now := time.Now()
		if err != nil {
			left := exp.Sub(now)
			fmt.Fprintf(log, "envy: warning: renewing the token failed (%v); %s left, trying again\n", err, left.Round(time.Second))
			next = now.Add(max(left/10, time.Second))
			continue
		}
		c.SetToken(l.Token)
		exp = l.ExpiresAt
		next = renewAt(now, exp.Sub(now))
	}
}

// `envy trusts`: the JWT trusts that workloads sign in through.

func (a *app) newTrustsCmd() *cobra.Command {
	return group("trusts", "Define, list, show and delete JWT trusts: workloads sign in with a JWT they have (admin)",
		a.newTrustsSetCmd(), a.newTrustsLsCmd(), a.newTrustsShowCmd(), a.newTrustsRmCmd())
}

func (a *app) newTrustsSetCmd() *cobra.Command {
	var (
		in     client.JWTTrustInput
		claims []string
		grants []string
	)
	cmd := &cobra.Command{
		Use:   "set NAME",
		Short: "Define or replace a JWT trust",
		Example: "  envy trusts set github --issuer https://token.actions.githubusercontent.com --audience envy \\\n" +
			"      --claim repository=acme/web --claim 'ref=refs/heads/*' --grant 'acme/web/ci=read,reveal' --ttl 15m\n" +
			"  envy trusts set k8s --issuer https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE --audience envy \\\n" +
			"      --claim sub=system:serviceaccount:web:api --grant 'acme/web/prod=read,reveal' --ttl 1h",
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			in.Permissions = []client.Permission{}
			for _, g := range grants {
				p, err := parseGrant(g)
				if err != nil {
					return err
				}
				in.Permissions = append(in.Permissions, p)
			}
			for _, kv := range claims {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return usageErrorf("--claim %q: want NAME=VALUE, such as repository=acme/web", kv)
				}
				if in.BoundClaims == nil {
					in.BoundClaims = map[string]string{}
				}
				in.BoundClaims[k] = v
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, raw := capture(cmd.Context())
			t, err := c.PutJWTTrust(ctx, args[0], in)
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return a.printJSON(*raw, nil)
			}
			return a.trustTable(t)
		},
	}
	f := cmd.Flags()
	f.StringVar(&in.Issuer, "issuer", "", "the JWT's iss, exactly (an https URL)")
	f.StringVar(&in.Audience, "audience", "", "a value the JWT's aud must hold")
	f.StringVar(&in.JWKSURL, "jwks-url", "", "where the issuer's keys are (default: its OpenID discovery document)")
	f.StringArrayVar(&claims, "claim", nil, "a bound claim, NAME=VALUE; a VALUE with * is a glob (repeatable)")
	f.StringVar(&in.SubjectClaim, "subject-claim", "", "the claim naming the subject (default sub)")
	f.StringArrayVar(&grants, "grant", nil, "a permission of the minted tokens, SCOPES=ACTIONS (repeatable)")
	f.StringVar(&in.TTL, "ttl", "", "the life of a minted token, 1s to 24h (default 15m)")
	f.StringVar(&in.MaxAge, "max-age", "", "refuse a JWT issued longer ago than this")
	return cmd
}

func (a *app) trustTable(t *client.JWTTrust) error {
	claims := make([]string, 0, len(t.BoundClaims))
	for k, v := range t.BoundClaims {
		claims = append(claims, k+"="+v)
	}
	sort.Strings(claims)
	return kvTable(a.stdout,
		"name", t.Name,
		"issuer", t.Issuer,
		"audience", t.Audience,
		"jwks url", orDash(t.JWKSURL),
		"bound claims", orDash(strings.Join(claims, " ")),
		"subject claim", t.SubjectClaim,
		"permissions", permissionsText(t.Permissions),
		"ttl", t.TTL,
		"max age", orDash(t.MaxAge),
		"defined", fmtTime(t.CreatedAt)+" by "+t.CreatedBy,
	)
}

func (a *app) newTrustsLsCmd() *cobra.Command {
	var (
		limit  int
		cursor string
	)
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List JWT trusts, by name",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.pagedClient(cmd, limit)
			if err != nil {
				return err
			}
			ctx, raw := capture(cmd.Context())
			page, err := c.ListJWTTrusts(ctx, cursor, limit)
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return a.printJSON(*raw, nil)
			}
			t := newTable(a.stdout, "NAME", "ISSUER", "AUDIENCE", "PERMISSIONS", "TTL")
			for _, tr := range page.Items {
				t.row(tr.Name, tr.Issuer, tr.Audience, permissionsText(tr.Permissions), tr.TTL)
			}
			return a.flushPage(t, page.NextCursor)
		},
	}
	addPaging(cmd, "trusts", &limit, &cursor)
	return cmd
}

func (a *app) newTrustsShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show a JWT trust",
		Args:  exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, raw := capture(cmd.Context())
			t, err := c.GetJWTTrust(ctx, args[0])
			if err != nil {
				return err
			}
			if a.jsonOut() {
				return a.printJSON(*raw, nil)
			}
			return a.trustTable(t)
		},
	}
}

func (a *app) newTrustsRmCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME",
		Short: "Delete a JWT trust and revoke every token its logins minted",
		Args:  exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.DeleteJWTTrust(cmd.Context(), args[0]); err != nil {
				return err
			}
			if a.jsonOut() {
				return a.printJSON(nil, map[string]any{"name": args[0], "deleted": true})
			}
			a.printf("deleted trust %s and revoked its tokens\n", args[0])
			return nil
		},
	}
}
