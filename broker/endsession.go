package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// EndSession handles RP-initiated logout. It ends the browser's session
// (logout), then redirects only to a post_logout_redirect_uri registered
// for the client (named by client_id or by the audience of
// id_token_hint), passing state back; without one it shows the
// signed-out page. An invalid request (an unregistered URI: refused with
// a page, never followed) ends nothing.
func (b *Broker) EndSession(ctx context.Context, r *op.Request[oidc.EndSessionRequest]) (*op.Redirect, error) {
	req := r.Data
	clientID := req.ClientID
	if req.IdTokenHint != "" {
		aud, err := b.idTokenHintAudience(req.IdTokenHint)
		if err != nil {
			return nil, oidc.ErrInvalidRequest().WithDescription("id_token_hint is not a token this service issued")
		}
		if clientID != "" && clientID != aud {
			return nil, oidc.ErrInvalidRequest().WithDescription("client_id does not match id_token_hint")
		}
		clientID = aud
	}
	if req.PostLogoutRedirectURI == "" {
		return b.logout(ctx, r.Header, "")
	}
	if clientID == "" {
		return nil, oidc.ErrInvalidRequest().WithDescription("post_logout_redirect_uri needs client_id or id_token_hint")
	}
	client, err := b.clients.get(ctx, clientID)
	if errors.Is(err, errUnknownClient) {
		return nil, oidc.ErrInvalidRequest().WithDescription("the application %q is not registered", clientID)
	}
	if err != nil {
		return nil, b.storeFailure(ctx, "get client", err)
	}
	if !slices.Contains(client.postLogoutRedirectURIs, req.PostLogoutRedirectURI) {
		b.log.InfoContext(ctx, "logout redirect refused", "client_id", clientID, "reason", "post_logout_redirect_uri not registered")
		return nil, oidc.ErrInvalidRequest().WithDescription("post_logout_redirect_uri is not registered for this application")
	}
	return b.logout(ctx, r.Header, clientRedirect(req.PostLogoutRedirectURI, url.Values{"state": {req.State}}))
}

// idTokenHintAudience verifies an ID token the broker issued and returns
// its client. An expired hint is still accepted, as OpenID Connect
// RP-Initiated Logout 1.0 section 2 allows.
func (b *Broker) idTokenHintAudience(raw string) (string, error) {
	c, err := b.verifyIDTokenHint(raw)
	if err != nil {
		return "", err
	}
	return c.Audience[0], nil
}

// verifyIDTokenHint verifies an ID token the broker issued, for logout and
// for /authorize. Only an ID token (typ JWT) is a hint: an access token
// (at+jwt) or a logout token (logout+jwt) is not.
func (b *Broker) verifyIDTokenHint(raw string) (idTokenClaims, error) {
	payload, header, err := b.keys.Verify(raw)
	if err != nil {
		return idTokenClaims{}, err
	}
	if typ, _ := header.ExtraHeaders["typ"].(string); typ != "JWT" {
		return idTokenClaims{}, fmt.Errorf("a token of type %q is not an id_token_hint", typ)
	}
	var c idTokenClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return idTokenClaims{}, fmt.Errorf("id_token_hint claims: %w", err)
	}
	if c.Issuer != b.issuer || len(c.Audience) != 1 {
		return idTokenClaims{}, errors.New("id_token_hint has the wrong issuer or audience")
	}
	return c, nil
}
