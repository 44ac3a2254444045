package oidc

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/idbroker/broker/upstream"
)

// Connector implements upstream.AssertionVerifier.
var _ upstream.AssertionVerifier = (*Connector)(nil)

// AcceptsIdentityAssertions implements upstream.AssertionVerifier.
func (c *Connector) AcceptsIdentityAssertions() bool { return c.cfg.AcceptsIdentityAssertions }

// idJAGClaims are the claims of an identity assertion grant beyond the
// registered ones (draft-ietf-oauth-identity-assertion-authz-grant
// section 3.1).
type idJAGClaims struct {
	ClientID string          `json:"client_id"`
	Resource json.RawMessage `json:"resource"` // a string or an array of strings
	Scope    string          `json:"scope"`
	AuthTime int64           `json:"auth_time"`
}

// VerifyIdentityAssertion implements upstream.AssertionVerifier, with the
// connector's MaxClockSkew as the leeway on exp and iat. Unlike
// VerifyToken it does not check ExchangeAudiences: an ID-JAG's audience is
// the authorization server it was issued for, audience, and section 4.4.1
// wants it alone, as a string or a one-element array.
func (c *Connector) VerifyIdentityAssertion(ctx context.Context, jws *jose.JSONWebSignature, audience string) (upstream.IdentityAssertion, error) {
	if !c.cfg.AcceptsIdentityAssertions {
		return upstream.IdentityAssertion{}, fmt.Errorf("oidc: connector %q does not accept identity assertions: %w", c.cfg.ID, upstream.ErrInvalidToken)
	}
	// Section 4.4.1: "Validate the JWT typ is oauth-id-jag+jwt", so that
	// an ID token, or any other JWT of the upstream, is never taken for
	// a grant (RFC 8725 section 3.11).
	if len(jws.Signatures) != 1 {
		return upstream.IdentityAssertion{}, fmt.Errorf("oidc: identity assertion has %d signatures, want 1: %w", len(jws.Signatures), upstream.ErrInvalidToken)
	}
	if typ, _ := jws.Signatures[0].Protected.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(typ, upstream.TypIdentityAssertion) {
		return upstream.IdentityAssertion{}, fmt.Errorf("oidc: typ %q is not %s: %w", typ, upstream.TypIdentityAssertion, upstream.ErrInvalidToken)
	}
	p, err := c.provider(ctx)
	if err != nil {
		return upstream.IdentityAssertion{}, err
	}
	if !slices.Contains(p.algs, jose.SignatureAlgorithm(jws.Signatures[0].Header.Algorithm)) {
		return upstream.IdentityAssertion{}, fmt.Errorf("oidc: identity assertion not signed with one of %q: %w", p.algs, upstream.ErrInvalidToken)
	}
	payload, err := p.keys.VerifyJWS(ctx, jws)
	if err != nil {
		return upstream.IdentityAssertion{}, err
	}
	var registered jwt.Claims
	var own idJAGClaims
	if err := json.Unmarshal(payload, &registered); err != nil {
		return upstream.IdentityAssertion{}, fmt.Errorf("oidc: identity assertion claims: %w: %w", err, upstream.ErrInvalidToken)
	}
	if err := json.Unmarshal(payload, &own); err != nil {
		return upstream.IdentityAssertion{}, fmt.Errorf("oidc: identity assertion claims: %w: %w", err, upstream.ErrInvalidToken)
	}
	if registered.Expiry == nil || registered.IssuedAt == nil || registered.ID == "" || own.ClientID == "" {
		return upstream.IdentityAssertion{}, fmt.Errorf("oidc: identity assertion lacks exp, iat, jti or client_id: %w", upstream.ErrInvalidToken)
	}
	if len(registered.Audience) != 1 || registered.Audience[0] != audience {
		return upstream.IdentityAssertion{}, fmt.Errorf("oidc: identity assertion audience %q, want %q alone: %w", registered.Audience, audience, upstream.ErrInvalidToken)
	}
	now, skew := c.now(), c.cfg.MaxClockSkew
	if err := registered.ValidateWithLeeway(jwt.Expected{Issuer: c.cfg.Issuer, Time: now}, skew); err != nil {
		return upstream.IdentityAssertion{}, fmt.Errorf("oidc: identity assertion refused at %s with leeway %s: %w (iss %q, exp %s, iat %s): %w",
			now.UTC().Format(time.RFC3339), skew, err, registered.Issuer, date(registered.Expiry), date(registered.IssuedAt), upstream.ErrInvalidToken)
	}
	resource, err := resourceClaim(own.Resource)
	if err != nil {
		return upstream.IdentityAssertion{}, err
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return upstream.IdentityAssertion{}, fmt.Errorf("oidc: identity assertion claims: %w: %w", err, upstream.ErrInvalidToken)
	}
	if err := c.checkDialect(claims); err != nil {
		return upstream.IdentityAssertion{}, err
	}
	id, err := c.identity(claims)
	if err != nil {
		return upstream.IdentityAssertion{}, err
	}
	a := upstream.IdentityAssertion{Identity: id, ID: registered.ID, Expiry: registered.Expiry.Time(),
		ClientID: own.ClientID, Resource: resource}
	if own.Scope != "" {
		a.Scope = strings.Fields(own.Scope)
	}
	if own.AuthTime > 0 {
		a.AuthTime = time.Unix(own.AuthTime, 0)
	}
	return a, nil
}

// resourceClaim reads section 3.1's resource: "either a single URI or an
// array of URIs".
func resourceClaim(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, fmt.Errorf("oidc: identity assertion resource is neither a string nor an array of strings: %w", upstream.ErrInvalidToken)
	}
	return many, nil
}
