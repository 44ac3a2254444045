package upstream

import (
	"context"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// TypIdentityAssertion is the JWT typ of an identity assertion
// authorization grant (ID-JAG, draft-ietf-oauth-identity-assertion-authz-grant
// section 3.1).
const TypIdentityAssertion = "oauth-id-jag+jwt"

// AssertionVerifier is a TokenVerifier whose upstream, an enterprise
// identity provider, may vouch for its users to the broker with identity
// assertion grants (ID-JAGs), which clients redeem at the broker's
// jwt-bearer grant (RFC 7523).
type AssertionVerifier interface {
	TokenVerifier
	// AcceptsIdentityAssertions reports whether the connector is
	// configured to accept them (acceptsIdentityAssertions: true);
	// VerifyIdentityAssertion refuses every one otherwise.
	AcceptsIdentityAssertions() bool
	// VerifyIdentityAssertion verifies an ID-JAG issued for audience
	// (the broker's issuer): one signature, by one of the upstream's
	// keys, with an algorithm it publishes; typ oauth-id-jag+jwt; iss the
	// upstream's; aud audience alone; exp, iat, jti, sub and client_id
	// present; exp and iat within the clock skew. It leaves to the
	// caller what only the broker knows: that client_id is the
	// authenticated client, that the jti was not used before, the
	// resource and the scope. Refusals wrap ErrInvalidToken; an upstream
	// whose keys cannot be fetched, ErrUnavailable.
	VerifyIdentityAssertion(ctx context.Context, jws *jose.JSONWebSignature, audience string) (IdentityAssertion, error)
}

// IdentityAssertion is a verified ID-JAG: who it names, and what it
// grants to whom.
type IdentityAssertion struct {
	Identity Identity
	// ID is the assertion's jti; Expiry its exp.
	ID     string
	Expiry time.Time
	// ClientID is the client at the broker the grant is for.
	ClientID string
	// Resource are the resource identifiers (RFC 8707) it names, if any.
	Resource []string
	// Scope are the scopes it grants, nil when it names none.
	Scope []string
	// AuthTime is when the user authenticated upstream, zero if unsaid.
	AuthTime time.Time
}
