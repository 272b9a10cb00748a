package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	nethttp "net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/envy-dev/envy"
	"github.com/envy-dev/envy/auditstream"
	"github.com/envy-dev/envy/crypto"
	envyhttp "github.com/envy-dev/envy/http"
	"github.com/envy-dev/envy/http/admin"
	"github.com/envy-dev/envy/http/compat/apify"
	"github.com/envy-dev/envy/http/compat/containers"
	"github.com/envy-dev/envy/http/compat/hooksecrets"
	"github.com/envy-dev/envy/http/compat/smarthooks"
	"github.com/envy-dev/envy/http/compat/usersecrets"
	"github.com/envy-dev/envy/identity"
	"github.com/envy-dev/envy/service"
	"github.com/envy-dev/envy/web"
	"github.com/envy-dev/envy/webhook"
)

// serverConfig is every setting of `envy server`, read from flags and
// ENVY_<FLAG> variables in one place and validated before anything starts.
type serverConfig struct {
	listen           string
	dataDir          string
	databaseURL      string
	masterKeyFile    string
	masterKeyURL     string
	compat           string
	tlsCert, tlsKey  string
	reservedPrefixes string
	rateLimit        float64
	maxBody          int64
	logFormat        string
	logLevel         string
	shutdownTimeout  time.Duration
	shutdownDelay    time.Duration
	auditRetention   time.Duration
	maxConsumers     int
	plaintextCache   int
	// HTTP limits, passed to envyhttp.Options.
	maxConns           int
	maxWatchesPerToken int
	maxBodyInFlight    int64
	bodyTimeout        time.Duration
	maxConnsPerClient  int
	// The dashboard's bounds, passed to web.Options.
	maxSessionsPerToken int
	maxImportsPerToken  int
	maxImportBytes      int64
	// Audit streams, passed to auditstream.Open.
	auditStreams       []string
	auditStreamMaxSize int64
	auditStreamKeep    int
	auditStreamQueue   int
	// Rolling restarts, passed to service.Options.
	rolloutLease time.Duration
	// Webhooks, passed to service.WebhookOptions.
	webhookAllowPrivate bool
	webhookTimeout      time.Duration
	webhookRetryBase    time.Duration
	webhookGiveUp       time.Duration
	webhookLease        time.Duration
	webhookMaxFailures  int
	webhookInFlight     int
	maxWebhooks         int
}

// serverMemoryLimit is the server's soft memory limit unless GOMEMLIMIT
// sets another.
const serverMemoryLimit = 96 << 20

// newServerCmd returns `envy server`.
func newServerCmd() *cobra.Command {
	var c serverConfig
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the envy server (SQLite under ./envy-data by default)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := envFlags(cmd.Flags(), os.Getenv); err != nil {
				return err
			}
			if cmd.Flags().Changed("audit-stream") && len(c.auditStreams) == 0 {
				// --audit-stream= (an unset variable expanded, say): the
				// flag's parser drops the empty value, and the server would
				// start with no stream while one was asked for.
				return errors.New(`invalid --audit-stream "": empty; want file:PATH, stdout, syslog:, syslog://HOST:PORT, syslog+tcp://HOST:PORT or unix:PATH`)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			// A write to a stdout or stderr whose reader went away (the
			// stdout audit stream's log shipper restarting) fails with
			// EPIPE: the stream then fails closed, as any device does,
			// rather than the process dying of SIGPIPE with its queued
			// entries and its requests in flight.
			signal.Ignore(syscall.SIGPIPE)
			return runServer(ctx, c, os.Getenv("ENVY_BOOTSTRAP_TOKEN"), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.listen, "listen", "127.0.0.1:8750", "address to listen on")
	f.StringVar(&c.dataDir, "data-dir", "envy-data", "directory for the SQLite database and the default master key")
	f.StringVar(&c.databaseURL, "database-url", "", "postgres:// URL of a PostgreSQL database to use instead of SQLite (several servers may share one)")
	f.StringVar(&c.masterKeyFile, "master-key-file", "", "master key file (default <data-dir>/master.key, created on first start)")
	f.StringVar(&c.masterKeyURL, "master-key-url", "", "gocloud.dev/secrets URL of the master key (base64key://, awskms://, …)")
	f.StringVar(&c.compat, "compat", "", "seed dialects to serve: all, or a comma list")
	f.StringVar(&c.tlsCert, "tls-cert", "", "TLS certificate file")
	f.StringVar(&c.tlsKey, "tls-key", "", "TLS key file")
	f.StringVar(&c.reservedPrefixes, "reserved-prefixes", "ENVY_", "comma list of var name prefixes nobody may use")
	f.Float64Var(&c.rateLimit, "rate-limit", envyhttp.DefaultRateLimit, "requests per second per token lineage (a token and the tokens minted from it; burst twice as many); 0 turns it off")
	f.Int64Var(&c.maxBody, "max-body", envyhttp.DefaultMaxBody, "largest request body in bytes")
	f.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&c.logLevel, "log-level", "info", "least level logged: debug (every request), info, warn or error")
	f.DurationVar(&c.shutdownTimeout, "shutdown-timeout", defaultShutdownTimeout, "on SIGTERM, how long requests in flight may take to finish")
	f.DurationVar(&c.shutdownDelay, "shutdown-delay", 0, "on SIGTERM, how long to keep accepting with /readyz failing before the listener closes")
	f.DurationVar(&c.auditRetention, "audit-retention", 365*24*time.Hour, "how long audit entries are kept; older ones are deleted")
	f.IntVar(&c.plaintextCache, "plaintext-cache-bytes", service.DefaultPlaintextCacheBytes, "bytes of encoded resolved envs and masked lists kept in memory, plaintext included; 0 turns the cache off")
	f.IntVar(&c.maxConsumers, "max-consumers", 1000, "most consumers a scope keeps; a new one beyond takes a silent one's place or is refused (409)")
	f.IntVar(&c.maxConns, "max-conns", 0, "most connections served at once (0: the open-file limit less 256); beyond, a few more answer only /healthz, /readyz and /metrics")
	f.IntVar(&c.maxWatchesPerToken, "max-watches-per-token", envyhttp.DefaultMaxWatchesPerToken, "most watch streams one token holds open on this server, with the tokens of its lineage (429 beyond)")
	f.Int64Var(&c.maxBodyInFlight, "max-body-in-flight", envyhttp.DefaultMaxBodyBytesInFlight, "bytes of request bodies held at once across all requests (503 beyond)")
	f.DurationVar(&c.bodyTimeout, "body-timeout", 30*time.Second, "how long a request body may take to arrive, dashboard forms included (400 beyond)")
	f.IntVar(&c.maxConnsPerClient, "max-conns-per-client", envyhttp.DefaultMaxConnsPerClient, "most connections one client address (an IPv6 /64) holds at once; one beyond is closed at once")
	f.IntVar(&c.maxSessionsPerToken, "max-sessions-per-token", web.DefaultMaxSessionsPerToken, "most dashboard sessions of one token this server keeps; signing in beyond ends the token's oldest session")
	f.IntVar(&c.maxImportsPerToken, "max-import-previews-per-token", web.DefaultMaxImportsPerToken, "most pending dashboard import previews of one token; a preview beyond ends the token's oldest")
	f.StringSliceVar(&c.auditStreams, "audit-stream", nil, "also send every audit entry to file:PATH, stdout, syslog:, syslog://HOST:PORT, syslog+tcp://HOST:PORT or unix:PATH (repeatable, or a comma list); while none can record, writes and reveals are refused (503)")
	f.Int64Var(&c.auditStreamMaxSize, "audit-stream-max-size", auditstream.DefaultMaxSize, "bytes beyond which a file audit stream is rotated")
	f.IntVar(&c.auditStreamKeep, "audit-stream-keep", auditstream.DefaultKeep, "rotated files a file audit stream keeps (PATH.1 the newest)")
	f.IntVar(&c.auditStreamQueue, "audit-stream-queue", auditstream.DefaultQueue, "audit entries each audit stream holds while it writes or recovers; beyond, writes and reveals are refused (503)")
	f.Int64Var(&c.maxImportBytes, "max-import-bytes", web.DefaultImportBytes, "bytes that all pending dashboard import previews hold; a preview beyond is refused (503)")
	f.DurationVar(&c.rolloutLease, "rollout-lease", 30*time.Second, "how long past a scope's health_timeout a restarting instance that never reports back holds its rollout slot")
	f.BoolVar(&c.webhookAllowPrivate, "webhook-allow-private", false, "let webhooks reach loopback, private and link-local addresses, and plain http (refused by default)")
	f.DurationVar(&c.webhookTimeout, "webhook-timeout", 10*time.Second, "how long one webhook request may take")
	f.DurationVar(&c.webhookRetryBase, "webhook-retry-base", 2*time.Second, "the wait before a failed webhook delivery's first retry; each later one doubles it (at most 1h), less up to half at random")
	f.DurationVar(&c.webhookGiveUp, "webhook-give-up-after", 24*time.Hour, "how long a webhook delivery is retried before it is marked failed")
	f.DurationVar(&c.webhookLease, "webhook-lease", time.Minute, "how long a server holds a webhook's queue for one attempt; a server that dies mid-delivery leaves it to another after this")
	f.IntVar(&c.webhookMaxFailures, "webhook-max-failures", 5, "failed deliveries in a row after which a webhook is disabled")
	f.IntVar(&c.webhookInFlight, "webhook-in-flight", 8, "most webhook requests this server makes at once")
	f.IntVar(&c.maxWebhooks, "max-webhooks", service.DefaultMaxWebhooks, "most webhooks the store keeps (a token without admin on ** may define a tenth of them, with the tokens of its lineage); a creation beyond is refused (409)")
	return cmd
}

// envFlags sets every flag not given on the command line from its
// ENVY_<FLAG> variable; a bad value names the variable.
func envFlags(fs *pflag.FlagSet, getenv func(string) string) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed {
			return
		}
		name := "ENVY_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(name); v != "" {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("invalid %s %q: %s", name, v, parseWhy(e.Error()))
			}
		}
	})
	return err
}

func (c *serverConfig) validate() error {
	_, port, err := net.SplitHostPort(c.listen)
	if err != nil {
		return fmt.Errorf("invalid --listen %q: want host:port", c.listen)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("invalid --listen %q: the port must be a number from 0 to 65535", c.listen)
	}
	if c.databaseURL != "" {
		if err := checkDatabaseURL(c.databaseURL); err != nil {
			return err
		}
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return errors.New("invalid --tls-cert/--tls-key: give both or neither")
	}
	if c.rateLimit < 0 {
		return fmt.Errorf("invalid --rate-limit %v: must be 0 (off) or positive", c.rateLimit)
	}
	if c.auditRetention < time.Hour {
		return fmt.Errorf("invalid --audit-retention %v: must be at least 1h", c.auditRetention)
	}
	if c.plaintextCache < 0 {
		return fmt.Errorf("invalid --plaintext-cache-bytes %d: must be 0 (off) or positive", c.plaintextCache)
	}
	if c.rolloutLease < time.Second {
		return fmt.Errorf("invalid --rollout-lease %v: must be at least 1s", c.rolloutLease)
	}
	if c.maxConsumers < 1 {
		return fmt.Errorf("invalid --max-consumers %d: must be at least 1", c.maxConsumers)
	}
	if c.maxBody < 1024 {
		return fmt.Errorf("invalid --max-body %d: must be at least 1024 bytes", c.maxBody)
	}
	if c.maxConnsPerClient < 1 || c.maxSessionsPerToken < 1 || c.maxImportsPerToken < 1 || c.maxImportBytes < c.maxBody {
		return fmt.Errorf("invalid limits: --max-conns-per-client %d, --max-sessions-per-token %d and --max-import-previews-per-token %d must be at least 1, --max-import-bytes %d at least --max-body (%d)",
			c.maxConnsPerClient, c.maxSessionsPerToken, c.maxImportsPerToken, c.maxImportBytes, c.maxBody)
	}
	if c.maxConns < 0 || c.maxWatchesPerToken < 1 || c.maxBodyInFlight < c.maxBody || c.bodyTimeout < time.Second {
		return fmt.Errorf("invalid limits: --max-conns %d must be 0 (from the open-file limit) or more, --max-watches-per-token %d at least 1, --max-body-in-flight %d at least --max-body (%d), --body-timeout %v at least 1s",
			c.maxConns, c.maxWatchesPerToken, c.maxBodyInFlight, c.maxBody, c.bodyTimeout)
	}
	if c.webhookTimeout < 100*time.Millisecond || c.webhookRetryBase < 10*time.Millisecond || c.webhookGiveUp < time.Second ||
		c.webhookLease <= c.webhookTimeout || c.webhookMaxFailures < 1 || c.webhookInFlight < 1 {
		return fmt.Errorf("invalid webhook settings: --webhook-timeout %v must be at least 100ms, --webhook-retry-base %v at least 10ms, --webhook-give-up-after %v at least 1s, --webhook-lease %v more than --webhook-timeout, --webhook-max-failures %d and --webhook-in-flight %d at least 1",
			c.webhookTimeout, c.webhookRetryBase, c.webhookGiveUp, c.webhookLease, c.webhookMaxFailures, c.webhookInFlight)
	}
	if c.maxWebhooks < 1 || c.maxWebhooks > 100000 {
		return fmt.Errorf("invalid --max-webhooks %d: must be from 1 to 100000 (every batch of events the delivery loop fans out reads them all)", c.maxWebhooks)
	}
	if c.logFormat != "text" && c.logFormat != "json" {
		return fmt.Errorf("invalid --log-format %q: want text or json", c.logFormat)
	}
	if _, err := c.level(); err != nil {
		return err
	}
	if c.shutdownTimeout <= 0 {
		return fmt.Errorf("invalid --shutdown-timeout %v: must be positive", c.shutdownTimeout)
	}
	if c.shutdownDelay < 0 {
		return fmt.Errorf("invalid --shutdown-delay %v: must be 0 or positive", c.shutdownDelay)
	}
	if c.masterKeyURL != "" && c.masterKeyFile != "" {
		return errors.New("invalid --master-key-url/--master-key-file: give one, not both")
	}
	for _, p := range c.prefixes() {
		if envy.ValidateName("reserved-prefixes", p+"X", nil) != nil {
			return fmt.Errorf("invalid --reserved-prefixes: %q is not a valid name prefix", p)
		}
	}
	if _, err := c.dialects(); err != nil {
		return err
	}
	for _, s := range c.auditStreams {
		if err := auditstream.Check(s); err != nil {
			return err
		}
	}
	if c.auditStreamMaxSize < 4096 || c.auditStreamKeep < 0 || c.auditStreamQueue < 1 {
		return fmt.Errorf("invalid audit stream limits: --audit-stream-max-size %d must be at least 4096 bytes, --audit-stream-keep %d at least 0, --audit-stream-queue %d at least 1",
			c.auditStreamMaxSize, c.auditStreamKeep, c.auditStreamQueue)
	}
	return nil
}

// level returns the --log-level as a slog level.
func (c *serverConfig) level() (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(c.logLevel)) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("invalid --log-level %q: want debug, info, warn or error", c.logLevel)
}

// loadTLS loads --tls-cert and --tls-key, before anything starts, so that
// a bad file stops the start with an error that names the flag.
func (c *serverConfig) loadTLS() (*tls.Config, error) {
	if c.tlsCert == "" {
		return nil, nil
	}
	for _, f := range []struct{ flag, path string }{{"--tls-cert", c.tlsCert}, {"--tls-key", c.tlsKey}} {
		if _, err := os.Stat(f.path); err != nil {
			return nil, fmt.Errorf("invalid %s: %v", f.flag, err)
		}
	}
	cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("invalid --tls-cert/--tls-key (%s, %s): %v", c.tlsCert, c.tlsKey, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// dialectNames are the seed dialects, in the order --compat all mounts them.
var dialectNames = []string{"smarthooks", "apify", "usersecrets", "containers", "hooksecrets"}

var dialectRegister = map[string]func(*envyhttp.Server, *service.Service){
	"smarthooks":  smarthooks.Register,
	"apify":       apify.Register,
	"usersecrets": usersecrets.Register,
	"containers":  containers.Register,
	"hooksecrets": hooksecrets.Register,
}

// dialects returns the dialects --compat names: "all", or a comma list.
func (c *serverConfig) dialects() ([]string, error) {
	if strings.TrimSpace(c.compat) == "" {
		return nil, nil
	}
	if strings.TrimSpace(c.compat) == "all" {
		return dialectNames, nil
	}
	var out []string
	seen := map[string]bool{}
	for _, n := range strings.Split(c.compat, ",") {
		n = strings.TrimSpace(n)
		if dialectRegister[n] == nil {
			return nil, fmt.Errorf("invalid --compat %q: unknown dialect %q (want all, or a comma list of %s)", c.compat, n, strings.Join(dialectNames, ", "))
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out, nil
}

func (c *serverConfig) prefixes() []string {
	var out []string
	for _, p := range strings.Split(c.reservedPrefixes, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func runServer(ctx context.Context, c serverConfig, bootstrap string, stdout, stderr io.Writer) error {
	start := time.Now()
	// Everything that can be checked is checked, and the listener bound,
	// before any state is made: a start that fails on a flag, a TLS file
	// or a taken port leaves no data dir, no master key and no admin token
	// behind.
	if err := c.validate(); err != nil {
		return err
	}
	tlsConfig, err := c.loadTLS()
	if err != nil {
		return err
	}
	lvl, _ := c.level() // validated above
	opts := &slog.HandlerOptions{Level: lvl}
	var handler slog.Handler = slog.NewTextHandler(stderr, opts)
	if c.logFormat == "json" {
		handler = slog.NewJSONHandler(stderr, opts)
	}
	log := slog.New(handler)
	ln, err := net.Listen("tcp", c.listen)
	if err != nil {
		return fmt.Errorf("cannot listen on --listen %s: %v", c.listen, err)
	}
	defer ln.Close() // a no-op once the server has closed it
	if os.Getenv("GOMEMLIMIT") == "" {
		// A soft limit: the GC works harder, and returns memory to the
		// system sooner, as the heap nears it; it never fails an
		// allocation. The read caches are bounded well below it.
		debug.SetMemoryLimit(serverMemoryLimit)
	}

	streams, err := c.openAuditStreams(stdout, log)
	if err != nil {
		return err
	}
	if streams != nil {
		defer func() { // after the service has flushed its audit entries
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			streams.Close(ctx)
		}()
	}

	store, where, err := openStore(ctx, c.databaseURL, c.dataDir, log)
	if err != nil {
		return err
	}
	defer store.Close()

	var mk crypto.MasterKey
	if c.masterKeyURL != "" {
		if mk, err = crypto.OpenMasterKeyURL(ctx, c.masterKeyURL); err != nil {
			return fmt.Errorf("invalid --master-key-url: %v", err)
		}
	} else {
		path := c.masterKeyFile
		if path == "" {
			path = filepath.Join(c.dataDir, "master.key")
		}
		var created bool
		if mk, created, err = crypto.OpenMasterKeyFileFor(ctx, path, store); err != nil {
			return fmt.Errorf("invalid --master-key-file: %v", err)
		}
		if created {
			log.Warn("created a new master key beside the data; keep a copy elsewhere, or use --master-key-url with a KMS", "path", path)
		}
	}
	defer mk.Close()
	keys, unfollow, err := openKeyring(ctx, mk, store, where, log)
	if err != nil {
		return err
	}
	defer unfollow()
	defer keys.Close()
	keys.SetReopen(reopenMasterKey(c))

	svc := service.New(store, keys, service.Options{ReservedPrefixes: c.prefixes(), Logger: log,
		AuditRetention: c.auditRetention, MaxConsumers: c.maxConsumers, PlaintextCacheBytes: cmp.Or(c.plaintextCache, -1),
		Verifier: identity.New(identity.Options{}), AuditStream: auditStreamOf(streams), RolloutLease: c.rolloutLease,
		Webhooks: service.WebhookOptions{Sender: webhook.NewSender(webhook.Options{Timeout: c.webhookTimeout, AllowPrivate: c.webhookAllowPrivate}),
			AllowPrivate: c.webhookAllowPrivate, RetryBase: c.webhookRetryBase, GiveUpAfter: c.webhookGiveUp, Lease: c.webhookLease,
			MaxFailures: c.webhookMaxFailures, InFlight: c.webhookInFlight, Max: c.maxWebhooks}})
	defer svc.Close()
	token, created, err := svc.Bootstrap(ctx, bootstrap)
	if err != nil {
		if envy.ErrorCode(err) == envy.EInvalid {
			return errors.New("invalid ENVY_BOOTSTRAP_TOKEN: must be envy_ followed by at least 43 base62 characters")
		}
		return err
	}
	if created && bootstrap == "" {
		banner := stdout
		if slices.Contains(c.auditStreams, "stdout") {
			banner = stderr // stdout carries JSON lines only
		}
		fmt.Fprintf(banner, "Created the admin token. It is shown this once; keep it safe:\n\n    %s\n\n", token)
	}

	drain := &drain{}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if streams != nil {
		reg.MustRegister(streams)
	}
	api := envyhttp.NewServer(svc, envyhttp.Options{MaxBody: c.maxBody, RateLimit: c.rateLimit, Logger: log, Registry: reg, Ready: drain.ready(keysReady(svc.Ready, keys.Usable)),
		MaxConns: c.maxConns, MaxConnsPerClient: c.maxConnsPerClient, MaxWatchesPerToken: c.maxWatchesPerToken, MaxBodyBytesInFlight: c.maxBodyInFlight, BodyTimeout: c.bodyTimeout})
	ln = api.Listener(ln)
	dialects, _ := c.dialects() // validated above
	for _, d := range dialects {
		dialectRegister[d](api, svc)
	}
	admin.Register(api, svc, admin.Ops{Rotate: rotateKeys(ctx, keys, svc.Store(), svc.ResealSecrets, log), Backup: backupOf(store)})
	web.Mount(api, svc, web.Options{Secure: c.tlsCert != "", // the dashboard at /ui/
		MaxSessionsPerToken: c.maxSessionsPerToken, MaxImportsPerToken: c.maxImportsPerToken, ImportBytes: c.maxImportBytes})

	srv := &nethttp.Server{
		Handler:           api.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		// A request's head and body; a body read by the API or a form has
		// its own --body-timeout from its first byte, and watch and event
		// streams (no body) lift the deadline for their lifetime.
		ReadTimeout: c.bodyTimeout + 10*time.Second,
		IdleTimeout: 120 * time.Second,
		ErrorLog:    slog.NewLogLogger(handler, slog.LevelWarn),
		TLSConfig:   tlsConfig,
		ConnContext: api.ConnContext,
	}
	srv.RegisterOnShutdown(svc.CloseWatches)
	scheme := "http"
	if c.tlsCert != "" {
		scheme = "https"
	}
	log.Info("envy is ready", "url", scheme+"://"+ln.Addr().String(), "store", where, "compat", strings.Join(dialects, ","), "startup", time.Since(start).Round(time.Millisecond))

	certs := reloadOnSIGHUP(tlsConfig, c.tlsCert, c.tlsKey)
	return serve(ctx, ln, srv, certs, stopping{drain: drain, closeWatches: svc.CloseWatches, delay: c.shutdownDelay, timeout: c.shutdownTimeout}, log)
}

// openAuditStreams opens the --audit-stream devices, or returns nil when
// none is given.
func (c *serverConfig) openAuditStreams(stdout io.Writer, log *slog.Logger) (*auditstream.Set, error) {
	if len(c.auditStreams) == 0 {
		return nil, nil
	}
	return auditstream.Open(c.auditStreams, auditstream.Options{View: envyhttp.AuditView, MaxSize: c.auditStreamMaxSize,
		Keep: c.auditStreamKeep, Queue: c.auditStreamQueue, Stdout: stdout, Logger: log})
}

// auditStreamOf is the service's view of the streams: none, not a nil
// *Set in an interface.
func auditStreamOf(s *auditstream.Set) service.AuditStream {
	if s == nil {
		return nil
	}
	return s
}
