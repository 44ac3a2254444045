// Package upstream defines how the broker talks to upstream identity
// providers. A connector turns an upstream's answers into an Identity; it
// never writes users (the broker resolves identities) and imports none of
// the project's other packages.
//
// Every connector implements Connector. The capabilities a connector has are
// small optional interfaces, found by type assertion: CallbackConnector for
// a browser login by redirect, TokenVerifier for token exchange (and
// ParsedTokenVerifier to take a JWT already parsed, OpaqueTokenVerifier
// when its tokens are not JWTs, IdentityCompleter when its access tokens
// may leave the email out), Refresher for re-checking the upstream on
// refresh (RefreshTokenAsker when that needs asking for at login).
package upstream

import (
	"context"
	"errors"
	"net/http"

	jose "github.com/go-jose/go-jose/v4"
)

// Errors a connector returns (wrapped with detail for the server log).
var (
	// ErrInvalidToken: the upstream's answer or token failed verification
	// (signature, algorithm, issuer, audience, expiry, state, nonce). The
	// client is told little; the log gets the wrapped detail.
	ErrInvalidToken = errors.New("upstream: invalid token")
	// ErrDenied: the upstream refused (the user cancelled, is blocked, a
	// refresh token was revoked there).
	ErrDenied = errors.New("upstream: access denied")
	// ErrUnavailable: the upstream could not be reached or answered with a
	// server error or too slowly. Nothing should be decided from it.
	ErrUnavailable = errors.New("upstream: unavailable")
)

// Identity is who an upstream says the user is.
type Identity struct {
	ConnectorID string
	// Subject is the upstream's stable key for the person: Auth0 sub,
	// Entra tid+oid, WorkOS user id, OTP normalised email.
	Subject       string
	Email         string // normalised (trimmed, lower-cased)
	EmailVerified bool
	Name          string
	Organization  string
	Claims        map[string]any
	// RefreshToken is an upstream refresh token the broker may keep
	// (encrypted) to re-check the user later; empty when none was issued.
	RefreshToken string
	// UserID is set only by connectors whose upstream already knows the
	// platform UUID (legacy session services).
	UserID string
	// Impersonation is set when someone other than the user signed in as
	// them with the upstream's leave; nil for the user's own login. A
	// connector returns it only when configured to allow impersonation.
	Impersonation *Impersonation
}

// Impersonation is a login by someone acting as the user with the
// upstream's leave (a WorkOS dashboard member impersonating them).
type Impersonation struct {
	// Actor names the impersonator as the sub of the act claim of the
	// broker's tokens: "workos-impersonator:<email>". It is never a
	// platform user id.
	Actor  string
	Email  string
	Reason string // what the impersonator said they were doing
}

// Connector is what every connector is.
type Connector interface {
	// ID is the connector's id from the configuration.
	ID() string
	// TrustEmail reports whether a verified email from this upstream may
	// link to an existing user (configured `trustEmail: true`).
	TrustEmail() bool
}

// LoginState is what the broker generated for one upstream login and keeps
// with the auth request. The connector sends it upstream and checks what
// comes back against it.
type LoginState struct {
	CallbackURL  string // the broker's callback for this connector
	State        string
	Nonce        string
	CodeVerifier string // PKCE verifier; the connector sends its S256 challenge
	LoginHint    string
}

// CallbackConnector logs a person in by redirecting the browser upstream.
type CallbackConnector interface {
	Connector
	// LoginURL is where to send the browser.
	LoginURL(ctx context.Context, s LoginState) (string, error)
	// HandleCallback finishes the login from the upstream's redirect back
	// to the broker: it checks state, exchanges the code, verifies what
	// it gets (signature, issuer, audience, expiry, nonce) and returns
	// the identity.
	HandleCallback(ctx context.Context, s LoginState, r *http.Request) (Identity, error)
}

// TokenVerifier verifies a raw upstream token for token exchange.
type TokenVerifier interface {
	Connector
	// Issuers are the token issuers this connector verifies, used to
	// match a subject token to its connector. Empty for connectors that
	// must be named explicitly.
	Issuers() []string
	// VerifyToken verifies a token of the given RFC 8693 type (access,
	// id or jwt token type URI) and returns its identity.
	VerifyToken(ctx context.Context, rawToken, tokenType string) (Identity, error)
}

// ParsedTokenVerifier is a TokenVerifier of signed JWTs that also verifies
// a token the broker has parsed already, to read its issuer and pick the
// connector, so that the token is parsed once. jws is the parse of
// rawToken, in compact serialization, admitting any asymmetric algorithm:
// the connector still refuses an algorithm its upstream does not use.
type ParsedTokenVerifier interface {
	TokenVerifier
	VerifyParsedToken(ctx context.Context, rawToken string, jws *jose.JSONWebSignature, tokenType string) (Identity, error)
}

// IdentityCompleter is a TokenVerifier whose access tokens may leave out
// what resolving a person needs (Auth0's carry no email), and whose
// upstream can be asked for it with the token.
type IdentityCompleter interface {
	TokenVerifier
	// CompleteIdentity asks the upstream about the user of accessToken,
	// which VerifyToken verified as id, and returns id with what the
	// upstream said added (email, its verification, name). The subject
	// must stay id's: an answer about anyone else is ErrInvalidToken.
	// An upstream that cannot be asked for this connector's tokens
	// returns id unchanged. It keeps nothing: each call asks again.
	CompleteIdentity(ctx context.Context, accessToken string, id Identity) (Identity, error)
}

// OpaqueTokenVerifier is a TokenVerifier whose tokens are opaque (a
// platform's own session tokens), not JWTs. Nothing can be read from such
// a token before its connector verifies it, so it names no issuer and the
// client must name the connector; the broker passes the token to it as is.
type OpaqueTokenVerifier interface {
	TokenVerifier
	// VerifiesOpaqueTokens does nothing: it marks the connector as one.
	VerifiesOpaqueTokens()
}

// Readier is a connector that must fetch something before it can serve
// (an OpenID provider's discovery document).
type Readier interface {
	Connector
	// Ready reports whether the connector has what it needs, fetching it
	// now (within ctx) if it never has. Once fetched, it stays ready even
	// if its upstream later goes down: what it fetched is cached.
	Ready(ctx context.Context) error
}

// Refresher re-checks a user with the upstream using its refresh token.
type Refresher interface {
	Connector
	// Refresh returns the identity as the upstream sees it now, with the
	// new refresh token when the upstream rotates it. ErrDenied means the
	// upstream no longer accepts the user.
	Refresh(ctx context.Context, refreshToken string) (Identity, error)
}

// RefreshTokenAsker is a Refresher whose upstream issues a refresh token
// only when a login asks for one (OpenID Connect's offline_access).
type RefreshTokenAsker interface {
	Refresher
	// AsksForRefreshToken reports whether the connector's logins ask
	// for a refresh token. When they do not, Refresh never has one to
	// use: the upstream is never asked about the user again.
	AsksForRefreshToken() bool
}

// Logouter is an upstream that publishes where a person signs out of it
// (OpenID Connect discovery's end_session_endpoint).
type Logouter interface {
	Connector
	// LogoutURL is where to send the browser to sign out upstream, asking
	// to come back to postLogoutRedirect (when not empty, and registered
	// there). "" with a nil error: the upstream publishes no such place.
	LogoutURL(ctx context.Context, postLogoutRedirect string) (string, error)
}

// Token type URIs from RFC 8693 section 3.
const (
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeIDToken     = "urn:ietf:params:oauth:token-type:id_token"
	TokenTypeJWT         = "urn:ietf:params:oauth:token-type:jwt"
)
