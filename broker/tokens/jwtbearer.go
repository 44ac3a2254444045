package tokens

// The jwt-bearer grant (RFC 7523 section 2.1), answered for identity
// assertion grants (ID-JAGs, draft-ietf-oauth-identity-assertion-authz-grant
// section 4.4) alone: an enterprise identity provider the broker trusts
// for sign-in, through a connector with acceptsIdentityAssertions, vouches
// that a user lets a client act for them here. Section numbers are the
// draft's unless another RFC is named.

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/idbroker/broker/broker/answer"
	"github.com/idbroker/broker/broker/clients"
	"github.com/idbroker/broker/broker/identity"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/upstream"
	"github.com/idbroker/broker/upstream/jwks"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// JWTProfile answers the jwt-bearer grant for ID-JAGs. The library calls
// it without authenticating the client (it would accept any self-signed
// JWT, and no client), so the client authenticates here as at every
// token request, and only a confidential client whose grant types name
// the jwt-bearer URN gets further (a public client's id is no secret, so
// it could not show that the grant's client_id is its own).
//
// The assertion must be an ID-JAG of the one connector that lists its
// issuer and accepts identity assertions, verified by it (signature with
// a pinned algorithm, typ, iss, aud this broker alone, exp and iat);
// its client_id the authenticated client; its jti never used before. Its
// user is then resolved as at login (docs/design.md rule 1) and gets an
// access token for its resource (RFC 8707, Choose) with its scopes,
// those of a registered resource only. No refresh token (section 4.4.3)
// and no ID token. Every refusal of the assertion is invalid_grant (RFC
// 7521 section 5.2, section 4.4.1); the checks that write nothing come
// first, so a refused assertion burns no jti and provisions nobody.
func (t *Issuer) JWTProfile(ctx context.Context, r *op.Request[oidc.JWTProfileGrantRequest]) (*op.Response, error) {
	client, err := t.bearerClient(ctx, r)
	if err != nil {
		return nil, err
	}
	if !client.AllowsGrant(clients.GrantJWTBearer) {
		return nil, oidc.ErrUnauthorizedClient().WithDescription("this client may not use the jwt-bearer grant")
	}
	conn, a, err := t.verifyAssertion(ctx, client, r.Data.Assertion)
	if err != nil {
		return nil, err
	}
	audience, res, scopes, err := t.assertionTarget(ctx, client, a, r.Form)
	if err != nil {
		return nil, err
	}
	// RFC 7523 section 3, "jti": the server "MAY ensure that JWTs are
	// not replayed by maintaining the set of used jti values". Kept until
	// the assertion could no longer pass the expiry check: the connector
	// checks it with its own leeway, which is at most
	// upstream.MaxMaxClockSkew and may exceed tokens.clockSkew.
	err = t.store.ConsumeJTI(ctx, "id-jag:"+conn.ID()+":"+a.ID, a.Expiry.Add(max(t.cfg.ClockSkew, upstream.MaxMaxClockSkew)))
	if errors.Is(err, storage.ErrReplay) {
		return nil, answer.InvalidGrant(ctx, t.log, "the assertion was already used", "client_id", client.GetID(), "connector", conn.ID())
	}
	if err != nil {
		return nil, t.failures.Store(ctx, "consume assertion jti", err)
	}
	resolved, err := t.identities.Resolve(ctx, conn, a.Identity, identity.Options{})
	var sso *identity.SSORequiredError
	switch {
	case errors.As(err, &sso):
		return nil, answer.InvalidGrant(ctx, t.log, "this address must sign in through its organisation's own identity provider",
			"client_id", client.GetID(), "connector", conn.ID(), "org_id", sso.Org.ID)
	case errors.Is(err, identity.ErrUnknownUpstreamOrg), errors.Is(err, identity.ErrRefused):
		return nil, answer.InvalidGrant(ctx, t.log, "the assertion's user cannot be signed in here", "client_id", client.GetID(), "connector", conn.ID(), "detail", err.Error())
	case errors.Is(err, storage.ErrUserDisabled):
		return nil, answer.InvalidGrant(ctx, t.log, "the user is disabled", "client_id", client.GetID(), "connector", conn.ID())
	case errors.Is(err, upstream.ErrUnavailable):
		return nil, answer.TemporarilyUnavailable()
	case err != nil:
		return nil, t.failures.Store(ctx, "resolve identity", err)
	}
	g := Grant{User: resolved.User, ClientID: client.GetID(), Scopes: UserScopes(client, resolved.User, scopes),
		Audience: audience, Resource: res, AuthTime: a.AuthTime, AMR: []string{"fed"}, IDP: conn.ID(), Org: resolved.Org.ID}
	token, ttl, err := t.IssueAccessToken(g, nil)
	if err != nil {
		return nil, err
	}
	t.log.InfoContext(ctx, "identity assertion redeemed", "client_id", client.GetID(), "connector", conn.ID(),
		"user_id", g.User.ID, "audience", audience)
	return op.NewResponse(&oidc.AccessTokenResponse{
		AccessToken: token,
		TokenType:   oidc.BearerToken,
		ExpiresIn:   uint64(ttl / time.Second),
		Scope:       g.AccessScopes(),
	}), nil
}

// bearerClient authenticates the client of a jwt-bearer request as the
// library does for every other grant, through the same authenticator,
// which refuses a public client this grant.
func (t *Issuer) bearerClient(ctx context.Context, r *op.Request[oidc.JWTProfileGrantRequest]) (*clients.Client, error) {
	cc, err := clients.Credentials(r.Header, r.Form)
	if err != nil {
		return nil, err
	}
	c, err := t.auth.VerifyClient(ctx, &op.Request[op.ClientCredentials]{Method: r.Method, URL: r.URL, Header: r.Header, Form: r.Form, Data: cc})
	if err != nil {
		return nil, err
	}
	return c.(*clients.Client), nil
}

// verifyAssertion verifies raw as an ID-JAG for client: an
// invalid_grant for anything the client could not redeem, 503 when its
// issuer's keys cannot be fetched.
func (t *Issuer) verifyAssertion(ctx context.Context, client *clients.Client, raw string) (upstream.AssertionVerifier, upstream.IdentityAssertion, error) {
	refuse := func(detail string) (upstream.AssertionVerifier, upstream.IdentityAssertion, error) {
		return nil, upstream.IdentityAssertion{}, answer.InvalidGrant(ctx, t.log, "the assertion is not an identity assertion grant this server accepts",
			"client_id", client.GetID(), "detail", detail)
	}
	// The issuer is read before the signature is checked only to pick
	// the connector, which then checks everything, the issuer included.
	jws, err := jwks.ParseCompact(raw)
	if err != nil {
		return refuse("not a JWT signed with an asymmetric algorithm: " + err.Error())
	}
	var unverified struct {
		Issuer string `json:"iss"`
	}
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &unverified); err != nil {
		return refuse("claims: " + err.Error())
	}
	found, err := t.upstreams.ForIssuer(unverified.Issuer)
	if err != nil {
		return refuse(err.Error())
	}
	conn, ok := found.(upstream.AssertionVerifier)
	if !ok || !conn.AcceptsIdentityAssertions() {
		return refuse("connector " + found.ID() + " does not accept identity assertions")
	}
	ctx, cancel := t.upstreams.Context(ctx, conn.ID())
	defer cancel()
	a, err := conn.VerifyIdentityAssertion(ctx, jws, t.issuer)
	if errors.Is(err, upstream.ErrUnavailable) {
		t.log.WarnContext(ctx, "jwt-bearer: upstream unavailable", "client_id", client.GetID(), "connector", conn.ID(), "err", err)
		return nil, upstream.IdentityAssertion{}, answer.TemporarilyUnavailable()
	}
	if err != nil {
		return refuse(err.Error())
	}
	// An upstream's delegation names upstream subjects, which must never
	// reach a broker token, and dropping it would turn a delegated grant
	// into a direct one (as for exchanged tokens).
	if _, ok := a.Identity.Claims["act"]; ok {
		return refuse("the assertion carries act; upstream delegation is not redeemed")
	}
	if len(a.ID) > clients.MaxJTILength {
		return refuse("the assertion's jti is longer than " + strconv.Itoa(clients.MaxJTILength) + " bytes")
	}
	// Section 4.4.1: "The Resource Authorization Server MUST validate
	// that the client_id claim in the ID-JAG matches the authenticated
	// client making the request."
	if a.ClientID != client.GetID() {
		return refuse("the assertion is for client " + a.ClientID)
	}
	return conn, a, nil
}

// assertionTarget picks the access token's audience, registered resource
// and scope. The resource is the assertion's; a resource parameter may
// only pick among what it names (RFC 8707 section 2). Choose decides the
// rest as for every grant: a registered resource alone, or one of the
// client's audiences, else invalid_target. The scopes are the
// assertion's, less any the client does not list when it lists scopes
// (section 4.4.1 lets the server grant fewer), a scope parameter
// narrowing them; offline_access is never granted, as no refresh token
// is issued.
func (t *Issuer) assertionTarget(ctx context.Context, client *clients.Client, a upstream.IdentityAssertion, form url.Values) ([]string, *storage.Resource, []string, error) {
	requested, err := requestTargets(form)
	if err != nil {
		return nil, nil, nil, err
	}
	for _, v := range requested {
		if !slices.Contains(a.Resource, v) {
			return nil, nil, nil, oidc.ErrInvalidTarget().WithDescription("resource %q is not one the assertion grants", v)
		}
	}
	if len(requested) == 0 {
		requested = a.Resource
	}
	audience, res, err := t.ChooseTarget(ctx, client, requested, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	// The assertion's scopes are what the identity provider let the
	// client ask for; a client that lists the scopes it may ask for here
	// gets no others, as in every other grant (RFC 6749 section 3.3
	// lets the server grant fewer than asked).
	allowed := client.Scopes()
	scopes := slices.DeleteFunc(slices.Clone(a.Scope), func(s string) bool {
		return s == oidc.ScopeOfflineAccess || len(allowed) > 0 && !slices.Contains(allowed, s)
	})
	if s := form.Get("scope"); s != "" {
		narrowed := strings.Fields(s)
		for _, v := range narrowed {
			if !slices.Contains(scopes, v) {
				return nil, nil, nil, oidc.ErrInvalidScope().WithDescription("scope %q exceeds what the assertion grants", v)
			}
		}
		if err := CheckResourceScopes(res, narrowed); err != nil {
			return nil, nil, nil, err
		}
		scopes = narrowed
	}
	return audience, res, scopes, nil
}
