package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

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
// try again in.
func renewAt(got time.Time, life time.Duration) time.Time { return got.Add(life * 2 / 3) }

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
