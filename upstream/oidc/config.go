package oidc

import (
	"cmp"
	"context"
	"fmt"
	"strings"

	"github.com/idbroker/broker/upstream"
)

// Config, Auth0Config and AzureConfig are upstream.Config: the broker's
// configuration decodes their yaml (and storage their json) settings; the
// fields tagged "-" (ID, HTTPClient, Timeout, Clock and the tuning knobs)
// are set by Open or left at their defaults.
var (
	_ upstream.Config = Config{}
	_ upstream.Config = Auth0Config{}
	_ upstream.Config = AzureConfig{}
)

// Validate reports what New would refuse, without building anything.
func (cfg Config) Validate(id string) error {
	cfg.ID = id
	return cfg.check()
}

// Open returns New's connector, with deps.
func (cfg Config) Open(ctx context.Context, id string, deps upstream.Deps) (upstream.Connector, error) {
	cfg.ID, cfg.HTTPClient, cfg.Timeout, cfg.Clock = id, deps.HTTPClient, deps.Timeout, deps.Clock
	return upstream.Opened(New(ctx, cfg))
}

// Validate reports what NewAuth0 would refuse, without building anything.
func (cfg Auth0Config) Validate(id string) error {
	return Config{ID: id, Issuer: cfg.Issuer, ClientID: cfg.ClientID, Timeout: cfg.Timeout,
		MaxClockSkew: cfg.MaxClockSkew}.check()
}

// Open returns NewAuth0's connector, with deps.
func (cfg Auth0Config) Open(ctx context.Context, id string, deps upstream.Deps) (upstream.Connector, error) {
	cfg.ID, cfg.HTTPClient, cfg.Timeout, cfg.Clock = id, deps.HTTPClient, deps.Timeout, deps.Clock
	return upstream.Opened(NewAuth0(ctx, cfg))
}

// Validate reports what NewAzureAD would refuse, without building
// anything.
func (cfg AzureConfig) Validate(id string) error {
	if cfg.Tenant == "" {
		return fmt.Errorf("oidc: azuread connector %q has no tenant", id)
	}
	authority := strings.TrimSuffix(cmp.Or(cfg.AuthorityURL, DefaultAzureAuthority), "/")
	return Config{ID: id, Issuer: tenants{authority: authority}.issuer(cfg.Tenant), ClientID: cfg.ClientID,
		Timeout: cfg.Timeout, MaxClockSkew: cfg.MaxClockSkew}.check()
}

// Open returns NewAzureAD's connector, with deps.
func (cfg AzureConfig) Open(ctx context.Context, id string, deps upstream.Deps) (upstream.Connector, error) {
	cfg.ID, cfg.HTTPClient, cfg.Timeout, cfg.Clock = id, deps.HTTPClient, deps.Timeout, deps.Clock
	return upstream.Opened(NewAzureAD(ctx, cfg))
}
