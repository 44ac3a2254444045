package oidc

import (
	"context"
	"fmt"
	"slices"

	"github.com/idbroker/broker/upstream"
)

// Issuers implements upstream.TokenVerifier.
func (c *Connector) Issuers() []string {
	if c.dialect.issuers != nil {
		return c.dialect.issuers()
	}
	return []string{c.cfg.Issuer}
}

// VerifyToken implements upstream.TokenVerifier for access, ID and JWT
// token types. The token must be a JWT signed by the upstream's keys with
// a pinned algorithm, from the issuer, unexpired (within the clock skew),
// and its aud must name one of Config.ExchangeAudiences. It does not
// check a nonce (there is no login to match) or who the token was issued
// to beyond its audience.
func (c *Connector) VerifyToken(ctx context.Context, rawToken, tokenType string) (upstream.Identity, error) {
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
	tok, claims, err := c.verify(ctx, p, p.exchange, rawToken)
	if err != nil {
		return upstream.Identity{}, err
	}
	if !slices.ContainsFunc(tok.Audience, func(aud string) bool { return slices.Contains(c.cfg.ExchangeAudiences, aud) }) {
		return upstream.Identity{}, fmt.Errorf("oidc: token audience %q names none of %q: %w", tok.Audience, c.cfg.ExchangeAudiences, upstream.ErrInvalidToken)
	}
	return c.identity(claims)
}
