package main

// How `envy server` serves and stops: TLS with a certificate that SIGHUP
// reloads, and a graceful shutdown on SIGTERM or SIGINT that fails /readyz
// at once, closes watch streams, lets requests in flight finish within
// --shutdown-timeout and then flushes the audit log.

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	nethttp "net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/envy-dev/envy"
)

// defaultShutdownTimeout bounds a graceful shutdown unless
// --shutdown-timeout says otherwise.
const defaultShutdownTimeout = 15 * time.Second

// drain tells /readyz that the server is shutting down.
type drain struct{ on atomic.Bool }

// ready wraps a readiness check: from the first moment of a shutdown it
// fails, so that a load balancer stops sending new requests here.
func (d *drain) ready(next func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		if d.on.Load() {
			return envy.Errorf(envy.EUnavailable, "the server is shutting down")
		}
		return next(ctx)
	}
}

// keysReady adds to a readiness check that the keyring opens every data
// key of the store: a server whose master key does not open a key that
// another server added is not ready until it gets the new master key.
func keysReady(next, usable func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		if usable(ctx) != nil {
			return envy.Errorf(envy.EUnavailable, "this server's master key does not open every data key of the store (were the keys rotated on another server?): give it the new master key where --master-key-file or --master-key-url points")
		}
		return next(ctx)
	}
}

// certReloader serves the certificate of --tls-cert/--tls-key and loads it
// again on demand (SIGHUP): connections opened after a reload get the new
// certificate; open ones keep theirs.
type certReloader struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

// reloadOnSIGHUP makes cfg (nil without TLS) serve its certificate through
// a certReloader over the files it was loaded from.
func reloadOnSIGHUP(cfg *tls.Config, certFile, keyFile string) *certReloader {
	if cfg == nil || len(cfg.Certificates) == 0 {
		return nil
	}
	r := &certReloader{certFile: certFile, keyFile: keyFile}
	r.cur.Store(&cfg.Certificates[0])
	cfg.Certificates = nil
	cfg.GetCertificate = r.getCertificate
	return r
}

func (r *certReloader) reload() error {
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return err
	}
	r.cur.Store(&c)
	return nil
}

func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cur.Load(), nil
}

// stopping is how serve stops.
type stopping struct {
	drain        *drain
	closeWatches func()
	// delay keeps accepting (with /readyz failing) before the listener
	// closes, for load balancers that must first see the server unready.
	delay time.Duration
	// timeout bounds the wait for requests in flight.
	timeout time.Duration
}

// serve serves srv on ln until ctx is done (SIGTERM or SIGINT), then shuts
// down gracefully: /readyz fails from the first moment, watch streams end
// so that clients reconnect to another server, the listener closes (after
// st.delay), requests in flight finish, and once they have, or once
// st.timeout has passed, serve returns (the caller then closes the
// service, which flushes the audit log). certs, when set, is reloaded on
// SIGHUP.
func serve(ctx context.Context, ln net.Listener, srv *nethttp.Server, certs *certReloader, st stopping, log *slog.Logger) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	errc := make(chan error, 1)
	go func() {
		if srv.TLSConfig != nil {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	for {
		select {
		case err := <-errc:
			return err
		case <-hup:
			if certs == nil {
				log.Info("SIGHUP: nothing to reload (no --tls-cert)")
				continue
			}
			if err := certs.reload(); err != nil {
				log.Error("SIGHUP: cannot reload the TLS certificate; still serving the previous one", "cert", certs.certFile, "err", err)
				continue
			}
			log.Info("SIGHUP: reloaded the TLS certificate", "cert", certs.certFile)
			continue
		case <-ctx.Done():
		}
		break
	}

	start := time.Now()
	st.drain.on.Store(true)
	log.Info("shutting down: not ready, closing watch streams", "delay", st.delay, "timeout", st.timeout)
	st.closeWatches()
	if st.delay > 0 {
		select {
		case <-time.After(st.delay):
		case err := <-errc:
			return err
		}
	}
	log.Info("shutting down: no longer accepting, finishing requests in flight")
	st.closeWatches() // those opened during the delay
	sctx, cancel := context.WithTimeout(context.Background(), st.timeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		if !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		log.Warn("shutdown timeout passed: closing the connections still open", "timeout", st.timeout)
		srv.Close()
	}
	log.Info("stopped serving", "took", time.Since(start).Round(time.Millisecond))
	return nil
}
