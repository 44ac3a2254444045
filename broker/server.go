// Package broker is the OpenID Connect provider: it wires
// github.com/zitadel/oidc/v3/pkg/op in the Server style, runs the login
// flows, resolves upstream identities to platform users, and issues the
// broker's tokens. It imports upstream, keys, web and storage; none of them
// import it.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/idbroker/broker/broker/admin"
	"github.com/idbroker/broker/broker/answer"
	"github.com/idbroker/broker/broker/backchannel"
	"github.com/idbroker/broker/broker/clients"
	"github.com/idbroker/broker/broker/identity"
	"github.com/idbroker/broker/keys"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/upstream"
	"github.com/idbroker/broker/upstream/otp"
	"github.com/idbroker/broker/web"
	"github.com/rs/cors"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Paths the broker serves. They are fixed once here and advertised in
// discovery.
const (
	authorizePath      = "/authorize"
	callbackPath       = "/authorize/callback" // the library mounts it under authorizePath
	tokenPath          = "/token"
	userinfoPath       = "/userinfo"
	introspectPath     = "/introspect"
	revokePath         = "/revoke"
	endSessionPath     = "/end_session"
	jwksPath           = "/.well-known/jwks.json"
	discoveryPath      = "/.well-known/openid-configuration"
	loginPath          = clients.LoginPath
	loginCodePath      = "/login/code"
	loginResendPath    = "/login/resend"
	loginConnectorPath = "/login/connector"
	staticPath         = "/static/"
)

// Options are the broker's dependencies.
type Options struct {
	Storage storage.Storage // required
	Secret  RootSecret      // required
	// PreviousSecrets are root secrets being rotated out: still accepted
	// for decrypting what they protected, never used to protect anything
	// new (docs/design.md "Secrets").
	PreviousSecrets []RootSecret
	// Mailer delivers one-time codes for otp connectors whose mailer type
	// is "log" or unset; nil means the log.
	Mailer otp.Mailer
	Logger *slog.Logger
	Clock  func() time.Time
	// HTTPClient is used for every call to an upstream.
	HTTPClient *http.Client
}

// Broker is the identity broker. It embeds the library's LegacyServer and
// overrides what must be the broker's own.
type Broker struct {
	*op.LegacyServer

	cfg        Config
	issuer     string
	store      storage.Storage
	identities *identity.Resolver // every path that meets an upstream identity
	keys       *keys.Manager
	clients    *clients.Directory
	otp        *otp.Connector
	connectors map[string]upstream.Connector
	// connectorConfigs holds each connector's configuration by id, for
	// the settings the broker applies around it (timeout, re-check).
	connectorConfigs map[string]ConnectorConfig
	// byDomain maps an email domain to the connector that owns it.
	byDomain map[string]string
	sealer   *keys.Envelope // upstream refresh tokens, under the root secret (previous ones open)
	pages    *web.Renderer
	branding web.Branding
	// errorPages and failures answer what the broker refuses or cannot
	// serve (broker/answer).
	errorPages answer.ErrorPages
	failures   answer.Failures
	log        *slog.Logger
	now        func() time.Time
	secure     bool // issuer is https: cookies are Secure

	metrics        *metrics
	trustedProxies []netip.Prefix

	otpHash       keyedHash
	csrfKey       keyedHash
	refreshKey    keyedHash
	discovery     preEncoded
	corsOrigins   map[string]bool // of clients in the configuration
	storedClients storedClientCache

	// Machine clients (clientcredentials.go, clientauth.go, admin*.go).
	clientKeys *clients.KeySets
	// recentClientAuth lets clients that just authenticated skip the
	// failure count in storage (clientAuthLimited).
	recentClientAuth clients.Successes
	serviceUsers     sync.Map // client id → service user id, a cache
	// advertiseClientCredentials puts client_credentials in discovery:
	// set when a client that allows it is configured, found in storage
	// (at start, and within storedClientsTTL of any replica storing it),
	// created or updated through this broker, or used.
	advertiseClientCredentials atomic.Bool
	// advertiseTokenExchange puts token exchange in discovery, when and
	// as advertiseClientCredentials does client_credentials.
	advertiseTokenExchange atomic.Bool
	admin                  *admin.Admin

	// backchannel sends back-channel logout for ended sessions; its
	// deliveries run past the request, and Run closes it when it returns.
	backchannel *backchannel.Notifier
}

// New builds a broker from its configuration.
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
	proxies, err := parseTrustedProxies(cfg.HTTP.TrustedProxies)
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
	kc := SigningKeysConfig(cfg, keks(o), o.Logger)
	// An ID-token key for each algorithm a client names: those of the
	// configuration's clients, which stored clients are held to, and any
	// a stored client kept after the configuration stopped naming it.
	for _, a := range cfg.idTokenAlgorithms()[1:] {
		kc.ExtraIDTokenAlgorithms = append(kc.ExtraIDTokenAlgorithms, a)
	}
	for _, c := range stored {
		if a := c.IDTokenSignedResponseAlg; a != "" && a != cfg.Keys.IDTokenAlgorithm && slices.Contains(signingAlgorithms, a) && !slices.Contains(kc.ExtraIDTokenAlgorithms, a) {
			kc.ExtraIDTokenAlgorithms = append(kc.ExtraIDTokenAlgorithms, a)
		}
	}
	kc.Clock = o.Clock
	km, err := keys.New(ctx, o.Storage, kc)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	sealer, err := keys.NewEnvelope(upstreamTokenLabel, derived(o, purposeUpstreamSeal))
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	m := newMetrics(km.KeysCreated)
	o.HTTPClient = m.instrumentClient(o.HTTPClient)
	b := &Broker{
		cfg:              cfg,
		issuer:           cfg.Issuer,
		store:            o.Storage,
		identities:       identity.New(o.Storage, o.Clock, o.Logger),
		keys:             km,
		connectors:       map[string]upstream.Connector{},
		connectorConfigs: map[string]ConnectorConfig{},
		byDomain:         map[string]string{},
		sealer:           sealer,
		pages:            pages,
		branding: web.Branding{
			ProductName:  cfg.Branding.ProductName,
			LogoURL:      cfg.Branding.LogoURL,
			PrimaryColor: cfg.Branding.PrimaryColor,
			SupportURL:   cfg.Branding.SupportURL,
		},
		log:         o.Logger,
		now:         o.Clock,
		secure:      strings.HasPrefix(cfg.Issuer, "https://"),
		otpHash:     o.Secret.derive(purposeOTP),
		csrfKey:     o.Secret.derive(purposeCSRF),
		refreshKey:  o.Secret.derive(purposeRefresh),
		corsOrigins: map[string]bool{},
		metrics:     m,

		trustedProxies: proxies,
	}
	b.errorPages = answer.ErrorPages{Renderer: pages, Branding: b.branding, Log: o.Logger}
	b.failures = answer.Failures{Log: o.Logger, StorageErrors: m.storageErrors, Pages: b.errorPages}
	b.backchannel = backchannel.New(backchannel.Options{Issuer: cfg.Issuer, Keys: km,
		LogoutURI: b.backchannelLogoutURI, Now: o.Clock, Log: o.Logger})
	b.clients = clients.NewDirectory(o.Storage)
	b.clientKeys = clients.NewKeySets(o.HTTPClient, o.Clock)
	ao := adminOptions(cfg, o.Storage, o.Clock)
	ao.ClientChanged, ao.SessionEnded = b.noteClient, b.backchannel.Notify
	b.admin = admin.New(ao)
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
	if err := b.buildConnectors(ctx, o); err != nil {
		return nil, err
	}

	var cryptoKey [32]byte
	copy(cryptoKey[:], o.Secret.derive(purposeLibraryCrypt))
	provider, err := op.NewProvider(&op.Config{
		// The broker issues no opaque access tokens; keying the library's
		// Crypto from the root secret means a token "encrypted" under a
		// guessed key (the zero key, say) never decrypts.
		CryptoKey:                cryptoKey,
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		DefaultLogoutRedirectURI: endSessionPath + "/done",
	}, &opStorage{b: b}, op.StaticIssuer(cfg.Issuer), b.providerOptions()...)
	if err != nil {
		return nil, fmt.Errorf("broker: provider: %w", err)
	}
	// No Userinfo endpoint: the broker serves /userinfo itself
	// (userinfo.go).
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

// SigningKeysConfig is the signing-key configuration of a broker configured with
// cfg, whose key-encryption keys are keks (the current root secret's
// first).
func SigningKeysConfig(cfg Config, keks [][]byte, log *slog.Logger) keys.Config {
	return keys.Config{
		IDTokenAlgorithm:     cfg.Keys.IDTokenAlgorithm,
		AccessTokenAlgorithm: cfg.Keys.AccessTokenAlgorithm,
		RotationPeriod:       cfg.Keys.RotationPeriod,
		PrePublish:           cfg.Keys.PrePublish,
		JWKSMaxAge:           jwksMaxAge,
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

func (b *Broker) providerOptions() []op.Option {
	var opts []op.Option
	if !b.secure {
		opts = append(opts, op.WithAllowInsecure())
	}
	return opts
}

// SigningKeys returns the broker's signing keys.
func (b *Broker) SigningKeys() *keys.Manager { return b.keys }

// Run does the broker's background work until ctx is done: key refresh and
// rotation, and sweeping expired rows. When ctx is done it stops
// back-channel logout deliveries still retrying and waits for them.
func (b *Broker) Run(ctx context.Context) {
	defer b.backchannel.Close()
	go b.keys.Run(ctx)
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := b.store.DeleteExpired(ctx, b.now()); err != nil {
				b.log.WarnContext(ctx, "sweeping expired rows failed", "err", err)
			} else if n > 0 {
				b.log.DebugContext(ctx, "swept expired rows", "rows", n)
			}
		}
	}
}

// Handler returns the broker's HTTP handler.
func (b *Broker) Handler() http.Handler {
	corsOptions := cors.Options{
		// Only origins a client registered; never "*", so a browser
		// never sends credentials cross-origin to an unknown site.
		AllowOriginFunc: b.originAllowed,
		AllowedMethods:  []string{http.MethodGet, http.MethodPost},
		AllowedHeaders:  []string{"Authorization", "Content-Type"},
	}
	lib := op.RegisterLegacyServer(b, http.HandlerFunc(b.authorizeCallback), op.WithServerCORSOptions(&corsOptions))
	mux := http.NewServeMux()
	mux.Handle(authorizePath, issOnRedirect(b.issuer, htmlErrors(b, b.checkAuthorizeParams(lib), "This sign-in link is not valid",
		"The application that sent you here made a request the sign-in service cannot accept")))
	mux.Handle(endSessionPath, htmlErrors(b, lib, "Sign-out request not valid",
		"The application that sent you here made a sign-out request the sign-in service cannot accept"))
	mux.Handle(discoveryPath, notModified(func() string { return b.discoveryDoc().etag }, lib))
	mux.Handle(jwksPath, notModified(func() string { _, tag := b.keys.JWKS(); return tag }, lib))
	mux.Handle(tokenPath, noStore(postOnly(requireClientAuthentication(challengeOnUnauthorized(lib)))))
	mux.Handle(introspectPath, noStore(postOnly(requireClientAuthentication(challengeOnUnauthorized(lib)))))
	mux.Handle(revokePath, noStore(postOnly(requireClientAuthentication(challengeOnUnauthorized(lib)))))
	mux.Handle(userinfoPath, cors.New(corsOptions).Handler(http.HandlerFunc(b.userinfo)))
	mux.HandleFunc(loginPath, b.loginPage)
	mux.HandleFunc(loginCodePath, b.loginCode)
	mux.HandleFunc(loginResendPath, b.loginResend)
	mux.HandleFunc(loginConnectorPath, b.loginConnector)
	mux.HandleFunc("GET "+upstreamCallbackPrefix+"{connector}", b.upstreamCallback)
	mux.HandleFunc(endSessionPath+"/done", b.signedOut)
	mux.HandleFunc(logoutConfirmPath, b.confirmLogout)
	mux.HandleFunc("GET /readyz", b.readyz)
	if b.cfg.HTTP.MetricsAddr == "" {
		mux.Handle("GET /metrics", b.MetricsHandler())
	}
	if b.cfg.Admin.Enabled {
		mux.Handle(adminPathPrefix, b.adminHandler())
	}
	mux.Handle(staticPath, http.StripPrefix("/static", web.Static()))
	mux.Handle("/", lib)
	return b.observe(mux, limitBody(withResponseHeader(b.withRequestSource(b.checkInput(mux)))))
}

// postOnly refuses anything but POST, as the token, introspection and
// revocation endpoints must (RFC 6749 section 3.2): a GET would put
// credentials in URLs and logs.
func postOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost && r.Method != http.MethodOptions {
			w.Header().Set("Allow", "POST")
			answer.OAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "this endpoint answers only POST")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// noStore keeps tokens out of caches (RFC 6749 section 5.1).
func noStore(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Pragma", "no-cache")
		h.ServeHTTP(w, r)
	})
}

// requireClientAuthentication answers a request that names no client at
// all (no Authorization header, client_id or client_assertion) with 401
// invalid_client, as RFC 6749 section 5.2 defines it ("no client
// authentication included"); the library would answer 400
// invalid_request. The jwt-bearer grant needs no client (RFC 7523 section
// 3.1), so it goes on to be refused as unsupported. ParseForm keeps what it
// read, so the library reads the same form without the body; a form that
// cannot be read is answered here, since a second ParseForm would not
// report it again.
func requireClientAuthentication(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			h.ServeHTTP(w, r)
			return
		}
		if err := r.ParseForm(); err != nil {
			answer.OAuthError(w, http.StatusBadRequest, "invalid_request", "the form could not be read")
			return
		}
		if r.Header.Get("Authorization") == "" && r.Form.Get("client_id") == "" && r.Form.Get("client_assertion") == "" &&
			r.Form.Get("grant_type") != string(oidc.GrantTypeBearer) {
			w.Header().Set("WWW-Authenticate", `Basic realm="broker", charset="UTF-8"`)
			answer.OAuthError(w, http.StatusUnauthorized, "invalid_client", "client authentication is required")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// challengeOnUnauthorized makes every invalid_client a 401 with the
// WWW-Authenticate header RFC 6749 section 5.2 asks for. The library
// answers its own client-authentication refusals with 400 and never sets
// the header.
func challengeOnUnauthorized(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &errorCapture{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if !rec.captured {
			return
		}
		status := rec.status
		if oauthErrorCode(rec.body.Bytes()) == "invalid_client" {
			status = http.StatusUnauthorized
		}
		if status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="broker", charset="UTF-8"`)
		}
		w.WriteHeader(status)
		w.Write(rec.body.Bytes())
	})
}

// maxBody bounds every request body; forms and JSON here are small.
const maxBody = 64 << 10

func limitBody(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		}
		h.ServeHTTP(w, r)
	})
}

// issOnRedirect adds iss (RFC 9207) to the error responses the library
// redirects to a client from /authorize; the broker's own callback adds it
// to successful ones.
func issOnRedirect(issuer string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&issWriter{ResponseWriter: w, issuer: issuer}, r)
	})
}

type issWriter struct {
	http.ResponseWriter
	issuer string
}

func (i *issWriter) WriteHeader(status int) {
	if status == http.StatusFound || status == http.StatusSeeOther {
		if u, err := url.Parse(i.Header().Get("Location")); err == nil && u.Query().Has("error") && !u.Query().Has("iss") {
			q := u.Query()
			q.Set("iss", i.issuer)
			u.RawQuery = q.Encode()
			i.Header().Set("Location", u.String())
		}
	}
	i.ResponseWriter.WriteHeader(status)
}

// htmlErrors turns the library's JSON errors at browser endpoints, which
// happen only where no redirect URI can be trusted, into a page a person
// can read: there is no safe place to send them. title and message blame
// the request; a 503 (the store or an upstream is down) gets the page
// that says the service is unavailable instead, since the same request
// will work later.
func htmlErrors(b *Broker, h http.Handler, title, message string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &errorCapture{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if !rec.captured {
			return
		}
		desc := oauthErrorDescription(rec.body.Bytes())
		b.log.InfoContext(r.Context(), "browser request refused", "path", r.URL.Path, "status", rec.status, "reason", desc)
		if rec.status == http.StatusServiceUnavailable {
			b.errorPages.Unavailable(w, r)
			return
		}
		b.errorPages.Render(w, r, rec.status, title, message+" ("+desc+"). Go back to the application and start again.")
	})
}

func (b *Broker) signedOut(w http.ResponseWriter, r *http.Request) {
	page := web.SignedOutPage{Branding: b.branding, UpstreamLogoutURL: b.upstreamLogoutURL(r.Context(), r.URL.Query().Get("idp"))}
	if err := b.pages.RenderIn(w, http.StatusOK, web.RequestLanguage(r, nil), page); err != nil {
		b.log.ErrorContext(r.Context(), "render signed-out page", "err", err)
	}
}
