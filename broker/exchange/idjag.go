package exchange

// The broker as an enterprise identity provider
// (draft-ietf-oauth-identity-assertion-authz-grant, MCP "enterprise-managed
// authorization"): a client trades an ID token the broker issued to it
// for an identity assertion grant (ID-JAG) that another authorization
// server, one the client's policy names, redeems for its own access
// token. Section numbers are the draft's unless another RFC is named.

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"time"

	"github.com/idbroker/broker/broker/answer"
	"github.com/idbroker/broker/broker/clients"
	"github.com/idbroker/broker/broker/tokens"
	"github.com/idbroker/broker/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// TokenTypeIDJAG is the token type of an ID-JAG (section 4.3).
const TokenTypeIDJAG oidc.TokenType = "urn:ietf:params:oauth:token-type:id-jag"

// identityAssertion answers a token exchange for an ID-JAG (section
// 4.3). The subject token must be an ID token the broker issued to the
// authenticated client (section 4.3.2: its audience "matches the
// client_id of the client authentication"), of a user still enabled, and
// not of an impersonated login, which the grant could not mark as one.
// The audience must be one issuer the client's policy names
// (IDJAGAudiences), else invalid_target (RFC 8693 section 2.2.2); there
// is at most one resource. The grant names the client by its own id: the
// policy maps no other. It carries the user's email when the ID token
// did, so the other server can find or provision the account (section
// 3.1), and lives tokens.IdentityAssertionTTL. Each one issued is
// audited.
func (x *Exchanger) identityAssertion(ctx context.Context, client *clients.Client, req exchangeRequest, form url.Values) (*op.Response, error) {
	switch {
	case req.subjectTokenType != string(oidc.IDTokenType):
		return nil, oidc.ErrInvalidRequest().WithDescription("an identity assertion grant is issued for an ID token (subject_token_type %s)", oidc.IDTokenType)
	case req.actorToken != "":
		// Section 4.3: actor_token "[is] not used in this specification".
		return nil, oidc.ErrInvalidRequest().WithDescription("actor_token is not used for identity assertion grants")
	case len(form["audience"]) != 1 || form.Get("audience") == "":
		return nil, oidc.ErrInvalidRequest().WithDescription("audience, the issuer of the authorization server the grant is for, is required once")
	case len(form["resource"]) > 1:
		return nil, oidc.ErrInvalidTarget().WithDescription("an identity assertion grant names one resource")
	}
	audience := form.Get("audience")
	if !slices.Contains(client.IDJAGAudiences(), audience) {
		x.log.InfoContext(ctx, "identity assertion grant refused", "client_id", client.GetID(), "audience", audience, "reason", "not in the client's policy")
		return nil, oidc.ErrInvalidTarget().WithDescription("this client may not get identity assertion grants for %q", audience)
	}
	claims, user, err := x.tokens.VerifyIDToken(ctx, req.subjectToken, client.GetID())
	switch {
	case errors.Is(err, storage.ErrUserDisabled):
		return nil, answer.InvalidGrant(ctx, x.log, "the user is disabled", "client_id", client.GetID())
	case errors.Is(err, tokens.ErrInactive):
		return nil, x.tokenRefused(ctx, client.GetID(), "subject_token", unacceptable("%v", err))
	case err != nil:
		return nil, x.failures.Store(ctx, "verify subject_token", err)
	case claims.Act != nil:
		// An impersonated login: an ID-JAG has no act, and dropping it
		// would let the other server take the impersonator for the user.
		return nil, x.tokenRefused(ctx, client.GetID(), "subject_token", unacceptable("the ID token of an impersonated login (act) is not traded for an identity assertion grant"))
	}
	a := tokens.IdentityAssertion{User: user, Audience: audience, ClientID: client.GetID(), Resource: form.Get("resource"),
		Scope: req.scopes, AMR: claims.AMR, Email: claims.Email != ""}
	if claims.AuthTime != 0 {
		a.AuthTime = time.Unix(claims.AuthTime, 0)
	}
	token, ttl, err := x.tokens.IssueIdentityAssertion(ctx, a)
	if err != nil {
		return nil, err
	}
	x.log.InfoContext(ctx, "identity assertion grant issued", "client_id", client.GetID(), "user_id", user.ID, "audience", audience)
	// Section 4.3.3: token_type N_A, "because this is not an OAuth
	// access token"; the scope is what was asked for.
	return op.NewResponse(&oidc.TokenExchangeResponse{
		AccessToken:     token,
		IssuedTokenType: TokenTypeIDJAG,
		TokenType:       "N_A",
		ExpiresIn:       uint64(ttl / time.Second),
		Scopes:          req.scopes,
	}), nil
}
