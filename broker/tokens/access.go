package tokens

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/idbroker/broker/broker/answer"
	"github.com/idbroker/broker/broker/clients"
	"github.com/idbroker/broker/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// ErrInactive means a token is not one the broker would honour now:
// forged, expired, revoked, or its user disabled. Callers never learn which.
var ErrInactive = errors.New("token inactive")

// verifyOwn checks a token the broker signed: its signature against the
// published keys and its typ, then decodes its claims into claims. A
// refusal wraps ErrInactive.
func (t *Issuer) verifyOwn(raw, typ string, claims any) error {
	payload, header, err := t.keys.Verify(raw)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInactive, err)
	}
	if got, _ := header.ExtraHeaders["typ"].(string); got != typ {
		return fmt.Errorf("%w: typ %q is not %s", ErrInactive, got, typ)
	}
	if err := json.Unmarshal(payload, claims); err != nil {
		return fmt.Errorf("%w: claims: %v", ErrInactive, err)
	}
	return nil
}

// VerifyAccessToken checks an access token the broker issued: signature
// against the published keys, typ at+jwt, issuer, expiry, and that nothing
// in storage revoked it (its jti, its Grant, or its user's tokens), that
// the connector its login came through is still there, and that its user
// exists and is enabled; it returns that user. Every path that accepts
// the broker's own access tokens goes through here.
func (t *Issuer) VerifyAccessToken(ctx context.Context, raw string) (AccessClaims, storage.User, error) {
	var claims AccessClaims
	if err := t.verifyOwn(raw, "at+jwt", &claims); err != nil {
		return claims, storage.User{}, err
	}
	if claims.Issuer != t.issuer || claims.JTI == "" || claims.Subject == "" || t.now().Unix() >= claims.Expiry {
		return claims, storage.User{}, fmt.Errorf("%w: wrong issuer, no jti or sub, or expired", ErrInactive)
	}
	if t.connectorGone(claims.IDP) {
		return claims, storage.User{}, fmt.Errorf("%w: connector %q is no longer configured", ErrInactive, claims.IDP)
	}
	user, err := t.store.AccessTokenUser(ctx, claims.Ref())
	switch {
	case errors.Is(err, storage.ErrRevoked), errors.Is(err, storage.ErrUserDisabled), errors.Is(err, storage.ErrNotFound):
		return claims, user, fmt.Errorf("%w: %w", ErrInactive, err)
	case err != nil:
		return claims, user, err
	}
	return claims, user, nil
}

// Introspect answers RFC 7662 introspection for confidential clients. A
// token that is forged, expired, revoked, or whose user is disabled is
// {"active": false}, with no reason given; so is a live token the caller
// may not know about (Client.MayIntrospect), since section 4 would otherwise
// let any client read the subject and scope of every other client's
// tokens.
func (t *Issuer) Introspect(ctx context.Context, r *op.Request[op.IntrospectionRequest]) (*op.Response, error) {
	client, err := t.auth.Authenticate(ctx, r.Data.ClientCredentials)
	if err != nil {
		return nil, err
	}
	if client.Public() {
		return nil, answer.InvalidClient(ctx, "introspection needs a confidential client")
	}
	// token_type_hint (section 2.1) is read from the form: the library's
	// request type drops it. It only orders the search: a server that
	// does not find the token by its hint "MUST extend its search across
	// all of its supported token types".
	lookups := []func(context.Context, *clients.Client, string) (*op.Response, error){t.introspectAccessToken, t.introspectRefreshToken}
	if r.Form.Get("token_type_hint") == "refresh_token" {
		slices.Reverse(lookups)
	}
	for _, lookup := range lookups {
		resp, err := lookup(ctx, client, r.Data.Token)
		if resp != nil || err != nil {
			return resp, err
		}
	}
	return inactiveToken(), nil
}

// inactiveToken is the whole answer about a token the caller may not
// use or know about (RFC 7662 section 2.2).
func inactiveToken() *op.Response { return op.NewResponse(map[string]any{"active": false}) }

// introspectAccessToken describes token to client if it is one of the
// broker's access tokens; nil, nil if it is not one.
func (t *Issuer) introspectAccessToken(ctx context.Context, client *clients.Client, token string) (*op.Response, error) {
	claims, _, err := t.VerifyAccessToken(ctx, token)
	switch {
	case errors.Is(err, ErrInactive):
		return nil, nil
	case err != nil:
		return nil, t.failures.Store(ctx, "check access token", err)
	case !client.MayIntrospect(claims.ClientID, claims.Audience):
		t.log.InfoContext(ctx, "introspection refused", "client_id", client.GetID(), "token_client_id", claims.ClientID, "reason", "neither the token's client nor in its audience")
		return inactiveToken(), nil
	}
	resp := map[string]any{
		"active":     true,
		"token_type": "access_token",
		"iss":        claims.Issuer,
		"sub":        claims.Subject,
		"aud":        claims.Audience,
		"client_id":  claims.ClientID,
		"scope":      claims.Scope,
		"exp":        claims.Expiry,
		"iat":        claims.IssuedAt,
		"jti":        claims.JTI,
	}
	withOrg(resp, claims.Org, claims.OrgSlug)
	return op.NewResponse(resp), nil
}

// introspectRefreshToken describes token to client if it is a broker
// refresh token; nil, nil if the broker holds no such token. A refresh
// token's audience does not widen who may know about it: the audience
// names who its access tokens are for, and a refresh token is never sent
// to them (RFC 6749 section 1.5).
func (t *Issuer) introspectRefreshToken(ctx context.Context, client *clients.Client, token string) (*op.Response, error) {
	fam, user, err := t.store.GetRefreshGrant(ctx, t.refreshHash(token))
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, nil
	case errors.Is(err, storage.ErrRevoked):
		return inactiveToken(), nil
	case err != nil:
		return nil, t.failures.Store(ctx, "get refresh family", err)
	}
	// Active as a refresh would take it: not revoked, within its absolute
	// and idle lifetimes, of an enabled user, through a connector still
	// there.
	if fam.Revoked || fam.Expired(t.now()) || user.Disabled || t.connectorGone(fam.IDP) {
		return inactiveToken(), nil
	}
	if !client.MayIntrospect(fam.ClientID, nil) {
		t.log.InfoContext(ctx, "introspection refused", "client_id", client.GetID(), "token_client_id", fam.ClientID, "reason", "not the refresh token's client")
		return inactiveToken(), nil
	}
	resp := map[string]any{
		"active":     true,
		"token_type": "refresh_token",
		"iss":        t.issuer,
		"sub":        fam.UserID,
		"client_id":  fam.ClientID,
		"scope":      oidc.SpaceDelimitedArray(fam.Scopes).String(),
		"exp":        fam.ExpiresAt.Unix(),
	}
	// As the family's next tokens will say.
	id, slug := t.orgClaims(fam.Org, fam.Scopes)
	withOrg(resp, id, slug)
	return op.NewResponse(resp), nil
}

// withOrg adds a token's organisation to its introspection answer, when
// it has one: what the token itself says, so the two agree.
func withOrg(resp map[string]any, id, slug string) {
	if id != "" {
		resp["org_id"], resp["org_slug"] = id, slug
	}
}

// Revocation revokes a refresh token (with its whole family) or an access
// token (RFC 7009). A token the broker does not know, or that is already
// invalid, is answered with 200 as section 2.2 asks; another client's
// token is refused.
func (t *Issuer) Revocation(ctx context.Context, r *op.ClientRequest[oidc.RevocationRequest]) (*op.Response, error) {
	client := r.Client.(*clients.Client)
	// RFC 7009 section 2.1: the hint only orders the search; a server
	// that does not find the token by it "MUST extend its search across
	// all of its supported token types". A refresh token hinted as an
	// access token used to be left alive under a 200.
	revokers := []func(context.Context, *clients.Client, string) (bool, error){t.revokeRefreshToken, t.revokeAccessToken}
	if r.Data.TokenTypeHint == "access_token" {
		slices.Reverse(revokers)
	}
	for _, revoke := range revokers {
		if found, err := revoke(ctx, client, r.Data.Token); err != nil {
			return nil, err
		} else if found {
			break
		}
	}
	return op.NewResponse(struct{}{}), nil
}

// revokeRefreshToken revokes the refresh family of token, if token is
// one of client's refresh tokens, and reports whether it is a refresh
// token at all.
func (t *Issuer) revokeRefreshToken(ctx context.Context, client *clients.Client, token string) (bool, error) {
	fam, err := t.store.GetRefreshFamilyByToken(ctx, t.refreshHash(token))
	switch {
	case errors.Is(err, storage.ErrNotFound), errors.Is(err, storage.ErrRevoked):
		return false, nil
	case err != nil:
		return false, t.failures.Store(ctx, "get refresh family", err)
	case fam.ClientID != client.GetID():
		return false, oidc.ErrUnauthorizedClient().WithDescription("the token was issued to another client")
	}
	if err := t.RevokeGrant(ctx, fam.ID); err != nil {
		return false, t.failures.Store(ctx, "revoke refresh family", err)
	}
	return true, nil
}

// revokeAccessToken revokes token, if it is a live access token client
// may revoke, and reports whether it is one.
func (t *Issuer) revokeAccessToken(ctx context.Context, client *clients.Client, token string) (bool, error) {
	claims, _, err := t.VerifyAccessToken(ctx, token)
	if errors.Is(err, ErrInactive) {
		return false, nil
	}
	if err != nil {
		return false, t.failures.Store(ctx, "check access token", err)
	}
	if claims.ClientID != client.GetID() && !slices.Contains(claims.Audience, client.GetID()) {
		return false, oidc.ErrUnauthorizedClient().WithDescription("the token was issued to another client")
	}
	if err := t.store.RevokeAccessToken(ctx, claims.Ref()); err != nil {
		return false, t.failures.Store(ctx, "revoke access token", err)
	}
	return true, nil
}

// connectorGone reports whether idp, the connector a token's login came
// through, is gone: deleted or disabled at run time, or taken out of the
// configuration. What it signed in ends (docs/design.md, Tokens): its
// refresh families are revoked at their next use (recheck), and its
// tokens verify no more. A token of no login (client credentials) names
// none.
func (t *Issuer) connectorGone(idp string) bool {
	return idp != "" && t.upstreams.Get(idp) == nil
}
