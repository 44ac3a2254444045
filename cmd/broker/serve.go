package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime/debug"
	"sync"
	"time"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/storage/memory"
	"github.com/idbroker/broker/storage/postgres"
)

// The garbage collector's settings unless GOGC and GOMEMLIMIT are set. The
// broker's live heap is small (tens of MB) and nearly all it allocates is
// garbage at the end of a request, so Go's default of GOGC=100 collects
// very often: 400 gives back about a sixth of the CPU of a token exchange
// (issue 9's load runs). With many connections open the live heap grows,
// and 400 times it would too; the soft limit makes the collector work
// harder instead: at 1,000 connections the broker stayed under 120 MiB.
// A deployment that gives the broker more memory raises GOMEMLIMIT.
const (
	serveGCPercent   = 400
	serveMemoryLimit = 100 << 20
)

func serve(ctx context.Context, args []string, stderr io.Writer, env func(string) (string, bool)) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file (YAML); none runs a development instance")
	addr := fs.String("addr", envOr(env, "BROKER_ADDR", ""), "listen address (env BROKER_ADDR); overrides http.addr")
	issuer := fs.String("issuer", envOr(env, "BROKER_ISSUER", ""), "issuer URL advertised (env BROKER_ISSUER); overrides issuer")
	logFormat := fs.String("log-format", envOr(env, "BROKER_LOG_FORMAT", "text"), "log format: text or json")
	applyMigrations := fs.Bool("migrate", false, "apply database migrations before serving (postgres storage)")
	metricsAddr := fs.String("metrics-addr", envOr(env, "BROKER_METRICS_ADDR", ""), "serve /metrics on this address instead of the main one (env BROKER_METRICS_ADDR)")
	debugAddr := fs.String("debug-addr", envOr(env, "BROKER_DEBUG_ADDR", ""), "serve Go's pprof profiles at /debug/pprof/ on this address (keep it private)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := newLogger(stderr, *logFormat, slog.LevelInfo)
	if err != nil {
		return err
	}
	log = slog.New(broker.RequestLogHandler(log.Handler()))
	// The library logs through the default logger; give it ours.
	slog.SetDefault(log)
	if _, set := env("GOGC"); !set {
		debug.SetGCPercent(serveGCPercent)
	}
	if _, set := env("GOMEMLIMIT"); !set {
		debug.SetMemoryLimit(serveMemoryLimit)
	}

	cfg, err := loadConfig(*configPath, *addr, *issuer, env)
	if err != nil {
		return err
	}
	if *metricsAddr != "" {
		cfg.HTTP.MetricsAddr = *metricsAddr
	}
	secret, err := rootSecret(env, log)
	if err != nil {
		return err
	}
	previous, err := broker.PreviousRootSecretsFromEnv(env)
	if err != nil {
		return err
	}
	if *applyMigrations && cfg.Storage.Type == "postgres" {
		if err := postgres.Migrate(ctx, cfg.Storage.DSN); err != nil {
			return err
		}
		log.Info("database migrations applied", "schema_version", postgres.SchemaVersion)
	}
	store, err := openStorage(ctx, cfg.Storage)
	if err != nil {
		return err
	}
	defer store.Close()

	ln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// The broker's handler takes over once the broker is built; the
	// development upstream answers before that, so that its connector's
	// discovery, at start, finds it on this very listener.
	brokerHandler := newLateHandler()
	handler := http.Handler(brokerHandler)
	dev := *configPath == ""
	if dev {
		up, err := newDevUpstream(devListenBase(cfg.HTTP.Addr)+devUpstreamPath, cfg.Issuer)
		if err != nil {
			return err
		}
		handler = up.mount(handler)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second, // above broker.MaxUpstreamTimeout: a request that waits out a hung upstream still gets its 503
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 2)
	serving := false
	if dev {
		go func() { errc <- srv.Serve(ln) }()
		serving = true
	}
	defer func() {
		if serving {
			srv.Close() // a no-op after a graceful shutdown
		} else {
			ln.Close()
		}
	}()

	b, err := broker.New(ctx, cfg, broker.Options{Storage: store, Secret: secret, PreviousSecrets: previous, Logger: log})
	if err != nil {
		return err
	}
	brokerHandler.set(b.Handler())
	if dev {
		log.Warn("development instance: memory storage, codes written to this log, client \"dev\" accepts any loopback redirect URI, "+
			"client \"dev-service\" has a published secret, and the upstream at "+devUpstreamPath+" signs in anyone; do not use in production",
			"issuer", cfg.Issuer)
	}
	logConnectors(ctx, log, cfg)
	// Background work outlives the signal until requests in flight are
	// done (their back-channel logouts included), then stops and is
	// waited for.
	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		b.Run(bgCtx)
	}()
	defer func() {
		stopBackground()
		<-ran
	}()
	if !serving {
		go func() { errc <- srv.Serve(ln) }()
		serving = true
	}
	log.Info("broker listening", "addr", ln.Addr().String(), "issuer", cfg.Issuer, "storage", cfg.Storage.Type)
	if *debugAddr != "" {
		dln, err := net.Listen("tcp", *debugAddr)
		if err != nil {
			return fmt.Errorf("listen for pprof: %w", err)
		}
		dsrv := &http.Server{Handler: pprofHandler(), ReadHeaderTimeout: 5 * time.Second}
		go func() { errc <- dsrv.Serve(dln) }()
		defer dsrv.Close()
		log.Info("pprof listening", "addr", dln.Addr().String())
	}
	if cfg.HTTP.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.HTTP.MetricsAddr)
		if err != nil {
			return fmt.Errorf("listen for metrics: %w", err)
		}
		msrv := &http.Server{Handler: b.MetricsHandler(), ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}
		go func() { errc <- msrv.Serve(mln) }()
		defer msrv.Close()
		log.Info("metrics listening", "addr", mln.Addr().String())
	}

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing requests in flight")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

func envOr(env func(string) (string, bool), name, def string) string {
	if v, ok := env(name); ok && v != "" {
		return v
	}
	return def
}

// loadConfig reads the file, or makes the development configuration, and
// applies the flags, which win over the file.
func loadConfig(path, addr, issuer string, env func(string) (string, bool)) (broker.Config, error) {
	if path == "" {
		if addr == "" {
			addr = "127.0.0.1:8080"
		}
		if issuer == "" {
			issuer = "http://" + displayHost(addr)
		}
		cfg := withDevExtras(broker.DevelopmentConfig(issuer, addr), devListenBase(addr))
		return cfg, cfg.Validate()
	}
	cfg, err := broker.LoadConfig(path, env)
	if err != nil {
		return broker.Config{}, err
	}
	if addr != "" {
		cfg.HTTP.Addr = addr
	}
	if issuer != "" {
		cfg.Issuer = issuer
	}
	return cfg, cfg.Validate()
}

// displayHost makes a listen address into a host a browser can reach.
func displayHost(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// rootSecret reads BROKER_SECRET (or BROKER_SECRET_FILE), or makes an
// ephemeral one and says so.
func rootSecret(env func(string) (string, bool), log *slog.Logger) (broker.RootSecret, error) {
	s, ok, err := broker.RootSecretFromEnv(env)
	if err != nil {
		return broker.RootSecret{}, err
	}
	if !ok {
		log.Warn("no BROKER_SECRET: using an ephemeral root secret; keys and codes will not survive a restart")
		return broker.NewEphemeralRootSecret(), nil
	}
	return s, nil
}

func openStorage(ctx context.Context, c broker.StorageConfig) (storage.Storage, error) {
	switch c.Type {
	case "memory":
		return memory.New(), nil
	case "postgres":
		return postgres.Open(ctx, c.DSN)
	default:
		return nil, fmt.Errorf("storage type %q is not supported", c.Type)
	}
}

// pprofHandler serves Go's profiles on their own listener, never on the
// public one.
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// lateHandler holds requests until set: the listener is open before the
// broker is built (for the development upstream), and a request that
// arrives meanwhile waits for the broker rather than failing.
type lateHandler struct {
	once  sync.Once
	ready chan struct{}
	h     http.Handler
}

func newLateHandler() *lateHandler { return &lateHandler{ready: make(chan struct{})} }

func (l *lateHandler) set(h http.Handler) {
	l.once.Do(func() {
		l.h = h
		close(l.ready)
	})
}

func (l *lateHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	select {
	case <-l.ready:
		l.h.ServeHTTP(w, r)
	case <-r.Context().Done():
	}
}
