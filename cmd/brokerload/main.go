// Command brokerload drives a running broker with load and prints, per
// scenario, requests per second, p50/p95/p99 latency, errors, the
// broker's and the tool's own CPU time per request and the broker's
// resident memory, beside the signing floor of this machine.
//
// The tool is also the upstream identity provider: it serves OpenID
// Connect discovery, a JWKS, an /authorize that approves at once and a
// /token on a fixed loopback address (--upstream-addr, 127.0.0.1:9400),
// and signs the upstream tokens. The broker discovers that upstream, so
// the address is known before either starts. A run, from the module root
// (the broker is built first so that $! is its pid, not go run's):
//
//	go run ./cmd/brokerload config > /tmp/brokerload.yaml
//	go build -o /tmp/broker ./cmd/broker
//	/tmp/broker serve --config /tmp/brokerload.yaml &
//	go run ./cmd/brokerload run --broker-pid $!
//
// "config --storage postgres" writes a configuration whose dsn is
// ${DATABASE_URL}. "run" starts the upstream, waits for the broker to
// answer discovery, measures the floor, then runs each scenario in turn.
//
// Scenarios (--scenarios, default all):
//
//	exchange-existing  token exchange (RFC 8693) for a warmed pool of --users users
//	exchange-new       token exchange for a first-time subject each time, with tokens
//	                   signed before measuring; checks afterwards that each got its
//	                   own UUID, kept on a second exchange
//	login              authorize → upstream → callback → redirect → code exchange
//	jwks-discovery     GET JWKS and discovery in turn
//	refresh            refresh-token rotation, one chain per worker
//	introspection      POST /introspect of a fresh access token
//
// The floor is how many signatures per second min(--concurrency,
// GOMAXPROCS) goroutines make with the broker's access-token algorithm
// (read from a token it issues, or --alg), measured for --floor-duration
// before the scenarios; "of floor" is a scenario's rate divided by it.
//
// With --rate the load is an open loop: request i is scheduled at i/rate
// seconds and its latency counts from then, so queueing shows in the
// percentiles instead of lowering the offered load. --concurrency still
// caps requests in flight; raise it if "behind schedule" grows.
//
// Load goes only to loopback addresses: --broker must be one, every
// redirect followed must be one, and the dialer refuses any other. Every
// run ends by itself: at --duration, or --requests, whichever is first
// (with --requests alone, after at most an hour).
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Defaults shared by "config" and "run", so a generated configuration
// matches a run with no flags. The secrets are for loopback load tests
// only.
const (
	defaultBroker         = "http://127.0.0.1:8080"
	defaultUpstreamAddr   = "127.0.0.1:9400"
	defaultConnector      = "brokerload"
	defaultUpstreamClient = "broker"
	defaultUpstreamSecret = "brokerload-upstream-secret-0123456789abcdef"
	defaultClientID       = "load"
	defaultClientSecret   = "brokerload-client-secret-0123456789abcdefgh"
	defaultAudience       = "https://api.brokerload.test"
	defaultRedirectURI    = "http://127.0.0.1:9401/callback"
	maxDuration           = time.Hour
	maxConcurrency        = 10000
	requestsOnlyDuration  = time.Hour
	rssInterval           = 250 * time.Millisecond
)

func main() {
	// The tool shares the machine with what it measures: collecting less
	// often leaves more CPU to the broker (see the broker's serveGCPercent).
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return // help was asked for and printed
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "brokerload:", err)
		os.Exit(2)
	}
}

const usage = `usage: brokerload [run] [flags]     drive a broker (the default command)
       brokerload config [flags]    print a broker configuration for the tool

A load run, from the module root:

  go run ./cmd/brokerload config > /tmp/brokerload.yaml
  go build -o /tmp/broker ./cmd/broker
  /tmp/broker serve --config /tmp/brokerload.yaml &
  go run ./cmd/brokerload run --broker-pid $!

"brokerload run -h" and "brokerload config -h" list the flags.
`

// run is main without the process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") && args[0] != "-h" && args[0] != "--help" {
		return runLoad(ctx, args, stdout, stderr)
	}
	switch args[0] {
	case "run":
		return runLoad(ctx, args[1:], stdout, stderr)
	case "config":
		return runConfig(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// common are the flags "config" and "run" share.
type common struct {
	broker         string
	upstreamAddr   string
	connector      string
	upstreamClient string
	upstreamSecret string
	clientID       string
	clientSecret   string
	audience       string
	redirectURI    string
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.broker, "broker", defaultBroker, "the broker's URL (a loopback address)")
	fs.StringVar(&c.upstreamAddr, "upstream-addr", defaultUpstreamAddr, "loopback address of the tool's upstream (the connector's issuer)")
	fs.StringVar(&c.connector, "connector", defaultConnector, "id of the tool's upstream connector in the broker configuration")
	fs.StringVar(&c.upstreamClient, "upstream-client-id", defaultUpstreamClient, "the broker's client id at the tool's upstream")
	fs.StringVar(&c.upstreamSecret, "upstream-client-secret", defaultUpstreamSecret, "the broker's client secret at the tool's upstream")
	fs.StringVar(&c.clientID, "client-id", defaultClientID, "the tool's confidential client at the broker")
	fs.StringVar(&c.clientSecret, "client-secret", defaultClientSecret, "the tool's client secret at the broker")
	fs.StringVar(&c.audience, "audience", defaultAudience, "audience the tool's exchanges ask for (one of the client's audiences)")
	fs.StringVar(&c.redirectURI, "redirect-uri", defaultRedirectURI, "the client's loopback redirect URI (never served: the flow stops at it)")
}

func runConfig(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs)
	storage := fs.String("storage", "memory", "broker storage: memory, or postgres with dsn ${DATABASE_URL}")
	alg := fs.String("alg", "ES256", "the broker's access-token algorithm: RS256, ES256 or EdDSA")
	idAlg := fs.String("id-alg", "RS256", "the broker's ID-token algorithm: RS256 (the OpenID Connect default), ES256 or EdDSA")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: brokerload config [flags] > broker.yaml\n\nPrints a broker configuration matching the tool's defaults.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("config: unexpected arguments %q", fs.Args())
	}
	u, err := checkLoopbackURL(c.broker)
	if err != nil {
		return fmt.Errorf("--broker: %w", err)
	}
	if u.Port() == "" {
		return fmt.Errorf("--broker %q: give a port; the broker listens on it", c.broker)
	}
	if err := checkLoopbackAddr(c.upstreamAddr); err != nil {
		return fmt.Errorf("--upstream-addr: %w", err)
	}
	if !slices.Contains(upstreamAlgs, jose.SignatureAlgorithm(*alg)) {
		return fmt.Errorf("--alg %q is not one of RS256, ES256, EdDSA", *alg)
	}
	if !slices.Contains(upstreamAlgs, jose.SignatureAlgorithm(*idAlg)) {
		return fmt.Errorf("--id-alg %q is not one of RS256, ES256, EdDSA", *idAlg)
	}
	return writeBrokerConfig(stdout, brokerConfig{
		broker: u, upstreamAddr: c.upstreamAddr, storage: *storage, accessAlg: *alg, idAlg: *idAlg,
		connector: c.connector, upstreamClient: c.upstreamClient, upstreamSecret: c.upstreamSecret,
		clientID: c.clientID, clientSecret: c.clientSecret, audience: c.audience, redirectURI: c.redirectURI,
	})
}

// options configure a load run.
type options struct {
	common
	scenarios     []string
	plan          plan
	users         int
	alg           string // floor algorithm; "" reads it from a broker token
	upstreamAlg   jose.SignatureAlgorithm
	keysPath      string
	brokerPID     int
	timeout       time.Duration
	wait          time.Duration
	floorDuration time.Duration
	logger        *slog.Logger
	progress      io.Writer // a line as each step starts; nil for none
	// upstream, when set, is used instead of starting one on
	// upstreamAddr (tests start theirs before the broker).
	upstream *upstream
}

func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	o.common.register(fs)
	scenarios := fs.String("scenarios", "all", "comma-separated scenarios: "+strings.Join(scenarioNames, ", "))
	fs.IntVar(&o.plan.concurrency, "concurrency", 16, "concurrent workers (requests in flight)")
	fs.DurationVar(&o.plan.duration, "duration", 10*time.Second, "measured time per scenario")
	fs.Int64Var(&o.plan.requests, "requests", 0, "stop each scenario after this many requests (0: by --duration)")
	fs.Float64Var(&o.plan.rate, "rate", 0, "open-loop target rate in requests/s (0: closed loop)")
	fs.IntVar(&o.users, "users", 1000, "users in the pool of existing users")
	fs.StringVar(&o.alg, "alg", "", "algorithm of the signing floor (RS256, ES256, EdDSA); empty: the broker's access-token algorithm")
	upAlg := fs.String("upstream-alg", "ES256", "algorithm the tool's upstream signs its tokens with (RS256, ES256, EdDSA)")
	fs.StringVar(&o.keysPath, "upstream-keys", defaultKeysPath(), "file keeping the upstream's keys between runs; empty: fresh keys")
	fs.IntVar(&o.brokerPID, "broker-pid", 0, "pid of the broker, to report its resident memory (0: n/a)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "timeout of one HTTP request")
	fs.DurationVar(&o.wait, "wait", 30*time.Second, "how long to wait for the broker to answer")
	fs.DurationVar(&o.floorDuration, "floor-duration", 2*time.Second, "how long to measure the signing floor (0: skip)")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage, "\nflags of run:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("run: unexpected arguments %q", fs.Args())
	}
	durationSet := false
	fs.Visit(func(f *flag.Flag) { durationSet = durationSet || f.Name == "duration" })
	if o.plan.requests > 0 && !durationSet {
		o.plan.duration = requestsOnlyDuration
	}
	if *scenarios == "all" {
		o.scenarios = scenarioNames
	} else {
		for _, s := range strings.Split(*scenarios, ",") {
			if s = strings.TrimSpace(s); !slices.Contains(scenarioNames, s) {
				return fmt.Errorf("--scenarios: %q is not one of %s", s, strings.Join(scenarioNames, ", "))
			}
			o.scenarios = append(o.scenarios, strings.TrimSpace(s))
		}
	}
	o.upstreamAlg = jose.SignatureAlgorithm(*upAlg)
	o.logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	o.progress = stderr
	results, header, floor, err := load(ctx, o)
	if header != "" {
		// Interrupted runs still report the scenarios they finished.
		writeReport(stdout, header, floor, results)
	}
	return err
}

// validate checks the options before anything is sent.
func (o *options) validate() error {
	if _, err := checkLoopbackURL(o.broker); err != nil {
		return fmt.Errorf("--broker: %w", err)
	}
	if _, err := checkLoopbackURL(o.redirectURI); err != nil {
		return fmt.Errorf("--redirect-uri: %w", err)
	}
	p := o.plan
	switch {
	case p.concurrency < 1 || p.concurrency > maxConcurrency:
		return fmt.Errorf("--concurrency %d is outside [1, %d]", p.concurrency, maxConcurrency)
	case p.duration <= 0 || p.duration > maxDuration:
		return fmt.Errorf("--duration %s is outside (0, %s]", p.duration, maxDuration)
	case p.requests < 0:
		return fmt.Errorf("--requests %d is negative", p.requests)
	case p.rate < 0 || p.rate > 1e6:
		return fmt.Errorf("--rate %g is outside [0, 1e6]", p.rate)
	case o.users < 1:
		return fmt.Errorf("--users %d must be at least 1", o.users)
	case o.alg != "" && !slices.Contains(upstreamAlgs, jose.SignatureAlgorithm(o.alg)):
		return fmt.Errorf("--alg %q is not one of RS256, ES256, EdDSA", o.alg)
	case !slices.Contains(upstreamAlgs, o.upstreamAlg):
		return fmt.Errorf("--upstream-alg %q is not one of RS256, ES256, EdDSA", o.upstreamAlg)
	case o.timeout <= 0 || o.wait < 0 || o.floorDuration < 0 || o.floorDuration > time.Minute:
		return errors.New("--timeout must be positive, --wait not negative, --floor-duration within [0, 1m]")
	}
	return nil
}

func (o *options) say(format string, args ...any) {
	if o.progress != nil {
		fmt.Fprintf(o.progress, format+"\n", args...)
	}
}

// load runs the scenarios against the broker and returns their results,
// the report's header and the floor. It fails only when nothing can be
// measured (bad options, the upstream cannot listen, the broker never
// answers); a scenario that fails is a result.
func load(ctx context.Context, o options) ([]result, string, floorResult, error) {
	if err := o.validate(); err != nil {
		return nil, "", floorResult{}, err
	}
	brokerURL, _ := checkLoopbackURL(o.broker)
	up := o.upstream
	if up == nil {
		var err error
		up, err = startUpstream(upstreamConfig{
			Addr: o.upstreamAddr, ClientID: o.upstreamClient, ClientSecret: o.upstreamSecret,
			Alg: o.upstreamAlg, KeysPath: o.keysPath, Logger: o.logger,
		})
		if err != nil {
			return nil, "", floorResult{}, err
		}
		defer up.close()
	}
	bc := &brokerClient{
		hc: newHTTPClient(o.plan.concurrency, o.timeout), base: brokerURL,
		clientID: o.clientID, auth: basicAuth(o.clientID, o.clientSecret), connector: o.connector,
		redirectURI: o.redirectURI, audience: o.audience,
	}
	defer bc.hc.CloseIdleConnections()
	o.say("upstream %s; waiting for the broker at %s", up.issuer, brokerURL)
	if err := bc.waitReady(ctx, o.wait); err != nil {
		return nil, "", floorResult{}, err
	}
	workers, err := bc.newWorkerClients(o.plan.concurrency, o.timeout)
	if err != nil {
		return nil, "", floorResult{}, err
	}
	defer func() {
		for _, w := range workers {
			w.close()
		}
	}()
	e := &env{
		broker: bc, workers: workers, up: up, users: o.users, runID: newRunID(),
		firstTimeTokens: firstTimeTokens(o.plan),
	}

	floor := floorResult{alg: o.alg, goroutines: min(o.plan.concurrency, runtime.GOMAXPROCS(0)), note: "from --alg"}
	if floor.alg == "" {
		floor.alg, floor.note = "ES256", "the broker's access-token algorithm"
		t, err := bc.login(ctx, poolUser(0), false)
		if err == nil {
			floor.alg, err = jwtAlg(t.AccessToken)
		}
		if err != nil {
			floor.alg, floor.note = "ES256", fmt.Sprintf("ES256: could not read the broker's algorithm: %v", err)
		}
	}
	if o.floorDuration > 0 {
		o.say("measuring the %s signing floor for %s", floor.alg, o.floorDuration)
		var err error
		if floor.perSecond, err = measureFloor(ctx, jose.SignatureAlgorithm(floor.alg), floor.goroutines, o.floorDuration); err != nil {
			floor.note = err.Error()
		}
	} else {
		floor.note = "--floor-duration 0"
	}

	var results []result
	for _, name := range o.scenarios {
		if ctx.Err() != nil {
			break
		}
		s, err := newScenario(name, e)
		if err != nil {
			return nil, "", floorResult{}, err
		}
		o.say("%s: preparing", name)
		r := result{name: name}
		if r.setupErr = s.prepare(ctx, o.plan.concurrency); r.setupErr != nil {
			results = append(results, r)
			continue
		}
		o.say("%s: measuring", name)
		rss := sampleRSS(ctx, o.brokerPID, rssInterval)
		cpu, toolCPU := meterCPU(o.brokerPID), meterCPU(os.Getpid())
		r.m = drive(ctx, o.plan, s.do)
		r.cpu, r.cpuErr = cpu.used()
		r.toolCPU, r.toolCPUErr = toolCPU.used()
		r.rss, r.rssErr = rss.finish()
		var problems []error
		r.note, problems = s.verify(ctx)
		for _, p := range problems {
			r.m.failed++
			r.m.errors.add(p.Error())
		}
		results = append(results, r)
	}
	return results, header(o, brokerURL.String()), floor, ctx.Err()
}

func header(o options, broker string) string {
	pid := "pid n/a"
	if o.brokerPID != 0 {
		pid = fmt.Sprintf("pid %d", o.brokerPID)
	}
	mode := "closed loop"
	if o.plan.rate > 0 {
		mode = fmt.Sprintf("open loop at %g requests/s", o.plan.rate)
	}
	limit := fmt.Sprintf("%s per scenario", o.plan.duration)
	if o.plan.requests > 0 {
		limit = fmt.Sprintf("%d requests (at most %s) per scenario", o.plan.requests, o.plan.duration)
	}
	return fmt.Sprintf("brokerload: %s (%s), %d workers, %s, %s, upstream tokens %s",
		broker, pid, o.plan.concurrency, mode, limit, o.upstreamAlg)
}

// newRunID names a run, so its first-time subjects are new to a broker
// that saw earlier runs.
func newRunID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}
