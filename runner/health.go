package runner

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"time"
)

// healthResult is the verdict of a granted restart's health check of p,
// started on revision rev.
type healthResult struct {
	p   *proc
	rev int64
	err error
}

// healthRetry is the wait between two tries of a health check.
const healthRetry = 250 * time.Millisecond

// healthy waits until p is up and healthy, within timeout: its health
// command exits 0, its health URL answers 2xx, or, with neither, it has
// run for ReadyAfter (at most timeout) without exiting. The error says why
// not, never with the command's output (which may hold values).
func (r *runner) healthy(ctx context.Context, p *proc, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	exited := func() error {
		return fmt.Errorf("the command exited (status %d) before it was healthy", exitCode(p.state))
	}
	if r.cfg.HealthCmd == "" && r.cfg.HealthURL == "" {
		t := time.NewTimer(min(r.cfg.ReadyAfter, timeout))
		defer t.Stop()
		select {
		case <-p.done:
			return exited()
		case <-ctx.Done():
			return fmt.Errorf("not up within %s", timeout)
		case <-t.C:
			return nil
		}
	}
	var last error
	for {
		select {
		case <-p.done:
			return exited()
		default:
		}
		if last = r.checkOnce(ctx, p); last == nil {
			return nil
		}
		t := time.NewTimer(healthRetry)
		select {
		case <-p.done:
			t.Stop()
			return exited()
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("not healthy within %s (last check: %v)", timeout, last)
		case <-t.C:
		}
	}
}

// checkOnce runs the health command, or asks the health URL, once.
func (r *runner) checkOnce(ctx context.Context, p *proc) error {
	if r.cfg.HealthCmd != "" {
		c := exec.CommandContext(ctx, "/bin/sh", "-c", r.cfg.HealthCmd)
		c.Env = p.cmd.Env // the command's own env: its port, its settings
		c.WaitDelay = time.Second
		err := c.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("--health-cmd exited with status %d", ee.ExitCode())
		}
		if err != nil {
			return fmt.Errorf("--health-cmd: %v", unwrapExec(err))
		}
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, r.cfg.HealthURL, nil)
	if err != nil {
		return fmt.Errorf("--health-url: %v", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("--health-url: %v", errors.Unwrap(err))
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("--health-url answered %d", resp.StatusCode)
	}
	return nil
}
