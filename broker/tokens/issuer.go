package tokens

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/idbroker/broker/broker/answer"
	"github.com/idbroker/broker/broker/clients"
	"github.com/idbroker/broker/broker/connectors"
	"github.com/idbroker/broker/broker/identity"
	"github.com/idbroker/broker/keys"
	"github.com/idbroker/broker/storage"
)

// Config sets token lifetimes (the configuration's tokens section).
type Config struct {
	AccessTokenTTL time.Duration `yaml:"accessTokenTTL"`
	IDTokenTTL     time.Duration `yaml:"idTokenTTL"`
	// RefreshTokenTTL is a refresh family's absolute lifetime.
	RefreshTokenTTL time.Duration `yaml:"refreshTokenTTL"`
	// RefreshIdleTTL ends a family not used for this long.
	RefreshIdleTTL time.Duration `yaml:"refreshIdleTTL"`
	// RefreshRetryWindow lets a client that lost the response to a
	// refresh retry with the old token and get the same successor.
	RefreshRetryWindow time.Duration `yaml:"refreshRetryWindow"`
	// AuthRequestTTL bounds a login from /authorize to its code.
	AuthRequestTTL time.Duration `yaml:"authRequestTTL"`
	CodeTTL        time.Duration `yaml:"codeTTL"`
	// ClockSkew is the leeway allowed on times in tokens the broker checks.
	ClockSkew time.Duration `yaml:"clockSkew"`
}

// Options are what an Issuer needs.
type Options struct {
	Issuer     string
	Config     Config
	Store      storage.Storage
	Keys       *keys.Manager
	Auth       *clients.Authenticator // introspection authenticates its caller
	Identities *identity.Resolver     // machine clients' service users
	Upstreams  *connectors.Set        // re-checks a family's user upstream
	// Orgs names the organisations of org_slug; nil: tokens carry no
	// organisation.
	Orgs Orgs
	// Targets decides the audience of tokens: registered resources and
	// the clients' audiences.
	Targets Targets
	// Sealer opens and seals upstream refresh tokens.
	Sealer *keys.Envelope
	// RefreshKey derives refresh-token successors.
	RefreshKey keys.KeyedHash
	Failures   answer.Failures
	Log        *slog.Logger
	Now        func() time.Time
	// ClientCredentialsUsed is set once the client_credentials grant
	// issues a token, for discovery to advertise it.
	ClientCredentialsUsed *atomic.Bool
	// SessionEnded, when set, is told of every session the Issuer ends
	// (an upstream's refusal at a re-check), so its clients hear of it
	// over the back channel as for a logout.
	SessionEnded func(ctx context.Context, s storage.Session)
}

// Issuer issues and verifies the broker's tokens.
type Issuer struct {
	issuer     string
	cfg        Config
	store      storage.Storage
	keys       *keys.Manager
	auth       *clients.Authenticator
	identities *identity.Resolver
	upstreams  *connectors.Set
	orgs       Orgs
	targets    Targets
	sealer     *keys.Envelope
	refreshKey keys.KeyedHash
	failures   answer.Failures
	log        *slog.Logger
	now        func() time.Time

	advertiseClientCredentials *atomic.Bool
	sessionEnded               func(ctx context.Context, s storage.Session)
	serviceUsers               sync.Map // client id → service user id, a cache
}

// New returns an Issuer.
func New(o Options) *Issuer {
	return &Issuer{
		issuer: o.Issuer, cfg: o.Config, store: o.Store, keys: o.Keys, auth: o.Auth,
		identities: o.Identities, upstreams: o.Upstreams, orgs: o.Orgs, targets: o.Targets, sealer: o.Sealer, refreshKey: o.RefreshKey,
		failures: o.Failures, log: o.Log, now: o.Now, advertiseClientCredentials: o.ClientCredentialsUsed,
		sessionEnded: o.SessionEnded,
	}
}

// ActClaim is RFC 8693 section 4.1's act: the party acting for the
// subject. A prior actor is nested in Act, the least recent deepest.
type ActClaim struct {
	Subject  string `json:"sub"`
	ClientID string `json:"client_id,omitempty"` // set when the actor presented a broker token
	Act      any    `json:"act,omitempty"`
}
