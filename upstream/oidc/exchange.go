package oidc

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/idbroker/broker/upstream"
	"github.com/idbroker/broker/upstream/jwks"
)

const (
	// goOIDCNotBeforeLeeway is the leeway go-oidc v3 gives nbf at login,
	// on a clock the connector sets back by MaxClockSkew. Exchange never
	// gives more.
	goOIDCNotBeforeLeeway = 5 * time.Minute
	// googleIssuer may be written without its scheme in Google's tokens;
	// go-oidc accepts that, for Google only, and so does exchange.
	googleIssuer         = "https://accounts.google.com"
	googleIssuerNoScheme = "accounts.google.com"
)

// Issuers implements upstream.TokenVerifier.
func (c *Connector) Issuers() []string {
	if c.dialect.issuers != nil {
		return c.dialect.issuers()
	}
	return []string{c.cfg.Issuer}
}

// VerifyToken implements upstream.TokenVerifier for access, ID and JWT
// token types. The token must be a JWT in compact serialization with
// exactly one signature, by one of the upstream's keys, with an
// algorithm discovery publishes ("none" and HMAC never). With s the
// MaxClockSkew, its claims must then have:
//
//   - iss Config.Issuer (the Entra ID preset checks it against the
//     token's tid and version instead; like go-oidc, Google's issuer may
//     come without its scheme);
//   - exp, no more than s in the past;
//   - nbf, when present, no more than s in the future, nor more than 5m-s
//     (what go-oidc allows at login);
//   - iat, when present, no more than s in the future;
//   - an aud that names one of Config.ExchangeAudiences;
//   - whatever the preset checks (an Auth0 organisation, Entra tenants).
//
// It does not check a nonce (there is no login to match) or who the token
// was issued to beyond its audience. Every refusal wraps
// upstream.ErrInvalidToken; upstream.ErrUnavailable means the upstream's
// discovery document or keys could not be fetched.
func (c *Connector) VerifyToken(ctx context.Context, rawToken, tokenType string) (upstream.Identity, error) {
	// Any asymmetric algorithm parses; VerifyParsedToken pins the
	// upstream's own.
	jws, err := jwks.ParseCompact(rawToken)
	if err != nil {
		return upstream.Identity{}, fmt.Errorf("oidc: token malformed or not signed with an asymmetric algorithm: %w: %w", err, upstream.ErrInvalidToken)
	}
	return c.VerifyParsedToken(ctx, rawToken, jws, tokenType)
}

// VerifyParsedToken implements upstream.ParsedTokenVerifier: VerifyToken
// for a token the caller parsed, which must still be signed with one of
// the algorithms the upstream publishes.
func (c *Connector) VerifyParsedToken(ctx context.Context, rawToken string, jws *jose.JSONWebSignature, tokenType string) (upstream.Identity, error) {
	switch tokenType {
	case upstream.TokenTypeAccessToken, upstream.TokenTypeIDToken, upstream.TokenTypeJWT:
	default:
		return upstream.Identity{}, fmt.Errorf("oidc: token type %q not accepted: %w", tokenType, upstream.ErrInvalidToken)
	}
	if len(c.cfg.ExchangeAudiences) == 0 {
		return upstream.Identity{}, fmt.Errorf("oidc: connector %q accepts no token for exchange (no exchange audiences): %w", c.cfg.ID, upstream.ErrInvalidToken)
	}
	p, err := c.provider(ctx)
	if err != nil {
		return upstream.Identity{}, err
	}
	if len(jws.Signatures) != 1 || !slices.Contains(p.algs, jose.SignatureAlgorithm(jws.Signatures[0].Header.Algorithm)) {
		return upstream.Identity{}, fmt.Errorf("oidc: token not signed once with one of %q: %w", p.algs, upstream.ErrInvalidToken)
	}
	claims, err := c.exchangeClaims(ctx, p, rawToken, jws)
	if err != nil {
		return upstream.Identity{}, err
	}
	return c.identity(claims)
}

// exchangeClaims makes VerifyToken's checks after the algorithm's and
// returns the claims of jws, parsed from rawToken. go-oidc's verifier is
// not used here: it parses a token three times over, where go-jose, used
// directly, parses it once. The signature of a token verified before
// with the keys held is not checked again (jwks.RemoteKeySet.VerifyCompact):
// a service presents the token it holds on every call. Every claim is.
func (c *Connector) exchangeClaims(ctx context.Context, p *provider, rawToken string, jws *jose.JSONWebSignature) (map[string]any, error) {
	payload, err := p.keys.VerifyCompact(ctx, rawToken, jws)
	if err != nil {
		return nil, err
	}

	var registered jwt.Claims
	if err := json.Unmarshal(payload, &registered); err != nil {
		return nil, fmt.Errorf("oidc: token claims: %w: %w", err, upstream.ErrInvalidToken)
	}
	if registered.Expiry == nil {
		return nil, fmt.Errorf("oidc: token has no exp: %w", upstream.ErrInvalidToken)
	}
	now, skew := c.now(), c.cfg.MaxClockSkew
	want := jwt.Expected{Time: now}
	switch {
	case c.dialect.ownIssuerCheck, c.dialect.checkExchange != nil: // the preset checks it
	case c.cfg.Issuer == googleIssuer && registered.Issuer == googleIssuerNoScheme: // as go-oidc
	default:
		want.Issuer = c.cfg.Issuer
	}
	if err := registered.ValidateWithLeeway(want, skew); err != nil {
		return nil, fmt.Errorf("oidc: token refused at %s with leeway %s: %w (iss %q, exp %s, nbf %s, iat %s): %w",
			now.UTC().Format(time.RFC3339), skew, err, registered.Issuer,
			date(registered.Expiry), date(registered.NotBefore), date(registered.IssuedAt), upstream.ErrInvalidToken)
	}
	if nbf := registered.NotBefore; nbf != nil && now.Add(goOIDCNotBeforeLeeway-skew).Before(nbf.Time()) {
		return nil, fmt.Errorf("oidc: token not valid before %s, more than %s after %s: %w",
			date(nbf), goOIDCNotBeforeLeeway-skew, now.UTC().Format(time.RFC3339), upstream.ErrInvalidToken)
	}
	if !slices.ContainsFunc(registered.Audience, func(aud string) bool { return slices.Contains(c.cfg.ExchangeAudiences, aud) }) {
		return nil, fmt.Errorf("oidc: token audience %q names none of %q: %w", registered.Audience, c.cfg.ExchangeAudiences, upstream.ErrInvalidToken)
	}

	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, fmt.Errorf("oidc: token claims: %w: %w", err, upstream.ErrInvalidToken)
	}
	check := c.checkDialect
	if c.dialect.checkExchange != nil {
		check = c.dialect.checkExchange
	}
	if err := check(claims); err != nil {
		return nil, err
	}
	return claims, nil
}

// date formats a claim's date for an error message.
func date(d *jwt.NumericDate) string {
	if d == nil {
		return "none"
	}
	return d.Time().UTC().Format(time.RFC3339)
}
