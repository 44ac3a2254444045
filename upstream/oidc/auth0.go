package oidc

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/idbroker/broker/upstream"
)

// Auth0Config configures an Auth0 connector.
type Auth0Config struct {
	ID string `yaml:"-" json:"-"`
	// Issuer is the tenant, https://tenant.auth0.com/ or a custom domain.
	// Auth0 writes it with a trailing slash; one is added if missing.
	Issuer       string   `yaml:"issuer" json:"issuer"`
	ClientID     string   `yaml:"clientID" json:"clientID"`
	ClientSecret string   `yaml:"clientSecret" json:"clientSecret"`
	Scopes       []string `yaml:"scopes" json:"scopes"` // as Config.Scopes
	TrustEmail   bool     `yaml:"trustEmail" json:"trustEmail"`
	// Audience is an API identifier. It is requested at login, so Auth0
	// issues a JWT access token, and accepted for token exchange.
	Audience string `yaml:"audience" json:"audience"`
	// ExchangeAudiences are further audiences accepted for token exchange
	// (the client id, to accept ID tokens).
	ExchangeAudiences []string `yaml:"exchangeAudiences" json:"exchangeAudiences"`
	// Organization, when set, is requested at login and every token's
	// org_id must equal it.
	Organization string `yaml:"organization" json:"organization"`
	// Claims as Config.Claims; Org defaults to org_id. Namespaced custom
	// claims ("https://example.com/email") can be named.
	Claims                ClaimMapping     `yaml:"claims" json:"claims"`
	UseUserinfo           bool             `yaml:"userinfo" json:"userinfo"`
	HTTPClient            *http.Client     `yaml:"-" json:"-"`
	Timeout               time.Duration    `yaml:"-" json:"-"` // as Config.Timeout
	Clock                 func() time.Time `yaml:"-" json:"-"`
	MaxClockSkew          time.Duration    `yaml:"-" json:"-"`
	MinKeyRefreshInterval time.Duration    `yaml:"-" json:"-"`
}

// NewAuth0 returns a connector for an Auth0 tenant. Auth0 access tokens
// name the API and the tenant's /userinfo in an array aud; they are
// accepted for exchange when one of them is Audience or in
// ExchangeAudiences.
func NewAuth0(ctx context.Context, cfg Auth0Config) (*Connector, error) {
	if cfg.Issuer != "" && !strings.HasSuffix(cfg.Issuer, "/") {
		cfg.Issuer += "/"
	}
	if cfg.Claims.Org == "" {
		cfg.Claims.Org = "org_id"
	}
	exchange := cfg.ExchangeAudiences
	if cfg.Audience != "" {
		exchange = append([]string{cfg.Audience}, exchange...)
	}
	var d dialect
	d.authParams = url.Values{}
	if cfg.Audience != "" {
		d.authParams.Set("audience", cfg.Audience)
	}
	if org := cfg.Organization; org != "" {
		d.authParams.Set("organization", org)
		// Auth0 sends org_id only when an organisation was asked for, and
		// nothing stops a token of another organisation arriving.
		d.check = func(claims map[string]any) error {
			if got, _ := claims[cfg.Claims.Org].(string); got != org {
				return fmt.Errorf("oidc: auth0 token %s %q, want %q: %w", cfg.Claims.Org, got, org, upstream.ErrInvalidToken)
			}
			return nil
		}
	}
	return newConnector(ctx, Config{
		ID:                    cfg.ID,
		Issuer:                cfg.Issuer,
		ClientID:              cfg.ClientID,
		ClientSecret:          cfg.ClientSecret,
		Scopes:                cfg.Scopes,
		TrustEmail:            cfg.TrustEmail,
		Claims:                cfg.Claims,
		UseUserinfo:           cfg.UseUserinfo,
		ExchangeAudiences:     exchange,
		HTTPClient:            cfg.HTTPClient,
		Timeout:               cfg.Timeout,
		Clock:                 cfg.Clock,
		MaxClockSkew:          cfg.MaxClockSkew,
		MinKeyRefreshInterval: cfg.MinKeyRefreshInterval,
	}, d)
}
