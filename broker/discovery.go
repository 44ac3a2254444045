package broker

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/idbroker/broker/broker/answer"
	"github.com/idbroker/broker/broker/registration"
	"github.com/idbroker/broker/broker/tokens"
	"github.com/idbroker/broker/keys"
	"github.com/idbroker/broker/upstream/jwks"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// jwksMaxAge is how long downstream services may cache the JWKS. Keys are
// pre-published for longer than this, so a cached set always holds the
// key a fresh token names.
const jwksMaxAge = 15 * time.Minute

// discoveryMaxAge is how long the discovery document may be cached.
const discoveryMaxAge = time.Hour

// preEncoded is a document encoded once and served from memory.
type preEncoded struct {
	doc atomic.Pointer[encodedDoc]
}

type encodedDoc struct {
	body    json.RawMessage
	etag    string
	keysTag string // the JWKS ETag the document was built against
	// clientCredentials and tokenExchange are whether the document
	// lists those grants.
	clientCredentials, tokenExchange bool
	jwtBearer                        bool
}

// discoveryDoc returns the discovery document, rebuilt only when the
// published algorithms may have changed (the key set changed) or a
// client, perhaps created at another replica, allows client_credentials
// or token exchange.
func (b *Broker) discoveryDoc() *encodedDoc {
	if err := b.refreshStoredClients(); err != nil {
		b.log.Warn("discovery: stored clients unavailable", "err", err)
	}
	_, keysTag := b.keys.JWKS()
	cc, te, jb := b.advertiseClientCredentials.Load(), b.advertiseTokenExchange.Load(), b.advertiseJWTBearer()
	if d := b.discovery.doc.Load(); d != nil && d.keysTag == keysTag && d.clientCredentials == cc && d.tokenExchange == te && d.jwtBearer == jb {
		return d
	}
	body, err := json.Marshal(b.discoveryConfig())
	if err != nil {
		// A struct of strings always marshals.
		panic(fmt.Sprintf("broker: marshal discovery: %v", err))
	}
	d := &encodedDoc{body: body, etag: strongETag(body), keysTag: keysTag, clientCredentials: cc, tokenExchange: te, jwtBearer: jb}
	b.discovery.doc.Store(d)
	return d
}

func strongETag(body []byte) string {
	sum := sha256.Sum256(body)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
}

// discoveryDocument adds what the library's type lacks.
type discoveryDocument struct {
	*oidc.DiscoveryConfiguration
	// RFC 9207 section 3: the authorization response carries iss.
	AuthorizationResponseISSParameterSupported bool `json:"authorization_response_iss_parameter_supported"`
	// draft-ietf-oauth-client-id-metadata-document section 5: a client_id
	// may be the URL of the client's metadata document.
	ClientIDMetadataDocumentSupported bool `json:"client_id_metadata_document_supported,omitempty"`
}

// supportedScopes are the scopes the broker supports: discovery lists
// them, and a registered client may name them alone.
var supportedScopes = []string{oidc.ScopeOpenID, oidc.ScopeEmail, oidc.ScopeProfile, oidc.ScopeOfflineAccess, tokens.ScopeOrganization}

// discoveryConfig lists exactly what works.
func (b *Broker) discoveryConfig() discoveryDocument {
	grants := []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
	if b.advertiseTokenExchange.Load() {
		grants = append(grants, oidc.GrantTypeTokenExchange)
	}
	if b.advertiseClientCredentials.Load() {
		grants = append(grants, oidc.GrantTypeClientCredentials)
	}
	// RFC 8414 section 2 and OpenID Connect Dynamic Client Registration:
	// named only where clients may register.
	var registrationEndpoint string
	if b.registrar.Enabled() {
		registrationEndpoint = b.issuer + registration.Path
	}
	if b.advertiseJWTBearer() {
		grants = append(grants, oidc.GrantTypeBearer)
	}
	return discoveryDocument{AuthorizationResponseISSParameterSupported: true, ClientIDMetadataDocumentSupported: b.cfg.ClientMetadataDocuments.Enabled, DiscoveryConfiguration: &oidc.DiscoveryConfiguration{
		Issuer:                                     b.issuer,
		AuthorizationEndpoint:                      b.issuer + authorizePath,
		TokenEndpoint:                              b.issuer + tokenPath,
		UserinfoEndpoint:                           b.issuer + userinfoPath,
		IntrospectionEndpoint:                      b.issuer + introspectPath,
		RevocationEndpoint:                         b.issuer + revokePath,
		EndSessionEndpoint:                         b.issuer + endSessionPath,
		RegistrationEndpoint:                       registrationEndpoint,
		JwksURI:                                    b.issuer + jwksPath,
		ScopesSupported:                            supportedScopes,
		ResponseTypesSupported:                     []string{string(oidc.ResponseTypeCode)},
		ResponseModesSupported:                     []string{string(oidc.ResponseModeQuery)},
		GrantTypesSupported:                        grants,
		SubjectTypesSupported:                      []string{"public"},
		IDTokenSigningAlgValuesSupported:           b.keys.Algorithms(keys.UseIDToken),
		TokenEndpointAuthMethodsSupported:          []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost, oidc.AuthMethodPrivateKeyJWT, oidc.AuthMethodNone},
		TokenEndpointAuthSigningAlgValuesSupported: jwks.AlgorithmNames(),
		IntrospectionEndpointAuthMethodsSupported:  []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost, oidc.AuthMethodPrivateKeyJWT},
		RevocationEndpointAuthMethodsSupported:     []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost, oidc.AuthMethodNone},
		CodeChallengeMethodsSupported:              []oidc.CodeChallengeMethod{oidc.CodeChallengeMethodS256},
		ClaimsSupported:                            []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "amr", "idp", "azp", "at_hash", "sid", "email", "email_verified", "name", "org_id", "org_slug"},
		BackChannelLogoutSupported:                 true,
		BackChannelLogoutSessionSupported:          true,
		RequestParameterSupported:                  false,
		RequestURIParameterSupported:               false,
	}}
}

// advertiseJWTBearer says whether the jwt-bearer grant works: a client
// allows it and a connector accepts the identity assertions it redeems.
func (b *Broker) advertiseJWTBearer() bool {
	return b.clientAllowsJWTBearer.Load() && b.upstreams.AcceptsIdentityAssertions()
}

// Discovery serves the pre-encoded discovery document.
func (b *Broker) Discovery(context.Context, *op.Request[struct{}]) (*op.Response, error) {
	d := b.discoveryDoc()
	return cachedResponse(d.body, d.etag, discoveryMaxAge), nil
}

// metadataPath is where RFC 8414 authorization server metadata is served.
const metadataPath = "/.well-known/oauth-authorization-server"

// metadataPaths are the paths of the authorization server metadata: the
// well-known path, and for an issuer with a path the path-inserted form
// RFC 8414 section 3.1 defines (the well-known segment between the host
// and the issuer's path), for a proxy that forwards it unchanged.
func metadataPaths(issuer string) []string {
	paths := []string{metadataPath}
	if u, err := url.Parse(issuer); err == nil && strings.Trim(u.Path, "/") != "" {
		paths = append(paths, metadataPath+"/"+strings.Trim(u.Path, "/"))
	}
	return paths
}

// serveMetadata serves RFC 8414 authorization server metadata, which OAuth
// clients (MCP clients among them) fetch where OpenID Connect relying
// parties fetch discovery. It is the discovery document itself: every
// field RFC 8414 section 2 defines that the broker supports is in it,
// with the same values, and the OpenID Connect fields are registered
// metadata too (section 7.1.2), so the two never disagree.
func (b *Broker) serveMetadata(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		answer.OAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "this endpoint answers only GET")
		return
	}
	d := b.discoveryDoc()
	w.Header().Set("ETag", d.etag)
	w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(discoveryMaxAge/time.Second)))
	if slices.Contains(splitETags(r.Header.Get("If-None-Match")), d.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(d.body)
}

// Keys serves the pre-encoded JWKS.
func (b *Broker) Keys(context.Context, *op.Request[struct{}]) (*op.Response, error) {
	body, etag := b.keys.JWKS()
	return cachedResponse(body, etag, jwksMaxAge), nil
}

func cachedResponse(body []byte, etag string, maxAge time.Duration) *op.Response {
	resp := op.NewResponse(json.RawMessage(body))
	resp.Header.Set("ETag", etag)
	resp.Header.Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(maxAge/time.Second)))
	return resp
}

// notModified answers a conditional GET of a pre-encoded document with 304
// before it reaches the library.
func notModified(etag func() string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if inm := r.Header.Get("If-None-Match"); inm != "" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			tag := etag()
			if slices.Contains(splitETags(inm), tag) {
				w.Header().Set("ETag", tag)
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

func splitETags(s string) []string {
	tags := strings.Split(s, ",")
	for i, t := range tags {
		tags[i] = strings.TrimSpace(t)
	}
	return tags
}
