package oidc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/idbroker/broker/upstream"
	"github.com/idbroker/broker/upstream/internal/fetch"
	"github.com/idbroker/broker/upstream/jwks"
)

// Defaults for Config.
const (
	DefaultMaxClockSkew = upstream.DefaultMaxClockSkew
	// MaxMaxClockSkew bounds MaxClockSkew: more leeway than this would
	// keep expired tokens alive.
	MaxMaxClockSkew = upstream.MaxMaxClockSkew
	// DefaultHTTPTimeout bounds every call to the upstream when
	// Config.HTTPClient is nil.
	DefaultHTTPTimeout = upstream.DefaultHTTPTimeout
	// DefaultTimeout bounds one attempt at discovery or at fetching the
	// upstream's keys when Config.Timeout is zero.
	DefaultTimeout = fetch.DefaultTimeout
	// RetryBackoff is how long a failed attempt at discovery or at
	// fetching keys is the answer to every caller, before another
	// attempt is made. It keeps a down or hung upstream from being asked
	// once per request, and lets those requests fail at once.
	RetryBackoff = fetch.RetryBackoff
	// DefaultMinKeyRefreshInterval is how often, at most, the upstream's
	// keys are fetched again for unknown key ids, when
	// Config.MinKeyRefreshInterval is zero.
	DefaultMinKeyRefreshInterval = jwks.DefaultMinKeyRefreshInterval
	// startDiscoveryTimeout bounds how long New waits for discovery (and
	// so does Config.Timeout), so an upstream that is down cannot hold up
	// the broker's start.
	startDiscoveryTimeout = 5 * time.Second
)

// Config configures a generic OpenID Connect connector.
type Config struct {
	ID     string `yaml:"-" json:"-"`           // connector id
	Issuer string `yaml:"issuer" json:"issuer"` // exactly as the upstream writes it in tokens
	// ClientID and ClientSecret are the broker's credentials at the
	// upstream.
	ClientID     string `yaml:"clientID" json:"clientID"`
	ClientSecret string `yaml:"clientSecret" json:"clientSecret"`
	// Scopes requested at login; DefaultScopes when empty. openid is
	// always sent. Without offline_access the upstream issues no refresh
	// token, and the broker can never re-check the user there.
	Scopes []string `yaml:"scopes" json:"scopes"`
	// TrustEmail: a verified email from this upstream may link to an
	// existing user. The connector only reports it.
	TrustEmail bool `yaml:"trustEmail" json:"trustEmail"`
	// Claims names the claims the identity is read from.
	Claims ClaimMapping `yaml:"claims" json:"claims"`
	// UseUserinfo fetches the userinfo endpoint after login and lets its
	// claims complete the ID token's (its sub must match).
	UseUserinfo bool `yaml:"userinfo" json:"userinfo"`
	// ExchangeAudiences are the audiences a token must carry (one is
	// enough) to be accepted for token exchange. Empty: VerifyToken
	// refuses every token.
	ExchangeAudiences []string `yaml:"exchangeAudiences" json:"exchangeAudiences"`
	// AcceptsIdentityAssertions lets clients redeem this upstream's
	// identity assertion grants (ID-JAGs) issued for the broker at its
	// jwt-bearer grant: the upstream is an enterprise identity provider
	// trusted to say who may act for its users (MCP enterprise-managed
	// authorization).
	AcceptsIdentityAssertions bool `yaml:"acceptsIdentityAssertions" json:"acceptsIdentityAssertions"`
	// HTTPClient makes every upstream call; a client with a
	// DefaultHTTPTimeout timeout when nil.
	HTTPClient *http.Client `yaml:"-" json:"-"`
	// Timeout bounds one attempt at discovery or at fetching the keys;
	// DefaultTimeout when zero. Such an attempt is shared by every call
	// that needs it while it runs (see Connector), so it is not bounded
	// by any one caller's context. Everything else a call waits for is
	// bounded by the caller's context and HTTPClient.
	Timeout time.Duration `yaml:"-" json:"-"`
	// Clock is time.Now when nil.
	Clock func() time.Time `yaml:"-" json:"-"`
	// MaxClockSkew is the leeway on expiry (and, for token exchange, on
	// nbf and iat; see Connector.VerifyToken); DefaultMaxClockSkew when
	// zero, at most MaxMaxClockSkew.
	MaxClockSkew time.Duration `yaml:"-" json:"-"`
	// MinKeyRefreshInterval rate-limits JWKS fetches on unknown key ids;
	// DefaultMinKeyRefreshInterval when zero.
	MinKeyRefreshInterval time.Duration `yaml:"-" json:"-"`
}

// check is what newConnector refuses before it builds anything.
func (cfg Config) check() error {
	switch {
	case cfg.ID == "":
		return errors.New("oidc: connector has no id")
	case cfg.Issuer == "":
		return fmt.Errorf("oidc: connector %q has no issuer", cfg.ID)
	case cfg.ClientID == "":
		return fmt.Errorf("oidc: connector %q has no client id", cfg.ID)
	case cfg.MaxClockSkew < 0 || cfg.MaxClockSkew > MaxMaxClockSkew:
		return fmt.Errorf("oidc: connector %q: clock skew %s outside [0, %s]", cfg.ID, cfg.MaxClockSkew, MaxMaxClockSkew)
	case cfg.Timeout < 0:
		return fmt.Errorf("oidc: connector %q: timeout %s is negative", cfg.ID, cfg.Timeout)
	}
	if u, err := url.Parse(cfg.Issuer); err != nil || u.Scheme == "" || u.Host == "" {
		return fmt.Errorf("oidc: connector %q: issuer %q is not an absolute URL", cfg.ID, cfg.Issuer)
	}
	return nil
}

// ClaimMapping names the claims an identity is read from. A name is looked
// up as a top-level claim first (so namespaced claims such as
// "https://example.com/org" work), then as a dotted path into nested
// objects ("address.email").
type ClaimMapping struct {
	Email         string `yaml:"email" json:"email"`                 // default "email"
	EmailVerified string `yaml:"emailVerified" json:"emailVerified"` // default "email_verified"
	Name          string `yaml:"name" json:"name"`                   // default "name"
	Org           string `yaml:"org" json:"org"`                     // none by default
}

// Connector is an OpenID Connect upstream. It implements
// upstream.CallbackConnector, upstream.TokenVerifier and
// upstream.Refresher. It is safe for concurrent use.
//
// Discovery happens in New when the upstream answers in time, otherwise
// on first use: until it succeeds, every method returns an error wrapping
// upstream.ErrUnavailable. Calls made while discovery (or a fetch of the
// keys) is under way wait for that one attempt rather than making their
// own, and a failed attempt is every call's answer for RetryBackoff: a
// hung upstream costs a call at most Config.Timeout, however many calls
// wait on it, and a down one is not asked once per call.
type Connector struct {
	cfg     Config
	dialect dialect
	client  *http.Client
	now     func() time.Time

	discovery *fetch.Attempt
	p         atomic.Pointer[provider]
}

// provider is what discovery yields: built once, shared by every call.
type provider struct {
	oauth2      oauth2.Config // RedirectURL is set per login
	keys        *jwks.RemoteKeySet
	algs        []jose.SignatureAlgorithm // pinned; never "none" or HMAC
	login       *gooidc.IDTokenVerifier   // ID tokens at login and refresh; aud must hold ClientID
	userinfoURL string
	logoutURL   string // end_session_endpoint; "" when not published
}

// dialect is how a preset departs from plain OpenID Connect. Its zero
// value is plain OpenID Connect.
type dialect struct {
	// authParams are added to every authorization request.
	authParams url.Values
	// checkDiscovered checks the issuer discovery publishes; nil: it must
	// equal Config.Issuer.
	checkDiscovered func(issuer string) error
	// ownIssuerCheck turns the issuer check off, for login and exchange
	// alike: check must do it instead.
	ownIssuerCheck bool
	// check runs on the claims of every token whose signature and
	// registered claims verified.
	check func(claims map[string]any) error
	// identity adjusts the identity read from verified claims.
	identity func(claims map[string]any, id *upstream.Identity) error
	// issuers lists the token issuers; nil: Config.Issuer.
	issuers func() []string
	// checkExchange, when set, checks a token for exchange in place of
	// check, the issuer included (exchange makes no issuer check of its
	// own then): exchange accepts tokens login never sees.
	checkExchange func(claims map[string]any) error
	// userinfoTakesNoAPITokens: the userinfo endpoint refuses the access
	// tokens exchanged (issued for the client's own APIs).
	userinfoTakesNoAPITokens bool
}

var (
	_ upstream.CallbackConnector = (*Connector)(nil)
	_ upstream.TokenVerifier     = (*Connector)(nil)
	_ upstream.Refresher         = (*Connector)(nil)
	_ upstream.Logouter          = (*Connector)(nil)
)

// New returns a connector for the upstream cfg describes. It fails only
// on a bad configuration: an upstream that is down or slow at start is
// discovered later.
func New(ctx context.Context, cfg Config) (*Connector, error) {
	return newConnector(ctx, cfg, dialect{})
}

func newConnector(ctx context.Context, cfg Config, d dialect) (*Connector, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = slices.Clone(DefaultScopes)
	} else if !slices.Contains(cfg.Scopes, gooidc.ScopeOpenID) {
		cfg.Scopes = append([]string{gooidc.ScopeOpenID}, cfg.Scopes...)
	}
	if cfg.MaxClockSkew == 0 {
		cfg.MaxClockSkew = DefaultMaxClockSkew
	}
	cfg.Claims = cfg.Claims.withDefaults()
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	c := &Connector{
		cfg:     cfg,
		dialect: d,
		client:  cfg.HTTPClient,
		now:     cfg.Clock,
	}
	if c.client == nil {
		c.client = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.discovery = fetch.NewAttempt(fmt.Sprintf("discovery of %q", cfg.Issuer), cfg.Timeout, c.now)
	ctx, cancel := context.WithTimeout(ctx, min(startDiscoveryTimeout, cfg.Timeout))
	defer cancel()
	// An error here is not New's to report: the upstream may be down,
	// and the broker must start anyway. A call after RetryBackoff tries
	// again.
	c.provider(ctx)
	return c, nil
}

// ID implements upstream.Connector.
func (c *Connector) ID() string { return c.cfg.ID }

// TrustEmail implements upstream.Connector.
func (c *Connector) TrustEmail() bool { return c.cfg.TrustEmail }

// Ready implements upstream.Readier: discovery is done (and cached), or
// succeeds now.
func (c *Connector) Ready(ctx context.Context) error {
	_, err := c.provider(ctx)
	return err
}

// provider returns the discovered provider, discovering it first if no
// call has managed to yet: with the attempt under way, or a new one once
// RetryBackoff has passed since the last failed.
func (c *Connector) provider(ctx context.Context) (*provider, error) {
	if p := c.p.Load(); p != nil {
		return p, nil
	}
	err := c.discovery.Do(ctx, func(ctx context.Context) error {
		if c.p.Load() != nil {
			return nil
		}
		p, err := c.discover(ctx)
		if err != nil {
			return err
		}
		c.p.Store(p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return c.p.Load(), nil
}

// discovery is the part of the discovery document the connector uses.
type discovery struct {
	Issuer           string   `json:"issuer"`
	AuthURL          string   `json:"authorization_endpoint"`
	TokenURL         string   `json:"token_endpoint"`
	UserinfoURL      string   `json:"userinfo_endpoint"`
	JWKSURL          string   `json:"jwks_uri"`
	Algorithms       []string `json:"id_token_signing_alg_values_supported"`
	TokenAuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	EndSessionURL    string   `json:"end_session_endpoint"`
}

// discover fetches the discovery document and builds the provider. Every
// failure wraps upstream.ErrUnavailable: nothing can be decided without
// discovery, and it is tried again on the next call.
func (c *Connector) discover(ctx context.Context) (*provider, error) {
	wellKnown := strings.TrimSuffix(c.cfg.Issuer, "/") + "/.well-known/openid-configuration"
	var d discovery
	if err := fetch.GetJSON(ctx, c.client, wellKnown, "", &d); err != nil {
		if !errors.Is(err, upstream.ErrUnavailable) {
			err = fmt.Errorf("%w: %w", err, upstream.ErrUnavailable)
		}
		return nil, err
	}
	unusable := func(format string, args ...any) error {
		return fmt.Errorf("oidc: discovery at %q: %s: %w", wellKnown, fmt.Sprintf(format, args...), upstream.ErrUnavailable)
	}
	if check := c.dialect.checkDiscovered; check != nil {
		if err := check(d.Issuer); err != nil {
			return nil, unusable("%v", err)
		}
	} else if d.Issuer != c.cfg.Issuer {
		return nil, unusable("issuer in discovery is %q, configured %q", d.Issuer, c.cfg.Issuer)
	}
	if d.AuthURL == "" || d.TokenURL == "" || d.JWKSURL == "" {
		return nil, unusable("authorization_endpoint, token_endpoint or jwks_uri missing")
	}
	algs, err := pinnedAlgorithms(d.Algorithms)
	if err != nil {
		return nil, unusable("%v", err)
	}

	keys := jwks.NewRemoteKeySet(d.JWKSURL, jwks.KeySetConfig{
		HTTPClient:         c.client,
		MinRefreshInterval: c.cfg.MinKeyRefreshInterval,
		Timeout:            c.cfg.Timeout,
		Clock:              c.now,
	})
	algNames := make([]string, len(algs))
	for i, alg := range algs {
		algNames[i] = string(alg)
	}
	login := gooidc.NewVerifier(c.cfg.Issuer, keys, &gooidc.Config{
		ClientID:             c.cfg.ClientID,
		SupportedSigningAlgs: algNames,
		SkipIssuerCheck:      c.dialect.ownIssuerCheck,
		// go-oidc checks exp with no leeway: a clock set back by the
		// skew gives it a bounded one. (Its nbf check keeps its own
		// five minutes, less the skew.)
		Now: func() time.Time { return c.now().Add(-c.cfg.MaxClockSkew) },
	})

	style := oauth2.AuthStyleInHeader
	if len(d.TokenAuthMethods) > 0 && !slices.Contains(d.TokenAuthMethods, "client_secret_basic") {
		style = oauth2.AuthStyleInParams
	}
	return &provider{
		oauth2: oauth2.Config{
			ClientID:     c.cfg.ClientID,
			ClientSecret: c.cfg.ClientSecret,
			Endpoint:     oauth2.Endpoint{AuthURL: d.AuthURL, TokenURL: d.TokenURL, AuthStyle: style},
			Scopes:       c.cfg.Scopes,
		},
		keys:        keys,
		algs:        algs,
		login:       login,
		userinfoURL: d.UserinfoURL,
		logoutURL:   d.EndSessionURL,
	}, nil
}

// pinnedAlgorithms is what discovery publishes, less what is never
// accepted ("none", HMAC). OpenID Connect makes RS256 the default when
// nothing is published.
func pinnedAlgorithms(published []string) ([]jose.SignatureAlgorithm, error) {
	if len(published) == 0 {
		return []jose.SignatureAlgorithm{jose.RS256}, nil
	}
	var algs []jose.SignatureAlgorithm
	for _, alg := range published {
		if alg := jose.SignatureAlgorithm(alg); jwks.Asymmetric(alg) {
			algs = append(algs, alg)
		}
	}
	if len(algs) == 0 {
		return nil, fmt.Errorf("no acceptable signing algorithm in %q", published)
	}
	return algs, nil
}
