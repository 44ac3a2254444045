package broker

// The broker's side of administration (broker/admin): building it from
// the configuration, and mounting its HTTP API with the few things it
// needs of the broker (the own-token check, the client lookup, the
// failure log).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/idbroker/broker/broker/admin"
	"github.com/idbroker/broker/broker/clients"
	"github.com/idbroker/broker/broker/resources"
	"github.com/idbroker/broker/broker/tokens"
	"github.com/idbroker/broker/storage"
)

// AdminScope is the scope an access token needs for the admin API
// (admin.Scope). Every grant that issues for a person passes its scopes
// through userScopes, which keeps it from anyone without the role.
const AdminScope = admin.Scope

// RoleAdmin is the role that gives a person AdminScope (admin.RoleAdmin).
const RoleAdmin = admin.RoleAdmin

const adminPathPrefix = admin.PathPrefix

// NewAdmin returns the administration of store for a broker configured
// with cfg: the configuration's clients are read-only, and a stored
// client is held to the rules of a configured one (clients.CheckRules).
// now is time.Now when nil. It cannot change stored connectors, whose
// settings are sealed under the root secret: NewConnectorAdmin can.
func NewAdmin(cfg Config, store storage.Storage, now func() time.Time) *admin.Admin {
	return admin.New(adminOptions(cfg, store, now))
}

// NewConnectorAdmin is NewAdmin able to change stored connectors too,
// whose settings it seals under secret and opens under secret or any of
// previous. Checking an upstream uses the default HTTP client.
func NewConnectorAdmin(cfg Config, store storage.Storage, now func() time.Time, secret RootSecret, previous []RootSecret) (*admin.Admin, error) {
	o := adminOptions(cfg, store, now)
	if now == nil {
		now = time.Now
	}
	sc, err := newStoredConnectors(cfg, Options{Secret: secret, PreviousSecrets: previous, Logger: slog.Default(), Clock: now})
	if err != nil {
		return nil, err
	}
	o.ConnectorSettings, o.ConfiguredConnectors = sc, configuredConnectors(cfg, sc)
	return admin.New(o), nil
}

func adminOptions(cfg Config, store storage.Storage, now func() time.Time) admin.Options {
	// The algorithms a stored client may name for its ID tokens: those
	// the broker keeps a key for.
	algs := cfg.idTokenAlgorithms()
	ids := make([]string, len(cfg.Clients))
	for i, c := range cfg.Clients {
		ids[i] = c.ID
	}
	return admin.Options{
		Store:             store,
		StaticClients:     ids,
		CheckClient:       func(c storage.Client) error { return clients.CheckRules(c, algs) },
		DefaultGrantTypes: []string{GrantAuthorizationCode, GrantRefreshToken},
		Now:               now,
		Resolver:          dnsResolver(cfg.Organizations.DNSResolver),
		TokenLifetime:     cfg.Tokens.AccessTokenTTL + cfg.Tokens.ClockSkew,
		// A resource's tokens live at most as long as the broker's:
		// revocations are kept that long (resources.Check).
		ConfiguredResources: cfg.configuredResources(),
		CheckResource:       func(r storage.Resource) error { return resources.Check(r, cfg.Tokens.AccessTokenTTL) },
	}
}

// dnsResolver is the resolver that verifies domains: the system's when
// addr is empty, else one that asks the DNS server at addr alone.
func dnsResolver(addr string) *net.Resolver {
	if addr == "" {
		return nil
	}
	return &net.Resolver{
		// Go's own resolver: the cgo one would ask the system's
		// servers, not addr.
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
}

// adminHandler is the admin API over b.admin.
func (b *Broker) adminHandler() http.Handler {
	api := admin.API{
		Admin:       b.admin,
		Audience:    b.cfg.Admin.Audience,
		Log:         b.log,
		VerifyToken: b.adminToken,
		Client:      b.adminClient,
		Failed: func(r *http.Request, err error) {
			// The route, not the path: a label must not carry what a
			// request sent.
			b.failures.Store(r.Context(), "admin "+routePattern(r.Context()), err)
		},
		Routes: recordRoute,
	}
	return noStore(api.Handler())
}

// adminToken is verifyAccessToken in the admin API's terms.
func (b *Broker) adminToken(ctx context.Context, raw string) (admin.Token, error) {
	claims, user, err := b.tokens.VerifyAccessToken(ctx, raw)
	if errors.Is(err, tokens.ErrInactive) {
		err = inactiveForAdmin{err}
	}
	return admin.Token{ClientID: claims.ClientID, Subject: claims.Subject, Audience: claims.Audience, Scope: claims.Scope, User: user}, err
}

// inactiveForAdmin is an tokens.ErrInactive that the admin API knows as
// admin.ErrTokenInactive, with its message unchanged.
type inactiveForAdmin struct{ error }

func (e inactiveForAdmin) Is(target error) bool { return target == admin.ErrTokenInactive }
func (e inactiveForAdmin) Unwrap() error        { return e.error }

// adminClient is what the admin API needs of the client id names.
func (b *Broker) adminClient(ctx context.Context, id string) (admin.Client, error) {
	c, err := b.clients.Get(ctx, id)
	if errors.Is(err, clients.ErrUnknownClient) {
		return admin.Client{}, fmt.Errorf("%w: %w", admin.ErrUnknownClient, err)
	}
	if err != nil {
		return admin.Client{}, err
	}
	return admin.Client{ID: c.GetID(), Scopes: c.Scopes(), Audiences: c.Audiences()}, nil
}
