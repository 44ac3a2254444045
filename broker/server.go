// Package broker is the OpenID Connect provider: its configuration, and
// the façade and wiring that make github.com/zitadel/oidc/v3/pkg/op, in
// the Server style, serve the parts that do the work (docs/design.md
// "Layout"): authflow (the browser's login and logout), tokens (the
// issuing core), exchange (RFC 8693), clients, connectors, identity,
// admin and backchannel. It imports them and upstream, keys, web and
// storage; none of them import it.
package broker

import (
	"context"
	"crypto/x509"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/idbroker/broker/broker/admin"
	"github.com/idbroker/broker/broker/answer"
	"github.com/idbroker/broker/broker/authflow"
	"github.com/idbroker/broker/broker/backchannel"
	"github.com/idbroker/broker/broker/clients"
	"github.com/idbroker/broker/broker/connectors"
	"github.com/idbroker/broker/broker/edge"
	"github.com/idbroker/broker/broker/exchange"
	"github.com/idbroker/broker/broker/orgs"
	"github.com/idbroker/broker/broker/registration"
	"github.com/idbroker/broker/broker/tokens"
	"github.com/idbroker/broker/keys"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/upstream/otp"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Paths the broker serves. They are fixed once here and advertised in
// discovery.
const (
	authorizePath  = authflow.AuthorizePath
	callbackPath   = authflow.CallbackPath
	endSessionPath = authflow.EndSessionPath
	tokenPath      = "/token"
	userinfoPath   = "/userinfo"
	introspectPath = "/introspect"
	revokePath     = "/revoke"
	jwksPath       = "/.well-known/jwks.json"
	discoveryPath  = "/.well-known/openid-configuration"
	staticPath     = "/static/"
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
	// ClientDocumentRoots verify the certificates of the hosts serving
	// client ID metadata documents and their clients' keys; nil for the
	// system's roots. Tests name their own TLS servers' here.
	ClientDocumentRoots *x509.CertPool
}

// Broker is the identity broker: a façade over its parts, each of which
// owns one concern (docs/design.md "Layout"). It embeds the library's
// LegacyServer for what the library answers well (discovery's and the
// key set's encoding, the token endpoint's dispatch), and overrides every
// op.Server method whose answer is the broker's, each delegating in a
// line to the part that owns it. wire.go builds the parts and mounts
// them.
type Broker struct {
	*op.LegacyServer

	cfg     Config
	issuer  string
	store   storage.Storage
	keys    *keys.Manager
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics
	proxies edge.Proxies

	clients     *clients.Directory     // configured, then stored clients
	auth        *clients.Authenticator // clients of the token, introspection and revocation endpoints
	upstreams   *connectors.Set        // configured, then stored connectors (orgs reloads them)
	orgs        *orgs.Directory        // organisations, their domains and stored connectors, cached
	tokens      *tokens.Issuer         // issues and verifies the broker's tokens
	exchange    *exchange.Exchanger    // RFC 8693, issuing through tokens
	flow        *authflow.Flow         // the browser: authorize, login, sessions, logout
	admin       *admin.Admin
	backchannel *backchannel.Notifier // its deliveries run past the request; Run closes it
	errorPages  answer.ErrorPages
	failures    answer.Failures
	registrar   *registration.Registrar // RFC 7591 and 7592, and registered clients' expiry

	discovery     preEncoded
	corsOrigins   map[string]bool // of clients in the configuration
	storedClients storedClientCache
	// advertiseClientCredentials puts client_credentials in discovery:
	// set when a client that allows it is configured, found in storage
	// (at start, and within storedClientsTTL of any replica storing it),
	// created or updated through this broker, or used.
	advertiseClientCredentials atomic.Bool
	// advertiseTokenExchange puts token exchange in discovery, when and
	// as advertiseClientCredentials does client_credentials.
	advertiseTokenExchange atomic.Bool
	// clientAllowsJWTBearer is set as advertiseTokenExchange is, for the
	// jwt-bearer grant; discovery lists the grant while a connector also
	// accepts identity assertions.
	clientAllowsJWTBearer atomic.Bool
}

// VerifyClient authenticates the client of a token, introspection or
// revocation request (clients.Authenticator).
func (b *Broker) VerifyClient(ctx context.Context, r *op.Request[op.ClientCredentials]) (op.Client, error) {
	return b.auth.VerifyClient(ctx, r)
}

// CodeExchange redeems an authorization code (tokens.Issuer).
func (b *Broker) CodeExchange(ctx context.Context, r *op.ClientRequest[oidc.AccessTokenRequest]) (*op.Response, error) {
	return b.tokens.CodeExchange(ctx, r)
}

// RefreshToken rotates a refresh token (tokens.Issuer).
func (b *Broker) RefreshToken(ctx context.Context, r *op.ClientRequest[oidc.RefreshTokenRequest]) (*op.Response, error) {
	return b.tokens.RefreshToken(ctx, r)
}

// ClientCredentialsExchange answers the client_credentials grant
// (tokens.Issuer).
func (b *Broker) ClientCredentialsExchange(ctx context.Context, r *op.ClientRequest[oidc.ClientCredentialsRequest]) (*op.Response, error) {
	return b.tokens.ClientCredentialsExchange(ctx, r)
}

// VerifyAuthRequest finds the client of an authorization request
// (authflow.Flow).
func (b *Broker) VerifyAuthRequest(ctx context.Context, r *op.Request[oidc.AuthRequest]) (*op.ClientRequest[oidc.AuthRequest], error) {
	return b.flow.VerifyAuthRequest(ctx, r)
}

// Authorize starts or completes a login (authflow.Flow).
func (b *Broker) Authorize(ctx context.Context, r *op.ClientRequest[oidc.AuthRequest]) (*op.Redirect, error) {
	return b.flow.Authorize(ctx, r)
}

// EndSession handles RP-initiated logout (authflow.Flow).
func (b *Broker) EndSession(ctx context.Context, r *op.Request[oidc.EndSessionRequest]) (*op.Redirect, error) {
	return b.flow.EndSession(ctx, r)
}

// TokenExchange answers RFC 8693 token exchange (exchange.Exchanger).
func (b *Broker) TokenExchange(ctx context.Context, r *op.ClientRequest[oidc.TokenExchangeRequest]) (*op.Response, error) {
	return b.exchange.TokenExchange(ctx, r)
}

// Introspect answers RFC 7662 introspection (tokens.Issuer).
func (b *Broker) Introspect(ctx context.Context, r *op.Request[op.IntrospectionRequest]) (*op.Response, error) {
	return b.tokens.Introspect(ctx, r)
}

// Revocation answers RFC 7009 revocation (tokens.Issuer).
func (b *Broker) Revocation(ctx context.Context, r *op.ClientRequest[oidc.RevocationRequest]) (*op.Response, error) {
	return b.tokens.Revocation(ctx, r)
}

// JWTProfile answers the jwt-bearer grant for identity assertion grants
// (tokens.Issuer).
func (b *Broker) JWTProfile(ctx context.Context, r *op.Request[oidc.JWTProfileGrantRequest]) (*op.Response, error) {
	return b.tokens.JWTProfile(ctx, r)
}

// DeviceToken refuses the device grant (tokens.Issuer).
func (b *Broker) DeviceToken(ctx context.Context, r *op.ClientRequest[oidc.DeviceAccessTokenRequest]) (*op.Response, error) {
	return b.tokens.DeviceToken(ctx, r)
}

// SigningKeys returns the broker's signing keys.
func (b *Broker) SigningKeys() *keys.Manager { return b.keys }

// Organizations returns the broker's cached directory of organisations,
// which Run keeps current.
func (b *Broker) Organizations() *orgs.Directory { return b.orgs }

// Run does the broker's background work until ctx is done: key refresh and
// rotation, reloading organisations and stored connectors when storage
// says they changed, and sweeping expired rows and unused registered
// clients (Sweep). When ctx is done it stops
// back-channel logout deliveries still retrying and waits for them.
func (b *Broker) Run(ctx context.Context) {
	defer b.backchannel.Close()
	go b.keys.Run(ctx)
	go b.orgs.Run(ctx)
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			b.Sweep(ctx)
		}
	}
}

// Sweep does once what Run does every minute against storage: it
// removes expired rows, and registered clients unused for
// registration.unusedClientLifetime (each audited).
func (b *Broker) Sweep(ctx context.Context) {
	if n, err := b.store.DeleteExpired(ctx, b.now()); err != nil {
		b.log.WarnContext(ctx, "sweeping expired rows failed", "err", err)
	} else if n > 0 {
		b.log.DebugContext(ctx, "swept expired rows", "rows", n)
	}
	if n, err := b.registrar.ExpireUnused(ctx); err != nil {
		b.log.WarnContext(ctx, "deleting unused registered clients failed", "err", err)
	} else if n > 0 {
		b.log.InfoContext(ctx, "deleted unused registered clients", "clients", n)
	}
}
