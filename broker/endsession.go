package broker

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"slices"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// EndSession handles RP-initiated logout. It redirects only to a
// post_logout_redirect_uri registered for the client (named by client_id
// or by the audience of id_token_hint), passing state back; without one
// it shows the signed-out page. An unregistered URI is refused with a
// page, never followed.
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
		return op.NewRedirect(endSessionPath + "/done"), nil
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
	return op.NewRedirect(clientRedirect(req.PostLogoutRedirectURI, url.Values{"state": {req.State}})), nil
}

// idTokenHintAudience verifies an ID token the broker issued and returns
// its client. An expired hint is still accepted, as OpenID Connect
// RP-Initiated Logout 1.0 section 2 allows.
func (b *Broker) idTokenHintAudience(raw string) (string, error) {
	payload, header, err := b.keys.Verify(raw)
	if err != nil {
		return "", err
	}
	if typ, _ := header.ExtraHeaders["typ"].(string); typ == "at+jwt" {
		return "", errors.New("an access token is not an id_token_hint")
	}
	var c idTokenClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", err
	}
	if c.Issuer != b.issuer || len(c.Audience) != 1 {
		return "", errors.New("id_token_hint has the wrong issuer or audience")
	}
	return c.Audience[0], nil
}
