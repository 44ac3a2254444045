package clients

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/idbroker/broker/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Grant type names as written in the configuration and in storage.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantTokenExchange     = "token-exchange"
	GrantClientCredentials = "client_credentials"
	// GrantJWTBearer is RFC 7523's grant, which the broker answers for
	// identity assertion grants (ID-JAGs) only; named by its URN, as
	// RFC 7591 registration names it.
	GrantJWTBearer = string(oidc.GrantTypeBearer)
)

// DevClientID is the development instance's client. Only it, when
// configured public without redirect URIs, accepts any loopback redirect
// URI.
const DevClientID = "dev"

// LoginPath is the broker's login page, where the library sends the
// browser of an authorization request (Client.LoginURL).
const LoginPath = "/login"

// Client is an OAuth client as the broker serves it, built by New from
// the one client model, storage.Client, whether the client is stored or
// defined in the configuration file. It implements op.Client for the
// library. It is never changed once built.
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
	backchannelLogoutURI   string
	idTokenAlg             string // "" for the broker's default
	// actors name who may act in this client's token exchanges
	// (storage.Client.Actors).
	actors []string
	// introspector may introspect every client's tokens
	// (storage.Client.Introspector).
	introspector bool
	// idJAGAudiences are the authorization servers the client may get
	// identity assertion grants for (storage.Client.IDJAGAudiences).
	idJAGAudiences []string
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
	// thirdParty clients ask their users' consent and may only ask for
	// resources that accept them (storage.Client.ThirdParty).
	thirdParty bool
	// documentHost is the host of a client identified by the URL of its
	// client ID metadata document, "" for every other client; verified
	// says the host is on the operator's list of trusted client domains.
	documentHost string
	verified     bool
	// registered clients came through /register (RFC 7591); they expire
	// when unused, and lastUsedAt is when storage last recorded a use.
	registered bool
	lastUsedAt time.Time
}

// New builds the client the broker serves from c; stored says whether c
// came from storage (it may then record its service user) or from the
// configuration file (where only the development client may take any
// loopback redirect URI). It does not check c against the client rules.
func New(c storage.Client, stored bool) *Client {
	var keys []jose.JSONWebKey
	if len(c.JWKS) > 0 {
		// Keys were checked when configured or written; stored keys that
		// no longer parse authenticate nothing.
		keys, _ = ParseJWKS(c.JWKS)
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
		backchannelLogoutURI:   c.BackchannelLogoutURI,
		idTokenAlg:             c.IDTokenSignedResponseAlg,
		actors:                 c.Actors,
		introspector:           c.Introspector,
		idJAGAudiences:         c.IDJAGAudiences,
		anyLoopbackRedirect:    !stored && c.ID == DevClientID && c.Public && len(c.RedirectURIs) == 0,
		jwksURL:                c.JWKSURL,
		jwks:                   keys,
		stored:                 stored,
		serviceUserID:          c.ServiceUserID,
		thirdParty:             c.ThirdParty,
		registered:             c.RegistrationTokenHash != nil,
		lastUsedAt:             c.LastUsedAt,
	}
}

// FromDocument builds the client that the client ID metadata document
// c describes (broker/clientdoc): like New for a client of the
// configuration file, and served from host, which the operator trusts
// when verified. The caller has checked c against the client rules.
func FromDocument(c storage.Client, host string, verified bool) *Client {
	client := New(c, false)
	client.documentHost, client.verified = host, verified
	return client
}

// ThirdParty reports whether the client is third-party: its users consent
// to it, and it may only ask for resources that accept third parties.
func (c *Client) ThirdParty() bool { return c.thirdParty }

// Registered reports whether the client registered itself through
// /register (RFC 7591).
func (c *Client) Registered() bool { return c.registered }

// LastUsedAt is when storage last recorded that a registered client
// obtained a token (coarsely: storage.ClientUseGranularity).
func (c *Client) LastUsedAt() time.Time { return c.lastUsedAt }

// DocumentHost is the host serving the client's ID metadata document, ""
// for a client not identified by one. The consent page names it, since
// the document's own name is the client's claim about itself.
func (c *Client) DocumentHost() string { return c.documentHost }

// Verified reports whether a metadata-document client's host is one the
// operator trusts; the consent page marks other such clients unverified.
func (c *Client) Verified() bool { return c.verified }

// Name is the client's display name, "" when it has none.
func (c *Client) Name() string { return c.name }

// Public reports whether the client is public: it authenticates with
// nothing but its id.
func (c *Client) Public() bool { return c.public }

// Scopes are the scopes the client may ask for.
func (c *Client) Scopes() []string { return c.scopes }

// Audiences are the resources the client may ask tokens for, its default
// first.
func (c *Client) Audiences() []string { return c.audiences }

// BackchannelLogoutURI is where the client takes logout tokens, "" for
// nowhere.
func (c *Client) BackchannelLogoutURI() string { return c.backchannelLogoutURI }

// IDTokenAlg is the algorithm the client's ID tokens are signed with, ""
// for the broker's default.
func (c *Client) IDTokenAlg() string { return c.idTokenAlg }

// Actors name who may act in the client's token exchanges
// ("client:<id>" or "user:<UUID>").
func (c *Client) Actors() []string { return c.actors }

// IDJAGAudiences are the authorization servers, by issuer identifier,
// the client may get identity assertion grants (ID-JAGs) for.
func (c *Client) IDJAGAudiences() []string { return c.idJAGAudiences }

// Stored reports whether the client came from storage rather than the
// configuration file.
func (c *Client) Stored() bool { return c.stored }

// ServiceUserID is the stored client's service user as storage recorded
// it, "" before its first use and for configured clients.
func (c *Client) ServiceUserID() string { return c.serviceUserID }

// CheckSecret compares secret with every unexpired stored hash in
// constant time. Client secrets are long random strings, so SHA-256 is
// enough and keeps the token endpoint fast (bcrypt would cap it at a few
// dozen requests per second per core). It counts no failure.
func (c *Client) CheckSecret(secret string, now time.Time) bool {
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

// VerifySignature checks an assertion's signature against the client's
// keys, registered inline or fetched through sets, and returns its
// payload. It checks no claim. An error wrapping upstream.ErrUnavailable
// means the client's key set could not be fetched.
func (c *Client) VerifySignature(ctx context.Context, sets *KeySets, jws *jose.JSONWebSignature) ([]byte, error) {
	if c.jwksURL != "" {
		return sets.Get(c.jwksURL).VerifyJWS(ctx, jws)
	}
	if len(c.jwks) == 0 {
		return nil, errors.New("the client has no keys registered")
	}
	h := jws.Signatures[0].Header
	for _, k := range c.jwks {
		if (h.KeyID != "" && k.KeyID != h.KeyID) || (k.Algorithm != "" && k.Algorithm != h.Algorithm) {
			continue
		}
		if payload, err := jws.Verify(&k); err == nil {
			return payload, nil
		}
	}
	return nil, fmt.Errorf("no registered key %q verifies the %s signature", h.KeyID, h.Algorithm)
}

// AllowsGrant reports whether the client may use the grant g, named as
// in the configuration (GrantAuthorizationCode and the others).
func (c *Client) AllowsGrant(g string) bool { return slices.Contains(c.grantTypes, g) }

// MayIntrospect reports whether c may learn about a token issued to
// clientID for audience. RFC 7662 section 4 has the server "determine
// whether or not the protected resource is allowed to know about the
// token"; here that is the token's own client, a client its audience
// names (the resource server it is for), or an introspector.
func (c *Client) MayIntrospect(clientID string, audience []string) bool {
	return c.introspector || clientID == c.id || slices.Contains(audience, c.id)
}

// RedirectURIAllowed applies the broker's rule: exact match, except that
// a registered loopback URI matches any port (RFC 8252 section 7.3) and
// the development client takes any loopback URI. A metadata-document
// client's URIs match exactly, loopback ones too: the draft defining
// such documents demands simple string comparison, and the document
// lists the ports its client listens on.
func (c *Client) RedirectURIAllowed(raw string) bool {
	if slices.Contains(c.redirectURIs, raw) {
		return true
	}
	u, ok := LoopbackURL(raw)
	if !ok || c.documentHost != "" {
		return false
	}
	if c.anyLoopbackRedirect {
		return true
	}
	for _, r := range c.redirectURIs {
		ru, ok := LoopbackURL(r)
		if ok && ru.Hostname() == u.Hostname() && ru.Path == u.Path && ru.RawQuery == u.RawQuery {
			return true
		}
	}
	return false
}

// RequestView returns the client as the library should see it for one
// authorization request: the redirect URI the broker has already approved
// is listed, so the library's exact-match check agrees with ours.
func (c *Client) RequestView(redirectURI string) *Client {
	if slices.Contains(c.redirectURIs, redirectURI) || !c.RedirectURIAllowed(redirectURI) {
		return c
	}
	v := *c
	v.redirectURIs = append(slices.Clip(c.redirectURIs), redirectURI)
	return &v
}

// WithResourceScopes returns the client as one authorization request
// sees it: a third-party client may also ask for scopes, the scopes of
// the resources accepting third parties that the request names. MCP
// clients learn those from the resource's metadata at run time, and
// declare none when they register; the consent page names each, and the
// person decides. Any other client is returned as it is.
func (c *Client) WithResourceScopes(scopes []string) *Client {
	if !c.thirdParty || len(scopes) == 0 {
		return c
	}
	v := *c
	v.scopes = append(slices.Clip(c.scopes), scopes...)
	return &v
}

// AudienceFor picks the access token audience: the requested resources
// if each is allowed, else the client's default (its first audience, or
// its own id).
func (c *Client) AudienceFor(resources []string) ([]string, error) {
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
func (c *Client) LoginURL(id string) string { return LoginPath + "?id=" + url.QueryEscape(id) }
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
		case GrantJWTBearer:
			gs = append(gs, oidc.GrantTypeBearer)
		}
	}
	return gs
}

// Directory finds clients: the configuration file's first, then, for
// an https URL when documents are in use, the client its metadata
// document describes, else storage's. It caches nothing of storage's.
type Directory struct {
	static    map[string]*Client
	store     storage.Clients
	documents Documents
}

// Documents finds the clients identified by the URL of their client ID
// metadata document (broker/clientdoc). An id it cannot make a client
// of is an error wrapping ErrUnusableDocument.
type Documents interface {
	Client(ctx context.Context, id string) (*Client, error)
}

// documentIDPrefix starts every client id that names a metadata
// document. The broker generates no client id that starts with it, as
// the draft asks of servers that also register clients.
const documentIDPrefix = "https://"

// ErrUnknownClient is Directory.Get's answer for an id neither the
// configuration nor storage has.
var ErrUnknownClient = errors.New("unknown client")

// ErrUnusableDocument is Directory.Get's answer for a client whose
// metadata document could not be fetched or was refused: an unknown
// client, whose reason is in the log.
var ErrUnusableDocument = fmt.Errorf("%w: its client ID metadata document could not be used", ErrUnknownClient)

// ErrDocumentFetchesLimited is Directory.Get's answer when the client
// address fetched too many metadata documents lately: the document was
// not fetched, and may be usable later.
var ErrDocumentFetchesLimited = fmt.Errorf("%w: too many metadata documents fetched for this address", ErrUnusableDocument)

// NewDirectory returns a directory of the clients in store and of those
// added with AddConfigured.
func NewDirectory(store storage.Clients) *Directory {
	return &Directory{static: map[string]*Client{}, store: store}
}

// AddConfigured adds a client of the configuration file. It is not safe
// to call once the directory is in use.
func (d *Directory) AddConfigured(c storage.Client) { d.static[c.ID] = New(c, false) }

// UseDocuments makes the directory find the clients of ids that are
// https URLs through docs. It is not safe to call once the directory is
// in use.
func (d *Directory) UseDocuments(docs Documents) { d.documents = docs }

// Configured reports whether id is a client of the configuration file.
func (d *Directory) Configured(id string) bool {
	_, ok := d.static[id]
	return ok
}

// Get finds the client id: ErrUnknownClient when there is none, a
// wrapped storage error when storage could not tell.
func (d *Directory) Get(ctx context.Context, id string) (*Client, error) {
	if c, ok := d.static[id]; ok {
		return c, nil
	}
	if d.documents != nil && strings.HasPrefix(id, documentIDPrefix) {
		return d.documents.Client(ctx, id)
	}
	sc, err := d.store.GetClient(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, ErrUnknownClient
	}
	if err != nil {
		return nil, fmt.Errorf("get client %q: %w", id, err)
	}
	return New(sc, true), nil
}
