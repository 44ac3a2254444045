package oidc

import (
	"context"
	"fmt"
	"slices"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/idbroker/broker/upstream"
	"github.com/idbroker/broker/upstream/internal/fetch"
)

// DefaultScopes are requested at login when Config.Scopes is empty.
// offline_access is what OpenID Connect (and Auth0 and Entra ID) issue a
// refresh token for, and the refresh token is what lets the broker ask
// the upstream about the user again.
var DefaultScopes = []string{gooidc.ScopeOpenID, "email", "profile", gooidc.ScopeOfflineAccess}

// AsksForRefreshToken implements upstream.RefreshTokenAsker: logins
// request offline_access.
func (c *Connector) AsksForRefreshToken() bool {
	return slices.Contains(c.cfg.Scopes, gooidc.ScopeOfflineAccess)
}

// Refresh implements upstream.Refresher. It redeems the refresh token and
// reads the identity from the new ID token (or, when the upstream sends
// none, from userinfo). A refused refresh token (invalid_grant: revoked,
// user blocked or deleted) is upstream.ErrDenied. The identity carries the
// upstream's new refresh token when it rotates them, the old one
// otherwise.
func (c *Connector) Refresh(ctx context.Context, refreshToken string) (upstream.Identity, error) {
	p, err := c.provider(ctx)
	if err != nil {
		return upstream.Identity{}, err
	}
	tok, err := p.oauth2.TokenSource(c.clientContext(ctx), &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		return upstream.Identity{}, tokenEndpointError(err, upstream.ErrDenied)
	}
	var claims map[string]any
	if rawID, _ := tok.Extra("id_token").(string); rawID != "" {
		if _, claims, err = c.verifyIDToken(ctx, p, rawID); err != nil {
			return upstream.Identity{}, err
		}
		if err := c.checkAuthorizedParty(claims); err != nil {
			return upstream.Identity{}, err
		}
	} else {
		if p.userinfoURL == "" {
			return upstream.Identity{}, fmt.Errorf("oidc: refresh at %q returned no id_token and there is no userinfo endpoint: %w", c.cfg.Issuer, upstream.ErrInvalidToken)
		}
		if err := fetch.GetJSON(ctx, c.client, p.userinfoURL, tok.AccessToken, &claims); err != nil {
			return upstream.Identity{}, err
		}
	}
	id, err := c.identity(claims)
	if err != nil {
		return upstream.Identity{}, err
	}
	id.RefreshToken = tok.RefreshToken
	return id, nil
}
