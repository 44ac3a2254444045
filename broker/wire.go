package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/idbroker/broker/broker/admin"
	"github.com/idbroker/broker/broker/answer"
	"github.com/idbroker/broker/broker/authflow"
	"github.com/idbroker/broker/broker/backchannel"
	"github.com/idbroker/broker/broker/clients"
	"github.com/idbroker/broker/broker/edge"
	"github.com/idbroker/broker/broker/exchange"
	"github.com/idbroker/broker/broker/identity"
	"github.com/idbroker/broker/broker/ratelimit"
	"github.com/idbroker/broker/broker/registration"
	"github.com/idbroker/broker/broker/resources"
	"github.com/idbroker/broker/broker/tokens"
	"github.com/idbroker/broker/keys"
	"github.com/idbroker/broker/web"
	"github.com/rs/cors"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// New builds a broker from its configuration: each part with what it
// needs, then the library's provider around them.
func New(ctx context.Context, cfg Config, o Options) (*Broker, error) {
	if o.Storage == nil {
		return nil, errors.New("broker: no storage")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	o.Logger = slog.New(RequestLogHandler(o.Logger.Handler()))
	proxies, err := edge.ParseProxies(cfg.HTTP.TrustedProxies)
	if err != nil {
		return nil, err
	}
	pages, err := web.NewRenderer()
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	stored, err := o.Storage.ListClients(ctx)
	if err != nil {
		return nil, fmt.Errorf("broker: list stored clients: %w", err)
	}
	km, err := keys.New(ctx, o.Storage, keysConfig(cfg, o))
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	sealer, err := keys.NewEnvelope(upstreamTokenLabel, derived(o, purposeUpstreamSeal))
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	m := newMetrics(km.KeysCreated)
	o.HTTPClient = m.instrumentClient(o.HTTPClient)
	branding := web.Branding{ProductName: cfg.Branding.ProductName, LogoURL: cfg.Branding.LogoURL,
		PrimaryColor: cfg.Branding.PrimaryColor, SupportURL: cfg.Branding.SupportURL}
	errorPages := answer.ErrorPages{Renderer: pages, Branding: branding, Log: o.Logger}
	b := &Broker{
		cfg: cfg, issuer: cfg.Issuer, store: o.Storage, keys: km, log: o.Logger, now: o.Clock, metrics: m, proxies: proxies,
		clients:     clients.NewDirectory(o.Storage),
		errorPages:  errorPages,
		failures:    answer.Failures{Log: o.Logger, StorageErrors: m.storageErrors, Pages: errorPages},
		corsOrigins: map[string]bool{},
	}
	for _, cc := range cfg.Clients {
		b.noteClient(cc.GrantTypes)
		b.clients.AddConfigured(cc.client())
		for _, origin := range cc.AllowedOrigins {
			b.corsOrigins[origin] = true
		}
	}
	if err := b.checkStoredClients(stored); err != nil {
		return nil, err
	}
	// A resource both configured and stored stops the broker: which of
	// the two governs its tokens would be unclear.
	targets, err := resources.NewRegistry(cfg.configuredResources(), o.Storage, o.Clock)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	if err := targets.CheckStored(ctx); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	if b.upstreams, err = openConnectors(ctx, cfg, o); err != nil {
		return nil, err
	}
	storedConns, err := newStoredConnectors(cfg, o)
	if err != nil {
		return nil, err
	}
	if err := b.loadOrganizations(ctx, storedConns); err != nil {
		return nil, err
	}
	// The library's provider reaches the broker only through its op.Server
	// methods and opStorage; its decoder and encoder read and answer the
	// browser's endpoints as the library would.
	provider, err := op.NewProvider(&op.Config{
		// The broker issues no opaque access tokens; keying the library's
		// Crypto from the root secret means a token "encrypted" under a
		// guessed key (the zero key, say) never decrypts.
		CryptoKey:                [32]byte(o.Secret.derive(purposeLibraryCrypt)),
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		DefaultLogoutRedirectURI: authflow.SignedOutPath,
	}, &opStorage{b: b}, op.StaticIssuer(cfg.Issuer), providerOptions(cfg)...)
	if err != nil {
		return nil, fmt.Errorf("broker: provider: %w", err)
	}

	// Organisations (b.orgs, loaded above) are read on every login and
	// exchange, from memory.
	identities := identity.New(o.Storage, o.Clock, o.Logger).WithOrganizations(identity.Organizations{
		Directory: b.orgs, Members: o.Storage,
		RefuseUnknownUpstream: cfg.Organizations.UnknownUpstreamOrg == UnknownUpstreamOrgRefuse,
	})
	limiter := &ratelimit.Limiter{Store: o.Storage, Now: o.Clock, Log: o.Logger, Refused: m.rateLimited}
	b.backchannel = backchannel.New(backchannel.Options{Issuer: cfg.Issuer, Keys: km,
		LogoutURI: b.backchannelLogoutURI, Now: o.Clock, Log: o.Logger})
	b.auth = &clients.Authenticator{
		Directory: b.clients, KeySets: clients.NewKeySets(o.HTTPClient, o.Clock), Recent: new(clients.Successes),
		Limiter: limiter, JTIs: o.Storage, Failures: b.failures, Log: o.Logger, Now: o.Clock,
		Issuer: cfg.Issuer, TokenEndpoint: cfg.Issuer + tokenPath, ClockSkew: cfg.Tokens.ClockSkew,
		FailureLimit: cfg.Limits.TokenFailuresPerClient,
	}
	fetcher := b.thirdPartyFetcher(cfg.ClientMetadataDocuments, o)
	b.auth.ThirdPartyKeySets = clients.NewKeySets(fetcher, o.Clock)
	if cfg.ClientMetadataDocuments.Enabled {
		b.useClientDocuments(cfg.ClientMetadataDocuments, fetcher, limiter, o)
	}
	b.tokens = tokens.New(tokens.Options{
		Issuer: cfg.Issuer, Config: cfg.Tokens, Store: o.Storage, Keys: km, Auth: b.auth,
		Identities: identities, Upstreams: b.upstreams, Orgs: b.orgs, Targets: targets, Sealer: sealer, RefreshKey: o.Secret.derive(purposeRefresh),
		Failures: b.failures, Log: o.Logger, Now: o.Clock, ClientCredentialsUsed: &b.advertiseClientCredentials,
		SessionEnded: b.backchannel.Notify,
	})
	b.exchange = exchange.New(exchange.Options{
		Issuer: cfg.Issuer, Tokens: b.tokens, Identities: identities, Upstreams: b.upstreams,
		Failures: b.failures, Log: o.Logger, Exchanges: m.exchanges,
		SSOEnforced: m.ssoEnforced,
	})
	b.flow = authflow.New(authflow.Options{
		Issuer: cfg.Issuer, Store: o.Storage, Clients: b.clients, Upstreams: b.upstreams, Identities: identities, Orgs: b.orgs,
		Keys: km, Sealer: sealer, Limiter: limiter, Proxies: proxies, Backchannel: b.backchannel, Targets: targets,
		OTPHash: o.Secret.derive(purposeOTP), CSRFKey: o.Secret.derive(purposeCSRF),
		Pages: pages, Branding: branding, ErrorPages: errorPages, Failures: b.failures, Log: o.Logger, Now: o.Clock,
		Decoder: provider.Decoder(), Encoder: provider.Encoder(),
		Metrics: authflow.Metrics{Logins: m.logins, OTPCodes: m.otpCodes, BindingRefusals: m.bindingRefusals,
			SSOEnforced: m.ssoEnforced, ConsentDecisions: m.consents},
		Config: authflow.Config{
			AuthRequestTTL: cfg.Tokens.AuthRequestTTL, CodeTTL: cfg.Tokens.CodeTTL,
			OTPCodeTTL: cfg.OTP.CodeTTL, OTPMaxAttempts: cfg.OTP.MaxAttempts,
			OTPPerEmail: cfg.Limits.OTPPerEmail, OTPPerEmailCeiling: cfg.Limits.otpPerEmailCeiling(), OTPPerIP: cfg.Limits.OTPPerIP,
			SessionIdleTTL: cfg.Sessions.IdleTTL, SessionAbsoluteTTL: cfg.Sessions.AbsoluteTTL,
			AccessTokenTTL: cfg.Tokens.AccessTokenTTL,
		},
	})
	ao := adminOptions(cfg, o.Storage, o.Clock)
	ao.ClientChanged, ao.SessionEnded, ao.ResourceChanged = b.noteClient, b.backchannel.Notify, targets.Forget
	ao.ConnectorSettings = storedConns
	ao.ConfiguredConnectors = configuredConnectors(cfg, storedConns)
	b.admin = admin.New(ao)
	b.registrar = registration.New(registration.Options{
		Config: cfg.Registration, Issuer: cfg.Issuer, Store: o.Storage, Limiter: limiter,
		Scopes: supportedScopes, ResourceScopes: targets.ThirdPartyScopes, Configured: b.clients.Configured,
		Failures: b.failures, Log: o.Logger, Now: o.Clock,
	})

	// The library serves the token endpoint's dispatch, discovery and the
	// key set; /userinfo, /authorize and /end_session are the broker's
	// own (Handler).
	b.LegacyServer = op.NewLegacyServer(provider, op.Endpoints{
		Authorization: op.NewEndpoint(authorizePath),
		Token:         op.NewEndpoint(tokenPath),
		Introspection: op.NewEndpoint(introspectPath),
		Revocation:    op.NewEndpoint(revokePath),
		EndSession:    op.NewEndpoint(endSessionPath),
		JwksURI:       op.NewEndpoint(jwksPath),
	})
	return b, nil
}

// Handler returns the broker's HTTP handler: each part's endpoints on one
// mux, inside the edge every request passes (observe, body limit,
// response headers, client address, text checks).
func (b *Broker) Handler() http.Handler {
	corsOptions := cors.Options{
		// Only origins a client registered; never "*", so a browser
		// never sends credentials cross-origin to an unknown site.
		AllowOriginFunc: b.originAllowed,
		AllowedMethods:  []string{http.MethodGet, http.MethodPost},
		AllowedHeaders:  []string{"Authorization", "Content-Type"},
	}
	// The flow serves the finished login's callback itself (Register),
	// so the library's route for it is never reached.
	lib := op.RegisterLegacyServer(b, http.NotFound, op.WithServerCORSOptions(&corsOptions))
	mux := http.NewServeMux()
	b.flow.Register(mux)
	b.registrar.Register(mux)
	mux.Handle(discoveryPath, notModified(func() string { return b.discoveryDoc().etag }, lib))
	for _, p := range metadataPaths(b.issuer) {
		mux.Handle(p, cors.New(corsOptions).Handler(http.HandlerFunc(b.serveMetadata)))
	}
	mux.Handle(jwksPath, notModified(func() string { _, tag := b.keys.JWKS(); return tag }, lib))
	mux.Handle(tokenPath, clientEndpoint(b.tokenEndpoint(lib, cors.New(corsOptions))))
	mux.Handle(introspectPath, clientEndpoint(lib))
	mux.Handle(revokePath, clientEndpoint(lib))
	mux.Handle(userinfoPath, cors.New(corsOptions).Handler(http.HandlerFunc(b.tokens.ServeUserinfo)))
	mux.HandleFunc("GET /readyz", b.readyz)
	if b.cfg.HTTP.MetricsAddr == "" {
		mux.Handle("GET /metrics", b.MetricsHandler())
	}
	if b.cfg.Admin.Enabled {
		mux.Handle(adminPathPrefix, b.adminHandler())
	}
	mux.Handle(staticPath, http.StripPrefix("/static", web.Static()))
	mux.Handle("/", lib)
	return b.observe(mux, edge.LimitBody(edge.WithResponseHeader(b.proxies.WithSource(b.checkInput(mux)))))
}

// keysConfig is the signing-key configuration, on the broker's clock.
func keysConfig(cfg Config, o Options) keys.Config {
	kc := SigningKeysConfig(cfg, keks(o), o.Logger)
	kc.Clock = o.Clock
	return kc
}

// SigningKeysConfig is the signing-key configuration of a broker
// configured with cfg, whose key-encryption keys are keks (the current
// root secret's first): the configured algorithms, and an ID-token key
// for each other algorithm a client may ask for (Config.idTokenAlgorithms).
func SigningKeysConfig(cfg Config, keks [][]byte, log *slog.Logger) keys.Config {
	return keys.Config{
		IDTokenAlgorithm:     cfg.Keys.IDTokenAlgorithm,
		AccessTokenAlgorithm: cfg.Keys.AccessTokenAlgorithm,
		// Every other algorithm a client may ask for its ID tokens.
		ExtraIDTokenAlgorithms: cfg.idTokenAlgorithms()[1:],
		RotationPeriod:         cfg.Keys.RotationPeriod,
		PrePublish:             cfg.Keys.PrePublish,
		JWKSMaxAge:             jwksMaxAge,
		// A key stays published until every token it signed has expired.
		RetireAfter: max(cfg.Tokens.AccessTokenTTL, cfg.Tokens.IDTokenTTL) + cfg.Tokens.ClockSkew,
		KEKs:        keks,
		Logger:      log,
	}
}

// keks are the key-encryption keys for signing keys: the current root
// secret's first.
func keks(o Options) [][]byte { return derived(o, purposeKEK) }

// derived returns the key for purpose under the current root secret, then
// under each previous one.
func derived(o Options, purpose string) [][]byte {
	out := [][]byte{o.Secret.derive(purpose)}
	for _, p := range o.PreviousSecrets {
		out = append(out, p.derive(purpose))
	}
	return out
}

func providerOptions(cfg Config) []op.Option {
	if strings.HasPrefix(cfg.Issuer, "https://") {
		return nil
	}
	return []op.Option{op.WithAllowInsecure()}
}
