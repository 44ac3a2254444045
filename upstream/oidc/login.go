package oidc

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/idbroker/broker/upstream"
	"github.com/idbroker/broker/upstream/internal/fetch"
)

// LoginURL implements upstream.CallbackConnector: an authorization request
// with the state, the nonce and the S256 challenge of s.CodeVerifier.
func (c *Connector) LoginURL(ctx context.Context, s upstream.LoginState) (string, error) {
	if s.State == "" || s.Nonce == "" || s.CodeVerifier == "" || s.CallbackURL == "" {
		return "", fmt.Errorf("oidc: connector %q: login state needs a callback URL, state, nonce and code verifier", c.cfg.ID)
	}
	p, err := c.provider(ctx)
	if err != nil {
		return "", err
	}
	conf := p.oauth2
	conf.RedirectURL = s.CallbackURL
	opts := []oauth2.AuthCodeOption{gooidc.Nonce(s.Nonce), oauth2.S256ChallengeOption(s.CodeVerifier)}
	if s.LoginHint != "" {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", s.LoginHint))
	}
	for k, vs := range c.dialect.authParams {
		for _, v := range vs {
			opts = append(opts, oauth2.SetAuthURLParam(k, v))
		}
	}
	return conf.AuthCodeURL(s.State, opts...), nil
}

// HandleCallback implements upstream.CallbackConnector. It checks the
// state, turns an upstream error into upstream.ErrDenied, redeems the code
// with the PKCE verifier, and verifies the ID token: signature by the
// upstream's keys with a pinned algorithm, issuer, audience (and azp when
// present), expiry, nonce, and the preset's own checks.
func (c *Connector) HandleCallback(ctx context.Context, s upstream.LoginState, r *http.Request) (upstream.Identity, error) {
	q := r.URL.Query()
	if got := q.Get("state"); s.State == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.State)) != 1 {
		return upstream.Identity{}, fmt.Errorf("oidc: callback state %q does not match the login's: %w", got, upstream.ErrInvalidToken)
	}
	if e := q.Get("error"); e != "" {
		return upstream.Identity{}, fmt.Errorf("oidc: upstream %q answered %q (%q): %w", c.cfg.Issuer, e, q.Get("error_description"), upstream.ErrDenied)
	}
	code := q.Get("code")
	if code == "" {
		return upstream.Identity{}, fmt.Errorf("oidc: callback has no code: %w", upstream.ErrInvalidToken)
	}
	p, err := c.provider(ctx)
	if err != nil {
		return upstream.Identity{}, err
	}
	conf := p.oauth2
	conf.RedirectURL = s.CallbackURL
	tok, err := conf.Exchange(c.clientContext(ctx), code, oauth2.VerifierOption(s.CodeVerifier))
	if err != nil {
		return upstream.Identity{}, tokenEndpointError(err, upstream.ErrInvalidToken)
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		return upstream.Identity{}, fmt.Errorf("oidc: token response from %q has no id_token: %w", c.cfg.Issuer, upstream.ErrInvalidToken)
	}
	idToken, claims, err := c.verifyIDToken(ctx, p, rawID)
	if err != nil {
		return upstream.Identity{}, err
	}
	// go-oidc leaves the nonce to the caller.
	if subtle.ConstantTimeCompare([]byte(idToken.Nonce), []byte(s.Nonce)) != 1 {
		return upstream.Identity{}, fmt.Errorf("oidc: id token nonce %q does not match the login's: %w", idToken.Nonce, upstream.ErrInvalidToken)
	}
	if err := c.checkAuthorizedParty(claims); err != nil {
		return upstream.Identity{}, err
	}
	if idToken.AccessTokenHash != "" {
		if err := idToken.VerifyAccessToken(tok.AccessToken); err != nil {
			return upstream.Identity{}, fmt.Errorf("oidc: at_hash: %w: %w", err, upstream.ErrInvalidToken)
		}
	}
	if c.cfg.UseUserinfo {
		if err := c.addUserinfo(ctx, p, tok.AccessToken, claims); err != nil {
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

// verifyIDToken verifies an ID token from the token endpoint (at login or
// refresh) with go-oidc and runs the preset's checks on its claims. It
// does not check the nonce or azp: the callers do, as each needs.
func (c *Connector) verifyIDToken(ctx context.Context, p *provider, raw string) (*gooidc.IDToken, map[string]any, error) {
	tok, err := p.keys.Verify(ctx, p.login, raw)
	if err != nil {
		return nil, nil, err
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return nil, nil, fmt.Errorf("oidc: token claims: %w: %w", err, upstream.ErrInvalidToken)
	}
	if err := c.checkDialect(claims); err != nil {
		return nil, nil, err
	}
	return tok, claims, nil
}

// checkDialect runs the preset's checks on verified claims.
func (c *Connector) checkDialect(claims map[string]any) error {
	if check := c.dialect.check; check != nil {
		return check(claims)
	}
	return nil
}

// checkAuthorizedParty: go-oidc does not check azp. When an ID token names
// an authorized party, it must be the broker.
func (c *Connector) checkAuthorizedParty(claims map[string]any) error {
	if azp, ok := claims["azp"].(string); ok && azp != c.cfg.ClientID {
		return fmt.Errorf("oidc: id token azp %q, want %q: %w", azp, c.cfg.ClientID, upstream.ErrInvalidToken)
	}
	return nil
}

// addUserinfo lets the userinfo endpoint's claims complete claims. Its sub
// must be the ID token's; registered claims of the ID token are kept.
func (c *Connector) addUserinfo(ctx context.Context, p *provider, accessToken string, claims map[string]any) error {
	if p.userinfoURL == "" {
		return fmt.Errorf("oidc: connector %q uses userinfo but %q publishes no userinfo_endpoint: %w", c.cfg.ID, c.cfg.Issuer, upstream.ErrUnavailable)
	}
	var info map[string]any
	if err := fetch.GetJSON(ctx, c.client, p.userinfoURL, accessToken, &info); err != nil {
		return err
	}
	return mergeUserinfo(claims, info)
}

// mergeUserinfo adds a userinfo answer to verified claims. Its sub must be
// theirs; their registered claims are kept.
func mergeUserinfo(claims, info map[string]any) error {
	if info["sub"] != claims["sub"] {
		return fmt.Errorf("oidc: userinfo sub %q differs from the token's sub %q: %w", info["sub"], claims["sub"], upstream.ErrInvalidToken)
	}
	for k, v := range info {
		switch k {
		case "iss", "sub", "aud", "exp", "iat", "nbf", "nonce", "azp", "tid", "oid":
			continue
		}
		claims[k] = v
	}
	return nil
}

// clientContext makes x/oauth2 use the connector's HTTP client.
func (c *Connector) clientContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, c.client)
}

// tokenEndpointError sorts a token endpoint failure: unreachable, 429 and
// 5xx are upstream.ErrUnavailable; invalid_grant (the code or refresh
// token is refused) wraps what the caller says that means; any other
// answer, such as a refused client secret, is the broker's configuration
// and wraps no sentinel, so nothing about the user is decided from it.
func tokenEndpointError(err error, invalidGrant error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return fmt.Errorf("oidc: token endpoint: %w: %w", err, upstream.ErrUnavailable)
	}
	status := re.Response.StatusCode
	switch {
	case status == http.StatusTooManyRequests || status >= 500:
		return fmt.Errorf("oidc: token endpoint: %w: %w", err, upstream.ErrUnavailable)
	case re.ErrorCode == "invalid_grant":
		return fmt.Errorf("oidc: token endpoint: %w: %w", err, invalidGrant)
	}
	return fmt.Errorf("oidc: token endpoint: %w", err)
}
