package oidc

import (
	"context"
	"errors"
	"maps"

	"github.com/idbroker/broker/upstream"
	"github.com/idbroker/broker/upstream/internal/fetch"
)

var _ upstream.IdentityCompleter = (*Connector)(nil)

// CompleteIdentity implements upstream.IdentityCompleter with the
// userinfo endpoint, asked with accessToken (bounded by ctx, as every
// call but discovery and key fetches is; see Config.Timeout). Its
// sub must be id's; its claims complete the token's as at login
// (Config.UseUserinfo), and the identity is read again from them.
//
// The token is taken as it is, id returned unchanged, when the upstream
// publishes no userinfo endpoint, when its userinfo takes no token of an
// API (Entra ID's takes only Microsoft Graph's), or when userinfo refuses
// this token (401 or 403: an Auth0 token issued without the openid
// scope). Nothing is cached: the answer is used for this call only.
func (c *Connector) CompleteIdentity(ctx context.Context, accessToken string, id upstream.Identity) (upstream.Identity, error) {
	if c.dialect.userinfoTakesNoAPITokens {
		return id, nil
	}
	p, err := c.provider(ctx)
	if err != nil {
		return upstream.Identity{}, err
	}
	if p.userinfoURL == "" {
		return id, nil
	}
	var info map[string]any
	err = fetch.GetJSON(ctx, c.client, p.userinfoURL, accessToken, &info)
	if errors.Is(err, upstream.ErrInvalidToken) {
		return id, nil
	}
	if err != nil {
		return upstream.Identity{}, err
	}
	claims := maps.Clone(id.Claims)
	if claims == nil {
		claims = map[string]any{"sub": id.Subject}
	}
	if err := mergeUserinfo(claims, info); err != nil {
		return upstream.Identity{}, err
	}
	return c.identity(claims)
}
