package broker

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/idbroker/broker/broker/clients"
	"github.com/idbroker/broker/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Client is an OAuth client as the broker serves it, built by newClient
// from the one client model, storage.Client, whether the client is stored
// or defined in the configuration file (ClientConfig.client). It
// implements op.Client for the library.
type Client struct {
	id                     string
	name                   string
	public                 bool
	secretHashes           []storage.SecretHash
	redirectURIs           []string
	postLogoutRedirectURIs []string
	grantTypes             []string
	audiences              []string
	scopes                 []string
	allowedOrigins         []string
	backchannelLogoutURI   string
	idTokenAlg             string // "" for the broker's default
	// actors name who may act in this client's token exchanges
	// (storage.Client.Actors).
	actors []string
	// introspector may introspect every client's tokens
	// (storage.Client.Introspector).
	introspector bool
	// anyLoopbackRedirect is the development client's looseness: any
	// http loopback redirect URI, any port, any path.
	anyLoopbackRedirect bool
	// jwks (inline) or jwksURL are the keys the client signs
	// private_key_jwt assertions with.
	jwks    []jose.JSONWebKey
	jwksURL string
	// stored clients record their service user at its first use
	// (serviceUserID); config clients cannot, and find it again.
	stored        bool
	serviceUserID string
}

// client is c as the one client model: its secret kept as its SHA-256,
// its key set as JSON. Config.Validate has checked it with the rules
// stored clients follow (checkClient).
func (c ClientConfig) client() storage.Client {
	sc := storage.Client{
		ID:                       c.ID,
		Name:                     c.Name,
		Public:                   c.Public,
		RedirectURIs:             c.RedirectURIs,
		PostLogoutRedirectURIs:   c.PostLogoutRedirectURIs,
		GrantTypes:               c.GrantTypes,
		Audiences:                c.Audiences,
		Scopes:                   c.Scopes,
		AllowedOrigins:           c.AllowedOrigins,
		JWKSURL:                  c.JWKSURI,
		JWKS:                     c.JWKS,
		BackchannelLogoutURI:     c.BackchannelLogoutURI,
		IDTokenSignedResponseAlg: c.IDTokenSignedResponseAlg,
		Actors:                   c.Actors,
		Introspector:             c.Introspector,
	}
	if c.Secret != "" {
		h := sha256.Sum256([]byte(c.Secret))
		sc.SecretHashes = []storage.SecretHash{{Hash: h[:]}}
	}
	return sc
}

// newClient builds the client the broker serves from c; stored says
// whether c came from storage (it may then record its service user) or
// from the configuration file (where only the development client may take
// any loopback redirect URI).
func newClient(c storage.Client, stored bool) *Client {
	var keys []jose.JSONWebKey
	if len(c.JWKS) > 0 {
		// Keys were checked when configured or written; stored keys that
		// no longer parse authenticate nothing.
		keys, _ = clients.ParseJWKS(c.JWKS)
	}
	return &Client{
		id:                     c.ID,
		name:                   c.Name,
		public:                 c.Public,
		secretHashes:           c.SecretHashes,
		redirectURIs:           c.RedirectURIs,
		postLogoutRedirectURIs: c.PostLogoutRedirectURIs,
		grantTypes:             c.GrantTypes,
		audiences:              c.Audiences,
		scopes:                 c.Scopes,
		allowedOrigins:         c.AllowedOrigins,
		backchannelLogoutURI:   c.BackchannelLogoutURI,
		idTokenAlg:             c.IDTokenSignedResponseAlg,
		actors:                 c.Actors,
		introspector:           c.Introspector,
		anyLoopbackRedirect:    !stored && c.ID == DevClientID && c.Public && len(c.RedirectURIs) == 0,
		jwksURL:                c.JWKSURL,
		jwks:                   keys,
		stored:                 stored,
		serviceUserID:          c.ServiceUserID,
	}
}

// checkSecret compares secret with every unexpired stored hash in constant
// time. Client secrets are long random strings, so SHA-256 is enough and
// keeps the token endpoint fast (bcrypt would cap it at a few dozen
// requests per second per core).
func (c *Client) checkSecret(secret string, now time.Time) bool {
	h := sha256.Sum256([]byte(secret))
	ok := 0
	for _, s := range c.secretHashes {
		if !s.ExpiresAt.IsZero() && !now.Before(s.ExpiresAt) {
			continue
		}
		ok |= subtle.ConstantTimeCompare(h[:], s.Hash)
	}
	return ok == 1
}

func (c *Client) allowsGrant(g string) bool { return slices.Contains(c.grantTypes, g) }

// mayIntrospect reports whether c may learn about a token issued to
// clientID for audience. RFC 7662 section 4 has the server "determine
// whether or not the protected resource is allowed to know about the
// token"; here that is the token's own client, a client its audience
// names (the resource server it is for), or an introspector.
func (c *Client) mayIntrospect(clientID string, audience []string) bool {
	return c.introspector || clientID == c.id || slices.Contains(audience, c.id)
}

// redirectURIAllowed applies the broker's rule: exact match, except that a
// registered loopback URI matches any port (RFC 8252 section 7.3) and the
// development client takes any loopback URI.
func (c *Client) redirectURIAllowed(raw string) bool {
	if slices.Contains(c.redirectURIs, raw) {
		return true
	}
	u, ok := clients.LoopbackURL(raw)
	if !ok {
		return false
	}
	if c.anyLoopbackRedirect {
		return true
	}
	for _, r := range c.redirectURIs {
		ru, ok := clients.LoopbackURL(r)
		if ok && ru.Hostname() == u.Hostname() && ru.Path == u.Path && ru.RawQuery == u.RawQuery {
			return true
		}
	}
	return false
}

// requestView returns the client as the library should see it for one
// authorization request: the redirect URI the broker has already approved
// is listed, so the library's exact-match check agrees with ours.
func (c *Client) requestView(redirectURI string) *Client {
	if slices.Contains(c.redirectURIs, redirectURI) || !c.redirectURIAllowed(redirectURI) {
		return c
	}
	v := *c
	v.redirectURIs = append(slices.Clip(c.redirectURIs), redirectURI)
	return &v
}

// audienceFor picks the access token audience: the requested resources if
// each is allowed, else the client's default (its first audience, or its
// own id).
func (c *Client) audienceFor(resources []string) ([]string, error) {
	if len(resources) == 0 {
		if len(c.audiences) > 0 {
			return c.audiences[:1], nil
		}
		return []string{c.id}, nil
	}
	for _, r := range resources {
		if !slices.Contains(c.audiences, r) && r != c.id {
			return nil, fmt.Errorf("resource %q is not allowed for client %q", r, c.id)
		}
	}
	return resources, nil
}

// op.Client implementation.

func (c *Client) GetID() string                    { return c.id }
func (c *Client) RedirectURIs() []string           { return c.redirectURIs }
func (c *Client) PostLogoutRedirectURIs() []string { return c.postLogoutRedirectURIs }
func (c *Client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *Client) LoginURL(id string) string { return loginPath + "?id=" + url.QueryEscape(id) }
func (c *Client) AccessTokenType() op.AccessTokenType {
	return op.AccessTokenTypeJWT
}
func (c *Client) IDTokenLifetime() time.Duration { return 0 }
func (c *Client) DevMode() bool                  { return false }
func (c *Client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *Client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *Client) IsScopeAllowed(scope string) bool     { return slices.Contains(c.scopes, scope) }
func (c *Client) IDTokenUserinfoClaimsAssertion() bool { return false }
func (c *Client) ClockSkew() time.Duration             { return 0 }

// ApplicationType is native for public clients, so a registered loopback
// redirect URI matches any port; web for confidential ones.
func (c *Client) ApplicationType() op.ApplicationType {
	if c.public {
		return op.ApplicationTypeNative
	}
	return op.ApplicationTypeWeb
}

func (c *Client) AuthMethod() oidc.AuthMethod {
	if c.public {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic
}

func (c *Client) GrantTypes() []oidc.GrantType {
	var gs []oidc.GrantType
	for _, g := range c.grantTypes {
		switch g {
		case GrantAuthorizationCode:
			gs = append(gs, oidc.GrantTypeCode)
		case GrantRefreshToken:
			gs = append(gs, oidc.GrantTypeRefreshToken)
		case GrantTokenExchange:
			gs = append(gs, oidc.GrantTypeTokenExchange)
		case GrantClientCredentials:
			gs = append(gs, oidc.GrantTypeClientCredentials)
		}
	}
	return gs
}

// clientDirectory finds clients: the configuration file's first, then
// storage's.
type clientDirectory struct {
	static map[string]*Client
	store  storage.Clients
}

var errUnknownClient = errors.New("unknown client")

func (d *clientDirectory) get(ctx context.Context, id string) (*Client, error) {
	if c, ok := d.static[id]; ok {
		return c, nil
	}
	sc, err := d.store.GetClient(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errUnknownClient
	}
	if err != nil {
		return nil, fmt.Errorf("get client %q: %w", id, err)
	}
	return newClient(sc, true), nil
}

// backchannelLogoutURI is the back-channel logout URI of the client id,
// "" when it registered none or no longer exists (broker/backchannel's
// Options.LogoutURI).
func (b *Broker) backchannelLogoutURI(ctx context.Context, id string) (string, error) {
	client, err := b.clients.get(ctx, id)
	if errors.Is(err, errUnknownClient) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return client.backchannelLogoutURI, nil
}

// checkStoredClients refuses to start when a stored client has the id of
// a configured one: which of the two would answer is not something to
// leave to lookup order. It also notes stored clients' grants.
func (b *Broker) checkStoredClients(stored []storage.Client) error {
	for _, c := range stored {
		if _, ok := b.clients.static[c.ID]; ok {
			return fmt.Errorf("broker: client %q is defined both in the configuration file and in storage; remove one (broker clients delete, or the config entry)", c.ID)
		}
		b.noteClient(c.GrantTypes)
	}
	return nil
}

// noteClient advertises client_credentials and token exchange once a
// client, configured or stored, allows them.
func (b *Broker) noteClient(grantTypes []string) {
	if slices.Contains(grantTypes, GrantClientCredentials) {
		b.advertiseClientCredentials.Store(true)
	}
	if slices.Contains(grantTypes, GrantTokenExchange) {
		b.advertiseTokenExchange.Store(true)
	}
}
